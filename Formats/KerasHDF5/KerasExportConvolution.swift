import NNPipeCore

/// Conv / ConvTranspose / Gemm / MatMul back to Keras layers, weights back to Keras layouts.
extension KerasExporter {
    static func number(_ value: Int) -> JSONValue { .number(Double(value)) }
    static func numbers(_ values: [Int]) -> JSONValue { .array(values.map(number)) }

    func ints(_ node: Node, _ name: String, default fallback: [Int]) -> [Int] {
        node.attribute(name)?.intsValue.map { $0.map(Int.init) } ?? fallback
    }

    /// A window attribute (kernel_shape, strides, dilations, pads, output_padding), each value from
    /// `minimum` to 2^24: a stride of 0 or a pad of 2^62 describes no layer and overflows the
    /// shape arithmetic below, so it is refused naming the node.
    func windowInts(_ node: Node, _ name: String, default fallback: [Int], minimum: Int) throws -> [Int] {
        let values = ints(node, name, default: fallback)
        guard values.allSatisfy({ (minimum...(1 << 24)).contains($0) }) else {
            throw NNPipeError(.invalidModel, "node '\(node.displayName)' (\(node.opType)): \(name) \(values) must be from \(minimum) to \(1 << 24)")
        }
        return values
    }

    /// Keras padding for ONNX pads over `spatial`: "valid", "same", or explicit pads a ZeroPadding layer must add.
    func kerasPadding(_ node: Node, kernel: [Int], strides: [Int], dilations: [Int], spatial: [Int?]) throws -> (padding: String, explicit: [(Int, Int)]?) {
        let rank = kernel.count
        let autoPad = node.attribute("auto_pad")?.stringValue ?? "NOTSET"
        switch autoPad {
        case "VALID": return ("valid", nil)
        case "SAME_UPPER": return ("same", nil)
        case "NOTSET": break
        default: throw NNPipeError(.unsupported, "auto_pad \(autoPad) has no Keras equivalent")
        }
        let pads = try windowInts(node, "pads", default: Array(repeating: 0, count: 2 * rank), minimum: 0)
        guard pads.count == 2 * rank else { throw NNPipeError(.invalidModel, "pads has \(pads.count) entries, expected \(2 * rank)") }
        let pairs = (0..<rank).map { (pads[$0], pads[$0 + rank]) }
        if pairs.allSatisfy({ $0 == (0, 0) }) { return ("valid", nil) }
        var isSame = true
        for axis in 0..<rank {
            let effective = (kernel[axis] - 1) * dilations[axis] + 1
            let total: Int
            if strides[axis] == 1 {
                total = effective - 1
            } else if let extent = spatial[axis] {
                let output = (extent + strides[axis] - 1) / strides[axis]
                total = max((output - 1) * strides[axis] + effective - extent, 0)
            } else {
                isSame = false
                break
            }
            if pairs[axis] != (total / 2, total - total / 2) { isSame = false }
        }
        return isSame ? ("same", nil) : ("valid", pairs)
    }

    static func windowOutput(_ spatial: [Int?], kernel: [Int], strides: [Int], dilations: [Int], padding: String) -> [Int?] {
        spatial.indices.map { axis in
            guard let extent = spatial[axis] else { return nil }
            if padding == "same" { return (extent + strides[axis] - 1) / strides[axis] }
            return (extent - ((kernel[axis] - 1) * dilations[axis] + 1)) / strides[axis] + 1
        }
    }

    /// Adds a ZeroPadding layer before a windowed layer when its pads are not "same".
    mutating func zeroPadded(_ value: ExportValue, _ pairs: [(Int, Int)], name: String) throws -> ExportValue {
        guard pairs.count == 1 || pairs.count == 2 else { throw NNPipeError(.unsupported, "explicit padding of \(pairs.count)-D windows has no Keras equivalent") }
        let padding: JSONValue = pairs.count == 1 ? Self.numbers([pairs[0].0, pairs[0].1]) : .array(pairs.map { Self.numbers([$0.0, $0.1]) })
        let spatial = zip(value.spatial, pairs).map { extent, pair in extent.map { $0 + pair.0 + pair.1 } }
        return addLayer("ZeroPadding\(pairs.count)D", name: "\(name)_pad", config: [("padding", padding)], inputs: [value],
                        output: nil, relation: .channelsLast, shape: [value.shape[0]] + spatial + [value.channels])
    }

