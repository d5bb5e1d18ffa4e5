import NNPipeCore

/// Op dispatch and the layout-neutral, normalisation, pooling and shape ops.
extension KerasExporter {
    mutating func export(_ node: Node, at index: Int) throws {
        guard let output = node.outputs.first else { return }
        switch node.opType {
        case "Conv": try exportConvolution(node)
        case "ConvTranspose": try exportConvolutionTranspose(node)
        case "Gemm": try exportDense(node)
        case "MatMul": try exportDense(node)
        case "Identity", "Dropout":
            values[output] = try input(node, 0)
        case "Transpose": try exportTranspose(node)
        case "BatchNormalization": try exportBatchNormalization(node)
        case "LayerNormalization": try exportLayerNormalization(node)
        case "MaxPool", "AveragePool": try exportPooling(node)
        case "GlobalAveragePool", "GlobalMaxPool": try exportGlobalPooling(node)
        case "Flatten": try exportFlatten(node)
        case "Reshape": try exportReshape(node)
        case "Squeeze", "Unsqueeze": try exportSqueeze(node)
        case "Concat": try exportConcat(node)
        case "Add", "Sub", "Mul", "Div", "Max", "Min", "Mean", "Sum": try exportElementwise(node)
        case "Pad": try exportPad(node)
        case "Slice": try exportSlice(node)
        case "Resize": try exportResize(node)
        case "Gather": try exportGather(node)
        case "Cast": try exportCast(node)
        case "PRelu": try exportParametricRelu(node)
        case "LeakyRelu":
            let source = try input(node, 0)
            // ReLU(negative_slope:) means the same in Keras 2 and 3; LeakyReLU renamed its argument between them.
            addLayer("ReLU", name: output, config: [("negative_slope", .number(Double(node.attribute("alpha")?.floatValue ?? 0.01)))],
                     inputs: [source], output: output, relation: source.relation, shape: source.shape)
        case "Elu" where (node.attribute("alpha")?.floatValue ?? 1) != 1:
            let source = try input(node, 0)
            addLayer("ELU", name: output, config: [("alpha", .number(Double(node.attribute("alpha")!.floatValue!)))],
                     inputs: [source], output: output, relation: source.relation, shape: source.shape)
        case "Softmax":
            let source = try input(node, 0)
            let axis = Self.kerasAxis(Int(node.attribute("axis")?.intValue ?? -1), of: source)
            if case .permutedFeatures = source.relation { throw NNPipeError(.unsupported, "softmax over permuted features") }
            addLayer("Softmax", name: output, config: [("axis", Self.number(axis))], inputs: [source], output: output,
                     relation: source.relation, shape: source.shape)
        case "Clip":
            if let match = activation(at: index) { return try exportActivation(match, node: node) }
            guard node.inputs.count >= 2, scalar(node.inputs[1]) == 0 else { throw noEquivalent(node, "clips to a range other than [0, max]") }
            let maximum = node.inputs.count > 2 ? scalar(node.inputs[2]) : nil
            let source = try input(node, 0)
            addLayer("ReLU", name: output, config: [("max_value", maximum.map { .number(Double($0)) } ?? .null)], inputs: [source],
                     output: output, relation: source.relation, shape: source.shape)
        default:
            if let match = activation(at: index) { return try exportActivation(match, node: node) }
            throw noEquivalent(node, "is not an op nnpipe maps to a Keras layer")
        }
    }

    mutating func exportTranspose(_ node: Node) throws {
        let source = try input(node, 0)
        let perm = ints(node, "perm", default: Array((0..<source.rank).reversed()))
        let output = node.outputs[0]
        let rank = source.rank
        if rank >= 3, source.relation == .same, perm.map(Int64.init) == KerasGraphBuilder.toChannelsFirst(rank: rank) {
            // The Keras tensor already is channels-last: only the bookkeeping changes.
            var flipped = source
            flipped.relation = .channelsLast
            values[output] = flipped
            return
        }
        if rank >= 3, source.relation == .channelsLast, perm.map(Int64.init) == KerasGraphBuilder.toChannelsLast(rank: rank) {
            var flipped = source
            flipped.relation = .same
            values[output] = flipped
            return
        }
        guard perm.first == 0 else { throw noEquivalent(node, "moves the batch axis") }
        let plain = same(source, name: output)
        addLayer("Permute", name: output, config: [("dims", Self.numbers(Array(perm.dropFirst())))], inputs: [plain], output: output,
                 relation: .same, shape: perm.map { plain.shape[$0] }, dataType: source.dataType)
    }

