import NNPipeCore

/// Gemm and MatMul over OpenBLAS.
enum MatrixKernels {
    static func gemm(_ spec: inout NodeSpec) throws -> any Kernel {
        let alpha = spec.float("alpha", 1)
        let beta = spec.float("beta", 1)
        let transposeA = spec.int("transA", 0) == 1
        let transposeB = spec.int("transB", 0) == 1
        spec.ignore("broadcast")
        return ClosureKernel { inputs, context in
            let a = try inputs.required(0)
            let b = try inputs.required(1)
            guard a.dataType == .float, b.dataType == .float else { throw unsupportedType(a.dataType) }
            guard a.rank == 2, b.rank == 2 else { throw KernelError("Gemm needs 2-D A and B") }
            let m = transposeA ? a.shape[1] : a.shape[0]
            let k = transposeA ? a.shape[0] : a.shape[1]
            let n = transposeB ? b.shape[0] : b.shape[1]
            guard (transposeB ? b.shape[1] : b.shape[0]) == k else { throw KernelError("A \(a.shape) and B \(b.shape) do not multiply") }
            var result: RuntimeTensor
            var betaUsed: Float = 0
            if let c = inputs.optional(2), beta != 0 {
                guard c.dataType == .float else { throw unsupportedType(c.dataType) }
                result = try ShapeKernels.broadcastTo(c, [m, n])
                // broadcastTo may hand back shared storage only for equal shapes; copy to write safely.
                if result.storage === c.storage {
                    let copy = RuntimeTensor(dataType: .float, shape: [m, n])
                    copyElements(from: c, at: 0, to: copy, at: 0, count: m * n)
                    result = copy
                }
                betaUsed = beta
            } else {
                result = RuntimeTensor(dataType: .float, shape: [m, n], zeroed: true)
            }
            a.withUnsafeBuffer(of: Float.self) { left in
                b.withUnsafeBuffer(of: Float.self) { right in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        BLAS.multiply(rows: m, columns: n, inner: k, left.baseAddress!, leadingA: a.shape[1], transposeA: transposeA,
                                      right.baseAddress!, leadingB: b.shape[1], transposeB: transposeB,
                                      into: output.baseAddress!, leadingC: n, alpha: alpha, beta: betaUsed, threads: context.threads)
                    }
                }
            }
            return [result]
        }
    }

    static func matMul(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, context in
            [try multiply(try inputs.required(0), try inputs.required(1), threads: context.threads)]
        }
    }

    /// numpy.matmul: 1-D operands are promoted and the promoted axis dropped; batch axes broadcast.
    static func multiply(_ a: RuntimeTensor, _ b: RuntimeTensor, threads: Int? = nil) throws -> RuntimeTensor {
        guard a.dataType == b.dataType, a.dataType == .float || a.dataType == .double else {
            throw unsupportedType(a.dataType)
        }
        guard a.rank >= 1, b.rank >= 1 else { throw KernelError("MatMul needs operands of rank 1 or more") }
        let left = a.rank == 1 ? [1] + a.shape : a.shape
        let right = b.rank == 1 ? b.shape + [1] : b.shape
        let m = left[left.count - 2], k = left[left.count - 1]
        let n = right[right.count - 1]
        guard right[right.count - 2] == k else { throw KernelError("shapes \(a.shape) and \(b.shape) do not multiply") }
        let batchShape = try BroadcastPlan.shape([Array(left.dropLast(2)), Array(right.dropLast(2))])
        var outputShape = batchShape + [m, n]
        let batches = batchShape.reduce(1, *)
        let result = RuntimeTensor(dataType: a.dataType, shape: outputShape)
        // Batch offsets of each operand under broadcasting.
        let leftBatch = [Int](repeating: 1, count: batchShape.count - (left.count - 2)) + left.dropLast(2)
        let rightBatch = [Int](repeating: 1, count: batchShape.count - (right.count - 2)) + right.dropLast(2)
        func offsets(_ shape: [Int]) -> [Int] {
            let strides = contiguousStrides(shape)
            return (0..<batches).map { batch in
                var remainder = batch, offset = 0
                for axis in stride(from: batchShape.count - 1, through: 0, by: -1) {
                    let index = remainder % batchShape[axis]
                    remainder /= batchShape[axis]
                    if shape[axis] != 1 { offset += index * strides[axis] }
                }
                return offset
            }
        }
        let leftOffsets = offsets(leftBatch).map { $0 * m * k }
        let rightOffsets = offsets(rightBatch).map { $0 * k * n }
        // A stack of A's against one B is one tall multiplication.
        let rightShared = rightBatch.allSatisfy { $0 == 1 } && leftBatch == batchShape
        func run<Element>(_ type: Element.Type, _ gemm: (Int, Int, Int, UnsafePointer<Element>, UnsafePointer<Element>, UnsafeMutablePointer<Element>) -> Void) {
            a.withUnsafeBuffer(of: Element.self) { leftValues in
                b.withUnsafeBuffer(of: Element.self) { rightValues in
                    result.withUnsafeMutableBuffer(of: Element.self) { output in
                        if rightShared {
                            gemm(batches * m, n, k, leftValues.baseAddress!, rightValues.baseAddress!, output.baseAddress!)
                            return
                        }
                        for batch in 0..<batches {
                            gemm(m, n, k, leftValues.baseAddress! + leftOffsets[batch], rightValues.baseAddress! + rightOffsets[batch],
                                 output.baseAddress! + batch * m * n)
                        }
                    }
                }
            }
        }
        if a.dataType == .float {
            run(Float.self) { rows, columns, inner, x, y, z in
                BLAS.multiply(rows: rows, columns: columns, inner: inner, x, leadingA: inner, y, leadingB: columns, into: z, leadingC: columns, threads: threads)
            }
        } else {
            run(Double.self) { rows, columns, inner, x, y, z in
                BLAS.multiply(rows: rows, columns: columns, inner: inner, x, leadingA: inner, y, leadingB: columns, into: z, leadingC: columns, threads: threads)
            }
        }
        if a.rank == 1 { outputShape.remove(at: outputShape.count - 2) }
        if b.rank == 1 { outputShape.removeLast() }
        return result.reshaped(outputShape)
    }
}
