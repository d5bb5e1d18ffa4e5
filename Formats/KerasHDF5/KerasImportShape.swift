import NNPipeCore

/// Pooling, shape and merge layers.
extension KerasImporter {
    mutating func pooling(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String) throws -> KerasValue {
        let spatialRank = input.rank - 2
        guard spatialRank >= 1 else { throw layer.unsupported("input of rank \(input.rank) is not spatial") }
        let source = builder.value(input, in: .channelsFirst)
        var window = try window(layer, spatialRank: spatialRank, kernelKey: "pool_size")
        if layer["strides"]?.isNull ?? true { window.strides = window.kernel }
        window.dilations = Array(repeating: 1, count: spatialRank)
        var (attributes, spatialOut) = try windowAttributes(window, spatial: input.spatial, layer: layer)
        let isMax = layer.className.hasPrefix("Max")
        // Keras averages over the window's valid cells only, which is ONNX's count_include_pad = 0.
        if !isMax { attributes.append(.int("count_include_pad", 0)) }
        builder.add(isMax ? "MaxPool" : "AveragePool", name: output, inputs: [source.name], output: output, attributes: attributes)
        return KerasValue(name: output, layout: .channelsFirst, shape: [input.shape[0]] + spatialOut + [input.channels])
    }

    mutating func globalPooling(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String) throws -> KerasValue {
        guard input.rank >= 3 else { throw layer.unsupported("input of rank \(input.rank) is not spatial") }
        let source = builder.value(input, in: .channelsFirst)
        let keepDimensions = try layer.bool("keepdims", default: false)
        let opType = layer.className.hasPrefix("GlobalMax") ? "GlobalMaxPool" : "GlobalAveragePool"
        if keepDimensions {
            builder.add(opType, name: output, inputs: [source.name], output: output)
            return KerasValue(name: output, layout: .channelsFirst,
                              shape: [input.shape[0]] + Array(repeating: 1, count: input.rank - 2) + [input.channels])
        }
        let pooled = builder.add(opType, name: "\(output)/pool", inputs: [source.name])
        builder.add("Flatten", name: output, inputs: [pooled], output: output, attributes: [.int("axis", 1)])
        return KerasValue(name: output, layout: .keras, shape: [input.shape[0], input.channels])
    }

    mutating func flatten(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String) throws -> KerasValue {
        let features: Int? = input.shape.dropFirst().reduce(Optional(1)) { total, extent in
            guard let total, let extent else { return nil }
            return total * extent
        }
        var source = input
        var layout = KerasLayout.keras
        if input.layout == .channelsFirst {
            let spatial = input.spatial.compactMap { $0 }
            if let channels = input.channels, spatial.count == input.spatial.count {
                // Keep channels-first order; the next Dense permutes its rows instead of the data being transposed.
                layout = spatial.reduce(1, *) == 1 ? .keras : .flattenedChannelsFirst(spatial: spatial, channels: channels)
            } else {
                source = builder.value(input, in: .keras)
            }
        } else if case .flattenedChannelsFirst = input.layout {
            layout = input.layout
        }
        builder.add("Flatten", name: output, inputs: [source.name], output: output, attributes: [.int("axis", 1)])
        if case .flattenedChannelsFirst = layout, source.layout == .channelsFirst { builder.flattenedSources[output] = source.name }
        return KerasValue(name: output, layout: layout, shape: [input.shape[0], features])
    }

    mutating func reshape(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String) throws -> KerasValue {
        guard let entries = layer["target_shape"]?.arrayValue else { throw layer.unsupported("has no target_shape") }
        let target = entries.compactMap(\.integerValue)
        guard target.count == entries.count, target.allSatisfy({ $0 == -1 || (1...(1 << 31)).contains($0) }),
              target.filter({ $0 == -1 }).count <= 1
        else {
            throw layer.invalid("target_shape", layer["target_shape"] ?? .null, "sizes from 1 to 2^31 and at most one -1")
        }
        let source = builder.value(input, in: .keras)
        let shapeName = layerConstant("shape", shape: [target.count + 1], integers: [0] + target.map(Int64.init))
        builder.add("Reshape", name: output, inputs: [source.name, shapeName], output: output)
        var shape: [Int?] = [input.shape[0]] + target.map { $0 < 0 ? nil : $0 }
        let known = input.shape.dropFirst().compactMap { $0 }
        if known.count == input.rank - 1, let unknown = target.firstIndex(of: -1) {
            shape[unknown + 1] = known.reduce(1, *) / max(target.filter { $0 > 0 }.reduce(1, *), 1)
        }
        return KerasValue(name: output, layout: .keras, shape: shape, dataType: input.dataType)
    }

    mutating func permute(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String) throws -> KerasValue {
        guard let dims = layer["dims"]?.arrayValue?.compactMap(\.integerValue), dims.sorted() == Array(1..<max(input.rank, 1)) else {
            throw layer.unsupported("'dims' must list every non-batch axis (1 to \(input.rank - 1)) once")
        }
        let source = builder.value(input, in: .keras)
        builder.add("Transpose", name: output, inputs: [source.name], output: output, attributes: [.ints("perm", [0] + dims.map(Int64.init))])
        return KerasValue(name: output, layout: .keras, shape: [input.shape[0]] + dims.map { input.shape[$0] }, dataType: input.dataType)
    }

