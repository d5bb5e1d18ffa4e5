import NNPipeCore

/// Ops that rearrange elements: Transpose, Concat, Split, Slice, Gather, Pad, Tile.
enum MovementKernels {
    static func transpose(_ spec: inout NodeSpec) throws -> any Kernel {
        let permutation = spec.ints("perm")
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let order = permutation ?? Array((0..<input.rank).reversed())
            guard order.count == input.rank, Set(order) == Set(0..<input.rank) else {
                throw KernelError("perm \(order) does not permute rank \(input.rank)")
            }
            let strides = contiguousStrides(input.shape)
            let shape = order.map { input.shape[$0] }
            let offsets = order.map { axis in (0..<input.shape[axis]).map { Optional($0 * strides[axis]) } }
            return [try AxisGather.run(input, outputShape: shape, offsets: offsets)]
        }
    }

    static func concat(_ spec: inout NodeSpec) throws -> any Kernel {
        guard let axis = spec.attribute("axis")?.intValue.map({ Int($0) }) else { throw spec.invalid("Concat needs 'axis'") }
        return ClosureKernel { inputs, context in
            let parts = inputs.compactMap { $0 }
            guard let first = parts.first else { throw KernelError("needs at least one input") }
            let dimension = try normalizedAxis(axis, rank: first.rank)
            var shape = first.shape
            shape[dimension] = 0
            for part in parts {
                guard part.rank == first.rank, part.dataType == first.dataType,
                      part.shape.indices.allSatisfy({ $0 == dimension || part.shape[$0] == first.shape[$0] })
                else { throw KernelError("inputs \(parts.map(\.shape)) do not concatenate on axis \(axis)") }
                shape[dimension] += part.shape[dimension]
            }
            if let growth = context.concatGrowth, let grown = growth.concatenate(parts, dimension: dimension, shape: shape) { return [grown] }
            let result = RuntimeTensor(dataType: first.dataType, shape: shape)
            let outer = shape[..<dimension].reduce(1, *)
            let outputBlock = shape[dimension...].reduce(1, *)
            var offset = 0
            for part in parts {
                let block = part.shape[dimension...].reduce(1, *)
                for row in 0..<outer { copyElements(from: part, at: row * block, to: result, at: row * outputBlock + offset, count: block) }
                offset += block
            }
            return [result]
        }
    }

    static func split(_ spec: inout NodeSpec) throws -> any Kernel {
        let axis = spec.int("axis", 0)
        let attributeSplit = spec.opset < 13 ? spec.ints("split") : nil
        let outputCount = spec.node.outputs.count
        let numberOfOutputs = spec.attribute("num_outputs")?.intValue.map { Int($0) }
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let dimension = try normalizedAxis(axis, rank: input.rank)
            let length = input.shape[dimension]
            var sizes = attributeSplit ?? inputs.optional(1)?.integers.map { Int($0) }
            if sizes == nil {
                let count = numberOfOutputs ?? outputCount
                let chunk = (length + count - 1) / count
                sizes = (0..<count).map { min(chunk, max(0, length - $0 * chunk)) }
            }
            if let sizes, !sizes.allSatisfy({ $0 >= 0 }) { throw KernelError("split \(sizes) has a negative size") }
            guard let sizes, sizes.count == outputCount, sizes.reduce(0, &+) == length else {
                throw KernelError("split sizes do not add up to \(length) over \(outputCount) outputs")
            }
            let outer = input.shape[..<dimension].reduce(1, *)
            let inner = input.shape[(dimension + 1)...].reduce(1, *)
            var start = 0
            return sizes.map { size in
                var shape = input.shape
                shape[dimension] = size
                let result = RuntimeTensor(dataType: input.dataType, shape: shape)
                for row in 0..<outer {
                    copyElements(from: input, at: (row * length + start) * inner, to: result, at: row * size * inner, count: size * inner)
                }
                start += size
                return result
            }
        }
    }

    static func slice(_ spec: inout NodeSpec) throws -> any Kernel {
        let fromAttributes = spec.opset < 10
        let attributeStarts = fromAttributes ? spec.ints("starts") : nil
        let attributeEnds = fromAttributes ? spec.ints("ends") : nil
        let attributeAxes = fromAttributes ? spec.ints("axes") : nil
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let starts = try attributeStarts ?? inputs.required(1).integers.map { Int(clamping: $0) }
            let ends = try attributeEnds ?? inputs.required(2).integers.map { Int(clamping: $0) }
            let axes = attributeAxes ?? inputs.optional(3)?.integers.map { Int($0) } ?? Array(0..<starts.count)
            let steps = fromAttributes ? [Int](repeating: 1, count: starts.count)
                : inputs.optional(4)?.integers.map { Int(clamping: $0) } ?? [Int](repeating: 1, count: starts.count)
            guard starts.count == ends.count, axes.count == starts.count, steps.count == starts.count else {
                throw KernelError("starts, ends, axes and steps differ in length")
            }
            var first = [Int](repeating: 0, count: input.rank)
            var step = [Int](repeating: 1, count: input.rank)
            var shape = input.shape
            var sliced = Set<Int>()
            for (position, rawAxis) in axes.enumerated() {
                let axis = try normalizedAxis(rawAxis, rank: input.rank)
                guard sliced.insert(axis).inserted else { throw KernelError("axes \(axes) repeat an axis") }
                let stride = steps[position]
                guard stride != 0 else { throw KernelError("step 0") }
                let range = SliceRange(start: starts[position], end: ends[position], step: stride, length: input.shape[axis])
                shape[axis] = range.count
                first[axis] = range.start
                step[axis] = stride
            }
            let strides = contiguousStrides(input.shape)
            let offsets = shape.indices.map { axis in
                (0..<shape[axis]).map { Optional((first[axis] + $0 * step[axis]) * strides[axis]) }
            }
            return [try AxisGather.run(input, outputShape: shape, offsets: offsets)]
        }
    }

    static func gather(_ spec: inout NodeSpec) throws -> any Kernel {
        let axis = spec.int("axis", 0)
        return ClosureKernel { inputs, _ in
            let data = try inputs.required(0)
            let indices = try inputs.required(1)
            let dimension = try normalizedAxis(axis, rank: data.rank)
            let size = data.shape[dimension]
            let positions = try indices.integers.map { value -> Int in
                let index = Int(value) < 0 ? Int(value) + size : Int(value)
                guard index >= 0, index < size else { throw KernelError("index \(value) is out of range for axis size \(size)") }
                return index
            }
            let shape = Array(data.shape[..<dimension]) + indices.shape + Array(data.shape[(dimension + 1)...])
            let result = RuntimeTensor(dataType: data.dataType, shape: shape)
            let outer = data.shape[..<dimension].reduce(1, *)
            let inner = data.shape[(dimension + 1)...].reduce(1, *)
            for row in 0..<outer {
                for (slot, index) in positions.enumerated() {
                    copyElements(from: data, at: (row * size + index) * inner, to: result, at: (row * positions.count + slot) * inner, count: inner)
                }
            }
            return [result]
        }
    }

    static func pad(_ spec: inout NodeSpec) throws -> any Kernel {
        let mode = spec.string("mode", "constant")
        guard ["constant", "reflect", "edge", "wrap"].contains(mode), mode != "wrap" || spec.opset >= 19 else {
            throw spec.unsupported("mode '\(mode)' is not supported")
        }
        let fromAttributes = spec.opset < 11
        let attributePads = fromAttributes ? spec.ints("pads") ?? spec.ints("paddings") : nil
        let attributeValue = fromAttributes ? spec.float("value", 0) : 0
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let rank = input.rank
            let requested = try attributePads ?? inputs.required(1).integers.map { Int($0) }
            let axes = try (fromAttributes ? nil : inputs.optional(3)?.integers.map { try normalizedAxis(Int($0), rank: rank) })
                ?? Array(0..<rank)
            guard requested.count == 2 * axes.count else { throw KernelError("pads \(requested) do not fit \(axes.count) axes") }
            var before = [Int](repeating: 0, count: rank)
            var after = [Int](repeating: 0, count: rank)
            for (position, axis) in axes.enumerated() {
                before[axis] = requested[position]
                after[axis] = requested[position + axes.count]
            }
            var fill: RuntimeTensor
            if fromAttributes {
                fill = try makeTensor(input.dataType, shape: [], doubles: [Double(attributeValue)])
            } else if let value = inputs.optional(2), value.elementCount > 0 {
                fill = value
            } else {
                fill = RuntimeTensor(dataType: input.dataType, shape: [], zeroed: true)
            }
            let shape = try (0..<rank).map { axis -> Int in
                let (partial, first) = input.shape[axis].addingReportingOverflow(before[axis])
                let (total, second) = partial.addingReportingOverflow(after[axis])
                guard !first, !second else { throw KernelError("pads \(requested) are too large") }
                return total
            }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw KernelError("pads \(requested) remove more than \(input.shape)") }
            try TensorSize.check(shape, input.dataType, what: "padded shape")
            let strides = contiguousStrides(input.shape)
            let offsets = try (0..<rank).map { axis in
                let size = input.shape[axis]
                return try (0..<shape[axis]).map { index -> Int? in
                    var source = index - before[axis]
                    if source < 0 || source >= size {
                        switch mode {
                        case "constant": return nil
                        case "edge": source = min(max(source, 0), size - 1)
                        case "wrap": source = ((source % size) + size) % size
                        default:
                            guard size > 1 else { source = 0; break }
                            let period = 2 * (size - 1)
                            source = ((source % period) + period) % period
                            if source >= size { source = period - source }
                        }
                        guard size > 0 else { throw KernelError("cannot \(mode)-pad an empty axis") }
                    }
                    return source * strides[axis]
                }
            }
            return [try AxisGather.run(input, outputShape: shape, offsets: offsets, fill: fill)]
        }
    }

    static func tile(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let repeats = try inputs.required(1).integers.map { Int($0) }
            guard repeats.count == input.rank else { throw KernelError("repeats \(repeats) do not match rank \(input.rank)") }
            let shape = try (0..<input.rank).map { axis -> Int in
                let (product, overflow) = input.shape[axis].multipliedReportingOverflow(by: repeats[axis])
                guard repeats[axis] >= 0, !overflow else { throw KernelError("repeats \(repeats) are negative or too large for \(input.shape)") }
                return product
            }
            try TensorSize.check(shape, input.dataType, what: "tiled shape")
            let strides = contiguousStrides(input.shape)
            let offsets = (0..<input.rank).map { axis in (0..<shape[axis]).map { Optional(($0 % input.shape[axis]) * strides[axis]) } }
            return [try AxisGather.run(input, outputShape: shape, offsets: offsets)]
        }
    }

    /// ai.onnx.ml ArrayFeatureExtractor: picks columns of the last axis.
    static func arrayFeatureExtractor(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let data = try inputs.required(0)
            let indices = try inputs.required(1).integers.map { Int($0) }
            let last = data.shape.last ?? 1
            guard indices.allSatisfy({ $0 >= 0 && $0 < last }) else { throw KernelError("index out of range for last axis \(last)") }
            let shape = data.rank <= 1 ? [1, indices.count] : Array(data.shape.dropLast()) + [indices.count]
            let result = RuntimeTensor(dataType: data.dataType, shape: shape)
            let rows = data.elementCount / max(last, 1)
            for row in 0..<rows {
                for (slot, index) in indices.enumerated() {
                    copyElements(from: data, at: row * last + index, to: result, at: row * indices.count + slot, count: 1)
                }
            }
            return [result]
        }
    }
}