    mutating func exportConvolution(_ node: Node) throws {
        let weight = try floats(node, 1, "the kernel")
        let spatialRank = weight.shape.count - 2
        guard spatialRank >= 1, spatialRank <= 3 else { throw NNPipeError(.unsupported, "a \(spatialRank)-D convolution has no Keras equivalent") }
        var source = try channelsLast(try input(node, 0), name: node.outputs[0])
        let group = Int(node.attribute("group")?.intValue ?? 1)
        let kernel = Array(weight.shape[2...])
        let strides = try windowInts(node, "strides", default: Array(repeating: 1, count: spatialRank), minimum: 1)
        let dilations = try windowInts(node, "dilations", default: Array(repeating: 1, count: spatialRank), minimum: 1)
        var (padding, explicit) = try kerasPadding(node, kernel: kernel, strides: strides, dilations: dilations, spatial: source.spatial)
        if let explicit, spatialRank == 1, explicit[0] == ((kernel[0] - 1) * dilations[0], 0) {
            // Left-only padding of the dilated kernel's reach is Keras's causal Conv1D.
            padding = "causal"
        } else if let explicit {
            source = try zeroPadded(source, explicit, name: node.outputs[0])
            padding = "valid"
        }
        let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty ? try floats(node, 2, "the bias") : nil
        let outputChannels = weight.shape[0]
        let inputChannels = source.channels ?? weight.shape[1] * group
        let spatialOut = Self.windowOutput(source.spatial, kernel: kernel, strides: strides, dilations: dilations,
                                           padding: padding == "causal" ? "same" : padding)
        var common: [(String, JSONValue)] = [
            ("kernel_size", Self.numbers(kernel)), ("strides", Self.numbers(strides)), ("padding", .string(padding)),
            ("data_format", .string("channels_last")), ("dilation_rate", Self.numbers(dilations)),
        ]
        var weights: [(role: String, tensor: Tensor)] = []
        var className: String
        var output = node.outputs[0]
        var finalChannels = outputChannels
        var sharedWeights = Array(node.inputs.dropFirst())
        let isDepthwise = group > 1 && group == inputChannels && weight.shape[1] == 1
        if isDepthwise {
            let multiplier = outputChannels / group
            // (C*m, 1, k...) -> (k..., C, m)
            let permutation = Array(2..<(spatialRank + 2)) + [0, 1]
            let shape = [group, multiplier] + kernel
            let values = WeightLayout.permute(weight.values, shape: shape, permutation: permutation)
            weights.append(("depthwise_kernel", Tensor(name: "depthwise_kernel", shape: permutation.map { shape[$0] }, values: values)))
            common.append(("depth_multiplier", Self.number(multiplier)))
            className = "DepthwiseConv\(spatialRank)D"
            if bias == nil, let pointwise = separablePointwise(after: output, channels: outputChannels) {
                // Depthwise without bias feeding a 1x1 conv: one SeparableConv layer.
                let pointwiseWeight = try floats(pointwise, 1, "the kernel")
                let filters = pointwiseWeight.shape[0]
                let permutationPointwise = Array(2..<(spatialRank + 2)) + [1, 0]
                let values = WeightLayout.permute(pointwiseWeight.values, shape: pointwiseWeight.shape, permutation: permutationPointwise)
                weights.append(("pointwise_kernel", Tensor(name: "pointwise_kernel", shape: permutationPointwise.map { pointwiseWeight.shape[$0] }, values: values)))
                className = "SeparableConv\(spatialRank)D"
                common.append(("filters", Self.number(filters)))
                finalChannels = filters
                output = pointwise.outputs[0]
                sharedWeights += pointwise.inputs.dropFirst()
                let pointwiseBias = pointwise.inputs.count > 2 && !pointwise.inputs[2].isEmpty ? try floats(pointwise, 2, "the bias") : nil
                if let pointwiseBias { weights.append(("bias", Tensor(name: "bias", shape: [filters], values: pointwiseBias.values))) }
                common.append(("use_bias", .bool(pointwiseBias != nil)))
            } else {
                if let bias { weights.append(("bias", Tensor(name: "bias", shape: [outputChannels], values: bias.values))) }
                common.append(("use_bias", .bool(bias != nil)))
            }
        } else {
            // (out, in/g, k...) -> (k..., in/g, out)
            let permutation = Array(2..<(spatialRank + 2)) + [1, 0]
            let values = WeightLayout.permute(weight.values, shape: weight.shape, permutation: permutation)
            weights.append(("kernel", Tensor(name: "kernel", shape: permutation.map { weight.shape[$0] }, values: values)))
            if let bias { weights.append(("bias", Tensor(name: "bias", shape: [outputChannels], values: bias.values))) }
            className = "Conv\(spatialRank)D"
            common += [("filters", Self.number(outputChannels)), ("groups", Self.number(group)), ("use_bias", .bool(bias != nil))]
        }
        var activationName = "linear"
        if let match = fusedActivation(after: output) {
            activationName = match.name
            output = match.output
        }
        common.append(("activation", .string(activationName)))
        addLayer(className, name: output, config: common, inputs: [source], weights: weights, sharing: sharedWeights, output: output,
                 relation: .channelsLast, shape: [source.shape[0]] + spatialOut + [finalChannels])
    }