    mutating func zeroPadding(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String) throws -> KerasValue {
        let spatialRank = input.rank - 2
        guard spatialRank >= 1 else { throw layer.unsupported("input of rank \(input.rank) is not spatial") }
        let pairs = try layer.pairs("padding", axes: spatialRank)
        let source = builder.value(input, in: .channelsFirst)
        let pads = [0, 0] + pairs.map { Int64($0.begin) } + [0, 0] + pairs.map { Int64($0.end) }
        let padsName = layerConstant("pads", shape: [pads.count], integers: pads)
        builder.add("Pad", name: output, inputs: [source.name, padsName], output: output, attributes: [.string("mode", "constant")])
        let spatial = zip(input.spatial, pairs).map { extent, pair in extent.map { $0 + pair.begin + pair.end } }
        return KerasValue(name: output, layout: .channelsFirst, shape: [input.shape[0]] + spatial + [input.channels])
    }

    mutating func cropping(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String) throws -> KerasValue {
        let spatialRank = input.rank - 2
        guard spatialRank >= 1 else { throw layer.unsupported("input of rank \(input.rank) is not spatial") }
        let pairs = try layer.pairs("cropping", axes: spatialRank)
        for (axis, (extent, pair)) in zip(input.spatial, pairs).enumerated() {
            if let extent, pair.begin + pair.end >= extent {
                throw layer.unsupported("cropping \(pair.begin) + \(pair.end) leaves nothing of the input's \(extent) on spatial axis \(axis)")
            }
        }
        let source = builder.value(input, in: .channelsFirst)
        let starts = layerConstant("starts", shape: [spatialRank], integers: pairs.map { Int64($0.begin) })
        let ends = layerConstant("ends", shape: [spatialRank],
                                    integers: pairs.map { $0.end == 0 ? Int64.max : -Int64($0.end) })
        let axes = layerConstant("axes", shape: [spatialRank], integers: (0..<spatialRank).map { Int64($0 + 2) })
        builder.add("Slice", name: output, inputs: [source.name, starts, ends, axes], output: output)
        let spatial = zip(input.spatial, pairs).map { extent, pair in extent.map { $0 - pair.begin - pair.end } }
        return KerasValue(name: output, layout: .channelsFirst, shape: [input.shape[0]] + spatial + [input.channels])
    }

    mutating func upSampling(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String) throws -> KerasValue {
        guard input.rank == 4 else { throw layer.unsupported("input of rank \(input.rank) is not 4-D") }
        let size = try layer.sizes("size", count: 2, default: [2, 2])
        let interpolation = try layer.string("interpolation", default: "nearest")
        let source = builder.value(input, in: .channelsFirst)
        let scales = layerConstant("scales", shape: [4], values: [1, 1, Float(size[0]), Float(size[1])])
        let attributes: [Attribute]
        switch interpolation {
        case "nearest":
            attributes = [.string("mode", "nearest"), .string("coordinate_transformation_mode", "asymmetric"), .string("nearest_mode", "floor")]
        case "bilinear":
            attributes = [.string("mode", "linear"), .string("coordinate_transformation_mode", "half_pixel")]
        default:
            throw layer.unsupported("interpolation '\(interpolation)' is not supported")
        }
        builder.add("Resize", name: output, inputs: [source.name, "", scales], output: output, attributes: attributes)
        let spatial = zip(input.spatial, size).map { extent, factor in extent.map { $0 * factor } }
        return KerasValue(name: output, layout: .channelsFirst, shape: [input.shape[0]] + spatial + [input.channels])
    }

    mutating func merge(_ layer: KerasLayerConfig, _ inputs: [KerasValue], _ output: String) throws -> KerasValue {
        guard inputs.count >= 2 || (layer.className != "Subtract" && inputs.count >= 1) else {
            throw layer.unsupported("needs at least 2 inputs, got \(inputs.count)")
        }
        let rank = inputs[0].rank
        let allSpatial = rank >= 3 && inputs.allSatisfy { $0.rank == rank }
        let layout: KerasLayout = allSpatial && inputs.contains { $0.layout == .channelsFirst } ? .channelsFirst : .keras
        let sources = inputs.map { builder.value($0, in: layout) }
        let names = sources.map(\.name)
        var shape = inputs[0].shape
        switch layer.className {
        case "Concatenate":
            let kerasAxis = try layer.axis()
            let positive = kerasAxis < 0 ? kerasAxis + rank : kerasAxis
            guard inputs.allSatisfy({ $0.rank == rank }), positive > 0, positive < rank else {
                throw layer.unsupported("cannot concatenate on axis \(kerasAxis)")
            }
            let axis = KerasGraphBuilder.axis(kerasAxis, rank: rank, layout: layout)
            builder.add("Concat", name: output, inputs: names, output: output, attributes: [.int("axis", Int64(axis))])
            shape[positive] = inputs.reduce(Optional(0)) { total, value in
                guard let total, let extent = value.shape[positive] else { return nil }
                return total + extent
            }
        case "Subtract":
            guard names.count == 2 else { throw layer.unsupported("needs exactly 2 inputs") }
            builder.add("Sub", name: output, inputs: names, output: output)
        case "Average": builder.add("Mean", name: output, inputs: names, output: output)
        case "Maximum": builder.add("Max", name: output, inputs: names, output: output)
        case "Minimum": builder.add("Min", name: output, inputs: names, output: output)
        default:
            // Add / Multiply: a chain of binary ops keeps the graph in the form every runtime and our writer know.
            let opType = layer.className == "Add" ? "Add" : "Mul"
            var current = names[0]
            for (index, next) in names.dropFirst().enumerated() {
                let last = index == names.count - 2
                current = builder.add(opType, name: last ? output : "\(output)/\(index)", inputs: [current, next], output: last ? output : nil)
            }
        }
        return KerasValue(name: output, layout: rank >= 3 ? layout : .keras, shape: shape, dataType: inputs[0].dataType)
    }
}
