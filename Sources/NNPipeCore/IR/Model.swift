/// An operator set a model imports (ONNX `OperatorSetIdProto`). Domain "" is the default ONNX domain.
public struct OperatorSetID: Sendable, Hashable, Codable {
    public var domain: String
    public var version: Int64

    public init(domain: String, version: Int64) {
        self.domain = domain
        self.version = version
    }
}

/// A model-local function (ONNX `FunctionProto`), kept intact through import and export.
public struct Function: Sendable {
    public var name: String
    public var domain: String
    public var overload: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributeNames: [String]
    public var attributeDefaults: [Attribute]
    public var nodes: [Node]
    public var opsetImports: [OperatorSetID]
    public var valueInfo: [ValueInfo]
    public var docString: String
    public var metadata: [MetadataEntry]

    public init(
        name: String, domain: String, overload: String = "", inputs: [String], outputs: [String],
        attributeNames: [String] = [], attributeDefaults: [Attribute] = [], nodes: [Node],
        opsetImports: [OperatorSetID], valueInfo: [ValueInfo] = [], docString: String = "",
        metadata: [MetadataEntry] = []
    ) {
        self.name = name
        self.domain = domain
        self.overload = overload
        self.inputs = inputs
        self.outputs = outputs
        self.attributeNames = attributeNames
        self.attributeDefaults = attributeDefaults
        self.nodes = nodes
        self.opsetImports = opsetImports
        self.valueInfo = valueInfo
        self.docString = docString
        self.metadata = metadata
    }
}

/// A whole model (ONNX `ModelProto` semantics), whatever file format it came from.
public struct Model: Sendable {
    public var irVersion: Int64
    public var opsetImports: [OperatorSetID]
    public var producerName: String
    public var producerVersion: String
    public var domain: String
    public var modelVersion: Int64
    public var docString: String
    public var graph: Graph
    public var metadata: [MetadataEntry]
    public var functions: [Function]
    /// Serialized `TrainingInfoProto` / `DeviceConfigurationProto` messages, carried through untouched.
    public var opaqueTrainingInfo: [[UInt8]]
    public var opaqueConfiguration: [[UInt8]]
    /// Facts stages leave for later stages, reports and exporters (calibration ranges, masks, ...).
    public var annotations: ModelAnnotations

    public init(
        irVersion: Int64 = 10, opsetImports: [OperatorSetID] = [OperatorSetID(domain: "", version: 21)],
        producerName: String = "nnpipe", producerVersion: String = NNPipeVersion.current,
        domain: String = "", modelVersion: Int64 = 0, docString: String = "", graph: Graph,
        metadata: [MetadataEntry] = [], functions: [Function] = [],
        opaqueTrainingInfo: [[UInt8]] = [], opaqueConfiguration: [[UInt8]] = [],
        annotations: ModelAnnotations = ModelAnnotations()
    ) {
        self.irVersion = irVersion
        self.opsetImports = opsetImports
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.domain = domain
        self.modelVersion = modelVersion
        self.docString = docString
        self.graph = graph
        self.metadata = metadata
        self.functions = functions
        self.opaqueTrainingInfo = opaqueTrainingInfo
        self.opaqueConfiguration = opaqueConfiguration
        self.annotations = annotations
    }

    /// The imported version of `domain` ("" and "ai.onnx" are the same domain).
    public func opsetVersion(for domain: String = "") -> Int64? {
        let wanted = domain == "ai.onnx" ? "" : domain
        return opsetImports.first { ($0.domain == "ai.onnx" ? "" : $0.domain) == wanted }?.version
    }
}

/// Side information stages attach to a model; exporters may use it, they never require it.
public struct ModelAnnotations: Sendable {
    /// Observed value range per tensor name, written by calibration.
    public var calibrationRanges: [String: ValueRange]
    /// Free-form facts (stage name -> key -> value) surfaced in reports.
    public var notes: [String: [String: String]]
    /// Per-initializer keep masks (uint8 0/1, same shape as the weight) left by a prune stage,
    /// so fine-tuning keeps pruned weights at zero.
    public var pruningMasks: [String: Tensor]
    /// The sparsity schedule a prune stage hands to fine-tuning (its manifest `schedule` object).
    public var pruningSchedule: JSONValue?

    public init(
        calibrationRanges: [String: ValueRange] = [:], notes: [String: [String: String]] = [:],
        pruningMasks: [String: Tensor] = [:], pruningSchedule: JSONValue? = nil
    ) {
        self.calibrationRanges = calibrationRanges
        self.notes = notes
        self.pruningMasks = pruningMasks
        self.pruningSchedule = pruningSchedule
    }
}

/// A closed float range, e.g. a calibrated activation range.
public struct ValueRange: Sendable, Hashable, Codable {
    public var lower: Float
    public var upper: Float
    public init(lower: Float, upper: Float) {
        self.lower = lower
        self.upper = upper
    }
}

public enum NNPipeVersion {
    public static let current = "0.1.0"
}
