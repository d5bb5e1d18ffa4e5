import NNPipeCore

/// Conv1D/2D/3D, DepthwiseConv, SeparableConv and Conv2DTranspose: weights to ONNX layouts,
/// computed channels-first, Keras "same" written as explicit pads (SAME_UPPER when sizes are unknown).
extension KerasImporter {
    struct Window {
        var kernel: [Int]
        var strides: [Int]
        var dilations: [Int]
        var padding: String
    }

    func window(_ layer: KerasLayerConfig, spatialRank: Int, kernelKey: String = "kernel_size") throws -> Window {
        let format = try layer.string("data_format", default: "channels_last")
        guard format == "channels_last" else { throw layer.unsupported("data_format '\(format)' is not supported") }
        // A stride of 0 divides by zero below, and sizes past 2^24 describe no real layer but
        // overflow the window arithmetic: both are the file's mistake, named at their key.
        return Window(
            kernel: try layer.sizes(kernelKey, count: spatialRank),
            strides: try layer.sizes("strides", count: spatialRank, default: Array(repeating: 1, count: spatialRank)),
            dilations: try layer.sizes("dilation_rate", count: spatialRank, default: Array(repeating: 1, count: spatialRank)),
            padding: try layer.string("padding", default: "valid").lowercased())
    }

    /// ONNX pad/size attributes and the output spatial extents for a Keras window over `spatial`.
    func windowAttributes(_ window: Window, spatial: [Int?], layer: KerasLayerConfig) throws -> (attributes: [Attribute], output: [Int?]) {
        var attributes: [Attribute] = [
            .ints("kernel_shape", window.kernel.map(Int64.init)), .ints("strides", window.strides.map(Int64.init)),
        ]
        var begins: [Int] = []
        var ends: [Int] = []
        var output: [Int?] = []
        var useAutoPad = false
        for axis in window.kernel.indices {
            let effective = (window.kernel[axis] - 1) * window.dilations[axis] + 1
            let stride = window.strides[axis]
            let extent = spatial[axis]
            switch window.padding {
            case "valid":
                if let extent, extent < effective {
                    throw NNPipeError(.invalidModel, "layer '\(layer.name)' (\(layer.className)): its window of \(effective) is larger than the input's \(extent) on spatial axis \(axis) (padding 'valid')")
                }
                begins.append(0); ends.append(0)
                output.append(extent.map { ($0 - effective) / stride + 1 })
            case "same":
                let outputExtent = extent.map { ($0 + stride - 1) / stride }
                output.append(outputExtent)
                if stride == 1 {
                    begins.append((effective - 1) / 2); ends.append(effective - 1 - (effective - 1) / 2)
                } else if let extent, let outputExtent {
                    let total = max((outputExtent - 1) * stride + effective - extent, 0)
                    begins.append(total / 2); ends.append(total - total / 2)
                } else {
                    useAutoPad = true
                }
            case "causal":
                begins.append(effective - 1); ends.append(0)
                output.append(extent.map { ($0 - 1) / stride + 1 })
            default:
                throw layer.unsupported("padding '\(window.padding)' is not supported")
            }
        }
        if useAutoPad {
            attributes.append(.string("auto_pad", "SAME_UPPER"))
        } else {
            attributes.append(.ints("pads", (begins + ends).map(Int64.init)))
        }
        return (attributes, output)
    }

    mutating func convolution(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        let spatialRank = input.rank - 2
        guard spatialRank >= 1 else { throw layer.unsupported("input of rank \(input.rank) is not spatial") }
        let source = builder.value(input, in: .channelsFirst)
        let window = try window(layer, spatialRank: spatialRank)
        let filters = try layer.integer("filters")
        let groups = try layer.integer("groups", default: 1)
        let useBias = try layer.bool("use_bias", default: true)
        try expectWeightCount(weights, useBias ? 2 : 1, layer)
        let inputChannels = input.channels
        let kernel = try weight(weights, 0, "kernel", layer,
                                expected: window.kernel.map { $0 } + [inputChannels.map { $0 / groups }, filters])
        // (k..., in/g, out) -> (out, in/g, k...)
        let permutation = [spatialRank + 1, spatialRank] + Array(0..<spatialRank)
        let onnxKernel = WeightLayout.permute(kernel.values, shape: kernel.shape, permutation: permutation)
        let kernelName = layerConstant("kernel", shape: permutation.map { kernel.shape[$0] }, values: onnxKernel)
        var inputs = [source.name, kernelName]
        if useBias {
            let bias = try weight(weights, 1, "bias", layer, expected: [filters])
            inputs.append(layerConstant("bias", shape: [filters], values: bias.values))
        }
        let (padding, spatialOut) = try windowAttributes(window, spatial: input.spatial, layer: layer)
        let attributes = padding + [.ints("dilations", window.dilations.map(Int64.init)), .int("group", Int64(groups))]
        try finishWithActivation(layer, produce: { importer, target in
            importer.builder.add("Conv", name: output, inputs: inputs, output: target, attributes: attributes)
        }, output: output, softmaxAxis: 1)
        return KerasValue(name: output, layout: .channelsFirst, shape: [input.shape[0]] + spatialOut + [filters])
    }

