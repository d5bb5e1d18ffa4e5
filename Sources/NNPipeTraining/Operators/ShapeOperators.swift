import NNPipeCore

/// Flatten and Reshape: the values stay, the shape changes; the gradient takes the input's shape back.
final class ReshapeOperator: DifferentiableOperator {
    enum Kind {
        case flatten(axis: Int)
        case reshape(allowZero: Bool)
    }
    let kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let input = try required(inputs, 0, "data")
        switch kind {
        case .flatten(let axis):
            let resolved = axis < 0 ? axis + input.rank : axis
            guard resolved >= 0, resolved <= input.rank else { throw NNPipeError(.invalidModel, "Flatten axis \(axis) outside rank \(input.rank)") }
            return [input.reshaped([input.shape[..<resolved].reduce(1, *), input.shape[resolved...].reduce(1, *)])]
        case .reshape(let allowZero):
            var shape = try required(inputs, 1, "shape").integers
            for (index, size) in shape.enumerated() where size == 0 && !allowZero {
                guard index < input.rank else { throw NNPipeError(.invalidModel, "Reshape copies axis \(index) of a rank-\(input.rank) tensor") }
                shape[index] = input.shape[index]
            }
            if let unknown = shape.firstIndex(of: -1) {
                let known = shape.enumerated().filter { $0.offset != unknown }.map(\.element).reduce(1, *)
                guard known > 0, input.elementCount % known == 0 else {
                    throw NNPipeError(.invalidModel, "cannot reshape \(input.shape) to \(shape)")
                }
                shape[unknown] = input.elementCount / known
            }
            guard shape.reduce(1, *) == input.elementCount else {
                throw NNPipeError(.invalidModel, "cannot reshape \(input.shape) to \(shape)")
            }
            return [input.reshaped(shape)]
        }
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let input = try required(inputs, 0, "data")
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        return [upstream.reshaped(input.shape), nil]
    }
}

/// Transpose by `perm` (reversed axes when absent); the gradient transposes back.
final class TransposeOperator: DifferentiableOperator {
    let permutation: [Int]?

    init(node: Node) { permutation = node.integers("perm") }

    static func transpose(_ tensor: TrainingTensor, permutation: [Int]) -> TrainingTensor {
        let shape = permutation.map { tensor.shape[$0] }
        let inputStrides = contiguousStrides(tensor.shape)
        let movedStrides = permutation.map { inputStrides[$0] }
        var output = [Float](repeating: 0, count: tensor.elementCount)
        var counter = [Int](repeating: 0, count: shape.count)
        var offset = 0
        for position in 0..<output.count {
            output[position] = tensor.values[offset]
            var axis = shape.count - 1
            while axis >= 0 {
                counter[axis] += 1
                offset += movedStrides[axis]
                if counter[axis] < shape[axis] { break }
                offset -= movedStrides[axis] * counter[axis]
                counter[axis] = 0
                axis -= 1
            }
        }
        return TrainingTensor(shape: shape, values: output)
    }

    private func resolved(rank: Int) -> [Int] { permutation ?? Array((0..<rank).reversed()) }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let input = try required(inputs, 0, "data")
        let permutation = resolved(rank: input.rank)
        guard permutation.sorted() == Array(0..<input.rank) else {
            throw NNPipeError(.invalidModel, "Transpose perm \(permutation) does not fit rank \(input.rank)")
        }
        return [Self.transpose(input, permutation: permutation)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let permutation = resolved(rank: outputs[0].rank)
        var inverse = [Int](repeating: 0, count: permutation.count)
        for (position, axis) in permutation.enumerated() { inverse[axis] = position }
        return [Self.transpose(gradient(outputGradients, 0, like: outputs[0]), permutation: inverse)]
    }
}

/// Concat along `axis`, and Split (its inverse): both copy blocks of `length · inner` values.
enum AxisBlocks {
    /// Places `part` (axis size `length`) at axis position `start` of a tensor whose axis size is `total`.
    static func copy(
        _ source: [Float], into target: inout [Float], outer: Int, inner: Int, length: Int, total: Int, start: Int,
        toWhole: Bool
    ) {
        let block = length * inner
        for index in 0..<outer {
            let wholeOffset = (index * total + start) * inner
            let partOffset = index * block
            for position in 0..<block {
                if toWhole { target[wholeOffset + position] = source[partOffset + position] }
                else { target[partOffset + position] = source[wholeOffset + position] }
            }
        }
    }
}

final class ConcatOperator: DifferentiableOperator {
    let axis: Int
    init(node: Node) { axis = node.integer("axis", default: 0) }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let parts = try inputs.indices.map { try required(inputs, $0, "input \($0)") }
        guard let first = parts.first else { throw NNPipeError(.invalidModel, "Concat has no inputs") }
        let resolved = try normalizedAxis(axis, rank: first.rank)
        let total = parts.map { $0.shape[resolved] }.reduce(0, +)
        var shape = first.shape
        shape[resolved] = total
        let outer = first.shape[..<resolved].reduce(1, *)
        let inner = first.shape[(resolved + 1)...].reduce(1, *)
        var output = [Float](repeating: 0, count: shape.reduce(1, *))
        var start = 0
        for part in parts {
            AxisBlocks.copy(part.values, into: &output, outer: outer, inner: inner, length: part.shape[resolved],
                            total: total, start: start, toWhole: true)
            start += part.shape[resolved]
        }
        return [TrainingTensor(shape: shape, values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        let resolved = try normalizedAxis(axis, rank: upstream.rank)
        let outer = upstream.shape[..<resolved].reduce(1, *)
        let inner = upstream.shape[(resolved + 1)...].reduce(1, *)
        var start = 0
        return try inputs.indices.map { index in
            let part = try required(inputs, index, "input \(index)")
            var values = [Float](repeating: 0, count: part.elementCount)
            AxisBlocks.copy(upstream.values, into: &values, outer: outer, inner: inner, length: part.shape[resolved],
                            total: upstream.shape[resolved], start: start, toWhole: false)
            start += part.shape[resolved]
            return TrainingTensor(shape: part.shape, values: values)
        }
    }
}

final class SplitOperator: DifferentiableOperator {
    let axis: Int
    let attributeSplit: [Int]?
    let outputCount: Int

