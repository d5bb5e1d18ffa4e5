import NNPipeCore

/// What a quantize stage was asked to do, checked for combinations the option schema cannot express.
public struct QuantizeConfiguration: Sendable {
    public enum WeightFormat: Sendable, Hashable, CustomStringConvertible {
        case integer(QuantizedType)
        case float16
        case bfloat16

        init?(_ name: String) {
            switch name {
            case "fp16": self = .float16
            case "bf16": self = .bfloat16
            default:
                guard let type = QuantizedType(rawValue: name) else { return nil }
                self = .integer(type)
            }
        }

        public var description: String {
            switch self {
            case .integer(let type): type.rawValue
            case .float16: "fp16"
            case .bfloat16: "bf16"
            }
        }

        public var integerType: QuantizedType? {
            if case .integer(let type) = self { return type }
            return nil
        }
    }

    public enum Mode: String, Sendable { case staticQuantization = "static", dynamic, weightOnly = "weight_only" }
    public enum Format: String, Sendable { case qdq, qoperator }

    public var weights: WeightFormat
    public var activations: QuantizedType?
    public var mode: Mode
    public var perChannel: Bool
    /// Weights symmetric (onnxruntime's default: true for signed weight types).
    public var weightsSymmetric: Bool
    /// Activations symmetric only when asked for explicitly and the type is signed.
    public var activationsSymmetric: Bool
    public var reduceRange: Bool
    public var blockSize: Int?
    public var format: Format
    public var excludedNodes: Set<String>
    public var operatorTypes: Set<String>
    public var keepFloatBelowSignalToNoise: Double?

    public static let defaultOperatorTypes = ["Conv", "ConvTranspose", "Gemm", "MatMul"]

    public init(
        weights: WeightFormat = .integer(.int8), activations: QuantizedType? = nil, mode: Mode? = nil,
        perChannel: Bool = false, symmetric: Bool? = nil, reduceRange: Bool = false, blockSize: Int? = nil,
        format: Format = .qdq, excludedNodes: Set<String> = [], operatorTypes: Set<String> = Set(defaultOperatorTypes),
        keepFloatBelowSignalToNoise: Double? = nil
    ) throws {
        self.weights = weights
        self.activations = activations
        self.perChannel = perChannel
        self.reduceRange = reduceRange
        self.blockSize = blockSize
        self.format = format
        self.excludedNodes = excludedNodes
        self.operatorTypes = operatorTypes
        self.keepFloatBelowSignalToNoise = keepFloatBelowSignalToNoise
        weightsSymmetric = symmetric ?? (weights.integerType?.isSigned ?? true)
        activationsSymmetric = (symmetric ?? false) && (activations?.isSigned ?? false)
        self.mode = try Self.inferMode(explicit: mode, weights: weights, activations: activations)
        try check()
    }

    /// static when activations are named, weight_only otherwise; dynamic only when asked for.
    static func inferMode(explicit: Mode?, weights: WeightFormat, activations: QuantizedType?) throws -> Mode {
        if let explicit { return explicit }
        return activations == nil ? .weightOnly : .staticQuantization
    }

    private func check() throws {
        let problem: (String, String)? = {
            switch mode {
            case .staticQuantization:
                if activations == nil { return ("activations", "mode 'static' quantises activations: name their type (e.g. \"uint8\"), or use mode 'weight_only'") }
                if weights.integerType == nil { return ("weights", "\(weights) weights are not integer-quantised; static quantisation needs int8, uint8, int16, int4 or uint4 weights") }
            case .dynamic:
                guard let type = weights.integerType, type == .int8 || type == .uint8 else {
                    return ("weights", "mode 'dynamic' uses MatMulInteger/ConvInteger, which take int8 or uint8 weights, not \(weights)")
                }
                if let activations, activations != .uint8 {
                    return ("activations", "mode 'dynamic' quantises activations at run time with DynamicQuantizeLinear, which produces uint8, not \(activations)")
                }
            case .weightOnly:
                if activations != nil { return ("activations", "mode 'weight_only' leaves activations in float; remove 'activations' or use mode 'static'") }
            }
            if blockSize != nil {
                if mode != .weightOnly { return ("block_size", "blocked quantisation is for mode 'weight_only'") }
                if weights.integerType == nil { return ("block_size", "blocked quantisation needs integer weights, not \(weights)") }
                if perChannel { return ("block_size", "choose 'per_channel' or 'block_size', not both") }
            }
            if format == .qoperator {
                if mode == .weightOnly { return ("format", "'qoperator' needs quantised activations (mode 'static' or 'dynamic')") }
                if let type = weights.integerType, type != .int8 && type != .uint8 { return ("weights", "QLinearConv/QLinearMatMul take 8-bit weights, not \(type)") }
                if let activations, activations != .int8 && activations != .uint8 { return ("activations", "QLinearConv/QLinearMatMul take 8-bit activations, not \(activations)") }
            }
            return nil
        }()
        if let (option, message) = problem {
            throw NNPipeError(.invalidManifest, message, path: option)
        }
    }
}
