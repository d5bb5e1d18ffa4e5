import NNPipeCore

/// How a Keras tensor made by the exporter relates to the IR value it stands for.
enum ExportRelation: Equatable {
    /// The Keras tensor is the IR value.
    case same
    /// The Keras tensor is the IR value (channels first) with its channel axis moved last.
    case channelsLast
    /// The Keras tensor is a Flatten of a channels-last tensor: features in (spatial..., C)
    /// order where the IR value has (C, spatial...).
    case permutedFeatures(spatial: [Int], channels: Int)
}

/// An IR value as a Keras tensor: which layer makes it, how it relates, its Keras shape.
struct ExportValue {
    var layer: Int
    var relation: ExportRelation
    var shape: [Int?]
    var dataType: DataType = .float
    var rank: Int { shape.count }
    var channels: Int? { shape.last ?? nil }
    var spatial: [Int?] { rank >= 3 ? Array(shape[1..<(rank - 1)]) : [] }
}

/// One Keras layer to write: class, settings, inputs (layer indices, one call each) and weights in Keras layout.
struct ExportLayer {
    var className: String
    var baseName: String
    var config: [(String, JSONValue)]
    var inputs: [Int]
    /// Merge layers take their inputs as one list.
    var takesList: Bool
    var weights: [(role: String, tensor: Tensor)]
    var name = ""
}

/// Rebuilds Keras layers from an IR graph's op patterns, undoing the channels-first layout
/// (Conv(+activation) -> Conv2D, grouped Conv -> DepthwiseConv2D, Gemm / MatMul+Add -> Dense, ...).
/// Anything without a Keras equivalent is an `.unsupported` error naming the node.
struct KerasExporter {
    let graph: Graph
    var layers: [ExportLayer] = []
    var values: [String: ExportValue] = [:]
    var consumed: Set<Int> = []
    let initializers: [String: Tensor]
    let consumers: [String: [Int]]
    let outputNames: Set<String>
    private var conversions: [String: ExportValue] = [:]