    mutating func exportBatchNormalization(_ node: Node) throws {
        var source = try input(node, 0)
        if case .permutedFeatures = source.relation { source = same(source, name: node.outputs[0]) }
        let axis = source.relation == .channelsLast || source.rank == 2 ? -1 : 1
        let roles = ["gamma", "beta", "moving_mean", "moving_variance"]
        let weights = try roles.enumerated().map { position, role in
            let values = try floats(node, position + 1, role).values
            return (role: role, tensor: Tensor(name: role, shape: [values.count], values: values))
        }
        let output = node.outputs[0]
        addLayer("BatchNormalization", name: output, config: [
            ("axis", Self.number(axis)), ("epsilon", .number(Double(node.attribute("epsilon")?.floatValue ?? 1e-5))),
            ("momentum", .number(Double(node.attribute("momentum")?.floatValue ?? 0.9))), ("center", .bool(true)), ("scale", .bool(true)),
        ], inputs: [source], weights: weights, sharing: Array(node.inputs.dropFirst()), output: output, relation: source.relation,
           shape: source.shape)
    }

    mutating func exportLayerNormalization(_ node: Node) throws {
        var source = try input(node, 0)
        source = same(source, name: node.outputs[0])
        let axis = Int(node.attribute("axis")?.intValue ?? -1)
        guard axis == -1 || axis == source.rank - 1 else { throw noEquivalent(node, "normalises more than the last axis") }
        let gamma = try floats(node, 1, "the scale").values
        let beta = node.inputs.count > 2 && !node.inputs[2].isEmpty ? try floats(node, 2, "the bias").values : Array(repeating: 0, count: gamma.count)
        let output = node.outputs[0]
        addLayer("LayerNormalization", name: output, config: [
            ("axis", Self.number(-1)), ("epsilon", .number(Double(node.attribute("epsilon")?.floatValue ?? 1e-5))),
            ("center", .bool(true)), ("scale", .bool(true)),
        ], inputs: [source], weights: [("gamma", Tensor(name: "gamma", shape: [gamma.count], values: gamma)),
                                       ("beta", Tensor(name: "beta", shape: [beta.count], values: beta))],
                 sharing: Array(node.inputs.dropFirst()), output: output, relation: .same, shape: source.shape)
    }

    mutating func exportPooling(_ node: Node) throws {
        var source = try channelsLast(try input(node, 0), name: node.outputs[0])
        let kernel = try windowInts(node, "kernel_shape", default: [], minimum: 1)
        let spatialRank = kernel.count
        guard spatialRank == 1 || spatialRank == 2 else { throw noEquivalent(node, "pools \(spatialRank)-D windows") }
        guard (node.attribute("ceil_mode")?.intValue ?? 0) == 0 else { throw noEquivalent(node, "uses ceil_mode") }
        guard ints(node, "dilations", default: []).allSatisfy({ $0 == 1 }) else { throw noEquivalent(node, "uses dilations") }
        let strides = try windowInts(node, "strides", default: Array(repeating: 1, count: spatialRank), minimum: 1)
        let isMax = node.opType == "MaxPool"
        let includePad = (node.attribute("count_include_pad")?.intValue ?? 0) == 1
        let ones = Array(repeating: 1, count: spatialRank)
        var (padding, explicit) = try kerasPadding(node, kernel: kernel, strides: strides, dilations: ones, spatial: source.spatial)
        if !isMax && includePad && padding == "same" {
            // Keras's "same" averages only real cells; counting pads in means zero-padding first.
            let pads = ints(node, "pads", default: [])
            explicit = pads.isEmpty ? nil : (0..<spatialRank).map { (pads[$0], pads[$0 + spatialRank]) }
            if explicit == nil { throw noEquivalent(node, "counts SAME_UPPER padding cells") }
        }
        if let explicit {
            guard !isMax else { throw noEquivalent(node, "pads max pooling other than Keras's 'same'") }
            guard includePad else { throw noEquivalent(node, "excludes explicit padding from the average") }
            source = try zeroPadded(source, explicit, name: node.outputs[0])
            padding = "valid"
        }
        let output = node.outputs[0]
        let spatialOut = Self.windowOutput(source.spatial, kernel: kernel, strides: strides, dilations: ones, padding: padding)
        addLayer("\(isMax ? "Max" : "Average")Pooling\(spatialRank)D", name: output, config: [
            ("pool_size", Self.numbers(kernel)), ("strides", Self.numbers(strides)), ("padding", .string(padding)),
            ("data_format", .string("channels_last")),
        ], inputs: [source], output: output, relation: .channelsLast, shape: [source.shape[0]] + spatialOut + [source.channels])
    }

