import NNPipeCore

/// Below this many elements, elementwise work stays on one thread (dispatch costs more).
let parallelElementThreshold = 1 << 15

/// out[i] = operation(a[i], b[i]) under broadcasting, rows split across threads.
@inline(__always)
func broadcastBinary<A, B, Output>(
    _ a: RuntimeTensor, _ b: RuntimeTensor, _ first: A.Type, _ second: B.Type, output outputType: DataType,
    threads: Int, _ operation: (A, B) -> Output
) throws -> RuntimeTensor {
    let plan = try BroadcastPlan(inputs: [a.shape, b.shape])
    let result = RuntimeTensor(dataType: outputType, shape: plan.outputShape)
    let inner = plan.innerCount
    let strideA = plan.innerStrides[0]
    let strideB = plan.innerStrides[1]
    a.withUnsafeBuffer(of: A.self) { left in
        b.withUnsafeBuffer(of: B.self) { right in
            result.withUnsafeMutableBuffer(of: Output.self) { output in
                let rowThreads = plan.outputCount >= parallelElementThreshold ? threads : 1
                parallelChunks(plan.rowCount, threads: rowThreads) { rows in
                    for row in rows {
                        let startA = plan.start(row: row, input: 0)
                        let startB = plan.start(row: row, input: 1)
                        let base = row * inner
                        if strideA == 1 && strideB == 1 {
                            for index in 0..<inner { output[base + index] = operation(left[startA + index], right[startB + index]) }
                        } else if strideA == 1 {
                            let value = right[startB]
                            for index in 0..<inner { output[base + index] = operation(left[startA + index], value) }
                        } else if strideB == 1 {
                            let value = left[startA]
                            for index in 0..<inner { output[base + index] = operation(value, right[startB + index]) }
                        } else {
                            let value = operation(left[startA], right[startB])
                            for index in 0..<inner { output[base + index] = value }
                        }
                    }
                }
            }
        }
    }
    return result
}

/// out[i] = operation(x[i]) for float tensors, split across threads when large.
@inline(__always)
func mapFloats(_ input: RuntimeTensor, threads: Int, _ operation: (Float) -> Float) throws -> RuntimeTensor {
    guard input.dataType == .float else { throw unsupportedType(input.dataType) }
    let result = RuntimeTensor(dataType: .float, shape: input.shape)
    input.withUnsafeBuffer(of: Float.self) { source in
        result.withUnsafeMutableBuffer(of: Float.self) { destination in
            let chunkThreads = source.count >= parallelElementThreshold ? threads : 1
            parallelChunks(source.count, threads: chunkThreads) { range in
                for index in range { destination[index] = operation(source[index]) }
            }
        }
    }
    return result
}

/// out[i] = operation(x[i]) for any numeric element type.
func mapNumeric(_ input: RuntimeTensor, _ operation: @escaping (Double) -> Double, float: ((Float) -> Float)? = nil,
                threads: Int) throws -> RuntimeTensor {
    if input.dataType == .float, let float { return try mapFloats(input, threads: threads, float) }
    struct Mapper: NumericVisitor {
        let input: RuntimeTensor
        let operation: (Double) -> Double
        func visit<Element: NumericElement>(_ type: Element.Type) throws -> RuntimeTensor {
            let result = RuntimeTensor(dataType: input.dataType, shape: input.shape)
            input.withUnsafeBuffer(of: Element.self) { source in
                result.withUnsafeMutableBuffer(of: Element.self) { destination in
                    for index in source.indices { destination[index] = Element(converting: operation(source[index].doubleValue)) }
                }
            }
            return result
        }
    }
    return try visitNumeric(input.dataType, Mapper(input: input, operation: operation))
}
