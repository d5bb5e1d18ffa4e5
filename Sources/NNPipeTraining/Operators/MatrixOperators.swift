import NNPipeCore

/// Gemm: Y = alpha·op(A)·op(B) + beta·C with C broadcast to [M, N].
final class GemmOperator: DifferentiableOperator {
    let alpha: Float
    let beta: Float
    let transposeA: Bool
    let transposeB: Bool
    private var pair: BroadcastPair?

    init(node: Node) {
        alpha = node.float("alpha", default: 1)
        beta = node.float("beta", default: 1)
        transposeA = node.integer("transA", default: 0) != 0
        transposeB = node.integer("transB", default: 0) != 0
    }

    private func dimensions(_ a: TrainingTensor, _ b: TrainingTensor) throws -> (m: Int, k: Int, n: Int) {
        guard a.rank == 2, b.rank == 2 else { throw NNPipeError(.invalidModel, "Gemm needs 2-D operands, got \(a.shape) and \(b.shape)") }
        let m = transposeA ? a.shape[1] : a.shape[0]
        let k = transposeA ? a.shape[0] : a.shape[1]
        let otherK = transposeB ? b.shape[1] : b.shape[0]
        let n = transposeB ? b.shape[0] : b.shape[1]
        guard k == otherK else { throw NNPipeError(.invalidModel, "Gemm inner dimensions differ: \(a.shape) and \(b.shape)") }
        return (m, k, n)
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let a = try required(inputs, 0, "A")
        let b = try required(inputs, 1, "B")
        let (m, k, n) = try dimensions(a, b)
        var output = [Float](repeating: 0, count: m * n)
        var hasBias = false
        if inputs.count > 2, let c = inputs[2] {
            let pair = try BroadcastPair([m, n], c.shape)
            guard pair.outputShape == [m, n] else { throw NNPipeError(.invalidModel, "Gemm C \(c.shape) does not broadcast to [\(m), \(n)]") }
            self.pair = pair
            for i in 0..<output.count { output[i] = c.values[pair.secondIndices[i]] }
            hasBias = true
        }
        a.values.withUnsafeBufferPointer { aa in
            b.values.withUnsafeBufferPointer { bb in
                output.withUnsafeMutableBufferPointer { cc in
                    multiply(rows: m, columns: n, inner: k, aa.baseAddress!, transposeA: transposeA, bb.baseAddress!,
                             transposeB: transposeB, into: cc.baseAddress!, alpha: alpha, beta: hasBias ? beta : 0)
                }
            }
        }
        return [TrainingTensor(shape: [m, n], values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let a = try required(inputs, 0, "A")
        let b = try required(inputs, 1, "B")
        let (m, k, n) = try dimensions(a, b)
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        var gradientA = [Float](repeating: 0, count: a.elementCount)
        var gradientB = [Float](repeating: 0, count: b.elementCount)
        upstream.values.withUnsafeBufferPointer { dy in
            b.values.withUnsafeBufferPointer { bb in
                gradientA.withUnsafeMutableBufferPointer { da in
                    // dA = dY·op(B)ᵀ, laid out as A (transposed back when transA).
                    if transposeA {
                        multiply(rows: k, columns: m, inner: n, bb.baseAddress!, transposeA: transposeB, dy.baseAddress!,
                                 transposeB: true, into: da.baseAddress!, alpha: alpha)
                    } else {
                        multiply(rows: m, columns: k, inner: n, dy.baseAddress!, bb.baseAddress!, transposeB: !transposeB,
                                 into: da.baseAddress!, alpha: alpha)
                    }
                }
            }
            a.values.withUnsafeBufferPointer { aa in
                gradientB.withUnsafeMutableBufferPointer { db in
                    // dB = op(A)ᵀ·dY, laid out as B.
                    if transposeB {
                        multiply(rows: n, columns: k, inner: m, dy.baseAddress!, transposeA: true, aa.baseAddress!,
                                 transposeB: transposeA, into: db.baseAddress!, alpha: alpha)
                    } else {
                        multiply(rows: k, columns: n, inner: m, aa.baseAddress!, transposeA: !transposeA, dy.baseAddress!,
                                 into: db.baseAddress!, alpha: alpha)
                    }
                }
            }
        }
        var result: [TrainingTensor?] = [
            TrainingTensor(shape: a.shape, values: gradientA), TrainingTensor(shape: b.shape, values: gradientB),
        ]
        if inputs.count > 2, let c = inputs[2], let pair {
            var reduced = BroadcastPair.reduce(upstream.values, indices: pair.secondIndices, operandShape: c.shape)
            if beta != 1 { reduced.values = reduced.values.map { $0 * beta } }
            result.append(reduced)
        }
        return result
    }
}

/// MatMul for A of rank ≥ 2 against B of rank 2 (dense layers over any leading axes), or two
/// operands with the same batch axes.
final class MatMulOperator: DifferentiableOperator {
    private struct Layout {
        var batches: Int
        var m: Int
        var k: Int
        var n: Int
        /// B is one matrix shared by every batch.
        var sharedB: Bool
        var outputShape: [Int]
    }

    private func layout(_ a: TrainingTensor, _ b: TrainingTensor) throws -> Layout {
        guard a.rank >= 2, b.rank >= 2 else {
            throw NNPipeError(.unsupported, "MatMul training needs operands of rank 2 or more, got \(a.shape) and \(b.shape)")
        }
        let k = a.shape[a.rank - 1]
        guard b.shape[b.rank - 2] == k else { throw NNPipeError(.invalidModel, "MatMul inner dimensions differ: \(a.shape) and \(b.shape)") }
        let n = b.shape[b.rank - 1]
        if b.rank == 2 {
            let rows = a.shape.dropLast().reduce(1, *)
            return Layout(batches: 1, m: rows, k: k, n: n, sharedB: true, outputShape: a.shape.dropLast() + [n])
        }
        guard a.shape.dropLast(2) == b.shape.dropLast(2) else {
            throw NNPipeError(.unsupported, "MatMul training needs equal batch axes, got \(a.shape) and \(b.shape)")
        }
        let m = a.shape[a.rank - 2]
        return Layout(batches: a.shape.dropLast(2).reduce(1, *), m: m, k: k, n: n, sharedB: false,
                      outputShape: a.shape.dropLast() + [n])
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let a = try required(inputs, 0, "A")
        let b = try required(inputs, 1, "B")
        let shape = try layout(a, b)
        var output = [Float](repeating: 0, count: shape.outputShape.reduce(1, *))
        a.values.withUnsafeBufferPointer { aa in
            b.values.withUnsafeBufferPointer { bb in
                output.withUnsafeMutableBufferPointer { cc in
                    for batch in 0..<shape.batches {
                        multiply(rows: shape.m, columns: shape.n, inner: shape.k,
                                 aa.baseAddress! + batch * shape.m * shape.k,
                                 bb.baseAddress! + (shape.sharedB ? 0 : batch * shape.k * shape.n),
                                 into: cc.baseAddress! + batch * shape.m * shape.n)
                    }
                }
            }
        }
        return [TrainingTensor(shape: shape.outputShape, values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let a = try required(inputs, 0, "A")
        let b = try required(inputs, 1, "B")
        let shape = try layout(a, b)
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        var gradientA = [Float](repeating: 0, count: a.elementCount)
        var gradientB = [Float](repeating: 0, count: b.elementCount)
        upstream.values.withUnsafeBufferPointer { dy in
            a.values.withUnsafeBufferPointer { aa in
                b.values.withUnsafeBufferPointer { bb in
                    gradientA.withUnsafeMutableBufferPointer { da in
                        gradientB.withUnsafeMutableBufferPointer { db in
                            for batch in 0..<shape.batches {
                                let offsetA = batch * shape.m * shape.k
                                let offsetB = shape.sharedB ? 0 : batch * shape.k * shape.n
                                let offsetY = batch * shape.m * shape.n
                                // dA = dY·Bᵀ; dB (+)= Aᵀ·dY, accumulated when B is shared.
                                multiply(rows: shape.m, columns: shape.k, inner: shape.n, dy.baseAddress! + offsetY,
                                         bb.baseAddress! + offsetB, transposeB: true, into: da.baseAddress! + offsetA)
                                multiply(rows: shape.k, columns: shape.n, inner: shape.m, aa.baseAddress! + offsetA,
                                         transposeA: true, dy.baseAddress! + offsetY, into: db.baseAddress! + offsetB,
                                         beta: shape.sharedB && batch > 0 ? 1 : 0)
                            }
                        }
                    }
                }
            }
        }
        return [TrainingTensor(shape: a.shape, values: gradientA), TrainingTensor(shape: b.shape, values: gradientB)]
    }
}
