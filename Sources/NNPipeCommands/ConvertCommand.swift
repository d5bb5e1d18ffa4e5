import ArgumentParser
import Foundation
import NNPipeCore

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a model between formats (an import + export pipeline built in memory).",
        discussion: "Examples: nnpipe convert model.h5 model.onnx; nnpipe convert model.onnx model.h5")

    @Argument(help: "Input model (.onnx, .h5, .keras; sniffed from content).")
    var input: String

    @Argument(help: "Output model; the extension picks the format.")
    var output: String

    @Option(help: "Force the input format: onnx, keras-h5 or keras.")
    var from: String?

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    func validate() throws {
        guard !output.hasSuffix("/") else { throw ValidationError("the output must be a file path, got '\(output)'") }
    }

    func run() throws {
        let toolkit = Toolkit.current
        let inputURL = URL(fileURLWithPath: input).standardizedFileURL
        let outputURL = URL(fileURLWithPath: output).standardizedFileURL
        let exportOptions = StageOptions(values: ["path": .string(outputURL.lastPathComponent)], path: "convert")
        _ = try ExportStage(options: exportOptions)
        let manifest = Manifest(
            name: "convert", model: ModelReference(path: inputURL, format: from),
            outputDirectory: outputURL.deletingLastPathComponent(),
            stages: [StageInvocation(kind: ExportStage.kind, options: exportOptions, index: 0)],
            directory: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        let progress = TerminalProgress(console: Console.current)
        var runner = ManifestLoading.runner(toolkit: toolkit, progress: progress.reporter(quiet: quiet))
        runner.evaluator = nil
        runner.writesReport = false
        try runner.preflight(manifest)
        let report = try runner.run(manifest)
        progress.finish()
        if let error = report.stages.last?.error ?? report.error {
            Console.current.printError("error: \(error)")
            throw CommandFailure(status: 1)
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: outputURL.path)[.size] as? Int) ?? 0
        Console.current.print("\(input) (\(report.modelFormat)) -> \(output) (\(ByteCountText.format(size))), \(report.input.nodeCount) nodes, \(report.input.parameterCount) parameters, \(String(format: "%.2f", report.totalSeconds)) s")
    }
}
