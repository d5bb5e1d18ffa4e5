import Foundation
import NNPipeCore

/// Trains the model's float weights on a labelled data set to win back accuracy lost to
/// compression: holds pruning masks (or prunes gradually by the prune stage's schedule), can
/// train quantisation-aware and distil from the pipeline's input model.
public struct FineTuneStage: Stage {
    public static let kind = "finetune"
    public static let summary = "Train the weights on a labelled dataset (sgd/adam/adamw), keeping pruning masks; QAT and distillation"

    static let scheduleFields: [OptionSpec] = [
        OptionSpec("kind", .choice(["constant", "polynomial"]), default: .string("polynomial"), help: "polynomial raises sparsity gradually"),
        OptionSpec("initial_sparsity", .number, default: .number(0), minimum: 0, maximum: 1, exclusiveMaximum: true, help: "sparsity at begin_step"),
        OptionSpec("final_sparsity", .number, required: true, minimum: 0, maximum: 1, exclusiveMaximum: true, help: "sparsity at end_step and after"),
        OptionSpec("begin_step", .integer, default: .number(0), minimum: 0, help: "optimiser step where pruning starts"),
        OptionSpec("end_step", .integer, minimum: 1, help: "optimiser step where final_sparsity is reached"),
        OptionSpec("frequency", .integer, default: .number(100), minimum: 1, help: "steps between mask updates"),
        OptionSpec("power", .number, default: .number(3), minimum: 0, exclusiveMinimum: true, help: "exponent of the polynomial decay"),
    ]

    public static let options: [OptionSpec] = [
        OptionSpec("dataset", .datasetReference, required: true, help: "training data; its 'labels' are the targets"),
        OptionSpec("validation", .datasetReference, help: "scored after every epoch; the best epoch's weights are kept"),
        OptionSpec("epochs", .integer, default: .number(1), minimum: 1, help: "passes over the training data"),
        OptionSpec("steps", .integer, minimum: 1, help: "total optimiser steps (overrides epochs)"),
        OptionSpec("batch_size", .integer, default: .number(32), minimum: 1, help: "samples per optimiser step"),
        OptionSpec("optimizer", .choice(["sgd", "adam", "adamw"]), default: .string("adam"), help: "update rule"),
        OptionSpec("momentum", .number, default: .number(0.9), minimum: 0, maximum: 1, exclusiveMaximum: true, help: "sgd momentum"),
        OptionSpec("nesterov", .boolean, default: .bool(false), help: "Nesterov momentum (sgd)"),
        OptionSpec("weight_decay", .number, default: .number(0), minimum: 0, help: "L2 penalty (sgd, adam) or decoupled decay (adamw)"),
        OptionSpec("lr", .number, default: .number(0.001), minimum: 0, exclusiveMinimum: true, help: "learning rate"),
        OptionSpec("schedule", .choice(["constant", "step", "cosine"]), default: .string("constant"), help: "learning-rate schedule after warm-up"),
        OptionSpec("warmup_steps", .integer, default: .number(0), minimum: 0, help: "steps of linear warm-up from 0 to lr"),
        OptionSpec("step_size", .integer, default: .number(100), minimum: 1, help: "steps between decays of the step schedule"),
        OptionSpec("gamma", .number, default: .number(0.1), minimum: 0, exclusiveMinimum: true, help: "factor of each step-schedule decay"),
        OptionSpec("loss", .choice(["cross_entropy", "mse"]), default: .string("cross_entropy"), help: "cross_entropy trains through a trailing Softmax as log-softmax, and reads a Softmax behind a Reshape, Flatten, Squeeze or Unsqueeze as probabilities (-log p)"),
        OptionSpec("seed", .integer, default: .number(0), minimum: 0, help: "seeds shuffling and dropout; equal seeds give equal weights"),
        OptionSpec("freeze", .stringList, default: .array([]), help: "node or initializer names (with * wildcards) whose weights stay fixed"),
        OptionSpec("qat", .boolean, default: .bool(false), help: "quantisation-aware training; leaves activation ranges for the quantize stage"),
        OptionSpec("distill", .object([
            OptionSpec("temperature", .number, default: .number(4), minimum: 0, exclusiveMinimum: true, help: "softens both distributions"),
            OptionSpec("alpha", .number, default: .number(0.5), minimum: 0, maximum: 1, help: "weight of the distillation term"),
            OptionSpec("teacher", .string, default: .string("input"),
                       help: "\"input\" (the pipeline's input model) or a model file (.onnx/.h5, relative to the manifest), e.g. one an earlier export stage wrote"),
        ]), help: "distil from a teacher: alpha·T²·KL + (1 − alpha)·task loss"),
        OptionSpec("prune_schedule", .either(.boolean, .object(scheduleFields)),
                   help: "false ignores the model's pruning schedule; an object replaces it (default: follow it)"),
        OptionSpec("early_stopping", .integer, minimum: 1, help: "stop after this many epochs without a better validation score"),
    ]

