import Foundation

/// Turns manifest text into a validated `Manifest`, collecting every problem with its JSON
/// path, line and column before any work starts.
public struct ManifestDecoder {
    /// Keys allowed at the top level, in the order `nnpipe schema` lists them.
    public static let topLevelKeys = ["version", "name", "model", "output_dir", "datasets", "evaluate", "plugins", "stages"]
    public static let datasetKeys = ["path", "inputs", "labels", "limit", "batch_size", "shuffle", "seed"]
    public static let evaluateKeys = ["dataset", "metrics", "top_k", "output"]
    public static let modelKeys = ["path", "format"]
    public static let modelFormats = ["onnx", "keras-h5", "keras"]

    public var registry: StageRegistry
    /// Called with the resolved `plugins` entries; returns their stage descriptors
    /// (out-of-process plugins describe themselves). Problems are reported at `plugins[i]`.
    public var pluginResolver: (@Sendable ([URL]) throws -> [StageDescriptor])?
    /// Consulted for a stage kind nothing registered knows (e.g. `nnpipe-stage-<kind>` on PATH).
    public var unknownKindResolver: (@Sendable (String) throws -> StageDescriptor?)?

    private var problems: [NNPipeError] = []
    private var file: String?

    public init(registry: StageRegistry, pluginResolver: (@Sendable ([URL]) throws -> [StageDescriptor])? = nil) {
        self.registry = registry
        self.pluginResolver = pluginResolver
    }

