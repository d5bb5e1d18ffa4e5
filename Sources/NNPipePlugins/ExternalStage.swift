import Foundation
import NNPipeCore

/// A stage carried out by a plugin executable: nnpipe writes the model as ONNX into a private
/// folder, runs `<plugin> run <request.json>`, then checks and reads back the model it wrote.
/// Nothing the plugin leaves behind reaches the pipeline unless all checks pass.
struct ExternalStage: Stage {
    static let kind = "plugin"
    static let summary = "out-of-process plugin"
    static let options: [OptionSpec] = []

    let executable: URL
    let description: PluginDescription
    let options: StageOptions

    init(options: StageOptions) throws {
        throw NNPipeError(.internalError, "plugin stages are made by PluginHost")
    }

    init(executable: URL, description: PluginDescription, options: StageOptions) {
        self.executable = executable
        self.description = description
        self.options = options
    }

    func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        guard let onnx = context.formats.format(named: "onnx") else {
            throw NNPipeError(.unsupported, "plugins exchange models as ONNX, which this build cannot write", path: context.stagePath)
        }
        let manager = FileManager.default
        let work = manager.temporaryDirectory.appendingPathComponent("nnpipe-plugin-\(description.kind)-\(UUID().uuidString)")
        try manager.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? manager.removeItem(at: work) }
        let input = work.appendingPathComponent("input.onnx")
        let output = work.appendingPathComponent("output.onnx")
        let resultFile = work.appendingPathComponent("result.json")
        let requestFile = work.appendingPathComponent("request.json")
        try onnx.write(model, to: input)

        var pluginOptions = options.values.filter { key, _ in !PluginProtocol.hostOptions.contains { $0.name == key } }
        for (key, value) in pluginOptions where value.isNull { pluginOptions[key] = nil }
        let datasets: [(String, JSONValue)] = context.datasets.keys.sorted().compactMap { name in
            guard let dataset = context.datasets[name] else { return nil }
            var members: [(String, JSONValue)] = [("path", .string(dataset.path.path))]
            switch dataset.inputs {
            case .single(let key): if let key { members.append(("inputs", .string(key))) }
            case .named(let mapping): members.append(("inputs", .object(mapping.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
            }
            if let labels = dataset.labels { members.append(("labels", .string(labels))) }
            if let limit = dataset.limit { members.append(("limit", .number(Double(limit)))) }
            return (name, .object(members))
        }
        let request: JSONValue = .object([
            ("protocol", .number(Double(PluginProtocol.version))),
            ("kind", .string(description.kind)),
            ("options", .object(pluginOptions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })),
            ("input_model", .string(input.path)),
            ("output_model", .string(output.path)),
            ("result", .string(resultFile.path)),
            ("datasets", .object(datasets)),
        ])
        try Data(JSONWriter.write(request).utf8).write(to: requestFile)

        let timeout = options.double("timeout") ?? 600
        context.progress.update("running plugin \(executable.lastPathComponent)")
        let outcome = try PluginProcess.run(executable, arguments: ["run", requestFile.path], timeout: timeout)
        let stderrText = String(decoding: outcome.standardError, as: UTF8.self)
        for line in stderrText.split(separator: "\n") where !line.isEmpty {
            context.logger.info("\(description.kind): \(line)")
        }
        func failure(_ message: String) -> NNPipeError {
            NNPipeError(.stageFailed, "plugin \(executable.lastPathComponent) \(message)", path: context.stagePath)
        }
        if outcome.timedOut { throw failure("did not finish within \(JSONWriter.format(timeout)) s (option 'timeout') and was stopped") }
        guard outcome.status == 0, !outcome.terminatedBySignal else {
            throw failure(PluginFailure.exitText(outcome) + PluginFailure.lastLine(outcome.standardError))
        }
        guard manager.fileExists(atPath: output.path) else { throw failure("exited 0 but wrote no model at output_model") }
        guard let resultData = manager.contents(atPath: resultFile.path) else { throw failure("exited 0 but wrote no result file") }
        let result: JSONValue
        do { result = try JSONParser.parse(Array(resultData)) } catch {
            throw failure("wrote a result that is not JSON (\(error.description))")
        }
        let transformed: Model
        do {
            transformed = try onnx.read(from: output)
            try GraphCheck.validate(transformed)
        } catch let error as NNPipeError {
            throw failure("wrote an invalid model: \(error.message)")
        }
        // Keep the pipeline's own annotations (calibration, masks) unless the plugin changed the graph's weights.
        var accepted = transformed
        accepted.annotations = model.annotations
        model = accepted

        var details: [(key: String, value: JSONValue)] = [
            ("plugin", .string(executable.path)), ("plugin_version", .string(description.version)),
        ]
        if let metrics = result["metrics"] { details.append(("metrics", metrics)) }
        let messages = result["messages"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return StageResult(
            summary: result["summary"]?.stringValue ?? "plugin \(description.kind) finished",
            details: details, warnings: messages)
    }
}