    mutating func exportGlobalPooling(_ node: Node) throws {
        let source = try channelsLast(try input(node, 0), name: node.outputs[0])
        let spatialRank = source.rank - 2
        guard spatialRank == 1 || spatialRank == 2 else { throw noEquivalent(node, "pools \(spatialRank)-D inputs") }
        let className = "Global\(node.opType == "GlobalMaxPool" ? "Max" : "Average")Pooling\(spatialRank)D"
        var output = node.outputs[0]
        if let user = soleConsumer(of: output), graph.nodes[user].opType == "Flatten", (graph.nodes[user].attribute("axis")?.intValue ?? 1) == 1 {
            consumed.insert(user)
            output = graph.nodes[user].outputs[0]
            addLayer(className, name: output, config: [("data_format", .string("channels_last")), ("keepdims", .bool(false))],
                     inputs: [source], output: output, relation: .same, shape: [source.shape[0], source.channels])
            return
        }
        addLayer(className, name: output, config: [("data_format", .string("channels_last")), ("keepdims", .bool(true))], inputs: [source],
                 output: output, relation: .channelsLast, shape: [source.shape[0]] + Array(repeating: 1, count: spatialRank) + [source.channels])
    }

    mutating func exportFlatten(_ node: Node) throws {
        var source = try input(node, 0)
        guard (node.attribute("axis")?.intValue ?? 1) == 1 else { throw noEquivalent(node, "flattens from an axis other than 1") }
        let output = node.outputs[0]
        var relation = ExportRelation.same
        if source.relation == .channelsLast {
            let spatial = source.spatial.compactMap { $0 }
            if spatial.count == source.spatial.count, let channels = source.channels {
                relation = spatial.reduce(1, *) == 1 ? .same : .permutedFeatures(spatial: spatial, channels: channels)
            } else {
                source = same(source, name: output)
            }
        } else if case .permutedFeatures = source.relation {
            relation = source.relation
        }
        let features: Int? = source.shape.dropFirst().reduce(Optional(1)) { total, extent in total.flatMap { total in extent.map { total * $0 } } }
        addLayer("Flatten", name: output, config: [("data_format", .string("channels_last"))], inputs: [source], output: output,
                 relation: relation, shape: [source.shape[0], features], dataType: source.dataType)
    }

    mutating func exportReshape(_ node: Node) throws {
        let source = same(try input(node, 0), name: node.outputs[0])
        guard node.inputs.count > 1, let target = constant(node.inputs[1])?.integerValues(), let first = target.first else {
            throw noEquivalent(node, "has a computed shape")
        }
        guard (node.attribute("allowzero")?.intValue ?? 0) == 0, first == 0 || (first == -1 && !target.dropFirst().contains(-1)) else {
            throw noEquivalent(node, "reshapes the batch axis")
        }
        var shape: [Int] = []
        for (axis, extent) in target.enumerated().dropFirst() {
            if extent == 0 {
                guard axis < source.rank, let copied = source.shape[axis] else { throw noEquivalent(node, "copies an unknown extent") }
                shape.append(copied)
            } else {
                shape.append(Int(extent))
            }
        }
        var kerasShape: [Int?] = [source.shape[0]] + shape.map { $0 < 0 ? nil : $0 }
        let known = source.shape.dropFirst().compactMap { $0 }
        if known.count == source.rank - 1, let unknown = shape.firstIndex(of: -1) {
            kerasShape[unknown + 1] = known.reduce(1, *) / max(shape.filter { $0 > 0 }.reduce(1, *), 1)
        }
        let output = node.outputs[0]
        addLayer("Reshape", name: output, config: [("target_shape", Self.numbers(shape))], inputs: [source], output: output,
                 relation: .same, shape: kerasShape, dataType: source.dataType)
    }

