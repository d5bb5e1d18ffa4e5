import NNPipeCore
import NNPipeData

/// Measures the model where it stands in the pipeline (e.g. before and after quantisation)
/// without changing it.
public struct EvaluateStage: Stage {
    public static let kind = "evaluate"
    public static let summary = "Measure the current model on a dataset (accuracy, top-k, mse, fidelity to the input model)"
    public static let options: [OptionSpec] = [
        OptionSpec("dataset", .datasetReference, required: true, help: "dataset to evaluate on (needs labels for accuracy and mse)"),
        OptionSpec("metrics", .stringList, default: .array([.string("accuracy")]), help: "any of accuracy, top_k_accuracy, mse, fidelity"),
        OptionSpec("top_k", .integer, default: .number(5), minimum: 1, help: "k for top_k_accuracy"),
        OptionSpec("output", .string, help: "model output to score (default: the first float output of rank 2)"),
        OptionSpec("min_accuracy", .number, minimum: 0, maximum: 1, help: "fail the pipeline when top-1 accuracy is below this"),
    ]

    let dataset: String
    let metrics: [String]
    let topK: Int
    let output: String?
    let minimumAccuracy: Double?

    public init(options: StageOptions) throws {
        dataset = options.string("dataset") ?? ""
        metrics = options.strings("metrics") ?? ["accuracy"]
        for metric in metrics where !EvaluationSpecification.knownMetrics.contains(metric) {
            throw options.error("metrics", "unknown metric '\(metric)'\(Suggestion.hint(for: metric, among: EvaluationSpecification.knownMetrics)); known: \(EvaluationSpecification.knownMetrics.joined(separator: ", "))")
        }
        topK = options.integer("top_k") ?? 5
        output = options.string("output")
        minimumAccuracy = options.double("min_accuracy")
    }

    public func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        let specification = try context.dataset(dataset)
        let request = ModelEvaluation.Request(
            source: DatasetSource(specification), batchSize: specification.batchSize, metrics: metrics, topK: topK,
            output: output, reference: metrics.contains("fidelity") ? context.originalModel : nil)
        let outcome = try ModelEvaluation.run(model, request: request, progress: context.progress)
        var parts: [String] = []
        if let accuracy = outcome.accuracy { parts.append(String(format: "accuracy %.2f%%", accuracy * 100)) }
        if let topKAccuracy = outcome.topKAccuracy { parts.append(String(format: "top-%d %.2f%%", topK, topKAccuracy * 100)) }
        if let error = outcome.meanSquaredError { parts.append(String(format: "mse %.4g", error)) }
        if let agreement = outcome.argmaxAgreement { parts.append(String(format: "argmax agreement %.2f%%", agreement * 100)) }
        if let minimumAccuracy, let accuracy = outcome.accuracy, accuracy < minimumAccuracy {
            throw NNPipeError(.stageFailed, String(format: "accuracy %.4f is below min_accuracy %.4f", accuracy, minimumAccuracy), path: context.stagePath)
        }
        return StageResult(
            summary: parts.joined(separator: ", ") + " on \(outcome.sampleCount) samples of '\(dataset)'",
            details: outcome.members)
    }
}
