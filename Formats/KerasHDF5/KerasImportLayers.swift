import NNPipeCore

/// Layer dispatch, weight checks and activations shared by the layer converters.
extension KerasImporter {
    static let passThroughLayers: Set<String> = [
        "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
        "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    ]

    mutating func convert(_ layer: KerasLayerConfig, inputs: [KerasValue], output: String, weights: [Tensor]) throws -> KerasValue {
        if Self.passThroughLayers.contains(layer.className) { return try single(inputs, layer) }
        switch layer.className {
        case "Dense": return try dense(layer, try single(inputs, layer), output, weights)
        case "Conv1D", "Conv2D", "Conv3D": return try convolution(layer, try single(inputs, layer), output, weights)
        case "DepthwiseConv2D", "DepthwiseConv1D": return try depthwise(layer, try single(inputs, layer), output, weights)
        case "SeparableConv2D", "SeparableConv1D": return try separable(layer, try single(inputs, layer), output, weights)
        case "Conv2DTranspose": return try convolutionTranspose(layer, try single(inputs, layer), output, weights)
        case "BatchNormalization": return try batchNormalization(layer, try single(inputs, layer), output, weights)
        case "LayerNormalization": return try layerNormalization(layer, try single(inputs, layer), output, weights)
        case "Embedding": return try embedding(layer, try single(inputs, layer), output, weights)
        case "PReLU": return try parametricRelu(layer, try single(inputs, layer), output, weights)
        case "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax":
            return try activationLayer(layer, try single(inputs, layer), output)
        case "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D":
            return try pooling(layer, try single(inputs, layer), output)
        case "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D":
            return try globalPooling(layer, try single(inputs, layer), output)
        case "Flatten": return try flatten(layer, try single(inputs, layer), output)
        case "Reshape": return try reshape(layer, try single(inputs, layer), output)
        case "Permute": return try permute(layer, try single(inputs, layer), output)
        case "ZeroPadding1D", "ZeroPadding2D": return try zeroPadding(layer, try single(inputs, layer), output)
        case "Cropping1D", "Cropping2D": return try cropping(layer, try single(inputs, layer), output)
        case "UpSampling2D": return try upSampling(layer, try single(inputs, layer), output)
        case "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate":
            return try merge(layer, inputs, output)
        case "InputLayer":
            throw NNPipeError(.invalidModel, "input layer '\(layer.name)' is called like a layer")
        case "Functional", "Sequential", "Model":
            throw layer.unsupported("nested models are not supported; flatten the model before saving")
        default:
            throw NNPipeError(.unsupported, "unsupported Keras layer '\(layer.className)' (layer '\(layer.name)')")
        }
    }

    func single(_ inputs: [KerasValue], _ layer: KerasLayerConfig) throws -> KerasValue {
        guard inputs.count == 1 else { throw layer.unsupported("expected 1 input, got \(inputs.count)") }
        return inputs[0]
    }

    /// Weight `index` as floats, checked against `expected` (nil entries match anything).
    func weight(_ weights: [Tensor], _ index: Int, _ role: String, _ layer: KerasLayerConfig, expected: [Int?]) throws -> (values: [Float], shape: [Int]) {
        guard index < weights.count else {
            throw NNPipeError(.invalidModel, "layer '\(layer.name)' (\(layer.className)): weight '\(role)' is missing from the file (has \(weights.count) weights)")
        }
        let tensor = weights[index]
        let matches = tensor.shape.count == expected.count && zip(tensor.shape, expected).allSatisfy { $1 == nil || $0 == $1 }
        guard matches else {
            let wanted = "[" + expected.map { $0.map(String.init) ?? "?" }.joined(separator: ", ") + "]"
            throw NNPipeError(.invalidModel, "layer '\(layer.name)' (\(layer.className)): weight '\(role)' has shape \(tensor.shape), expected \(wanted)")
        }
        guard let values = tensor.floatValues() else {
            throw NNPipeError(.unsupported, "layer '\(layer.name)': weight '\(role)' has type \(tensor.dataType)")
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw NNPipeError(.invalidModel, "layer '\(layer.name)' (\(layer.className)): weight '\(role)' holds a non-finite value (\(values[bad])) at element \(bad)")
        }
        return (values, tensor.shape)
    }

    func expectWeightCount(_ weights: [Tensor], _ count: Int, _ layer: KerasLayerConfig) throws {
        guard weights.count == count else {
            throw NNPipeError(.invalidModel, "layer '\(layer.name)' (\(layer.className)): the file holds \(weights.count) weights for it, expected \(count)")
        }
    }

    // MARK: Activations

    /// Applies the named Keras activation to `input`, writing `output`; returns `output`
    /// (or `input` itself for "linear" when `output` is nil). `channelAxis` is the IR axis softmax uses.
    mutating func activation(_ name: String, input: String, output: String, nodeName: String, softmaxAxis: Int, layer: KerasLayerConfig) throws -> String {
        let node = nodeName
        switch name {
        case "linear", "None": return builder.add("Identity", name: node, inputs: [input], output: output)
        case "relu": return builder.add("Relu", name: node, inputs: [input], output: output)
        case "sigmoid": return builder.add("Sigmoid", name: node, inputs: [input], output: output)
        case "tanh": return builder.add("Tanh", name: node, inputs: [input], output: output)
        case "softplus": return builder.add("Softplus", name: node, inputs: [input], output: output)
        case "softsign": return builder.add("Softsign", name: node, inputs: [input], output: output)
        case "exponential": return builder.add("Exp", name: node, inputs: [input], output: output)
        case "elu": return builder.add("Elu", name: node, inputs: [input], output: output, attributes: [.float("alpha", 1)])
        case "selu":
            return builder.add("Selu", name: node, inputs: [input], output: output,
                               attributes: [.float("alpha", 1.6732632423543772), .float("gamma", 1.0507009873554805)])
        case "relu6": return clip(input, 0, 6, output: output, nodeName: node)
        case "softmax":
            return builder.add("Softmax", name: node, inputs: [input], output: output, attributes: [.int("axis", Int64(softmaxAxis))])
        case "swish", "silu":
            let gate = builder.add("Sigmoid", name: builder.uniqueName("\(node)/sigmoid"), inputs: [input])
            return builder.add("Mul", name: node, inputs: [input, gate], output: output)
        case "gelu":
            // Keras's default gelu is exact: x * 0.5 * (1 + erf(x / sqrt(2))). Opset 17 has no Gelu op.
            let root2 = builder.constant("\(node)/sqrt2", shape: [], values: [Float(2.0.squareRoot())])
            let one = builder.constant("\(node)/one", shape: [], values: [1])
            let half = builder.constant("\(node)/half", shape: [], values: [0.5])
            let scaled = builder.add("Div", name: builder.uniqueName("\(node)/div"), inputs: [input, root2])
            let erf = builder.add("Erf", name: builder.uniqueName("\(node)/erf"), inputs: [scaled])
            let shifted = builder.add("Add", name: builder.uniqueName("\(node)/add"), inputs: [erf, one])
            let product = builder.add("Mul", name: builder.uniqueName("\(node)/mul"), inputs: [input, shifted])
            return builder.add("Mul", name: node, inputs: [product, half], output: output)
        default:
            throw layer.unsupported("activation '\(name)' is not supported")
        }
    }

    mutating func clip(_ input: String, _ low: Float, _ high: Float?, output: String, nodeName: String) -> String {
        let minimum = builder.constant("\(nodeName)/min", shape: [], values: [low])
        var inputs = [input, minimum]
        if let high { inputs.append(builder.constant("\(nodeName)/max", shape: [], values: [high])) }
        return builder.add("Clip", name: nodeName, inputs: inputs, output: output)
    }

    /// The layer's `activation` setting (string; a dict means a custom function).
    func activationName(_ layer: KerasLayerConfig) throws -> String {
        guard let value = layer["activation"], !value.isNull else { return "linear" }
        if let name = value.stringValue { return name }
        // Keras 3 may serialize built-ins as {"module": "keras.activations", "class_name": "function", "config": "relu"}.
        if let name = value["config"]?.stringValue, value["module"]?.stringValue?.hasPrefix("keras") == true { return name }
        throw layer.unsupported("custom activation \(value) is not supported")
    }

    /// Emits `pre` through the layer's activation into `output`; without one, `pre` is renamed to `output`.
    mutating func finishWithActivation(_ layer: KerasLayerConfig, produce: (inout KerasImporter, String) throws -> Void,
                                       output: String, softmaxAxis: Int) throws {
        let name = try activationName(layer)
        if name == "linear" {
            try produce(&self, output)
            return
        }
        let linear = builder.uniqueName("\(output)/linear")
        try produce(&self, linear)
        _ = try activation(name, input: linear, output: output, nodeName: "\(output)/\(name)", softmaxAxis: softmaxAxis, layer: layer)
    }

    mutating func activationLayer(_ layer: KerasLayerConfig, _ original: KerasValue, _ output: String) throws -> KerasValue {
        var input = original
        // Softmax mixes features, so a flattened channels-first value must be put in Keras order first.
        if case .flattenedChannelsFirst = input.layout,
           layer.className == "Softmax" || (try? activationName(layer)) == "softmax" {
            input = builder.value(input, in: .keras)
        }
        var result = input
        result.name = output
        let softmaxAxis = KerasGraphBuilder.axis(-1, rank: input.rank, layout: input.layout)
        switch layer.className {
        case "Activation":
            _ = try activation(try activationName(layer), input: input.name, output: output, nodeName: output, softmaxAxis: softmaxAxis, layer: layer)
        case "ReLU":
            let maximum = try layer.optionalNumber("max_value")
            let slope = try layer.number("negative_slope", default: 0)
            let threshold = try layer.number("threshold", default: 0)
            guard threshold == 0 else { throw layer.unsupported("threshold \(threshold) is not supported") }
            if slope != 0 {
                guard maximum == nil else { throw layer.unsupported("negative_slope with max_value is not supported") }
                builder.add("LeakyRelu", name: output, inputs: [input.name], output: output, attributes: [.float("alpha", Float(slope))])
            } else if let maximum {
                _ = clip(input.name, 0, Float(maximum), output: output, nodeName: output)
            } else {
                builder.add("Relu", name: output, inputs: [input.name], output: output)
            }
        case "LeakyReLU":
            // Keras 3 calls it negative_slope, Keras 2 alpha; both default to 0.3 (ONNX's default is 0.01).
            let slope = try layer.optionalNumber("negative_slope") ?? layer.number("alpha", default: 0.3)
            builder.add("LeakyRelu", name: output, inputs: [input.name], output: output, attributes: [.float("alpha", Float(slope))])
        case "ELU":
            builder.add("Elu", name: output, inputs: [input.name], output: output,
                        attributes: [.float("alpha", Float(try layer.number("alpha", default: 1)))])
        default: // Softmax
            let kerasAxis = try layer.axis()
            guard (-input.rank..<input.rank).contains(kerasAxis) else {
                throw layer.unsupported("axis \(kerasAxis) is outside the input's \(input.rank) axes")
            }
            let axis = KerasGraphBuilder.axis(kerasAxis, rank: input.rank, layout: input.layout)
            builder.add("Softmax", name: output, inputs: [input.name], output: output, attributes: [.int("axis", Int64(axis))])
        }
        return result
    }

    mutating func parametricRelu(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        var value = input
        if case .flattenedChannelsFirst = input.layout { value = builder.value(input, in: .keras) }
        let alphaShape: [Int?] = Array(value.shape.dropFirst())
        let sharedAxes = layer["shared_axes"].flatMap { $0.integerValue.map { [$0] } ?? $0.arrayValue?.compactMap(\.integerValue) } ?? []
        guard sharedAxes.allSatisfy({ (1..<max(value.rank, 1)).contains($0) }) else {
            throw layer.invalid("shared_axes", layer["shared_axes"] ?? .null, "axes from 1 to \(value.rank - 1)")
        }
        let alpha = try weight(weights, 0, "alpha", layer, expected: alphaShape.enumerated().map { index, extent in
            let shared = sharedAxes.contains(index + 1)
            return shared ? 1 : extent
        })
        var slope = alpha.values
        var slopeShape = alpha.shape
        if value.layout == .channelsFirst {
            let rank = slopeShape.count
            let permutation = [rank - 1] + Array(0..<(rank - 1))
            slope = WeightLayout.permute(slope, shape: slopeShape, permutation: permutation)
            slopeShape = permutation.map { slopeShape[$0] }
        }
        let slopeName = layerConstant("alpha", shape: slopeShape, values: slope)
        builder.add("PRelu", name: output, inputs: [value.name, slopeName], output: output)
        value.name = output
        return value
    }
}