    /// Reads and validates the manifest at `url`.
    public mutating func decode(fileAt url: URL) throws -> Manifest {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw NNPipeError(.invalidManifest, "cannot read manifest file", path: url.path)
        }
        return try decode(Array(data), file: url)
    }

    /// Validates manifest bytes; relative paths resolve against `file`'s folder (or the current folder).
    public mutating func decode(_ bytes: [UInt8], file: URL?) throws -> Manifest {
        problems = []
        self.file = file?.path
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch {
            throw ManifestProblems(problems: [
                NNPipeError(.invalidManifest, "not valid JSON: \(error.message)", path: file?.path, line: error.line, column: error.column)
            ])
        }
        let directory = file?.deletingLastPathComponent().standardizedFileURL
            ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let manifest = validate(root, directory: directory, file: file)
        if !problems.isEmpty { throw ManifestProblems(problems: problems) }
        return manifest!
    }

    // MARK: Problems

    private mutating func problem(_ path: String, _ message: String, at value: JSONValue?) {
        let line = value.flatMap { $0.line > 0 ? $0.line : nil }
        let column = line == nil ? nil : value.map(\.column)
        problems.append(NNPipeError(.invalidManifest, "\(path): \(message)", path: file, line: line, column: column))
    }

    private mutating func checkKeys(_ object: JSONValue, allowed: [String], path: String) {
        for member in object.objectValue ?? [] where !allowed.contains(member.key) {
            let memberPath = path.isEmpty ? member.key : "\(path).\(member.key)"
            problem(memberPath, "unknown key '\(member.key)'\(Suggestion.hint(for: member.key, among: allowed)); allowed: \(allowed.joined(separator: ", "))", at: member.value)
        }
    }

    private mutating func requireString(_ value: JSONValue?, _ path: String, in parent: JSONValue) -> String? {
        guard let value else {
            problem(path, "is required", at: parent)
            return nil
        }
        guard let text = value.stringValue else {
            problem(path, "expected a string, got \(value.typeName)", at: value)
            return nil
        }
        if text.isEmpty { problem(path, "must not be empty", at: value) }
        return text
    }

    private func resolve(_ path: String, against directory: URL) -> URL {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL }
        return directory.appendingPathComponent(expanded).standardizedFileURL
    }

    // MARK: Validation

    private mutating func validate(_ root: JSONValue, directory: URL, file: URL?) -> Manifest? {
        guard root.objectValue != nil else {
            problem("$", "the manifest must be a JSON object, got \(root.typeName)", at: root)
            return nil
        }
        checkKeys(root, allowed: Self.topLevelKeys, path: "")

        // version
        var version = 1
        if let value = root["version"] {
            if let number = value.integerValue {
                version = number
                if number != 1 { problem("version", "unsupported manifest version \(number); this nnpipe reads version 1", at: value) }
            } else {
                problem("version", "expected an integer, got \(value.typeName)", at: value)
            }
        } else {
            problem("version", "is required (use 1)", at: root)
        }

        // name
        var name = file?.deletingPathExtension().lastPathComponent ?? "pipeline"
        if let value = root["name"] {
            if let text = value.stringValue, !text.isEmpty { name = text } else {
                problem("name", "expected a non-empty string, got \(value.typeName)", at: value)
            }
        }

        let model = validateModel(root, directory: directory)

        // output_dir
        var outputDirectory = directory.appendingPathComponent("out").appendingPathComponent(name)
        if let value = root["output_dir"] {
            if let text = value.stringValue, let control = text.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
                problem("output_dir", "contains the control character U+\(String(format: "%04X", control.value))", at: value)
            } else if let text = value.stringValue, !text.isEmpty {
                outputDirectory = resolve(text, against: directory)
            } else {
                problem("output_dir", "expected a non-empty string, got \(value.typeName)", at: value)
            }
        }

        let (datasets, datasetOrder) = validateDatasets(root["datasets"], directory: directory)
        let evaluation = validateEvaluation(root["evaluate"], datasets: datasets)
        let plugins = validatePlugins(root["plugins"], directory: directory)
        let stages = validateStages(root["stages"], root: root, datasets: datasets, outputDirectory: outputDirectory)

        guard let model else { return nil }
        return Manifest(
            version: version, name: name, model: model, outputDirectory: outputDirectory,
            datasets: datasets, datasetOrder: datasetOrder, evaluation: evaluation, plugins: plugins,
            stages: stages, file: file, directory: directory)
    }

    private mutating func validateModel(_ root: JSONValue, directory: URL) -> ModelReference? {
        guard let value = root["model"] else {
            problem("model", "is required (a path, or {\"path\": ..., \"format\": ...})", at: root)
            return nil
        }
        if let text = value.stringValue {
            if text.isEmpty {
                problem("model", "must not be empty", at: value)
                return nil
            }
            return ModelReference(path: resolve(text, against: directory))
        }
        guard value.objectValue != nil else {
            problem("model", "expected a path string or an object, got \(value.typeName)", at: value)
            return nil
        }
        checkKeys(value, allowed: Self.modelKeys, path: "model")
        let path = requireString(value["path"], "model.path", in: value)
        var format: String?
        if let formatValue = value["format"] {
            if let text = formatValue.stringValue, Self.modelFormats.contains(text) {
                format = text
            } else {
                let shown = formatValue.stringValue.map { "'\($0)'" } ?? formatValue.typeName
                problem("model.format", "unknown format \(shown)\(Suggestion.hint(for: formatValue.stringValue ?? "", among: Self.modelFormats)); expected one of \(Self.modelFormats.joined(separator: ", "))", at: formatValue)
            }
        }
        guard let path, !path.isEmpty else { return nil }
        return ModelReference(path: resolve(path, against: directory), format: format)
    }

    private mutating func validateDatasets(_ value: JSONValue?, directory: URL) -> ([String: DatasetSpecification], [String]) {
        guard let value else { return ([:], []) }
        guard let members = value.objectValue else {
            problem("datasets", "expected an object of named datasets, got \(value.typeName)", at: value)
            return ([:], [])
        }
        var datasets: [String: DatasetSpecification] = [:]
        var order: [String] = []
        for (name, entry) in members {
            let path = "datasets.\(name)"
            guard entry.objectValue != nil else {
                problem(path, "expected an object with 'path', got \(entry.typeName)", at: entry)
                continue
            }
            checkKeys(entry, allowed: Self.datasetKeys, path: path)
            let filePath = requireString(entry["path"], "\(path).path", in: entry)
            var inputs = DatasetSpecification.Inputs.single(nil)
            if let inputsValue = entry["inputs"] {
                if let key = inputsValue.stringValue {
                    inputs = .single(key)
                } else if let mapping = inputsValue.objectValue {
                    var named: [String: String] = [:]
                    for (input, key) in mapping {
                        if let key = key.stringValue { named[input] = key } else {
                            problem("\(path).inputs.\(input)", "expected a dataset key string, got \(key.typeName)", at: key)
                        }
                    }
                    inputs = .named(named)
                } else {
                    problem("\(path).inputs", "expected a key string or an object mapping model inputs to keys, got \(inputsValue.typeName)", at: inputsValue)
                }
            }
            var labels: String?
            if let labelsValue = entry["labels"] {
                if let key = labelsValue.stringValue { labels = key } else {
                    problem("\(path).labels", "expected a key string, got \(labelsValue.typeName)", at: labelsValue)
                }
            }
            let limit = positiveInteger(entry["limit"], "\(path).limit")
            let batchSize = positiveInteger(entry["batch_size"], "\(path).batch_size") ?? 32
            var shuffle = false
            if let shuffleValue = entry["shuffle"] {
                if let flag = shuffleValue.boolValue { shuffle = flag } else {
                    problem("\(path).shuffle", "expected a boolean, got \(shuffleValue.typeName)", at: shuffleValue)
                }
            }
            var seed: UInt64 = 0
            if let seedValue = entry["seed"] {
                if let number = seedValue.integerValue, number >= 0 { seed = UInt64(number) } else {
                    problem("\(path).seed", "expected a non-negative integer, got \(seedValue.typeName)", at: seedValue)
                }
            }
            guard let filePath else { continue }
            datasets[name] = DatasetSpecification(
                name: name, path: resolve(filePath, against: directory), inputs: inputs, labels: labels,
                limit: limit, batchSize: batchSize, shuffle: shuffle, seed: seed)
            order.append(name)
        }
        return (datasets, order)
    }

    private mutating func positiveInteger(_ value: JSONValue?, _ path: String) -> Int? {
        guard let value else { return nil }
        guard let number = value.integerValue else {
            problem(path, "expected an integer, got \(value.typeName)", at: value)
            return nil
        }
        if number < 1 {
            problem(path, "must be at least 1, got \(number)", at: value)
            return nil
        }
        return number
    }

    private mutating func datasetReference(_ value: JSONValue, _ path: String, datasets: [String: DatasetSpecification]) {
        guard let name = value.stringValue else {
            problem(path, "expected a dataset name, got \(value.typeName)", at: value)
            return
        }
        if datasets[name] == nil {
            let defined = datasets.keys.sorted()
            let known = defined.isEmpty ? "the manifest defines no datasets" : "defined: \(defined.joined(separator: ", "))"
            problem(path, "dataset '\(name)' is not defined in 'datasets'\(Suggestion.hint(for: name, among: defined)); \(known)", at: value)
        }
    }

    private mutating func validateEvaluation(_ value: JSONValue?, datasets: [String: DatasetSpecification]) -> EvaluationSpecification? {
        guard let value else { return nil }
        guard value.objectValue != nil else {
            problem("evaluate", "expected an object like {\"dataset\": \"test\", \"metrics\": [\"accuracy\"]}, got \(value.typeName)", at: value)
            return nil
        }
        checkKeys(value, allowed: Self.evaluateKeys, path: "evaluate")
        guard let datasetValue = value["dataset"] else {
            problem("evaluate.dataset", "is required", at: value)
            return nil
        }
        datasetReference(datasetValue, "evaluate.dataset", datasets: datasets)
        var metrics = ["accuracy"]
        if let metricsValue = value["metrics"] {
            if let list = metricsValue.arrayValue, !list.isEmpty {
                metrics = []
                for (index, item) in list.enumerated() {
                    if let metric = item.stringValue, EvaluationSpecification.knownMetrics.contains(metric) {
                        metrics.append(metric)
                    } else {
                        let shown = item.stringValue.map { "'\($0)'" } ?? item.typeName
                        problem("evaluate.metrics[\(index)]", "unknown metric \(shown)\(Suggestion.hint(for: item.stringValue ?? "", among: EvaluationSpecification.knownMetrics)); known: \(EvaluationSpecification.knownMetrics.joined(separator: ", "))", at: item)
                    }
                }
            } else {
                problem("evaluate.metrics", "expected a non-empty array of metric names", at: metricsValue)
            }
        }
        let topK = positiveInteger(value["top_k"], "evaluate.top_k") ?? 5
        var output: String?
        if let outputValue = value["output"] {
            if let name = outputValue.stringValue { output = name } else {
                problem("evaluate.output", "expected a model output name, got \(outputValue.typeName)", at: outputValue)
            }
        }
        return EvaluationSpecification(dataset: datasetValue.stringValue ?? "", metrics: metrics, topK: topK, output: output)
    }

    private mutating func validatePlugins(_ value: JSONValue?, directory: URL) -> [URL] {
        guard let value else { return [] }
        guard let list = value.arrayValue else {
            problem("plugins", "expected an array of plugin executable paths, got \(value.typeName)", at: value)
            return []
        }
        var urls: [URL] = []
        for (index, item) in list.enumerated() {
            guard let text = item.stringValue, !text.isEmpty else {
                problem("plugins[\(index)]", "expected a path string, got \(item.typeName)", at: item)
                continue
            }
            let url = resolve(text, against: directory)
            if !FileManager.default.isExecutableFile(atPath: url.path) {
                problem("plugins[\(index)]", "no executable plugin at \(url.path)", at: item)
                continue
            }
            urls.append(url)
        }
        if let pluginResolver, !urls.isEmpty {
            do {
                for descriptor in try pluginResolver(urls) { registry.register(descriptor) }
            } catch let error as NNPipeError {
                problem("plugins", error.description, at: value)
            } catch {
                problem("plugins", "\(error)", at: value)
            }
        }
        return urls
    }

    private mutating func validateStages(_ value: JSONValue?, root: JSONValue, datasets: [String: DatasetSpecification], outputDirectory: URL) -> [StageInvocation] {
        guard let value else {
            problem("stages", "is required (an array of stages, e.g. [{\"stage\": \"export\", \"path\": \"model.onnx\"}])", at: root)
            return []
        }
        guard let list = value.arrayValue else {
            problem("stages", "expected an array, got \(value.typeName)", at: value)
            return []
        }
        var invocations: [StageInvocation] = []
        var invalid = Set<Int>()
        for (index, entry) in list.enumerated() {
            let problemsBefore = problems.count
            defer { if problems.count > problemsBefore { invalid.insert(index) } }
            let path = "stages[\(index)]"
            guard let members = entry.objectValue else {
                problem(path, "expected an object like {\"stage\": \"prune\", ...}, got \(entry.typeName)", at: entry)
                continue
            }
            guard let kindValue = entry["stage"] else {
                problem("\(path).stage", "is required (one of \(registry.kinds.joined(separator: ", ")))", at: entry)
                continue
            }
            guard let kind = kindValue.stringValue else {
                problem("\(path).stage", "expected a stage kind string, got \(kindValue.typeName)", at: kindValue)
                continue
            }
            if registry.descriptor(for: kind) == nil, let unknownKindResolver {
                do {
                    if let found = try unknownKindResolver(kind) { registry.register(found) }
                } catch let error as NNPipeError {
                    problem("\(path).stage", error.description, at: kindValue)
                    continue
                } catch {
                    problem("\(path).stage", "\(error)", at: kindValue)
                    continue
                }
            }
            guard let descriptor = registry.descriptor(for: kind) else {
                problem("\(path).stage", "unknown stage kind '\(kind)'\(Suggestion.hint(for: kind, among: registry.kinds)); known: \(registry.kinds.joined(separator: ", "))", at: kindValue)
                continue
            }
            var values: [String: JSONValue] = [:]
            let declared = descriptor.options.map(\.name)
            for member in members where member.key != "stage" {
                guard let option = descriptor.options.first(where: { $0.name == member.key }) else {
                    problem("\(path).\(member.key)", "unknown option '\(member.key)' for stage '\(kind)'\(Suggestion.hint(for: member.key, among: declared))\(declared.isEmpty ? "; it takes no options" : "; options: \(declared.joined(separator: ", "))")", at: member.value)
                    continue
                }
                if check(member.value, against: option, path: "\(path).\(member.key)", datasets: datasets) {
                    values[member.key] = member.value
                }
            }
            for option in descriptor.options where values[option.name] == nil && members.first(where: { $0.key == option.name }) == nil {
                if option.required {
                    problem("\(path).\(option.name)", "is required for stage '\(kind)' (\(option.help))", at: entry)
                } else if let defaultValue = option.defaultValue {
                    values[option.name] = defaultValue
                }
            }
            invocations.append(StageInvocation(kind: kind, options: StageOptions(values: values, path: path), index: index))
        }
        // Cross-stage rules, then each stage's own constructor checks.
        // Stages whose options already failed are skipped: their constructor would repeat the problem.
        for invocation in invocations where !invalid.contains(invocation.index) {
            guard let descriptor = registry.descriptor(for: invocation.kind) else { continue }
            for error in descriptor.checkPlacement(invocation, invocations) { problems.append(withFile(error)) }
            do { _ = try descriptor.make(invocation.options) } catch let error as NNPipeError {
                problems.append(withFile(error))
            } catch {
                problem(invocation.path, "\(error)", at: nil)
            }
        }
        return invocations
    }

    private func withFile(_ error: NNPipeError) -> NNPipeError {
        var located = error
        // Stage errors carry the JSON path as `path`; fold it into the message so the file leads.
        if let jsonPath = error.path, !error.message.hasPrefix(jsonPath) {
            located.message = "\(jsonPath): \(error.message)"
        }
        located.path = file
        return located
    }

    /// Checks one option value against its declaration; true when it may be used.
    private mutating func check(_ value: JSONValue, against option: OptionSpec, path: String, datasets: [String: DatasetSpecification]) -> Bool {
        if value.isNull {
            if option.allowsNull { return true }
            problem(path, "must not be null (expected \(option.kind.displayName))", at: value)
            return false
        }
        return check(value, kind: option.kind, option: option, path: path, datasets: datasets, report: true)
    }

    private mutating func check(_ value: JSONValue, kind: OptionSpec.ValueKind, option: OptionSpec, path: String, datasets: [String: DatasetSpecification], report: Bool) -> Bool {
        func fail(_ message: String) -> Bool {
            if report { problem(path, message, at: value) }
            return false
        }
        switch kind {
        case .string:
            guard value.stringValue != nil else { return fail("expected a string, got \(value.typeName)") }
            return true
        case .boolean:
            guard value.boolValue != nil else { return fail("expected true or false, got \(value.typeName)") }
            return true
        case .integer, .number:
            guard let number = value.numberValue else { return fail("expected \(kind.displayName == "integer" ? "an integer" : "a number"), got \(value.typeName)") }
            if case .integer = kind, value.integerValue == nil { return fail("expected an integer, got \(JSONWriter.format(number))") }
            let belowMinimum = option.minimum.map { option.exclusiveMinimum ? number <= $0 : number < $0 } ?? false
            let aboveMaximum = option.maximum.map { option.exclusiveMaximum ? number >= $0 : number > $0 } ?? false
            if belowMinimum || aboveMaximum {
                return fail("must be in \(option.rangeDescription ?? "range"), got \(JSONWriter.format(number))")
            }
            return true
        case .choice(let choices):
            guard let text = value.stringValue else { return fail("expected one of \(kind.displayName), got \(value.typeName)") }
            guard choices.contains(text) else {
                return fail("'\(text)' is not one of \(choices.joined(separator: ", "))\(Suggestion.hint(for: text, among: choices))")
            }
            return true
        case .stringList:
            guard let list = value.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                return fail("expected an array of strings, got \(value.typeName)")
            }
            return true
        case .numberList:
            guard let list = value.arrayValue, list.allSatisfy({ $0.numberValue != nil }) else {
                return fail("expected an array of numbers, got \(value.typeName)")
            }
            return true
        case .datasetReference:
            if report { datasetReference(value, path, datasets: datasets) }
            return value.stringValue.map { datasets[$0] != nil } ?? false
        case .object(let fields):
            guard let members = value.objectValue else { return fail("expected an object, got \(value.typeName)") }
            var valid = true
            for member in members {
                guard let field = fields.first(where: { $0.name == member.key }) else {
                    let names = fields.map(\.name)
                    valid = fail("unknown key '\(member.key)'\(Suggestion.hint(for: member.key, among: names)); allowed: \(names.joined(separator: ", "))") && valid
                    continue
                }
                valid = check(member.value, against: field, path: "\(path).\(member.key)", datasets: datasets) && valid
            }
            for field in fields where field.required && value[field.name] == nil {
                valid = false
                if report { problem("\(path).\(field.name)", "is required (\(field.help))", at: value) }
            }
            return valid
        case .either(let first, let second):
            if check(value, kind: first, option: option, path: path, datasets: datasets, report: false)
                || check(value, kind: second, option: option, path: path, datasets: datasets, report: false)
            {
                return true
            }
            // Re-run the branch that matches the JSON type so the message is the specific one.
            let matchesFirst = Self.jsonTypeMatches(value, first)
            return check(value, kind: matchesFirst ? first : second, option: option, path: path, datasets: datasets, report: report)
        }
    }

    private static func jsonTypeMatches(_ value: JSONValue, _ kind: OptionSpec.ValueKind) -> Bool {
        switch (kind, value.kind) {
        case (.string, .string), (.choice, .string), (.datasetReference, .string): true
        case (.integer, .number), (.number, .number): true
        case (.boolean, .bool): true
        case (.stringList, .array), (.numberList, .array): true
        case (.object, .object): true
        default: false
        }
    }
}
