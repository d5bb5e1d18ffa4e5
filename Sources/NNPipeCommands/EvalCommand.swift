import ArgumentParser
import Foundation
import NNPipeCore
import NNPipeData
import StageEvaluate

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Run a model over a data set on nnpipe's runtime and report accuracy, mse or fidelity.",
        discussion: """
            --data takes an .h5/.hdf5 file (with --inputs/--labels dataset paths), an .npy or .npz file, \
            or a folder of ONNX TensorProto files (input_0.pb, ... in model-input order; output_0.pb as labels).
            """)

    @Argument(help: "The model (.onnx, .h5, .keras).")
    var model: String

    @Option(help: "Data file or folder.")
    var data: String

    @Option(help: "Key of the input array (HDF5 path, .npz name); omit for .npy files and .pb folders.")
    var inputs: String?

    @Option(help: "Key of the labels array.")
    var labels: String?

    @Option(parsing: .upToNextOption, help: "Metrics: accuracy, top_k_accuracy, mse, fidelity (default: accuracy when labels are given).")
    var metrics: [String] = []

    @Option(help: "k for top_k_accuracy.")
    var topK = 5

    @Option(help: "Model output to score.")
    var output: String?

    @Option(help: "Reference model for the fidelity metric.")
    var reference: String?

    @Option(help: "Samples per batch.")
    var batchSize = 32

    @Option(help: "Use at most this many samples.")
    var limit: Int?

    @Option(help: "Write every model output for the whole data set to this .npz file.")
    var saveOutputs: String?

    @Flag(help: "Print the results as JSON.")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress output.")
    var quiet = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        for metric in metrics where !EvaluationSpecification.knownMetrics.contains(metric) {
            throw ValidationError("unknown metric '\(metric)'\(Suggestion.hint(for: metric, among: EvaluationSpecification.knownMetrics))")
        }
        if metrics.contains("fidelity") && reference == nil { throw ValidationError("the fidelity metric needs --reference MODEL") }
    }

    func run() throws {
        let toolkit = Toolkit.current
        let modelURL = URL(fileURLWithPath: model).standardizedFileURL
        let loaded = try toolkit.formats.read(modelURL)
        try GraphCheck.validate(loaded, path: modelURL.path)
        let referenceModel = try reference.map { try toolkit.formats.read(URL(fileURLWithPath: $0).standardizedFileURL) }
        var chosen = metrics
        if chosen.isEmpty { chosen = labels != nil || isTensorFolder ? ["accuracy"] : [] }
        if referenceModel != nil && !chosen.contains("fidelity") { chosen.append("fidelity") }
        var labelsKey = labels
        if labelsKey == nil && isTensorFolder && !chosen.isEmpty { labelsKey = "output_0" }
        var request = ModelEvaluation.Request(
            source: DatasetSource(path: URL(fileURLWithPath: data).standardizedFileURL, inputs: .single(key: inputs), labels: labelsKey, limit: limit),
            batchSize: batchSize, metrics: chosen, topK: topK, output: output, reference: referenceModel,
            saveOutputs: saveOutputs.map { URL(fileURLWithPath: $0).standardizedFileURL })
        request.modelPath = modelURL.path
        request.referencePath = reference.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let progress = TerminalProgress(console: Console.current)
        let outcome = try ModelEvaluation.run(loaded, request: request, progress: progress.reporter(quiet: quiet))
        progress.finish()
        if json {
            Console.current.print(JSONWriter.write(.object(outcome.members.map { ($0.key, $0.value) })))
        } else {
            for member in outcome.members { Console.current.print("\(member.key): \(member.value.stringValue ?? member.value.description)") }
        }
    }

    private var isTensorFolder: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
