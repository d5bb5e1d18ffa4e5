import NNPipeCore

/// Turns a parsed Keras model config plus its weights into an IR graph (ONNX semantics, opset 17).
///
/// The graph keeps Keras's interface (input names, NHWC shapes, output layer names) and computes
/// channels-first inside: one Transpose after each spatial input, weights converted to ONNX
/// layouts, and a Transpose back only before outputs that are still spatial.
struct KerasImporter {
    static let opsetVersion: Int64 = 17

    var builder = KerasGraphBuilder()
    let config: KerasModelConfig
    let weightSource: any KerasWeightSource
    var values: [KerasTensorReference: KerasValue] = [:]
    var graphInputs: [ValueInfo] = []
    /// The layer being converted, and its constants by role: a shared layer's later calls reuse them.
    var currentLayer = ""
    var layerConstants: [String: String] = [:]

    init(config: KerasModelConfig, weights: any KerasWeightSource) {
        self.config = config
        weightSource = weights
    }

    /// The imported graph.
    mutating func importGraph() throws -> Graph {
        for layer in config.layers { builder.reserve(layer.name) }
        let layerPositions = Dictionary(config.layers.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        for reference in config.inputs + config.outputs where layerPositions[reference.layerName] == nil {
            throw NNPipeError(.invalidModel, "model_config names layer '\(reference.layerName)' as an input or output, but has no such layer")
        }
        for input in config.inputs {
            let layer = config.layers[layerPositions[input.layerName]!]
            guard layer.className == "InputLayer" else {
                throw NNPipeError(.invalidModel, "model input '\(layer.name)' is a \(layer.className), expected an InputLayer")
            }
            try addInput(layer)
        }
        // Calls in dependency order; a shared layer's later calls may depend on layers listed after it.
        var pending: [(position: Int, call: Int)] = []
        for (position, layer) in config.layers.enumerated() where layer.className != "InputLayer" {
            for call in layer.calls.indices { pending.append((position, call)) }
        }
        var weightCache: [Int: [Tensor]] = [:]
        while !pending.isEmpty {
            var remaining: [(position: Int, call: Int)] = []
            for item in pending {
                let layer = config.layers[item.position]
                let references = layer.calls[item.call]
                let inputs = references.compactMap { values[$0] }
                guard inputs.count == references.count else {
                    remaining.append(item)
                    continue
                }
                if weightCache[item.position] == nil {
                    weightCache[item.position] = try weightSource.weights(of: layer, position: item.position)
                }
                let output = item.call == 0 ? layer.name : builder.uniqueName("\(layer.name)_call\(item.call)")
                let result: KerasValue
                currentLayer = layer.name
                do {
                    result = try convert(layer, inputs: inputs, output: output, weights: weightCache[item.position]!)
                } catch let error as NNPipeError where !error.message.hasPrefix("layer '") {
                    var located = error
                    located.message = "layer '\(layer.name)' (\(layer.className)): \(error.message)"
                    throw located
                }
                values[KerasTensorReference(layerName: layer.name, callIndex: item.call, tensorIndex: 0)] = result
            }
            if remaining.count == pending.count {
                let stuck = remaining.map { config.layers[$0.position] }
                let missing = stuck.flatMap { layer in layer.calls.flatMap { $0 } }.filter { values[$0] == nil }
                    .map(\.layerName).filter { layerPositions[$0] == nil }
                if let absent = missing.first {
                    throw NNPipeError(.invalidModel, "layer '\(stuck[0].name)' takes its input from layer '\(absent)', which the model does not have")
                }
                throw NNPipeError(.invalidModel, "layers \(stuck.map(\.name).prefix(5).joined(separator: ", ")) depend on each other in a cycle")
            }
            pending = remaining
        }
        let outputs = try finishOutputs()
        return KerasLiveNodes.pruned(Graph(name: config.name, nodes: builder.nodes, inputs: graphInputs, outputs: outputs,
                                           initializers: builder.initializers))
    }

    /// A constant of the current layer named `<layer>/<role>`, created once however often the layer is called.
    mutating func layerConstant(_ role: String, shape: [Int], values: [Float]) -> String {
        let key = "\(currentLayer)/\(role)"
        if let existing = layerConstants[key] { return existing }
        let name = builder.constant(key, shape: shape, values: values)
        layerConstants[key] = name
        return name
    }

    mutating func layerConstant(_ role: String, shape: [Int], integers: [Int64]) -> String {
        let key = "\(currentLayer)/\(role)"
        if let existing = layerConstants[key] { return existing }
        let name = builder.constant(key, shape: shape, integers: integers)
        layerConstants[key] = name
        return name
    }

    private mutating func addInput(_ layer: KerasLayerConfig) throws {
        guard let shapeList = (layer["batch_shape"] ?? layer["batch_input_shape"])?.arrayValue else {
            throw NNPipeError(.invalidModel, "input layer '\(layer.name)' has no batch_shape")
        }
        let shape: [Int?] = shapeList.map { $0.integerValue }
        // A dimension is a count of elements: 0 or more, and small enough that products of them
        // (a Flatten's feature count) cannot overflow.
        if let bad = shape.compactMap({ $0 }).first(where: { $0 < 0 || $0 > 1 << 31 }) {
            throw NNPipeError(.invalidModel, "input layer '\(layer.name)' has dimension \(bad) in its batch_shape [\(shape.map { $0.map(String.init) ?? "None" }.joined(separator: ", "))]")
        }
        let dataType = Self.dataType(of: layer.config) ?? .float
        let dimensions: [Dimension] = shape.enumerated().map { index, extent in
            extent.map(Dimension.fixed) ?? (index == 0 ? .symbolic("batch") : .symbolic("\(layer.name)_\(index)"))
        }
        graphInputs.append(ValueInfo(name: layer.name, type: .tensor(elementType: dataType, shape: dimensions)))
        values[KerasTensorReference(layerName: layer.name, callIndex: 0, tensorIndex: 0)] =
            KerasValue(name: layer.name, layout: .keras, shape: shape, dataType: dataType)
    }

    /// Keras 2 writes `"dtype": "float32"`, Keras 3 a DTypePolicy dict.
    static func dataType(of config: JSONValue) -> DataType? {
        let name = config["dtype"]?.stringValue ?? config["dtype"]?["config"]?["name"]?.stringValue
        switch name {
        case "float32", "mixed_float16", "mixed_bfloat16": return .float
        case "float16": return .float16
        case "float64": return .double
        case "int32": return .int32
        case "int64": return .int64
        case "uint8": return .uint8
        case "int8": return .int8
        case "bool": return .bool
        default: return nil
        }
    }

    /// Graph outputs named after their Keras output layers, in Keras layout.
    private mutating func finishOutputs() throws -> [ValueInfo] {
        var infos: [ValueInfo] = []
        var seen: Set<String> = []
        for reference in config.outputs {
            guard var value = values[reference] else {
                throw NNPipeError(.invalidModel, "model output \(reference) is never computed")
            }
            var wanted = reference.callIndex == 0 ? reference.layerName : value.name
            if seen.contains(wanted) { wanted = builder.uniqueName(wanted) }
            seen.insert(wanted)
            if value.layout != .keras && !(value.rank < 3 && value.layout == .channelsFirst) {
                // The layer's own value becomes an internal one; the graph output is the Keras-layout copy.
                if value.name == wanted {
                    let hidden = builder.uniqueName("\(wanted)/channels_first")
                    builder.rename(wanted, to: hidden)
                    value.name = hidden
                }
                let converted = builder.value(value, in: .keras)
                builder.rename(converted.name, to: wanted)
                value.name = wanted
            } else if value.name != wanted || graphInputs.contains(where: { $0.name == wanted }) {
                if graphInputs.contains(where: { $0.name == value.name }) && value.name == wanted {
                    wanted = builder.uniqueName("\(wanted)/output")
                }
                value.name = builder.add("Identity", name: wanted, inputs: [value.name], output: wanted)
            }
            let dimensions: [Dimension] = value.shape.enumerated().map { index, extent in
                extent.map(Dimension.fixed) ?? (index == 0 ? .symbolic("batch") : .unknown)
            }
            infos.append(ValueInfo(name: wanted, type: .tensor(elementType: value.dataType, shape: dimensions)))
        }
        return infos
    }
}
