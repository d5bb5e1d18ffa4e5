/// A stage's options after validation: declared defaults filled in, types checked.
/// Accessors return the default when the manifest left the option out.
public struct StageOptions: Sendable {
    public let values: [String: JSONValue]
    /// JSON path of the stage in the manifest, e.g. `stages[2]`, for messages a stage raises.
    public let path: String

    public init(values: [String: JSONValue], path: String) {
        self.values = values
        self.path = path
    }

    public func has(_ name: String) -> Bool {
        if let value = values[name] { return !value.isNull }
        return false
    }
    public func string(_ name: String) -> String? { values[name]?.stringValue }
    public func double(_ name: String) -> Double? { values[name]?.numberValue }
    public func integer(_ name: String) -> Int? { values[name]?.integerValue }
    public func bool(_ name: String) -> Bool? { values[name]?.boolValue }
    public func strings(_ name: String) -> [String]? {
        values[name]?.arrayValue?.compactMap(\.stringValue)
    }
    public func numbers(_ name: String) -> [Double]? {
        values[name]?.arrayValue?.compactMap(\.numberValue)
    }
    public func object(_ name: String) -> JSONValue? { values[name] }

    /// An error about one option, located at `stages[i].name`.
    public func error(_ name: String, _ message: String) -> NNPipeError {
        let value = values[name]
        return NNPipeError(
            .invalidManifest, message, path: "\(path).\(name)",
            line: value.flatMap { $0.line > 0 ? $0.line : nil },
            column: value.flatMap { $0.column > 0 ? $0.column : nil })
    }
}