    /// Squeeze / Unsqueeze of non-batch axes as a Keras Reshape (axes from the attribute or, opset 13+, the input).
    mutating func exportSqueeze(_ node: Node) throws {
        let output = node.outputs[0]
        let source = same(try input(node, 0), name: output)
        var axes = node.attribute("axes")?.intsValue ?? []
        if node.inputs.count > 1, !node.inputs[1].isEmpty {
            guard let values = constant(node.inputs[1])?.integerValues() else { throw noEquivalent(node, "has computed axes") }
            axes = values
        }
        var shape = source.shape
        if node.opType == "Squeeze" {
            let rank = shape.count
            let positive = Set(axes.map { Int($0 < 0 ? $0 + Int64(rank) : $0) })
            guard !positive.isEmpty, !positive.contains(0), positive.allSatisfy({ shape[$0] == 1 }) else {
                throw noEquivalent(node, "squeezes the batch axis or axes not known to be 1")
            }
            shape = shape.enumerated().filter { !positive.contains($0.offset) }.map(\.element)
        } else {
            let rank = shape.count + axes.count
            for axis in axes.map({ Int($0 < 0 ? $0 + Int64(rank) : $0) }).sorted() {
                guard axis > 0, axis <= shape.count else { throw noEquivalent(node, "inserts an axis before the batch") }
                shape.insert(1, at: axis)
            }
        }
        let target = shape.dropFirst().compactMap { $0 }
        guard target.count == shape.count - 1 else { throw noEquivalent(node, "reshapes to extents that are not known") }
        addLayer("Reshape", name: output, config: [("target_shape", Self.numbers(Array(target)))], inputs: [source], output: output,
                 relation: .same, shape: shape, dataType: source.dataType)
    }

    /// Inputs in one common relation: channels-last when any is and all are spatial, else as the IR has them.
    mutating func aligned(_ inputs: [ExportValue], name: String) throws -> [ExportValue] {
        let rank = inputs[0].rank
        if rank >= 3, inputs.allSatisfy({ $0.rank == rank }), inputs.contains(where: { $0.relation == .channelsLast }) {
            return try inputs.map { try channelsLast($0, name: name) }
        }
        return inputs.map { same($0, name: name) }
    }

    mutating func exportConcat(_ node: Node) throws {
        let output = node.outputs[0]
        let sources = try aligned(try node.inputs.indices.map { try input(node, $0) }, name: output)
        let axis = Self.kerasAxis(Int(node.attribute("axis")?.intValue ?? 1), of: sources[0])
        guard axis > 0 else { throw noEquivalent(node, "concatenates along the batch axis") }
        var shape = sources[0].shape
        shape[axis] = sources.reduce(Optional(0)) { total, value in total.flatMap { total in value.shape[axis].map { total + $0 } } }
        addLayer("Concatenate", name: output, config: [("axis", Self.number(axis == sources[0].rank - 1 ? -1 : axis))], inputs: sources,
                 output: output, relation: sources[0].relation, shape: shape)
    }

    mutating func exportElementwise(_ node: Node) throws {
        let output = node.outputs[0]
        let constants = node.inputs.map { initializers[$0] }
        if let position = constants.firstIndex(where: { $0 != nil }) {
            // x op scalar is Keras's Rescaling layer; anything else needs ONNX.
            guard node.inputs.count == 2, let value = scalar(node.inputs[position]) else {
                throw noEquivalent(node, "combines a tensor with a non-scalar constant")
            }
            let source = try input(node, 1 - position)
            var scale: Float = 1, offset: Float = 0
            switch (node.opType, position) {
            case ("Add", _): offset = value
            case ("Sub", 1): offset = -value
            case ("Mul", _): scale = value
            case ("Div", 1): scale = 1 / value
            default: throw noEquivalent(node, "applies a constant in an order Keras's Rescaling cannot")
            }
            addLayer("Rescaling", name: output, config: [("scale", .number(Double(scale))), ("offset", .number(Double(offset)))],
                     inputs: [source], output: output, relation: source.relation, shape: source.shape)
            return
        }
        let classNames = ["Add": "Add", "Sum": "Add", "Sub": "Subtract", "Mul": "Multiply", "Max": "Maximum", "Min": "Minimum", "Mean": "Average"]
        guard let className = classNames[node.opType] else { throw noEquivalent(node, "divides two tensors") }
        let raw = try node.inputs.indices.map { try input(node, $0) }
        if raw.count == 1 {
            values[output] = raw[0]
            return
        }
        let sources = try aligned(raw, name: output)
        addLayer(className, name: output, config: [], inputs: sources, output: output, relation: sources[0].relation,
                 shape: sources.max(by: { $0.rank < $1.rank })!.shape)
    }
}
