import NNPipeCore

/// The channels of one value along its channel axis; atom `base + i` is channel `i`.
struct ChannelSpace {
    var value: String
    var axis: Int
    var count: Int
    var base: Int
}

/// One change structured pruning makes to the graph when channels of `space` go away.
enum ChannelEdit {
    /// Keep the slices of initializer `tensor` along `axis` whose indices survive in `space`.
    /// `zeroInMask`: the masked model zeroes these slices too (filters and consumer inputs).
    case tensorAxis(tensor: String, axis: Int, space: String, zeroInMask: Bool)
    /// A depthwise Conv's group count follows its input channels.
    case depthwiseGroup(node: Int, input: String)
    /// A Split along the channel axis: sizes follow its outputs' surviving channels.
    case splitSizes(node: Int)
    /// A Slice along the channel axis: start/end move to the surviving channels.
    case slice(node: Int, entry: Int, input: String, output: String)
    /// A Reshape that flattens channels with an explicit feature count.
    case reshapeFeatures(node: Int, output: String, position: Int)
}

/// A layer whose output channels are filters that structured pruning may remove.
struct ChannelSource {
    var nodeIndex: Int
    var nodeName: String
    var space: String
    var weight: String
    /// The weight axis that indexes output channels.
    var outputAxis: Int
}

/// Which channels must go together: atoms (value, channel) joined whenever removing one without
/// the other would break the graph (residual Add/Mul, Concat, Split, Slice, depthwise, BN,
/// element-wise ops, Flatten/Reshape to a dense layer). Anything not understood freezes its
/// channels, so pruning never guesses.
struct ChannelDependencies {
    var spaces: [String: ChannelSpace] = [:]
    var parent: [Int] = []
    var frozen: [Bool] = []
    var edits: [ChannelEdit] = []
    var sources: [ChannelSource] = []
    /// BatchNormalization scales per space, for the bn_scale criterion.
    var batchNormScales: [(space: String, scale: String)] = []
    /// Why channels were frozen (first few reasons, for the report).
    var frozenReasons: [String] = []
    let shapes: [String: [Int]]

    init(graph: Graph, exclude: [String]) {
        shapes = StaticShapes.infer(graph)
        var constants: [String: Tensor] = [:]
        for tensor in graph.initializers { constants[tensor.name] = tensor }
        var uses: [String: Int] = [:]
        for node in graph.nodes { for input in node.inputs { uses[input, default: 0] += 1 } }
        for output in graph.outputs { uses[output.name, default: 0] += 1 }

        for input in graph.runtimeInputs {
            if let shape = shapes[input.name], shape.count >= 2 {
                let space = addSpace(input.name, axis: 1, count: shape[1])
                freeze(space, "graph input '\(input.name)'")
            }
        }
        for (index, node) in graph.nodes.enumerated() {
            analyze(node, index: index, graph: graph, constants: constants, uses: uses, exclude: exclude)
        }
        for output in graph.outputs {
            if let space = spaces[output.name] { freeze(space, "graph output '\(output.name)'") }
        }
    }

    // MARK: Union-find over atoms

    mutating func addSpace(_ value: String, axis: Int, count: Int) -> ChannelSpace {
        let space = ChannelSpace(value: value, axis: axis, count: count, base: parent.count)
        parent += Array(space.base..<(space.base + count))
        frozen += Array(repeating: false, count: count)
        spaces[value] = space
        return space
    }

    mutating func root(_ atom: Int) -> Int {
        var atom = atom
        while parent[atom] != atom {
            parent[atom] = parent[parent[atom]]
            atom = parent[atom]
        }
        return atom
    }

    mutating func join(_ first: Int, _ second: Int) {
        let a = root(first)
        let b = root(second)
        guard a != b else { return }
        let (low, high) = a < b ? (a, b) : (b, a)
        parent[high] = low
        frozen[low] = frozen[low] || frozen[high]
    }

    mutating func freeze(_ space: ChannelSpace, _ reason: String) {
        for atom in space.base..<(space.base + space.count) { frozen[root(atom)] = true }
        if frozenReasons.count < 20 { frozenReasons.append(reason) }
    }

    mutating func isFrozen(_ atom: Int) -> Bool { frozen[root(atom)] }

    /// Joins channel i of `first` with channel i of `second` (same-shaped element-wise flow).
    mutating func joinAligned(_ first: ChannelSpace, _ second: ChannelSpace) -> Bool {
        guard first.count == second.count else { return false }
        for channel in 0..<first.count { join(first.base + channel, second.base + channel) }
        return true
    }

