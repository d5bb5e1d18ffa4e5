/// A key/value pair as in ONNX `StringStringEntryProto` (order is kept).
public struct MetadataEntry: Sendable, Hashable, Codable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// One dimension of a value's shape.
public enum Dimension: Sendable, Hashable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)
    case unknown

    public var description: String {
        switch self {
        case .fixed(let value): String(value)
        case .symbolic(let name): name
        case .unknown: "?"
        }
    }

    public var fixedValue: Int? {
        if case .fixed(let value) = self { return value }
        return nil
    }
}

/// The type of a graph value (ONNX `TypeProto`).
public indirect enum ValueType: Sendable, Hashable {
    /// `shape` nil means the rank is unknown.
    case tensor(elementType: DataType, shape: [Dimension]?)
    case sparseTensor(elementType: DataType, shape: [Dimension]?)
    case sequence(ValueType)
    case map(key: DataType, value: ValueType)
    case optional(ValueType)
    /// A TypeProto with no value set (allowed for e.g. function outputs).
    case unspecified

    public var tensorElementType: DataType? {
        if case .tensor(let type, _) = self { return type }
        return nil
    }

    public var tensorShape: [Dimension]? {
        if case .tensor(_, let shape) = self { return shape }
        return nil
    }
}

/// A named, typed value: a graph input, output, or an intermediate with known type.
public struct ValueInfo: Sendable, Hashable {
    public var name: String
    public var type: ValueType
    public var denotation: String
    public var docString: String
    public var metadata: [MetadataEntry]

    public init(
        name: String, type: ValueType, denotation: String = "", docString: String = "",
        metadata: [MetadataEntry] = []
    ) {
        self.name = name
        self.type = type
        self.denotation = denotation
        self.docString = docString
        self.metadata = metadata
    }
}

/// A sparse constant (ONNX `SparseTensorProto`): `values` at `indices` of a tensor of `shape`.
public struct SparseTensor: Sendable {
    public var values: Tensor
    public var indices: Tensor
    public var shape: [Int]

    public init(values: Tensor, indices: Tensor, shape: [Int]) {
        self.values = values
        self.indices = indices
        self.shape = shape
    }

    public var name: String { values.name }
}

/// Which tensors hold the quantisation parameters of a tensor (ONNX `TensorAnnotation`).
public struct TensorAnnotation: Sendable, Hashable {
    public var tensorName: String
    public var quantizationParameterTensorNames: [MetadataEntry]

    public init(tensorName: String, quantizationParameterTensorNames: [MetadataEntry]) {
        self.tensorName = tensorName
        self.quantizationParameterTensorNames = quantizationParameterTensorNames
    }
}

/// A computation graph in ONNX semantics; nodes are kept in topological order.
public struct Graph: Sendable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var initializers: [Tensor]
    public var sparseInitializers: [SparseTensor]
    public var valueInfo: [ValueInfo]
    public var quantizationAnnotations: [TensorAnnotation]
    public var docString: String
    public var metadata: [MetadataEntry]

    public init(
        name: String = "", nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
        initializers: [Tensor] = [], sparseInitializers: [SparseTensor] = [],
        valueInfo: [ValueInfo] = [], quantizationAnnotations: [TensorAnnotation] = [],
        docString: String = "", metadata: [MetadataEntry] = []
    ) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.sparseInitializers = sparseInitializers
        self.valueInfo = valueInfo
        self.quantizationAnnotations = quantizationAnnotations
        self.docString = docString
        self.metadata = metadata
    }

    /// Initializers by name. - Complexity: O(n) to build; callers that look up often keep the result.
    public func initializerIndex() -> [String: Int] {
        var index: [String: Int] = [:]
        for (position, tensor) in initializers.enumerated() { index[tensor.name] = position }
        return index
    }

    public func initializer(named name: String) -> Tensor? {
        initializers.first { $0.name == name }
    }

    /// Graph inputs that are not also initializers (the values a user must feed; IR <= 3 lists weights as inputs too).
    public var runtimeInputs: [ValueInfo] {
        let constants = Set(initializers.map(\.name)).union(sparseInitializers.map(\.name))
        return inputs.filter { !constants.contains($0.name) }
    }
}
