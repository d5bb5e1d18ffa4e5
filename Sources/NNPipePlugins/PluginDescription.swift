import Foundation
import NNPipeCore

/// The out-of-process plugin protocol (documented in PLUGINS.md). Version 1.
public enum PluginProtocol {
    public static let version = 1
    /// Executables named `nnpipe-stage-<kind>` are plugins.
    public static let executablePrefix = "nnpipe-stage-"
    /// Seconds `describe` may take.
    static let describeTimeout = 30.0
    /// Options the host adds to every plugin's schema.
    static let hostOptions: [OptionSpec] = [
        OptionSpec("timeout", .number, default: .number(600), minimum: 0, exclusiveMinimum: true, help: "seconds the plugin may run before it is stopped (added by nnpipe)")
    ]
}

/// What `nnpipe-stage-<kind> describe` prints.
struct PluginDescription {
    var kind: String
    var version: String
    var summary: String
    var formats: [String]
    var options: [OptionSpec]

    /// Parses and checks a description; every problem names the plugin.
    static func parse(_ data: Data, plugin: URL) throws -> PluginDescription {
        func invalid(_ message: String) -> NNPipeError {
            NNPipeError(.stageFailed, "plugin 'describe' output: \(message)", path: plugin.path)
        }
        let json: JSONValue
        do { json = try JSONParser.parse(Array(data)) } catch {
            throw invalid("not valid JSON (\(error.description))")
        }
        guard let protocolVersion = json["protocol"]?.integerValue else { throw invalid("missing integer 'protocol'") }
        guard protocolVersion == PluginProtocol.version else {
            throw invalid("speaks protocol version \(protocolVersion); this nnpipe speaks version \(PluginProtocol.version)")
        }
        guard let kind = json["kind"]?.stringValue, !kind.isEmpty else { throw invalid("missing string 'kind'") }
        let expected = plugin.lastPathComponent.hasPrefix(PluginProtocol.executablePrefix)
            ? String(plugin.lastPathComponent.dropFirst(PluginProtocol.executablePrefix.count)) : kind
        let stem = expected.split(separator: ".").first.map(String.init) ?? expected
        guard kind == stem || kind == expected else {
            throw invalid("declares kind '\(kind)' but is named for '\(expected)'")
        }
        let formats = json["formats"]?.arrayValue?.compactMap(\.stringValue) ?? ["onnx"]
        guard formats.contains("onnx") else { throw invalid("accepts formats \(formats); nnpipe exchanges models as 'onnx'") }
        var options: [OptionSpec] = []
        for (index, entry) in (json["options"]?.arrayValue ?? []).enumerated() {
            options.append(try option(entry, path: "options[\(index)]", invalid: invalid))
        }
        if let clash = options.first(where: { option in PluginProtocol.hostOptions.contains { $0.name == option.name } }) {
            throw invalid("option '\(clash.name)' is reserved by nnpipe")
        }
        return PluginDescription(
            kind: kind, version: json["version"]?.stringValue ?? "0",
            summary: json["summary"]?.stringValue ?? "plugin stage", formats: formats,
            options: options + PluginProtocol.hostOptions)
    }

    /// One option, in the same form `nnpipe stages --json` prints.
    private static func option(_ entry: JSONValue, path: String, invalid: (String) -> NNPipeError) throws -> OptionSpec {
        guard let name = entry["name"]?.stringValue, !name.isEmpty, name != "stage" else {
            throw invalid("\(path): missing or reserved 'name'")
        }
        let typeName = entry["type"]?.stringValue ?? "string"
        let kind: OptionSpec.ValueKind
        switch typeName {
        case "string": kind = .string
        case "integer": kind = .integer
        case "number": kind = .number
        case "boolean": kind = .boolean
        case "array of strings", "string_list": kind = .stringList
        case "array of numbers", "number_list": kind = .numberList
        case "dataset name", "dataset": kind = .datasetReference
        case "choice":
            guard let choices = entry["choices"]?.arrayValue?.compactMap(\.stringValue), !choices.isEmpty else {
                throw invalid("\(path): type 'choice' needs a 'choices' array of strings")
            }
            kind = .choice(choices)
        default:
            throw invalid("\(path): unknown option type '\(typeName)' (string, integer, number, boolean, choice, string_list, number_list, dataset)")
        }
        return OptionSpec(
            name, kind, default: entry["default"], required: entry["required"]?.boolValue ?? false,
            allowsNull: entry["nullable"]?.boolValue ?? false,
            minimum: entry["minimum"]?.numberValue ?? entry["exclusive_minimum"]?.numberValue,
            maximum: entry["maximum"]?.numberValue ?? entry["exclusive_maximum"]?.numberValue,
            exclusiveMinimum: entry["exclusive_minimum"] != nil, exclusiveMaximum: entry["exclusive_maximum"] != nil,
            help: entry["help"]?.stringValue ?? "")
    }
}
