import ArgumentParser
import NNPipeCore
import NNPipePlugins

struct StagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stages",
        abstract: "List the stage kinds this nnpipe knows, with their options.")

    @Flag(help: "Print names, options, types, defaults and help as JSON.")
    var json = false

    @Flag(help: "Print the stage reference as Markdown (the README's manifest reference is this output).")
    var markdown = false

    @Option(help: "Also list the plugins this manifest names.")
    var manifest: String?

    @Flag(help: "Leave out nnpipe-stage-* plugins found on PATH.")
    var builtInOnly = false

    func run() throws {
        var registry = Toolkit.current.stages
        let console = Console.current
        if !builtInOnly && !markdown {
            for executable in PluginHost.executablesOnPath() {
                do { registry.register(try PluginHost.descriptor(for: executable)) } catch let error as NNPipeError {
                    console.printError("warning: skipping plugin: \(error.description)")
                }
            }
        }
        if let manifest {
            let loaded = try ManifestLoading.load(manifest, toolkit: Toolkit.current)
            for descriptor in try PluginHost.descriptors(for: loaded.plugins) { registry.register(descriptor) }
        }
        if markdown {
            console.print(StageCatalog.markdown(registry))
            return
        }
        if json {
            console.print(JSONWriter.write(StageCatalog.json(registry)))
            return
        }
        for descriptor in registry.descriptors {
            console.print("\(descriptor.kind)  —  \(descriptor.summary)" + (descriptor.origin == "built-in" ? "" : "  [\(descriptor.origin)]"))
            let rows = descriptor.options.map { option -> [String] in
                var type = option.kind.displayName
                if let range = option.rangeDescription { type += " in \(range)" }
                let defaultText = option.required ? "required" : option.defaultValue.map { "default \($0)" } ?? "optional"
                return ["  " + option.name, type, defaultText, option.help]
            }
            guard !rows.isEmpty else {
                console.print("  (no options)")
                continue
            }
            let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
            for row in rows {
                console.print((0..<3).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  " + row[3])
            }
        }
    }
}

/// The `nnpipe stages --json` document.
enum StageCatalog {
    static func json(_ registry: StageRegistry) -> JSONValue {
        .array(registry.descriptors.map { descriptor in
            .object([
                ("kind", .string(descriptor.kind)),
                ("summary", .string(descriptor.summary)),
                ("origin", .string(descriptor.origin)),
                ("options", .array(descriptor.options.map(option))),
            ])
        })
    }

    /// One section per stage with a table of its options.
    static func markdown(_ registry: StageRegistry) -> String {
        var lines: [String] = []
        for descriptor in registry.descriptors {
            lines.append("#### `\(descriptor.kind)`")
            lines.append("")
            lines.append(descriptor.summary + ".")
            lines.append("")
            if descriptor.options.isEmpty {
                lines.append("No options.")
            } else {
                lines.append("| option | type | default | meaning |")
                lines.append("|---|---|---|---|")
                for (name, option) in flattened(descriptor.options) {
                    var type = option.kind.displayName
                    if let range = option.rangeDescription { type += " in \(range)" }
                    if option.allowsNull { type += " or null" }
                    let defaultText = option.required ? "required" : option.defaultValue.map { "`\($0)`" } ?? "—"
                    lines.append("| `\(name)` | \(type.replacingOccurrences(of: "|", with: "\\|")) | \(defaultText) | \(option.help) |")
                }
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    /// Each option, followed by the fields of an object option as `parent.field` rows, so that
    /// nested settings (`distill.temperature`, `prune_schedule.end_step`) are documented too.
    static func flattened(_ options: [OptionSpec], prefix: String = "") -> [(name: String, option: OptionSpec)] {
        options.flatMap { option -> [(name: String, option: OptionSpec)] in
            let name = prefix + option.name
            return [(name, option)] + objectFields(option.kind).map { flattened($0, prefix: name + ".") }.flatMap { $0 }
        }
    }

    private static func objectFields(_ kind: OptionSpec.ValueKind) -> [[OptionSpec]] {
        switch kind {
        case .object(let fields): [fields]
        case .either(let first, let second): objectFields(first) + objectFields(second)
        default: []
        }
    }

    static func option(_ option: OptionSpec) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(option.name)),
            ("type", .string(option.kind.displayName)),
            ("required", .bool(option.required)),
        ]
        if let defaultValue = option.defaultValue { members.append(("default", defaultValue)) }
        if let minimum = option.minimum { members.append((option.exclusiveMinimum ? "exclusive_minimum" : "minimum", .number(minimum))) }
        if let maximum = option.maximum { members.append((option.exclusiveMaximum ? "exclusive_maximum" : "maximum", .number(maximum))) }
        if case .choice(let values) = option.kind { members.append(("choices", .array(values.map { .string($0) }))) }
        if option.allowsNull { members.append(("nullable", .bool(true))) }
        members.append(("help", .string(option.help)))
        return .object(members)
    }
}

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of the manifest (for editor autocompletion).")

    func run() throws {
        Console.current.print(JSONWriter.write(ManifestSchema.jsonSchema(registry: Toolkit.current.stages)))
    }
}
