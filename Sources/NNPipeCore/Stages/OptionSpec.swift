/// One option a stage accepts in the manifest: the single declaration that drives
/// validation, `nnpipe stages`, `nnpipe schema` and the README's manifest reference.
public struct OptionSpec: Sendable {
    public indirect enum ValueKind: Sendable {
        case string
        case integer
        case number
        case boolean
        /// One of a fixed set of strings.
        case choice([String])
        case stringList
        case numberList
        /// The name of a dataset defined in the manifest's `datasets`.
        case datasetReference
        /// A nested object with its own declared fields.
        case object([OptionSpec])
        /// Either of two kinds (e.g. a number or a choice like "auto").
        case either(ValueKind, ValueKind)
    }

    public var name: String
    public var kind: ValueKind
    /// Used when the manifest leaves the option out; nil means "absent" is meaningful (or required).
    public var defaultValue: JSONValue?
    public var required: Bool
    /// JSON null is accepted (e.g. `"activations": null` meaning weights only).
    public var allowsNull: Bool
    public var minimum: Double?
    public var maximum: Double?
    /// The maximum itself is not allowed (sparsity in [0, 1)).
    public var exclusiveMaximum: Bool
    public var exclusiveMinimum: Bool
    public var help: String

    public init(
        _ name: String, _ kind: ValueKind, default defaultValue: JSONValue? = nil,
        required: Bool = false, allowsNull: Bool = false, minimum: Double? = nil,
        maximum: Double? = nil, exclusiveMinimum: Bool = false, exclusiveMaximum: Bool = false,
        help: String
    ) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.required = required
        self.allowsNull = allowsNull
        self.minimum = minimum
        self.maximum = maximum
        self.exclusiveMinimum = exclusiveMinimum
        self.exclusiveMaximum = exclusiveMaximum
        self.help = help
    }
}

extension OptionSpec.ValueKind {
    /// How the kind reads in messages and tables: "number", "one of minmax|entropy".
    public var displayName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .number: "number"
        case .boolean: "boolean"
        case .choice(let values): values.map { "\"\($0)\"" }.joined(separator: " | ")
        case .stringList: "array of strings"
        case .numberList: "array of numbers"
        case .datasetReference: "dataset name"
        case .object: "object"
        case .either(let first, let second): "\(first.displayName) or \(second.displayName)"
        }
    }
}

extension OptionSpec {
    /// The range in mathematical notation for messages, e.g. "[0, 1)"; nil when unbounded.
    public var rangeDescription: String? {
        guard minimum != nil || maximum != nil else { return nil }
        let low = minimum.map(JSONWriter.format) ?? "-inf"
        let high = maximum.map(JSONWriter.format) ?? "inf"
        return (exclusiveMinimum || minimum == nil ? "(" : "[") + low + ", " + high
            + (exclusiveMaximum || maximum == nil ? ")" : "]")
    }
}