    /// The 1x1, stride-1, unpadded, ungrouped Conv that alone consumes a depthwise result.
    mutating func separablePointwise(after value: String, channels: Int) -> Node? {
        guard let user = soleConsumer(of: value) else { return nil }
        let node = graph.nodes[user]
        guard node.opType == "Conv", node.inputs.first == value, let weight = initializers[node.inputs.count > 1 ? node.inputs[1] : ""],
              weight.shape.count >= 3, weight.shape[1] == channels, weight.shape[2...].allSatisfy({ $0 == 1 }),
              (node.attribute("group")?.intValue ?? 1) == 1,
              ints(node, "strides", default: []).allSatisfy({ $0 == 1 }), ints(node, "pads", default: []).allSatisfy({ $0 == 0 }),
              (node.attribute("auto_pad")?.stringValue ?? "NOTSET") != "SAME_LOWER"
        else { return nil }
        consumed.insert(user)
        return node
    }

    mutating func exportConvolutionTranspose(_ node: Node) throws {
        let weight = try floats(node, 1, "the kernel")
        guard weight.shape.count == 4, (node.attribute("group")?.intValue ?? 1) == 1 else {
            throw NNPipeError(.unsupported, "only ungrouped 2-D ConvTranspose has a Keras equivalent (Conv2DTranspose)")
        }
        if node.attribute("output_shape") != nil { throw NNPipeError(.unsupported, "output_shape has no Keras equivalent") }
        let source = try channelsLast(try input(node, 0), name: node.outputs[0])
        let kernel = Array(weight.shape[2...])
        let strides = try windowInts(node, "strides", default: [1, 1], minimum: 1)
        let dilations = try windowInts(node, "dilations", default: [1, 1], minimum: 1)
        let pads = try windowInts(node, "pads", default: [0, 0, 0, 0], minimum: 0)
        let outputPadding = try windowInts(node, "output_padding", default: [0, 0], minimum: 0)
        var padding = "valid"
        var spatialOut: [Int?] = []
        for axis in 0..<2 {
            let effective = (kernel[axis] - 1) * dilations[axis] + 1
            let total = effective - strides[axis]
            let extent = source.spatial[axis]
            if pads[axis] == 0, pads[axis + 2] == 0, outputPadding[axis] == max(strides[axis] - effective, 0) {
                spatialOut.append(extent.map { ($0 - 1) * strides[axis] + effective + outputPadding[axis] })
                if padding == "same" { padding = "mixed" }
            } else if total >= 0, pads[axis] == total / 2, pads[axis + 2] == total - total / 2, outputPadding[axis] == 0 {
                spatialOut.append(extent.map { $0 * strides[axis] })
                padding = axis == 0 || padding == "same" ? "same" : "mixed"
            } else {
                throw NNPipeError(.unsupported, "ConvTranspose pads \(pads) have no Keras equivalent")
            }
        }
        guard padding != "mixed" else { throw NNPipeError(.unsupported, "ConvTranspose mixes 'same' and 'valid' padding per axis") }
        let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty ? try floats(node, 2, "the bias") : nil
        let filters = weight.shape[1]
        // (in, out, kh, kw) -> (kh, kw, out, in)
        let permutation = [2, 3, 1, 0]
        var weights: [(role: String, tensor: Tensor)] = [("kernel", Tensor(name: "kernel", shape: permutation.map { weight.shape[$0] },
                                                                          values: WeightLayout.permute(weight.values, shape: weight.shape, permutation: permutation)))]
        if let bias { weights.append(("bias", Tensor(name: "bias", shape: [filters], values: bias.values))) }
        var output = node.outputs[0]
        var activationName = "linear"
        if let match = fusedActivation(after: output) {
            activationName = match.name
            output = match.output
        }
        addLayer("Conv2DTranspose", name: output, config: [
            ("filters", Self.number(filters)), ("kernel_size", Self.numbers(kernel)), ("strides", Self.numbers(strides)),
            ("padding", .string(padding)), ("data_format", .string("channels_last")), ("dilation_rate", Self.numbers(dilations)),
            ("activation", .string(activationName)), ("use_bias", .bool(bias != nil)),
        ], inputs: [source], weights: weights, sharing: Array(node.inputs.dropFirst()), output: output, relation: .channelsLast,
           shape: [source.shape[0]] + spatialOut + [filters])
    }