    /// Depthwise kernel (k..., C, m) as an ONNX grouped-conv kernel (C*m, 1, k...).
    func depthwiseKernel(_ kernel: (values: [Float], shape: [Int])) -> (values: [Float], shape: [Int]) {
        let spatialRank = kernel.shape.count - 2
        let permutation = [spatialRank, spatialRank + 1] + Array(0..<spatialRank)
        let values = WeightLayout.permute(kernel.values, shape: kernel.shape, permutation: permutation)
        let channels = kernel.shape[spatialRank] * kernel.shape[spatialRank + 1]
        return (values, [channels, 1] + kernel.shape[0..<spatialRank])
    }

    mutating func depthwise(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        let spatialRank = input.rank - 2
        guard spatialRank >= 1, let channels = input.channels else { throw layer.unsupported("needs a spatial input with known channels") }
        let source = builder.value(input, in: .channelsFirst)
        let window = try window(layer, spatialRank: spatialRank)
        let multiplier = try layer.integer("depth_multiplier", default: 1)
        let useBias = try layer.bool("use_bias", default: true)
        try expectWeightCount(weights, useBias ? 2 : 1, layer)
        let kernel = depthwiseKernel(try weight(weights, 0, "depthwise_kernel", layer, expected: window.kernel.map { $0 } + [channels, multiplier]))
        var inputs = [source.name, layerConstant("depthwise_kernel", shape: kernel.shape, values: kernel.values)]
        if useBias {
            let bias = try weight(weights, 1, "bias", layer, expected: [channels * multiplier])
            inputs.append(layerConstant("bias", shape: [channels * multiplier], values: bias.values))
        }
        let (padding, spatialOut) = try windowAttributes(window, spatial: input.spatial, layer: layer)
        let attributes = padding + [.ints("dilations", window.dilations.map(Int64.init)), .int("group", Int64(channels))]
        try finishWithActivation(layer, produce: { importer, target in
            importer.builder.add("Conv", name: output, inputs: inputs, output: target, attributes: attributes)
        }, output: output, softmaxAxis: 1)
        return KerasValue(name: output, layout: .channelsFirst, shape: [input.shape[0]] + spatialOut + [channels * multiplier])
    }

    mutating func separable(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        let spatialRank = input.rank - 2
        guard spatialRank >= 1, let channels = input.channels else { throw layer.unsupported("needs a spatial input with known channels") }
        let source = builder.value(input, in: .channelsFirst)
        let window = try window(layer, spatialRank: spatialRank)
        let multiplier = try layer.integer("depth_multiplier", default: 1)
        let filters = try layer.integer("filters")
        let useBias = try layer.bool("use_bias", default: true)
        try expectWeightCount(weights, useBias ? 3 : 2, layer)
        let depthwise = depthwiseKernel(try weight(weights, 0, "depthwise_kernel", layer, expected: window.kernel.map { $0 } + [channels, multiplier]))
        let pointwise = try weight(weights, 1, "pointwise_kernel", layer,
                                   expected: Array(repeating: 1, count: spatialRank) + [channels * multiplier, filters])
        let (padding, spatialOut) = try windowAttributes(window, spatial: input.spatial, layer: layer)
        let depthwiseName = layerConstant("depthwise_kernel", shape: depthwise.shape, values: depthwise.values)
        let middle = builder.add("Conv", name: "\(output)/depthwise", inputs: [source.name, depthwiseName],
                                 attributes: padding + [.ints("dilations", window.dilations.map(Int64.init)), .int("group", Int64(channels))])
        let permutation = [spatialRank + 1, spatialRank] + Array(0..<spatialRank)
        let pointwiseValues = WeightLayout.permute(pointwise.values, shape: pointwise.shape, permutation: permutation)
        var inputs = [middle, layerConstant("pointwise_kernel", shape: permutation.map { pointwise.shape[$0] }, values: pointwiseValues)]
        if useBias {
            let bias = try weight(weights, 2, "bias", layer, expected: [filters])
            inputs.append(layerConstant("bias", shape: [filters], values: bias.values))
        }
        let ones = Array(repeating: Int64(1), count: spatialRank)
        try finishWithActivation(layer, produce: { importer, target in
            importer.builder.add("Conv", name: output, inputs: inputs, output: target,
                                 attributes: [.ints("kernel_shape", ones), .ints("strides", ones), .ints("pads", ones.map { _ in 0 } + ones.map { _ in 0 })])
        }, output: output, softmaxAxis: 1)
        return KerasValue(name: output, layout: .channelsFirst, shape: [input.shape[0]] + spatialOut + [filters])
    }

