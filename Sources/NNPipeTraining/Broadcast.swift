import NNPipeCore

/// Multidirectional (numpy) broadcasting of two shapes, as ONNX's Add/Sub/Mul/Div use it.
struct BroadcastPair {
    let outputShape: [Int]
    /// For each output element, the flat index into the first and second operand.
    let firstIndices: [Int]
    let secondIndices: [Int]

    init(_ first: [Int], _ second: [Int]) throws {
        let rank = max(first.count, second.count)
        let paddedFirst = Array(repeating: 1, count: rank - first.count) + first
        let paddedSecond = Array(repeating: 1, count: rank - second.count) + second
        var shape: [Int] = []
        for (a, b) in zip(paddedFirst, paddedSecond) {
            guard a == b || a == 1 || b == 1 else {
                throw NNPipeError(.invalidModel, "shapes \(first) and \(second) do not broadcast")
            }
            shape.append(a == 1 ? b : a)
        }
        outputShape = shape
        firstIndices = Self.indices(of: paddedFirst, in: shape)
        secondIndices = Self.indices(of: paddedSecond, in: shape)
    }

    /// Flat operand index for every output position, walking the output in row-major order.
    /// - Complexity: O(output elements).
    static func indices(of operand: [Int], in output: [Int]) -> [Int] {
        let count = output.reduce(1, *)
        let operandStrides = contiguousStrides(operand).enumerated().map { operand[$0.offset] == 1 ? 0 : $0.element }
        var result = [Int](repeating: 0, count: count)
        guard count > 0 else { return result }
        var counter = [Int](repeating: 0, count: output.count)
        var offset = 0
        for position in 0..<count {
            result[position] = offset
            var axis = output.count - 1
            while axis >= 0 {
                counter[axis] += 1
                offset += operandStrides[axis]
                if counter[axis] < output[axis] { break }
                offset -= operandStrides[axis] * counter[axis]
                counter[axis] = 0
                axis -= 1
            }
        }
        return result
    }

    /// Sums a gradient of the output shape back onto an operand through its index map.
    static func reduce(_ gradient: [Float], indices: [Int], operandShape: [Int]) -> TrainingTensor {
        var result = [Float](repeating: 0, count: operandShape.reduce(1, *))
        result.withUnsafeMutableBufferPointer { target in
            gradient.withUnsafeBufferPointer { source in
                indices.withUnsafeBufferPointer { map in
                    for position in 0..<source.count { target[map[position]] += source[position] }
                }
            }
        }
        return TrainingTensor(shape: operandShape, values: result)
    }
}
