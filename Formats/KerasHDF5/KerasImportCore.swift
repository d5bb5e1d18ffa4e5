import NNPipeCore

/// Dense, normalisation and Embedding layers.
extension KerasImporter {
    mutating func dense(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        let units = try layer.integer("units")
        let useBias = try layer.bool("use_bias", default: true)
        try expectWeightCount(weights, useBias ? 2 : 1, layer)
        var source = input
        if source.rank > 2 { source = builder.value(input, in: .keras) }
        let features = source.shape.last ?? nil
        let kernel = try weight(weights, 0, "kernel", layer, expected: [features, units])
        var kernelValues = kernel.values
        if case .flattenedChannelsFirst(let spatial, let channels) = source.layout {
            // Keras rows are (spatial..., C); the flattened IR value is (C, spatial...): permute rows, not data.
            let rank = spatial.count + 2
            let shape = spatial + [channels, units]
            let permutation = [rank - 2] + Array(0..<(rank - 2)) + [rank - 1]
            kernelValues = WeightLayout.permute(kernelValues, shape: shape, permutation: permutation)
        }
        let kernelName = builder.constant("\(output)/kernel", shape: kernel.shape, values: kernelValues)
        let biasName = useBias
            ? builder.constant("\(output)/bias", shape: [units], values: try weight(weights, 1, "bias", layer, expected: [units]).values)
            : nil
        let rank = source.rank
        try finishWithActivation(layer, produce: { importer, target in
            if rank == 2 {
                importer.builder.add("Gemm", name: output, inputs: [source.name, kernelName] + (biasName.map { [$0] } ?? []),
                                     output: target, attributes: [.float("alpha", 1), .float("beta", 1), .int("transA", 0), .int("transB", 0)])
            } else if let biasName {
                let product = importer.builder.add("MatMul", name: "\(output)/matmul", inputs: [source.name, kernelName])
                importer.builder.add("Add", name: output, inputs: [product, biasName], output: target)
            } else {
                importer.builder.add("MatMul", name: output, inputs: [source.name, kernelName], output: target)
            }
        }, output: output, softmaxAxis: -1)
        return KerasValue(name: output, layout: .keras, shape: Array(source.shape.dropLast()) + [units])
    }

    /// The normalised axis, which must be the channel (last) axis or, in Keras layout, axis 1.
    private func channelAxis(_ layer: KerasLayerConfig, rank: Int) throws -> Int {
        var axis = try layer.axis()
        if axis < 0 { axis += rank }
        return axis
    }

    mutating func batchNormalization(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        let axis = try channelAxis(layer, rank: input.rank)
        var source: KerasValue
        if axis == input.rank - 1 {
            source = input.rank >= 3 ? builder.value(input, in: .channelsFirst) : builder.value(input, in: .keras)
        } else if axis == 1 {
            source = builder.value(input, in: .keras)
        } else {
            throw layer.unsupported("normalising axis \(axis) is not supported")
        }
        let scale = try layer.bool("scale", default: true)
        let center = try layer.bool("center", default: true)
        try expectWeightCount(weights, 2 + (scale ? 1 : 0) + (center ? 1 : 0), layer)
        let channels = input.shape[axis]
        var index = 0
        func next(_ role: String) throws -> [Float] {
            defer { index += 1 }
            return try weight(weights, index, role, layer, expected: [channels]).values
        }
        let gamma = scale ? try next("gamma") : nil
        let beta = center ? try next("beta") : nil
        let mean = try next("moving_mean")
        let variance = try next("moving_variance")
        let count = mean.count
        let inputs = [
            source.name,
            builder.constant("\(output)/gamma", shape: [count], values: gamma ?? Array(repeating: 1, count: count)),
            builder.constant("\(output)/beta", shape: [count], values: beta ?? Array(repeating: 0, count: count)),
            builder.constant("\(output)/moving_mean", shape: [count], values: mean),
            builder.constant("\(output)/moving_variance", shape: [count], values: variance),
        ]
        // Keras's epsilon default is 1e-3; ONNX's is 1e-5, so it is always written.
        builder.add("BatchNormalization", name: output, inputs: inputs, output: output,
                    attributes: [.float("epsilon", Float(try layer.number("epsilon", default: 1e-3))),
                                 .float("momentum", Float(try layer.number("momentum", default: 0.99)))])
        source.name = output
        return source
    }

    mutating func layerNormalization(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        let axis = try channelAxis(layer, rank: input.rank)
        guard axis == input.rank - 1 else { throw layer.unsupported("normalising axis \(axis) (only the last axis) is not supported") }
        if try layer.bool("rms_scaling", default: false) { throw layer.unsupported("rms_scaling is not supported") }
        var source = builder.value(input, in: .keras)
        let scale = try layer.bool("scale", default: true)
        let center = try layer.bool("center", default: true)
        try expectWeightCount(weights, (scale ? 1 : 0) + (center ? 1 : 0), layer)
        let features = input.shape[axis]
        guard let count = features ?? weights.first?.shape.first else { throw layer.unsupported("unknown feature count") }
        let gamma = scale ? try weight(weights, 0, "gamma", layer, expected: [count]).values : Array(repeating: 1, count: count)
        let beta = center ? try weight(weights, scale ? 1 : 0, "beta", layer, expected: [count]).values : Array(repeating: 0, count: count)
        let inputs = [source.name, builder.constant("\(output)/gamma", shape: [count], values: gamma),
                      builder.constant("\(output)/beta", shape: [count], values: beta)]
        builder.add("LayerNormalization", name: output, inputs: inputs, output: output,
                    attributes: [.int("axis", -1), .float("epsilon", Float(try layer.number("epsilon", default: 1e-3)))])
        source.name = output
        return source
    }

    mutating func embedding(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        let vocabulary = try layer.integer("input_dim")
        let dimensions = try layer.integer("output_dim")
        try expectWeightCount(weights, 1, layer)
        let table = try weight(weights, 0, "embeddings", layer, expected: [vocabulary, dimensions])
        var indices = builder.value(input, in: .keras).name
        if !(input.dataType == .int32 || input.dataType == .int64) {
            // Keras casts float ids to int inside the layer; ONNX Gather needs integer indices.
            indices = builder.add("Cast", name: "\(output)/cast", inputs: [indices], attributes: [.int("to", Int64(DataType.int64.rawValue))])
        }
        let tableName = builder.constant("\(output)/embeddings", shape: table.shape, values: table.values)
        builder.add("Gather", name: output, inputs: [tableName, indices], output: output, attributes: [.int("axis", 0)])
        return KerasValue(name: output, layout: .keras, shape: input.shape + [dimensions])
    }
}