    init(graph: Graph) {
        self.graph = graph
        var byName: [String: Tensor] = [:]
        for tensor in graph.initializers { byName[tensor.name] = tensor }
        // Constant nodes are initializers as far as layer weights are concerned.
        for node in graph.nodes where node.opType == "Constant" {
            if let tensor = node.attribute("value")?.tensorValue, let output = node.outputs.first { byName[output] = tensor }
        }
        initializers = byName
        var users: [String: [Int]] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in Set(node.inputs) where !input.isEmpty { users[input, default: []].append(index) }
        }
        consumers = users
        outputNames = Set(graph.outputs.map(\.name))
    }

    mutating func run() throws {
        for input in graph.runtimeInputs { try addInput(input) }
        let live = KerasLiveNodes.indices(in: graph)
        for (index, node) in graph.nodes.enumerated() where !consumed.contains(index) && live.contains(index) {
            consumed.insert(index)
            if node.opType == "Constant" { continue }
            guard node.domain.isEmpty || node.domain == "ai.onnx" else { throw noEquivalent(node, "is in domain '\(node.domain)'") }
            do {
                try export(node, at: index)
            } catch var error as NNPipeError where !error.message.hasPrefix("node '") {
                error.message = "node '\(node.displayName)' (\(node.opType)): \(error.message)"
                throw error
            }
        }
        for output in graph.outputs {
            guard let value = values[output.name] else {
                if initializers[output.name] != nil { throw NNPipeError(.unsupported, "graph output '\(output.name)' is a constant, which a Keras model cannot output; export ONNX (.onnx) instead") }
                throw NNPipeError(.invalidModel, "graph output '\(output.name)' is never computed")
            }
            values[output.name] = same(value, name: output.name)
        }
    }

    func noEquivalent(_ node: Node, _ why: String) -> NNPipeError {
        NNPipeError(.unsupported, "node '\(node.displayName)' (\(node.opType)) \(why): a Keras model has no equivalent; export ONNX (.onnx) instead")
    }

    private mutating func addInput(_ input: ValueInfo) throws {
        guard case .tensor(let elementType, let shape?) = input.type, !shape.isEmpty else {
            throw NNPipeError(.unsupported, "graph input '\(input.name)' has no known rank; Keras inputs need one")
        }
        let kerasShape: [Int?] = shape.map(\.fixedValue)
        var config: [(String, JSONValue)] = [
            ("batch_input_shape", .array(kerasShape.map { $0.map { .number(Double($0)) } ?? .null })),
            ("dtype", .string(Self.kerasDataType(elementType))), ("sparse", .bool(false)),
        ]
        if kerasShape.first! != nil { config[0].1 = .array([.null] + kerasShape.dropFirst().map { $0.map { .number(Double($0)) } ?? .null }) }
        layers.append(ExportLayer(className: "InputLayer", baseName: input.name, config: config, inputs: [], takesList: false, weights: []))
        values[input.name] = ExportValue(layer: layers.count - 1, relation: .same, shape: [nil] + kerasShape.dropFirst(), dataType: elementType)
    }

    static func kerasDataType(_ type: DataType) -> String {
        switch type {
        case .float16: "float16"
        case .double: "float64"
        case .int32: "int32"
        case .int64: "int64"
        case .uint8: "uint8"
        case .int8: "int8"
        case .bool: "bool"
        default: "float32"
        }
    }

    // MARK: Layers and layouts

    /// Adds a layer consuming `inputs` and records its result as IR value `output`.
    @discardableResult
    mutating func addLayer(_ className: String, name: String, config: [(String, JSONValue)], inputs: [ExportValue],
                           weights: [(role: String, tensor: Tensor)] = [], takesList: Bool = false,
                           output: String?, relation: ExportRelation, shape: [Int?], dataType: DataType = .float) -> ExportValue {
        layers.append(ExportLayer(className: className, baseName: name, config: config, inputs: inputs.map(\.layer),
                                  takesList: takesList, weights: weights))
        let value = ExportValue(layer: layers.count - 1, relation: relation, shape: shape, dataType: dataType)
        if let output { values[output] = value }
        return value
    }

    func input(_ node: Node, _ position: Int) throws -> ExportValue {
        guard position < node.inputs.count, !node.inputs[position].isEmpty else {
            throw NNPipeError(.invalidModel, "node '\(node.displayName)' (\(node.opType)) lacks input \(position)")
        }
        let name = node.inputs[position]
        if let value = values[name] { return value }
        if initializers[name] != nil {
            throw NNPipeError(.unsupported, "node '\(node.displayName)' (\(node.opType)) takes constant '\(name)' where Keras needs a computed tensor; export ONNX (.onnx) instead")
        }
        throw NNPipeError(.invalidModel, "node '\(node.displayName)' uses '\(name)' before it is computed")
    }

    func constant(_ name: String) -> Tensor? { initializers[name] }

    func floats(_ node: Node, _ position: Int, _ role: String) throws -> (values: [Float], shape: [Int]) {
        guard position < node.inputs.count, let tensor = initializers[node.inputs[position]], let values = tensor.floatValues() else {
            throw NNPipeError(.unsupported, "node '\(node.displayName)' (\(node.opType)): \(role) must be a constant for a Keras layer; export ONNX (.onnx) instead")
        }
        return (values, tensor.shape)
    }

    /// The Keras tensor equal to the IR value (materialises layout changes with Permute/Reshape layers).
    mutating func same(_ value: ExportValue, name: String) -> ExportValue {
        switch value.relation {
        case .same: return value
        case .channelsLast:
            let key = "\(value.layer)|same"
            if let done = conversions[key] { return done }
            let rank = value.rank
            let dims = [rank - 1] + Array(1..<(rank - 1))
            let shape = [value.shape[0]] + dims.map { value.shape[$0] }
            let result = addLayer("Permute", name: "\(name)_to_channels_first", config: [("dims", .array(dims.map { .number(Double($0)) }))],
                                  inputs: [value], output: nil, relation: .same, shape: shape, dataType: value.dataType)
            conversions[key] = result
            return result
        case .permutedFeatures(let spatial, let channels):
            let key = "\(value.layer)|same"
            if let done = conversions[key] { return done }
            let unflat = addLayer("Reshape", name: "\(name)_unflatten", config: [("target_shape", .array((spatial + [channels]).map { .number(Double($0)) }))],
                                  inputs: [value], output: nil, relation: .channelsLast, shape: [nil] + spatial.map { $0 } + [channels])
            let moved = same(unflat, name: name)
            let result = addLayer("Flatten", name: "\(name)_flatten", config: [], inputs: [moved], output: nil, relation: .same,
                                  shape: [nil, value.shape[1]])
            conversions[key] = result
            return result
        }
    }

    /// The Keras tensor for a channels-first IR value, moved to channels last (what Keras conv layers take).
    mutating func channelsLast(_ value: ExportValue, name: String) throws -> ExportValue {
        switch value.relation {
        case .channelsLast: return value
        case .permutedFeatures: throw NNPipeError(.unsupported, "a flattened tensor cannot feed a spatial layer")
        case .same:
            guard value.rank >= 3 else { throw NNPipeError(.unsupported, "input of rank \(value.rank) is not spatial") }
            let key = "\(value.layer)|channelsLast"
            if let done = conversions[key] { return done }
            let rank = value.rank
            let dims = Array(2..<rank) + [1]
            let shape = [value.shape[0]] + dims.map { value.shape[$0] }
            let result = addLayer("Permute", name: "\(name)_to_channels_last", config: [("dims", .array(dims.map { .number(Double($0)) }))],
                                  inputs: [value], output: nil, relation: .channelsLast, shape: shape, dataType: value.dataType)
            conversions[key] = result
            return result
        }
    }

    /// The IR axis `axis` of `value` as a Keras axis of its tensor.
    static func kerasAxis(_ axis: Int, of value: ExportValue) -> Int {
        let positive = axis < 0 ? axis + value.rank : axis
        guard value.relation == .channelsLast else { return positive }
        if positive == 0 { return 0 }
        return positive == 1 ? value.rank - 1 : positive - 1
    }

    /// The one consumer of `value` when nothing else (no other node, no graph output) uses it.
    func soleConsumer(of value: String) -> Int? {
        guard !outputNames.contains(value), let users = consumers[value], users.count == 1 else { return nil }
        return users[0]
    }

    static func layerName(_ node: Node, output: String? = nil) -> String {
        output ?? (node.outputs.first ?? node.name)
    }
}
