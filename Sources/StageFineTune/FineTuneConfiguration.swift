import NNPipeCore
import NNPipeTraining

/// The finetune stage's options after validation, in the trainer's terms.
public struct FineTuneConfiguration: Sendable {
    public enum LossKind: String, Sendable { case crossEntropy = "cross_entropy", meanSquaredError = "mse" }
    /// `prune_schedule`: follow the model's schedule, ignore it, or use this one.
    public enum PruneScheduleChoice: Sendable, Equatable {
        case followModel
        case off
        case given(SparsitySchedule)
    }
    public struct Distillation: Sendable, Equatable {
        public var temperature: Float
        public var alpha: Float
        /// A model file to learn from (relative to the manifest); nil is the pipeline's input model.
        public var teacher: String?
    }

    public var dataset: String
    public var validation: String?
    public var epochs: Int
    /// Total optimiser steps; overrides `epochs` when set.
    public var steps: Int?
    public var batchSize: Int
    public var optimizer: Optimizer
    public var learningRate: Double
    public var schedule: LearningRateSchedule.Kind
    public var warmupSteps: Int
    public var stepSize: Int
    public var gamma: Double
    public var loss: LossKind
    public var seed: UInt64
    public var freeze: [String]
    public var quantizationAware: Bool
    public var distillation: Distillation?
    public var pruneSchedule: PruneScheduleChoice
    /// Epochs without a better validation score before training stops.
    public var earlyStoppingPatience: Int?

    public init(options: StageOptions) throws {
        dataset = options.string("dataset") ?? ""
        validation = options.string("validation")
        epochs = options.integer("epochs") ?? 1
        steps = options.integer("steps")
        batchSize = options.integer("batch_size") ?? 32
        let kind = Optimizer.Kind(rawValue: options.string("optimizer") ?? "adam") ?? .adam
        optimizer = Optimizer(
            kind: kind, momentum: Float(options.double("momentum") ?? 0.9), nesterov: options.bool("nesterov") ?? false,
            weightDecay: Float(options.double("weight_decay") ?? 0))
        if optimizer.nesterov && (kind != .sgd || optimizer.momentum == 0) {
            throw options.error("nesterov", "nesterov needs optimizer 'sgd' with momentum above 0")
        }
        learningRate = options.double("lr") ?? 0.001
        schedule = LearningRateSchedule.Kind(rawValue: options.string("schedule") ?? "constant") ?? .constant
        warmupSteps = options.integer("warmup_steps") ?? 0
        stepSize = options.integer("step_size") ?? 100
        gamma = options.double("gamma") ?? 0.1
        loss = LossKind(rawValue: options.string("loss") ?? "cross_entropy") ?? .crossEntropy
        seed = UInt64(max(options.integer("seed") ?? 0, 0))
        freeze = options.strings("freeze") ?? []
        quantizationAware = options.bool("qat") ?? false
        if let distill = options.object("distill"), !distill.isNull {
            let temperature = distill["temperature"]?.numberValue ?? 4
            let alpha = distill["alpha"]?.numberValue ?? 0.5
            guard temperature > 0 else { throw options.error("distill", "temperature must be above 0, got \(temperature)") }
            guard (0...1).contains(alpha) else { throw options.error("distill", "alpha must be in [0, 1], got \(alpha)") }
            var teacher: String?
            if let value = distill["teacher"], !value.isNull {
                guard let text = value.stringValue, !text.isEmpty else { throw options.error("distill", "teacher must be \"input\" or a model file path") }
                teacher = text == "input" ? nil : text
            }
            distillation = Distillation(temperature: Float(temperature), alpha: Float(alpha), teacher: teacher)
        }
        switch options.object("prune_schedule") {
        case let value? where value.boolValue == false: pruneSchedule = .off
        case let value? where value.objectValue != nil:
            pruneSchedule = .given(try SparsitySchedule(json: value, path: "\(options.path).prune_schedule"))
        default: pruneSchedule = .followModel
        }
        earlyStoppingPatience = options.integer("early_stopping")
        if earlyStoppingPatience != nil && validation == nil {
            throw options.error("early_stopping", "early stopping watches a validation set: name one in 'validation'")
        }
        if distillation != nil && loss == .meanSquaredError {
            throw options.error("distill", "distillation matches class distributions; it needs loss 'cross_entropy'")
        }
    }
}

/// `freeze` patterns: node or initializer names where `*` matches any run of characters.
enum NamePattern {
    static func matches(_ name: String, pattern: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return name == pattern }
        var rest = Substring(name)
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let found = rest.range(of: part) else { return false }
            rest = rest[found.upperBound...]
        }
        let last = parts[parts.count - 1]
        return rest.hasSuffix(last) && rest.count >= last.count
    }
}
