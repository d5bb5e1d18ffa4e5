import NNPipeCore

/// What happened to one quantisable node: a row of the report.
public struct LayerQuantization: Sendable {
    public var node: String
    public var opType: String
    public var weight: String
    /// "int8 symmetric per-channel(axis 0)", or why the layer stayed float.
    public var scheme: String
    public var scaleMinimum: Float?
    public var scaleMaximum: Float?
    public var signalToNoise: Double
    public var bytesBefore: Int
    public var bytesAfter: Int
    public var keptFloat: Bool
}

/// Rewrites a float graph into a quantised one (QDQ, or QOperator / dynamic via their own emitters).
struct QuantizationRewriter {
    let configuration: QuantizeConfiguration
    let stagePath: String
    var notes: [String] = []

    init(configuration: QuantizeConfiguration, stagePath: String) {
        self.configuration = configuration
        self.stagePath = stagePath
    }

    /// A node chosen for quantisation and its quantised weight.
    struct Selected {
        var nodeIndex: Int
        var weightInput: Int
        var weight: WeightQuantizer.Result
    }

    mutating func rewrite(_ model: inout Model) throws -> [LayerQuantization] {
        var graph = model.graph
        var initializerIndex = graph.initializerIndex()
        let quantizer = WeightQuantizer(configuration: configuration)
        var layers: [LayerQuantization] = []
        var selected: [Selected] = []
        var quantizedWeights: [String: WeightQuantizer.Result] = [:]

        for (index, node) in graph.nodes.enumerated() {
            guard node.domain.isEmpty, configuration.operatorTypes.contains(node.opType) else { continue }
            if configuration.excludedNodes.contains(node.name) { continue }
            guard let weightInput = QuantizableOperator.weightInput(of: node, isInitializer: { name in
                initializerIndex[name].map { graph.initializers[$0].dataType == .float } ?? false
            }) else {
                notes.append("\(node.displayName): no float32 initializer weight, left as is")
                continue
            }
            let weightName = node.inputs[weightInput]
            let weight = graph.initializers[initializerIndex[weightName]!]
            let key = weightName + "|" + "\(quantizer.layout(for: node, weight: weight))"
            let result: WeightQuantizer.Result
            do {
                result = try quantizedWeights[key] ?? quantizer.quantize(weight, for: node)
            } catch let error as NNPipeError {
                throw error.located(at: stagePath)
            }
            quantizedWeights[key] = result
            var layer = LayerQuantization(
                node: node.displayName, opType: node.opType, weight: weightName, scheme: result.scheme,
                scaleMinimum: result.parameters.map(\.scale).min(), scaleMaximum: result.parameters.map(\.scale).max(),
                signalToNoise: result.signalToNoise, bytesBefore: result.bytesBefore, bytesAfter: result.bytesAfter, keptFloat: false)
            if let threshold = configuration.keepFloatBelowSignalToNoise, result.signalToNoise < threshold {
                layer.keptFloat = true
                layer.scheme = "float (weight SQNR \(Self.format(result.signalToNoise)) dB < \(Self.format(threshold)) dB)"
                layer.bytesAfter = layer.bytesBefore
                layers.append(layer)
                continue
            }
            layers.append(layer)
            selected.append(Selected(nodeIndex: index, weightInput: weightInput, weight: result))
        }
        guard !selected.isEmpty else {
            let kept = layers.filter(\.keptFloat).count
            let reason = kept > 0
                ? "all \(kept) candidate layers fall below keep_float_below_sqnr"
                : "no node of the types \(configuration.operatorTypes.sorted().joined(separator: ", ")) with a float32 initializer weight"
            throw NNPipeError(.stageFailed, "nothing to quantise: \(reason)", path: stagePath)
        }

        switch (configuration.mode, configuration.format) {
        case (.weightOnly, _):
            try emitWeightOnly(&graph, selected: selected)
        case (.staticQuantization, .qdq):
            try emitStatic(&graph, selected: selected, ranges: model.annotations.calibrationRanges, layers: &layers)
        case (.staticQuantization, .qoperator), (.dynamic, _):
            var emitter = IntegerOperatorEmitter(configuration: configuration, stagePath: stagePath)
            try emitter.emit(&graph, selected: selected, ranges: model.annotations.calibrationRanges, layers: &layers)
            notes += emitter.notes
        }
        Self.removeUnusedInitializers(&graph)
        initializerIndex = [:]
        model.graph = graph
        try OpsetUpgrade.raise(&model, to: requiredOpset(selected), stagePath: stagePath)
        return layers
    }