    /// Gemm, or MatMul with a constant right side (and a following bias Add), as Dense.
    mutating func exportDense(_ node: Node) throws {
        var source = try input(node, 0)
        var kernel = try floats(node, 1, "the weight matrix")
        guard kernel.shape.count == 2 else { throw NNPipeError(.unsupported, "a weight of rank \(kernel.shape.count) has no Dense equivalent") }
        var biasValues: [Float]?
        var output = node.outputs[0]
        var sharedWeights = Array(node.inputs.dropFirst())
        if node.opType == "Gemm" {
            guard (node.attribute("transA")?.intValue ?? 0) == 0 else { throw NNPipeError(.unsupported, "transA has no Dense equivalent") }
            guard source.rank == 2 else { throw NNPipeError(.unsupported, "Gemm input of rank \(source.rank)") }
            if (node.attribute("transB")?.intValue ?? 0) != 0 {
                kernel = (WeightLayout.permute(kernel.values, shape: kernel.shape, permutation: [1, 0]), [kernel.shape[1], kernel.shape[0]])
            }
            let alpha = node.attribute("alpha")?.floatValue ?? 1
            if alpha != 1 { kernel.values = kernel.values.map { $0 * alpha } }
            if node.inputs.count > 2, !node.inputs[2].isEmpty {
                let bias = try floats(node, 2, "the bias")
                let beta = node.attribute("beta")?.floatValue ?? 1
                biasValues = try broadcastBias(bias, units: kernel.shape[1]).map { $0 * beta }
            }
        } else {
            if case .permutedFeatures = source.relation {} else { source = same(source, name: output) }
            if let user = soleConsumer(of: output), graph.nodes[user].opType == "Add",
               let biasName = graph.nodes[user].inputs.first(where: { $0 != output }), let bias = initializers[biasName],
               let values = bias.floatValues(), let broadcast = try? broadcastBias((values, bias.shape), units: kernel.shape[1]) {
                consumed.insert(user)
                sharedWeights.append(biasName)
                biasValues = broadcast
                output = graph.nodes[user].outputs[0]
            }
        }
        let units = kernel.shape[1]
        var kernelValues = kernel.values
        if case .permutedFeatures(let spatial, let channels) = source.relation {
            // IR rows are (C, spatial...); the Keras Flatten before this layer yields (spatial..., C).
            let shape = [channels] + spatial + [units]
            let permutation = Array(1...spatial.count) + [0, spatial.count + 1]
            kernelValues = WeightLayout.permute(kernelValues, shape: shape, permutation: permutation)
        } else if source.relation == .channelsLast {
            source = same(source, name: output)
        }
        var weights: [(role: String, tensor: Tensor)] = [("kernel", Tensor(name: "kernel", shape: kernel.shape, values: kernelValues))]
        if let biasValues { weights.append(("bias", Tensor(name: "bias", shape: [units], values: biasValues))) }
        var activationName = "linear"
        if let match = fusedActivation(after: output) {
            activationName = match.name
            output = match.output
        } else if let softmax = soleConsumer(of: output), graph.nodes[softmax].opType == "Softmax",
                  Self.kerasAxis(Int(graph.nodes[softmax].attribute("axis")?.intValue ?? -1), of: source) == source.rank - 1 {
            consumed.insert(softmax)
            activationName = "softmax"
            output = graph.nodes[softmax].outputs[0]
        }
        addLayer("Dense", name: output, config: [("units", Self.number(units)), ("activation", .string(activationName)), ("use_bias", .bool(biasValues != nil))],
                 inputs: [source], weights: weights, sharing: sharedWeights + ["\(source.relation)"], output: output, relation: .same,
                 shape: Array(source.shape.dropLast()) + [units])
    }

    func broadcastBias(_ bias: (values: [Float], shape: [Int]), units: Int) throws -> [Float] {
        if bias.values.count == units, bias.shape.dropLast().allSatisfy({ $0 == 1 }) { return bias.values }
        if bias.values.count == 1 { return Array(repeating: bias.values[0], count: units) }
        throw NNPipeError(.unsupported, "a bias of shape \(bias.shape) has no Dense equivalent")
    }
}