    mutating func convolutionTranspose(_ layer: KerasLayerConfig, _ input: KerasValue, _ output: String, _ weights: [Tensor]) throws -> KerasValue {
        let spatialRank = input.rank - 2
        guard spatialRank == 2, let channels = input.channels else { throw layer.unsupported("needs a 4-D input with known channels") }
        if let padding = layer["output_padding"], !padding.isNull { throw layer.unsupported("output_padding is not supported") }
        let source = builder.value(input, in: .channelsFirst)
        let window = try window(layer, spatialRank: spatialRank)
        let filters = try layer.integer("filters")
        let useBias = try layer.bool("use_bias", default: true)
        try expectWeightCount(weights, useBias ? 2 : 1, layer)
        let kernel = try weight(weights, 0, "kernel", layer, expected: window.kernel.map { $0 } + [filters, channels])
        // (kh, kw, out, in) -> (in, out, kh, kw)
        let permutation = [3, 2, 0, 1]
        var inputs = [source.name, layerConstant("kernel", shape: permutation.map { kernel.shape[$0] },
                                                    values: WeightLayout.permute(kernel.values, shape: kernel.shape, permutation: permutation))]
        if useBias {
            let bias = try weight(weights, 1, "bias", layer, expected: [filters])
            inputs.append(layerConstant("bias", shape: [filters], values: bias.values))
        }
        var begins: [Int64] = [], ends: [Int64] = [], outputPadding: [Int64] = []
        var spatialOut: [Int?] = []
        for axis in 0..<spatialRank {
            let effective = (window.kernel[axis] - 1) * window.dilations[axis] + 1
            let stride = window.strides[axis]
            let extent = input.spatial[axis]
            if window.padding == "same" {
                // Keras crops floor((k - s) / 2) at the start, the rest at the end (output = input * stride).
                guard effective >= stride else { throw layer.unsupported("'same' padding with kernel smaller than stride is not supported") }
                let total = effective - stride
                begins.append(Int64(total / 2)); ends.append(Int64(total - total / 2)); outputPadding.append(0)
                spatialOut.append(extent.map { $0 * stride })
            } else if window.padding == "valid" {
                let extra = max(stride - effective, 0)
                begins.append(0); ends.append(0); outputPadding.append(Int64(extra))
                spatialOut.append(extent.map { ($0 - 1) * stride + effective + extra })
            } else {
                throw layer.unsupported("padding '\(window.padding)' is not supported")
            }
        }
        var attributes: [Attribute] = [
            .ints("kernel_shape", window.kernel.map(Int64.init)), .ints("strides", window.strides.map(Int64.init)),
            .ints("dilations", window.dilations.map(Int64.init)), .ints("pads", begins + ends),
        ]
        if outputPadding.contains(where: { $0 != 0 }) { attributes.append(.ints("output_padding", outputPadding)) }
        try finishWithActivation(layer, produce: { importer, target in
            importer.builder.add("ConvTranspose", name: output, inputs: inputs, output: target, attributes: attributes)
        }, output: output, softmaxAxis: 1)
        return KerasValue(name: output, layout: .channelsFirst, shape: [input.shape[0]] + spatialOut + [filters])
    }
}