    /// Q/DQ on 4- and 16-bit types and blocked layouts need opset 21; per-axis DequantizeLinear 13.
    func requiredOpset(_ selected: [Selected]) -> Int64 {
        var needed: Int64 = configuration.mode == .dynamic || configuration.format == .qoperator ? 10 : 13
        if let type = configuration.weights.integerType { needed = max(needed, type.minimumOpset) }
        if let type = configuration.activations { needed = max(needed, type.minimumOpset) }
        if configuration.blockSize != nil { needed = 21 }
        return needed
    }

    // MARK: weight_only

    private func emitWeightOnly(_ graph: inout Graph, selected: [Selected]) throws {
        var rebuildNodes: [Int: [Node]] = [:]
        var emitted = Set<String>()
        for choice in selected {
            let node = choice.weight.node
            if emitted.insert(node.name).inserted {
                rebuildNodes[choice.nodeIndex, default: []].append(node)
                graph.initializers += choice.weight.tensors
            }
            graph.nodes[choice.nodeIndex].inputs[choice.weightInput] = node.outputs[0]
        }
        graph.nodes = graph.nodes.enumerated().flatMap { index, node in (rebuildNodes[index] ?? []) + [node] }
    }

    // MARK: static QDQ

    /// Activation Q/DQ pairs on every quantised node's inputs and output (one pair per tensor, shared
    /// by all its consumers), weight and int32 bias DequantizeLinear nodes in front of each node, and a
    /// Relu directly after a quantised node folded into its output's uint8 range, as onnxruntime does.
    private mutating func emitStatic(_ graph: inout Graph, selected: [Selected], ranges: [String: ValueRange], layers: inout [LayerQuantization]) throws {
        guard let activationType = configuration.activations else { return }
        let activationRange = activationType.range(symmetric: configuration.activationsSymmetric)
        var consumers: [String: [Int]] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(index) }
        }
        let graphOutputs = Set(graph.outputs.map(\.name))
        var removedNodes = Set<Int>()
        var activationParameters: [String: QuantizationParameters] = [:]
        func parameters(for tensor: String, required: Bool, node: Node) throws -> QuantizationParameters? {
            if let known = activationParameters[tensor] { return known }
            guard let range = ranges[tensor] else {
                if required {
                    throw NNPipeError(.stageFailed, "no calibration range for '\(tensor)' (input of \(node.displayName)); the calibrate stage before this one did not record it", path: stagePath)
                }
                notes.append("\(node.displayName): output '\(tensor)' has no calibration range, left in float")
                return nil
            }
            guard range.lower.isFinite, range.upper.isFinite else {
                throw NNPipeError(.stageFailed, "calibration range of '\(tensor)' is [\(range.lower), \(range.upper)]; cannot quantise an infinite range", path: stagePath)
            }
            let result = QuantizationParameters(lower: range.lower, upper: range.upper, range: activationRange, symmetric: configuration.activationsSymmetric)
            activationParameters[tensor] = result
            return result
        }

        var weightNodesBefore: [Int: [Node]] = [:]
        var emitted = Set<String>()
        for choice in selected {
            var node = graph.nodes[choice.nodeIndex]
            var inputParameters: QuantizationParameters?
            for input in QuantizableOperator.activationInputs(of: node) {
                let parameters = try parameters(for: node.inputs[input], required: true, node: node)
                if input == 0 { inputParameters = parameters }
            }
            // Fold a following Relu: its output (range starting at 0) becomes this node's output.
            let output = node.outputs[0]
            if !configuration.activationsSymmetric, !graphOutputs.contains(output),
               let users = consumers[output], users.count == 1,
               graph.nodes[users[0]].opType == "Relu", graph.nodes[users[0]].domain.isEmpty,
               ranges[graph.nodes[users[0]].outputs[0]] != nil {
                removedNodes.insert(users[0])
                node.outputs[0] = graph.nodes[users[0]].outputs[0]
                graph.nodes[choice.nodeIndex].outputs[0] = node.outputs[0]
            }
            _ = try parameters(for: node.outputs[0], required: false, node: node)

            let weightNode = choice.weight.node
            if emitted.insert(weightNode.name).inserted {
                weightNodesBefore[choice.nodeIndex, default: []].append(weightNode)
                graph.initializers += choice.weight.tensors
            }
            graph.nodes[choice.nodeIndex].inputs[choice.weightInput] = weightNode.outputs[0]

            if let biasInput = QuantizableOperator.biasInput(of: node), let inputParameters,
               let bias = graph.initializer(named: node.inputs[biasInput]), bias.dataType == .float, bias.shape.count == 1,
               let biasValues = bias.values(as: Float.self) {
                let weightScales = choice.weight.parameters.map(\.scale)
                guard weightScales.count == 1 || weightScales.count == biasValues.count else { continue }
                let quantized = BiasQuantizer.quantize(biasValues, inputScale: inputParameters.scale, weightScales: weightScales)
                let name = bias.name + "_quantized"
                if emitted.insert(name).inserted {
                    let values = Tensor(name: name, shape: bias.shape, values: quantized.values)
                    let scale = Tensor(name: name + "_scale", shape: quantized.scales.count == 1 ? [] : [quantized.scales.count], values: quantized.scales)
                    graph.initializers += [values, scale]
                    weightNodesBefore[choice.nodeIndex, default: []].append(Node(
                        name: name + "_DequantizeLinear", opType: "DequantizeLinear", inputs: [values.name, scale.name],
                        outputs: [name + "_DequantizeLinear_Output"], attributes: quantized.scales.count == 1 ? [] : [.int("axis", 0)]))
                    if let row = layers.firstIndex(where: { $0.node == node.displayName }) {
                        layers[row].bytesBefore += bias.byteCount
                        layers[row].bytesAfter += values.byteCount + scale.byteCount
                    }
                }
                graph.nodes[choice.nodeIndex].inputs[biasInput] = name + "_DequantizeLinear_Output"
            }
        }

        // Emit: Q/DQ for graph inputs first, then each node preceded by its weight DQs and followed
        // by Q/DQ pairs for the tensors it produces.
        let scaleType = activationType
        var renamed: [String: String] = [:]
        var pairs: [String: [Node]] = [:]
        for (tensor, parameters) in activationParameters.sorted(by: { $0.key < $1.key }) {
            let isOutput = graphOutputs.contains(tensor)
            let quantizeInput = isOutput ? tensor + "_QuantizeLinear_Input" : tensor
            let dequantizeOutput = isOutput ? tensor : tensor + "_dequantized"
            graph.initializers.append(Tensor(name: tensor + "_scale", shape: [], values: [parameters.scale]))
            graph.initializers.append(PackedIntegers.tensor(name: tensor + "_zero_point", shape: [], values: [parameters.zeroPoint], as: scaleType))
            pairs[tensor] = [
                Node(name: tensor + "_QuantizeLinear", opType: "QuantizeLinear", inputs: [quantizeInput, tensor + "_scale", tensor + "_zero_point"], outputs: [tensor + "_quantized"]),
                Node(name: tensor + "_DequantizeLinear", opType: "DequantizeLinear", inputs: [tensor + "_quantized", tensor + "_scale", tensor + "_zero_point"], outputs: [dequantizeOutput]),
            ]
            if isOutput { renamed[tensor] = quantizeInput } else { renamed[tensor] = dequantizeOutput }
        }
        var nodes: [Node] = []
        let produced = Set(graph.nodes.flatMap(\.outputs))
        for tensor in pairs.keys.sorted() where !produced.contains(tensor) { nodes += pairs[tensor]! }
        for (index, original) in graph.nodes.enumerated() where !removedNodes.contains(index) {
            nodes += weightNodesBefore[index] ?? []
            var node = original
            for (position, input) in node.inputs.enumerated() {
                if let replacement = renamed[input], !graphOutputs.contains(input) { node.inputs[position] = replacement }
            }
            for (position, output) in node.outputs.enumerated() where graphOutputs.contains(output) && pairs[output] != nil {
                node.outputs[position] = renamed[output]!
            }
            nodes.append(node)
            for output in original.outputs { nodes += pairs[output] ?? [] }
        }
        graph.nodes = nodes
    }

    /// Drops initializers nothing reads any more (the float weights that were replaced), and their
    /// graph-input entries in IR <= 3 models that list weights as inputs.
    static func removeUnusedInitializers(_ graph: inout Graph) {
        var used = Set(graph.outputs.map(\.name))
        func collect(_ graph: Graph) {
            for node in graph.nodes {
                used.formUnion(node.inputs)
                for attribute in node.attributes { for subgraph in attribute.subgraphs { collect(subgraph) } }
            }
        }
        collect(graph)
        let removed = Set(graph.initializers.map(\.name).filter { !used.contains($0) })
        graph.initializers.removeAll { removed.contains($0.name) }
        graph.inputs.removeAll { removed.contains($0.name) }
    }

    static func format(_ value: Double) -> String {
        value.isFinite ? String(Double(Int((value * 10).rounded())) / 10) : (value > 0 ? "inf" : "-inf")
    }
}