    public let configuration: FineTuneConfiguration

    public init(options: StageOptions) throws {
        configuration = try FineTuneConfiguration(options: options)
    }

    public func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        let outcome = try FineTuneTrainer(configuration: configuration, context: context).run(&model)
        var parts = ["trained \(outcome.trainableParameters) weights for \(outcome.history.count) epochs (\(outcome.steps) steps)"]
        if let first = outcome.history.first, let last = outcome.history.last {
            parts.append(String(format: "loss %.4f → %.4f", first.trainingLoss, last.trainingLoss))
            if let accuracy = last.validationAccuracy { parts.append(String(format: "validation accuracy %.2f%%", accuracy * 100)) }
        }
        if let sparsity = outcome.sparsity { parts.append(String(format: "sparsity %.1f%%", sparsity * 100)) }
        if configuration.quantizationAware { parts.append("\(outcome.quantizedRanges) activation ranges learned") }
        parts.append(String(format: "%.0f samples/s", outcome.samplesPerSecond))
        var warnings: [String] = []
        if outcome.stoppedEarly { warnings.append("stopped early after epoch \(outcome.history.count); kept epoch \(outcome.bestEpoch ?? 0)") }
        var details = Self.details(outcome)
        var files: [String] = []
        if let interruption = outcome.interruption {
            let checkpoint = try Self.saveCheckpoint(model, context: context)
            warnings.append(interruption.message + (checkpoint.map { " in \($0.path)" } ?? ""))
            details.append(("interrupted", .string(interruption.message)))
            if let checkpoint {
                details.append(("checkpoint", .string(checkpoint.path)))
                files.append(checkpoint.path)
            }
        }
        return StageResult(summary: parts.joined(separator: ", "), details: details, warnings: warnings, files: files)
    }

    /// Ctrl-C ends the pipeline before its exports, so the kept weights go to
    /// `<output_dir>/finetune-checkpoint.onnx` (ONNX holds every IR model; nnpipe reads it back as
    /// a pipeline's `model`). Nil when this nnpipe has no ONNX writer.
    static func saveCheckpoint(_ model: Model, context: StageContext) throws -> URL? {
        guard let onnx = context.formats.format(named: "onnx") else { return nil }
        let destination = context.outputDirectory.appendingPathComponent("finetune-checkpoint.onnx").standardizedFileURL
        do {
            try onnx.write(model, to: destination)
        } catch let error as NNPipeError {
            throw error.located(at: destination.path)
        }
        return destination
    }

    static func details(_ outcome: FineTuneOutcome) -> [(key: String, value: JSONValue)] {
        func rounded(_ value: Double) -> JSONValue { .number((value * 1e6).rounded() / 1e6) }
        let history: [JSONValue] = outcome.history.map { record in
            var members: [(String, JSONValue)] = [
                ("epoch", .number(Double(record.epoch))), ("steps", .number(Double(record.steps))),
                ("loss", rounded(record.trainingLoss)), ("lr", rounded(record.learningRate)),
                ("samples_per_second", .number(record.samplesPerSecond.rounded())),
            ]
            if let value = record.trainingAccuracy { members.append(("accuracy", rounded(value))) }
            if let value = record.validationLoss { members.append(("validation_loss", rounded(value))) }
            if let value = record.validationAccuracy { members.append(("validation_accuracy", rounded(value))) }
            if let value = record.sparsity { members.append(("sparsity", rounded(value))) }
            return .object(members)
        }
        var details: [(key: String, value: JSONValue)] = [
            ("output", .string(outcome.output)), ("steps", .number(Double(outcome.steps))),
            ("trainable_tensors", .number(Double(outcome.trainableTensors))),
            ("trainable_parameters", .number(Double(outcome.trainableParameters))),
            ("samples_per_second", .number(outcome.samplesPerSecond.rounded())), ("history", .array(history)),
        ]
        if let best = outcome.bestEpoch { details.append(("best_epoch", .number(Double(best)))) }
        if outcome.stoppedEarly { details.append(("stopped_early", .bool(true))) }
        if let sparsity = outcome.sparsity { details.append(("sparsity", rounded(sparsity))) }
        if outcome.quantizedRanges > 0 { details.append(("activation_ranges", .number(Double(outcome.quantizedRanges)))) }
        return details
    }
}
