/// One operator application (ONNX `NodeProto`). An empty input name marks an omitted optional input.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    /// "" for the default ONNX domain ("ai.onnx" is normalised to "").
    public var domain: String
    public var overload: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [Attribute]
    public var docString: String
    public var metadata: [MetadataEntry]

    public init(
        name: String = "", opType: String, domain: String = "", overload: String = "",
        inputs: [String], outputs: [String], attributes: [Attribute] = [], docString: String = "",
        metadata: [MetadataEntry] = []
    ) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.overload = overload
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.docString = docString
        self.metadata = metadata
    }

    public func attribute(_ name: String) -> Attribute? {
        attributes.first { $0.name == name }
    }

    /// A readable name for messages: the node's name, or its op type and first output.
    public var displayName: String {
        name.isEmpty ? "\(opType)(\(outputs.first ?? "?"))" : name
    }
}

/// A node attribute (ONNX `AttributeProto`), covering every attribute kind.
public struct Attribute: Sendable {
    public indirect enum Value: Sendable {
        case float(Float)
        case int(Int64)
        case string([UInt8])
        case tensor(Tensor)
        case graph(Graph)
        case sparseTensor(SparseTensor)
        case type(ValueType)
        case floats([Float])
        case ints([Int64])
        case strings([[UInt8]])
        case tensors([Tensor])
        case graphs([Graph])
        case sparseTensors([SparseTensor])
        case types([ValueType])
        /// Inside a function body: the value comes from the calling node's attribute of this name.
        case reference(name: String, kind: Kind)
    }

    /// `AttributeProto.AttributeType` wire values.
    public enum Kind: Int32, Sendable {
        case undefined = 0, float = 1, int = 2, string = 3, tensor = 4, graph = 5, sparseTensor = 11
        case type = 13, floats = 6, ints = 7, strings = 8, tensors = 9, graphs = 10
        case sparseTensors = 12, types = 14
    }

    public var name: String
    public var value: Value
    public var docString: String

    public init(name: String, value: Value, docString: String = "") {
        self.name = name
        self.value = value
        self.docString = docString
    }

    public var kind: Kind {
        switch value {
        case .float: .float
        case .int: .int
        case .string: .string
        case .tensor: .tensor
        case .graph: .graph
        case .sparseTensor: .sparseTensor
        case .type: .type
        case .floats: .floats
        case .ints: .ints
        case .strings: .strings
        case .tensors: .tensors
        case .graphs: .graphs
        case .sparseTensors: .sparseTensors
        case .types: .types
        case .reference(_, let kind): kind
        }
    }

    public var intValue: Int64? {
        if case .int(let value) = value { return value }
        return nil
    }
    public var floatValue: Float? {
        switch value {
        case .float(let value): value
        case .int(let value): Float(value)
        default: nil
        }
    }
    public var stringValue: String? {
        if case .string(let bytes) = value { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }
    public var intsValue: [Int64]? {
        if case .ints(let values) = value { return values }
        return nil
    }
    public var floatsValue: [Float]? {
        if case .floats(let values) = value { return values }
        return nil
    }
    public var tensorValue: Tensor? {
        if case .tensor(let tensor) = value { return tensor }
        return nil
    }
    public var stringsValue: [String]? {
        if case .strings(let values) = value {
            return values.map { String(decoding: $0, as: UTF8.self) }
        }
        return nil
    }

    /// Subgraphs held by this attribute (If/Loop/Scan bodies).
    public var subgraphs: [Graph] {
        switch value {
        case .graph(let graph): [graph]
        case .graphs(let graphs): graphs
        default: []
        }
    }

    public static func int(_ name: String, _ value: Int64) -> Attribute {
        Attribute(name: name, value: .int(value))
    }
    public static func float(_ name: String, _ value: Float) -> Attribute {
        Attribute(name: name, value: .float(value))
    }
    public static func string(_ name: String, _ value: String) -> Attribute {
        Attribute(name: name, value: .string(Array(value.utf8)))
    }
    public static func ints(_ name: String, _ values: [Int64]) -> Attribute {
        Attribute(name: name, value: .ints(values))
    }
    public static func floats(_ name: String, _ values: [Float]) -> Attribute {
        Attribute(name: name, value: .floats(values))
    }
    public static func tensor(_ name: String, _ value: Tensor) -> Attribute {
        Attribute(name: name, value: .tensor(value))
    }
}