    // MARK: Per-op rules

    private mutating func analyze(_ node: Node, index: Int, graph: Graph, constants: [String: Tensor], uses: [String: Int], exclude: [String]) {
        let inputSpaces = node.inputs.map { spaces[$0] }
        let output = node.outputs.first ?? ""
        let outputShape = shapes[output]
        let excluded = exclude.contains { $0 == node.opType || WildcardPattern.matches($0, node.displayName) }
        /// Freezes every channel this node reads and gives its outputs frozen spaces where shapes allow.
        func opaque(_ reason: String) {
            for space in inputSpaces.compactMap({ $0 }) { freeze(space, reason) }
        }
        /// An initializer owned by this node alone (shrinking a shared one would change other nodes).
        func owned(_ name: String) -> Tensor? {
            guard let tensor = constants[name], uses[name] == 1 else { return nil }
            return tensor
        }
        guard node.domain.isEmpty, !node.attributes.contains(where: { !$0.subgraphs.isEmpty }) else {
            opaque("\(node.displayName) (\(node.domain.isEmpty ? "" : node.domain + ":")\(node.opType))")
            return
        }

        switch node.opType {
        case "Conv":
            guard node.inputs.count >= 2, let weight = owned(node.inputs[1]), weight.shape.count >= 3,
                let outputShape, outputShape.count == weight.shape.count
            else { return opaque("\(node.displayName): Conv without its own weight initializer or static shapes") }
            let group = Int(node.attribute("group")?.intValue ?? 1)
            let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty ? node.inputs[2] : nil
            if let bias, owned(bias) == nil { return opaque("\(node.displayName): shared bias") }
            let out = addSpace(output, axis: 1, count: weight.shape[0])
            let input = inputSpaces[0]
            if group == 1 {
                if let input, input.axis == 1, input.count == weight.shape[1] {
                    edits.append(.tensorAxis(tensor: weight.name, axis: 1, space: input.value, zeroInMask: true))
                } else if let input { freeze(input, "\(node.displayName): input channels do not match its weight") }
                edits.append(.tensorAxis(tensor: weight.name, axis: 0, space: out.value, zeroInMask: true))
                if let bias { edits.append(.tensorAxis(tensor: bias, axis: 0, space: out.value, zeroInMask: true)) }
                if excluded { freeze(out, "\(node.displayName): excluded") } else {
                    sources.append(ChannelSource(nodeIndex: index, nodeName: node.displayName, space: out.value, weight: weight.name, outputAxis: 0))
                }
            } else if let input, weight.shape[1] == 1, group == input.count, weight.shape[0] % group == 0 {
                // Depthwise: output channel c·m + j reads only input channel c.
                let multiplier = weight.shape[0] / group
                for channel in 0..<input.count {
                    for offset in 0..<multiplier { join(input.base + channel, out.base + channel * multiplier + offset) }
                }
                edits.append(.tensorAxis(tensor: weight.name, axis: 0, space: out.value, zeroInMask: true))
                if let bias { edits.append(.tensorAxis(tensor: bias, axis: 0, space: out.value, zeroInMask: true)) }
                edits.append(.depthwiseGroup(node: index, input: input.value))
                if excluded { freeze(out, "\(node.displayName): excluded") }
            } else {
                opaque("\(node.displayName): grouped Conv (group \(group))")
                freeze(out, "\(node.displayName): grouped Conv (group \(group))")
            }

        case "Gemm", "MatMul":
            guard node.inputs.count >= 2, let weight = owned(node.inputs[1]), weight.shape.count == 2,
                (node.attribute("transA")?.intValue ?? 0) == 0, let outputShape
            else { return opaque("\(node.displayName): \(node.opType) without its own 2-D weight initializer") }
            let transposed = node.opType == "Gemm" && (node.attribute("transB")?.intValue ?? 0) != 0
            let inputAxis = transposed ? 1 : 0
            let outputAxis = transposed ? 0 : 1
            if let input = inputSpaces[0] {
                if input.axis == (shapes[node.inputs[0]]?.count ?? 0) - 1, input.count == weight.shape[inputAxis] {
                    edits.append(.tensorAxis(tensor: weight.name, axis: inputAxis, space: input.value, zeroInMask: true))
                } else {
                    freeze(input, "\(node.displayName): features are not on the last axis")
                }
            }
            let out = addSpace(output, axis: outputShape.count - 1, count: weight.shape[outputAxis])
            edits.append(.tensorAxis(tensor: weight.name, axis: outputAxis, space: out.value, zeroInMask: true))
            if node.opType == "Gemm", node.inputs.count > 2, !node.inputs[2].isEmpty {
                guard let bias = owned(node.inputs[2]) else { return freeze(out, "\(node.displayName): bias is shared or computed") }
                if bias.shape.last == out.count {
                    edits.append(.tensorAxis(tensor: bias.name, axis: bias.shape.count - 1, space: out.value, zeroInMask: true))
                } else if bias.shape.last != 1 && !bias.shape.isEmpty {
                    freeze(out, "\(node.displayName): bias shape \(bias.shape)")
                }
            }
            if excluded { freeze(out, "\(node.displayName): excluded") } else {
                sources.append(ChannelSource(nodeIndex: index, nodeName: node.displayName, space: out.value, weight: weight.name, outputAxis: outputAxis))
            }

        case "BatchNormalization", "InstanceNormalization":
            guard let input = inputSpaces[0], input.axis == 1 else { return opaque("\(node.displayName): input channels unknown") }
            let out = addSpace(output, axis: 1, count: input.count)
            _ = joinAligned(input, out)
            for name in node.inputs.dropFirst() where !name.isEmpty {
                guard let tensor = owned(name), tensor.shape == [input.count] else {
                    freeze(out, "\(node.displayName): shared or odd-shaped parameter '\(name)'")
                    continue
                }
                edits.append(.tensorAxis(tensor: tensor.name, axis: 0, space: out.value, zeroInMask: false))
            }
            if node.opType == "BatchNormalization", node.inputs.count > 1 {
                batchNormScales.append((out.value, node.inputs[1]))
            }

        case "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu",
            "Softplus", "Softsign", "Gelu", "Mish", "Identity", "Dropout", "Neg", "Abs", "Exp", "Sqrt", "Erf",
            "Cast", "GlobalAveragePool", "GlobalMaxPool", "MaxPool", "AveragePool", "LpPool":
            guard let input = inputSpaces[0] else { return }
            if node.opType == "Clip", node.inputs.dropFirst().contains(where: { !$0.isEmpty && constants[$0]?.elementCount ?? 2 > 1 }) {
                return opaque("\(node.displayName): per-channel Clip bounds")
            }
            let out = addSpace(output, axis: input.axis, count: input.count)
            _ = joinAligned(input, out)
            for extra in node.outputs.dropFirst() where !extra.isEmpty {
                if let shape = shapes[extra], shape.count > input.axis, shape[input.axis] == input.count {
                    _ = joinAligned(input, addSpace(extra, axis: input.axis, count: input.count))
                }
            }

        case "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "PRelu", "Mean":
            guard let outputShape, let lead = inputSpaces.compactMap({ $0 }).first,
                let leadShape = shapes[lead.value]
            else { return opaque("\(node.displayName): element-wise op without static shapes") }
            let axis = outputShape.count - leadShape.count + lead.axis
            guard axis >= 0, axis < outputShape.count, outputShape[axis] == lead.count else {
                return opaque("\(node.displayName): broadcast across the channel axis")
            }
            let out = addSpace(output, axis: axis, count: lead.count)
            for (position, name) in node.inputs.enumerated() where !name.isEmpty {
                guard let shape = shapes[name] else { opaque("\(node.displayName): input '\(name)' without static shape"); freeze(out, "\(node.displayName)"); continue }
                let aligned = shape.count - (outputShape.count - axis)
                let extent = aligned >= 0 && aligned < shape.count ? shape[aligned] : 1
                if let space = inputSpaces[position] {
                    if extent == 1 { freeze(space, "\(node.displayName): broadcasts a channel") ; continue }
                    if space.axis != aligned || !joinAligned(space, out) { freeze(space, "\(node.displayName)"); freeze(out, "\(node.displayName)") }
                } else if extent == 1 {
                    continue
                } else if let tensor = owned(name), tensor.shape == shape {
                    edits.append(.tensorAxis(tensor: tensor.name, axis: aligned, space: out.value, zeroInMask: false))
                } else {
                    freeze(out, "\(node.displayName): per-channel input '\(name)' is shared or computed")
                }
            }

        case "Concat":
            guard let outputShape, !inputSpaces.isEmpty else { return opaque("\(node.displayName): Concat without static shapes") }
            var axis = Int(node.attribute("axis")?.intValue ?? 0)
            if axis < 0 { axis += outputShape.count }
            let channelAxes = Set(inputSpaces.compactMap { $0?.axis })
            guard channelAxes.count <= 1 else { return opaque("\(node.displayName): inputs disagree on the channel axis") }
            let channelAxis = channelAxes.first ?? axis
            if axis == channelAxis {
                let out = addSpace(output, axis: axis, count: outputShape[axis])
                var offset = 0
                for (position, name) in node.inputs.enumerated() {
                    let count = shapes[name]?[axis] ?? 0
                    if let space = inputSpaces[position], space.count == count {
                        for channel in 0..<count { join(space.base + channel, out.base + offset + channel) }
                    } else {
                        // A constant or unknown part: its channels in the output stay.
                        for channel in 0..<count where offset + channel < out.count { frozen[root(out.base + offset + channel)] = true }
                    }
                    offset += count
                }
            } else {
                guard inputSpaces.allSatisfy({ $0 != nil }), let first = inputSpaces[0] else { return opaque("\(node.displayName): Concat of unknown channels") }
                let out = addSpace(output, axis: channelAxis, count: first.count)
                for space in inputSpaces { if !joinAligned(space!, out) { freeze(out, "\(node.displayName)") } }
            }

        case "Split":
            guard let input = inputSpaces[0], let inputShape = shapes[node.inputs[0]] else { return opaque("\(node.displayName): Split of unknown channels") }
            var axis = Int(node.attribute("axis")?.intValue ?? 0)
            if axis < 0 { axis += inputShape.count }
            if axis == input.axis {
                if node.inputs.count > 1, !node.inputs[1].isEmpty, owned(node.inputs[1]) == nil {
                    return opaque("\(node.displayName): split sizes are shared or computed")
                }
                var offset = 0
                for name in node.outputs {
                    guard let count = shapes[name]?[axis] else { return opaque("\(node.displayName): unknown split sizes") }
                    let out = addSpace(name, axis: axis, count: count)
                    for channel in 0..<count { join(input.base + offset + channel, out.base + channel) }
                    offset += count
                }
                edits.append(.splitSizes(node: index))
            } else {
                for name in node.outputs { _ = joinAligned(input, addSpace(name, axis: input.axis, count: input.count)) }
            }

        case "Slice":
            guard let input = inputSpaces[0], let inputShape = shapes[node.inputs[0]], let outputShape,
                let parameters = SliceParameters(node, constants: constants, rank: inputShape.count)
            else { return opaque("\(node.displayName): Slice with computed bounds") }
            guard let entry = parameters.entries.firstIndex(where: { $0.axis == input.axis }) else {
                _ = joinAligned(input, addSpace(output, axis: input.axis, count: input.count))
                return
            }
            let slice = parameters.entries[entry]
            let constantInputs = node.inputs.dropFirst().prefix(2)
            guard slice.step == 1, constantInputs.allSatisfy({ owned($0) != nil }) || node.inputs.count == 1 else {
                return opaque("\(node.displayName): strided or shared Slice of channels")
            }
            let start = parameters.resolvedStart(dimension: input.count, start: slice.start, step: 1)
            let out = addSpace(output, axis: input.axis, count: outputShape[input.axis])
            for channel in 0..<out.count { join(input.base + start + channel, out.base + channel) }
            edits.append(.slice(node: index, entry: entry, input: input.value, output: out.value))

        case "Flatten", "Reshape":
            guard let input = inputSpaces[0], let inputShape = shapes[node.inputs[0]], let outputShape,
                outputShape.count == 2, input.axis == 1, inputShape.count >= 2, outputShape[0] == inputShape[0],
                node.opType == "Flatten" ? (node.attribute("axis")?.intValue ?? 1) == 1 : true
            else { return opaque("\(node.displayName): reshape that is not a flatten of NC...") }
            // Feature f = c·S + p for channel c at spatial position p (NCHW order).
            let spatial = inputShape.dropFirst(2).reduce(1, *)
            let out = addSpace(output, axis: 1, count: input.count * spatial)
            for channel in 0..<input.count {
                for position in 0..<spatial { join(input.base + channel, out.base + channel * spatial + position) }
            }
            if node.opType == "Reshape" {
                guard node.inputs.count > 1, let target = owned(node.inputs[1])?.integerValues(), target.count == 2 else {
                    return freeze(input, "\(node.displayName): shared or computed reshape target")
                }
                if target[1] > 0 { edits.append(.reshapeFeatures(node: index, output: out.value, position: 1)) }
            }

        default:
            opaque("\(node.displayName) (\(node.opType))")
        }
    }
}
