/// A JSON value that remembers where it was written (1-based line and column), so manifest
/// errors can point at the exact spot. Object members keep their order.
public struct JSONValue: Sendable, Hashable, CustomStringConvertible {
    public indirect enum Kind: Sendable, Hashable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([JSONValue])
        case object([(key: String, value: JSONValue)])

        public static func == (lhs: Kind, rhs: Kind) -> Bool {
            switch (lhs, rhs) {
            case (.null, .null): true
            case (.bool(let a), .bool(let b)): a == b
            case (.number(let a), .number(let b)): a == b
            case (.string(let a), .string(let b)): a == b
            case (.array(let a), .array(let b)): a == b
            case (.object(let a), .object(let b)):
                a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            default: false
            }
        }

        public func hash(into hasher: inout Hasher) {
            switch self {
            case .null: hasher.combine(0)
            case .bool(let value): hasher.combine(value)
            case .number(let value): hasher.combine(value)
            case .string(let value): hasher.combine(value)
            case .array(let values): hasher.combine(values)
            case .object(let members):
                for member in members {
                    hasher.combine(member.key)
                    hasher.combine(member.value)
                }
            }
        }
    }

    public var kind: Kind
    public var line: Int
    public var column: Int

    public init(_ kind: Kind, line: Int = 0, column: Int = 0) {
        self.kind = kind
        self.line = line
        self.column = column
    }

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool { lhs.kind == rhs.kind }
    public func hash(into hasher: inout Hasher) { hasher.combine(kind) }

    public static let null = JSONValue(.null)
    public static func string(_ value: String) -> JSONValue { JSONValue(.string(value)) }
    public static func number(_ value: Double) -> JSONValue { JSONValue(.number(value)) }
    public static func bool(_ value: Bool) -> JSONValue { JSONValue(.bool(value)) }
    public static func array(_ values: [JSONValue]) -> JSONValue { JSONValue(.array(values)) }
    public static func object(_ members: [(String, JSONValue)]) -> JSONValue {
        JSONValue(.object(members.map { (key: $0.0, value: $0.1) }))
    }

    public var stringValue: String? {
        if case .string(let value) = kind { return value }
        return nil
    }
    public var numberValue: Double? {
        if case .number(let value) = kind { return value }
        return nil
    }
    public var integerValue: Int? {
        guard case .number(let value) = kind, value == value.rounded(), abs(value) < 9e15 else { return nil }
        return Int(value)
    }
    public var boolValue: Bool? {
        if case .bool(let value) = kind { return value }
        return nil
    }
    public var arrayValue: [JSONValue]? {
        if case .array(let values) = kind { return values }
        return nil
    }
    public var objectValue: [(key: String, value: JSONValue)]? {
        if case .object(let members) = kind { return members }
        return nil
    }
    public var isNull: Bool { kind == .null }

    public subscript(key: String) -> JSONValue? {
        objectValue?.first { $0.key == key }?.value
    }

    /// A short name of the value's JSON type for error messages.
    public var typeName: String {
        switch kind {
        case .null: "null"
        case .bool: "a boolean"
        case .number(let value): value == value.rounded() ? "an integer" : "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// Compact JSON text.
    public var description: String { JSONWriter.write(self, pretty: false) }
}