    init(node: Node) {
        axis = node.integer("axis", default: 0)
        attributeSplit = node.integers("split")
        outputCount = node.outputs.count
    }

    private func sizes(_ inputs: [TrainingTensor?], length: Int) throws -> [Int] {
        if inputs.count > 1, let split = inputs[1] { return split.integers }
        if let attributeSplit { return attributeSplit }
        // Equal parts; the last is smaller when the axis does not divide (opset 18 num_outputs).
        let part = (length + outputCount - 1) / outputCount
        return (0..<outputCount).map { min(part, max(length - $0 * part, 0)) }
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let input = try required(inputs, 0, "input")
        let resolved = try normalizedAxis(axis, rank: input.rank)
        let parts = try sizes(inputs, length: input.shape[resolved])
        guard parts.reduce(0, +) == input.shape[resolved], parts.count == outputCount else {
            throw NNPipeError(.invalidModel, "Split sizes \(parts) do not cover axis \(resolved) of \(input.shape)")
        }
        let outer = input.shape[..<resolved].reduce(1, *)
        let inner = input.shape[(resolved + 1)...].reduce(1, *)
        var start = 0
        return parts.map { length in
            var shape = input.shape
            shape[resolved] = length
            var values = [Float](repeating: 0, count: shape.reduce(1, *))
            AxisBlocks.copy(input.values, into: &values, outer: outer, inner: inner, length: length,
                            total: input.shape[resolved], start: start, toWhole: false)
            start += length
            return TrainingTensor(shape: shape, values: values)
        }
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let input = try required(inputs, 0, "input")
        let resolved = try normalizedAxis(axis, rank: input.rank)
        let outer = input.shape[..<resolved].reduce(1, *)
        let inner = input.shape[(resolved + 1)...].reduce(1, *)
        var values = [Float](repeating: 0, count: input.elementCount)
        var start = 0
        for (index, output) in outputs.enumerated() {
            let length = output.shape[resolved]
            if index < outputGradients.count, let part = outputGradients[index] {
                AxisBlocks.copy(part.values, into: &values, outer: outer, inner: inner, length: length,
                                total: input.shape[resolved], start: start, toWhole: true)
            }
            start += length
        }
        return [TrainingTensor(shape: input.shape, values: values), nil]
    }
}

/// Constant-mode Pad (pads from the input or, before opset 11, the attribute); the gradient is the unpadded window.
final class PadOperator: DifferentiableOperator {
    let attributePads: [Int]?
    let attributeValue: Float
    let mode: String

    init(node: Node) {
        attributePads = node.integers("pads")
        attributeValue = node.float("value", default: 0)
        mode = node.text("mode", default: "constant")
    }

    private func pads(_ inputs: [TrainingTensor?], rank: Int) throws -> [Int] {
        guard mode == "constant" else { throw NNPipeError(.unsupported, "Pad mode '\(mode)' is not trainable yet; only constant") }
        if inputs.count > 3, inputs[3] != nil { throw NNPipeError(.unsupported, "Pad with 'axes' is not trainable yet") }
        let pads = (inputs.count > 1 ? inputs[1]?.integers : nil) ?? attributePads ?? []
        guard pads.count == 2 * rank else { throw NNPipeError(.invalidModel, "Pad needs \(2 * rank) pads, got \(pads.count)") }
        return pads
    }

    /// Visits every input position with its output flat index.
    private func walk(inputShape: [Int], pads: [Int], _ body: (Int, Int) -> Void) {
        let rank = inputShape.count
        let outputShape = (0..<rank).map { inputShape[$0] + pads[$0] + pads[$0 + rank] }
        let outputStrides = contiguousStrides(outputShape)
        let count = inputShape.reduce(1, *)
        var counter = [Int](repeating: 0, count: rank)
        for position in 0..<count {
            var target = 0
            var inside = true
            for axis in 0..<rank {
                let coordinate = counter[axis] + pads[axis]
                if coordinate < 0 || coordinate >= outputShape[axis] { inside = false }
                target += coordinate * outputStrides[axis]
            }
            if inside { body(position, target) }
            var axis = rank - 1
            while axis >= 0 {
                counter[axis] += 1
                if counter[axis] < inputShape[axis] { break }
                counter[axis] = 0
                axis -= 1
            }
        }
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let input = try required(inputs, 0, "data")
        let pads = try self.pads(inputs, rank: input.rank)
        let fill = (inputs.count > 2 ? inputs[2]?.values.first : nil) ?? attributeValue
        let shape = (0..<input.rank).map { input.shape[$0] + pads[$0] + pads[$0 + input.rank] }
        var output = [Float](repeating: fill, count: shape.reduce(1, *))
        walk(inputShape: input.shape, pads: pads) { source, target in output[target] = input.values[source] }
        return [TrainingTensor(shape: shape, values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let input = try required(inputs, 0, "data")
        let pads = try self.pads(inputs, rank: input.rank)
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        var values = [Float](repeating: 0, count: input.elementCount)
        walk(inputShape: input.shape, pads: pads) { source, target in values[source] = upstream.values[target] }
        return [TrainingTensor(shape: input.shape, values: values)] + Array(repeating: nil, count: max(inputs.count - 1, 0))
    }
}
