import NNPipeCore

/// The `prune` stage: magnitude pruning of Conv/Gemm/MatMul weights (unstructured, block or N:M)
/// or structured removal of whole channels that physically shrinks the graph.
/// Register it with `StageDescriptor(PruneStage.self)`.
///
/// - Weights: every selected layer (layer scope) or the pool of all of them (global scope)
///   loses exactly round_half_even(sparsity · count) weights; among equal magnitudes the lower
///   flat index (then the earlier layer) goes first, so ties never make it undershoot. The first
///   and last prunable layers, biases, BatchNormalization and depthwise weights stay unless asked.
///   Keep masks go to `annotations.pruningMasks`, the schedule to `annotations.pruningSchedule`.
/// - Channels: layers whose channels are coupled (residual Add/Mul, Concat, Split, Slice, depthwise,
///   BN, Flatten -> Dense) form one dependency group; `channel_ratio` of each group's channel sets
///   go, lowest criterion first (`taylor` measures the loss's first-order change on `dataset`, see
///   `TaylorImportance`). The stage proves the result on the runtime: the shrunk model's outputs
///   equal the masked model's (same channels zeroed).
/// - Both report ONNX file and gzip -9 sizes and runtime latency before and after (`ModelFootprint`),
///   skipped by default for large models so the stage does not write or run them twice.
/// - It throws rather than doing less: no prunable weights, 0 weights pruned, a target missed
///   beyond rounding, a pattern that does not tile a weight, or a layer left with no channel.
public struct PruneStage: Stage {
    public static let kind = "prune"
    public static let summary = "Zero the smallest weights (unstructured, block, N:M) or remove whole channels and shrink the model"
    public static let descriptor = StageDescriptor(PruneStage.self)

    public static let options: [OptionSpec] = [
        OptionSpec("sparsity", .number, minimum: 0, maximum: 1, exclusiveMaximum: true,
                   help: "fraction of prunable weights to zero, exactly round-half-even of the count, ties to the lower index (granularity weight); N:M patterns imply 1 - N/M"),
        OptionSpec("scope", .choice(["layer", "global"]), default: .string("layer"),
                   help: "layer: every layer reaches the sparsity; global: rank all prunable weights together"),
        OptionSpec("pattern", .choice(SparsityPattern.names),
                   help: "block (1x4, 4x1) or N:M (2:4, 4:8) sparsity along the input-channel axis"),
        OptionSpec("granularity", .choice(["weight", "channel"]), default: .string("weight"),
                   help: "weight: zero individual weights; channel: remove whole output channels and shrink the graph"),
        OptionSpec("criterion", .choice(["l1", "l2", "bn_scale", "taylor"]), default: .string("l1"),
                   help: "channel importance: filter L1 or L2 norm, BatchNormalization scale magnitude, or taylor: first-order loss change of removing the channel, (sum of w x dL/dw over the weights that read it)^2 averaged over batches of dataset (needs labels)"),
        OptionSpec("channel_ratio", .number, minimum: 0, maximum: 1, exclusiveMinimum: true, exclusiveMaximum: true,
                   help: "fraction of the channels to remove in every dependency group of coupled layers (granularity channel)"),
        OptionSpec("target_macs", .number, minimum: 0, maximum: 1, exclusiveMinimum: true, exclusiveMaximum: true,
                   help: "keep at most this fraction of the model's multiply-accumulates (granularity channel)"),
        OptionSpec("exclude", .stringList,
                   help: "node or weight names (with * wildcards) or op types to leave untouched"),
        OptionSpec("max_sparsity", .number, minimum: 0, maximum: 1, exclusiveMinimum: true,
                   help: "upper bound on any one layer's sparsity (global scope)"),
        OptionSpec("schedule", .object([
            OptionSpec("kind", .choice(["constant", "polynomial"]), default: .string("constant"), help: "constant or polynomial decay (Zhu & Gupta 2017)"),
            OptionSpec("initial_sparsity", .number, minimum: 0, maximum: 1, exclusiveMaximum: true, help: "sparsity at begin_step (polynomial)"),
            OptionSpec("final_sparsity", .number, minimum: 0, maximum: 1, exclusiveMaximum: true, help: "sparsity at end_step; defaults to sparsity"),
            OptionSpec("begin_step", .integer, minimum: 0, help: "first training step that prunes"),
            OptionSpec("end_step", .integer, minimum: 0, help: "last training step that prunes"),
            OptionSpec("frequency", .integer, minimum: 1, help: "steps between mask updates"),
            OptionSpec("power", .number, minimum: 0, exclusiveMinimum: true, help: "decay exponent (3)"),
        ]), help: "gradual pruning for fine-tuning: kind (constant or polynomial), initial_sparsity, final_sparsity, begin_step, end_step, frequency, power (3); the stage prunes to the step-0 sparsity now"),
        OptionSpec("include_first_last", .boolean, default: .bool(false),
                   help: "also prune the first and last prunable layers (granularity weight)"),
        OptionSpec("prune_depthwise", .boolean, default: .bool(false),
                   help: "also prune depthwise convolution weights (granularity weight)"),
        OptionSpec("dataset", .datasetReference, help: "labelled data for the taylor criterion (granularity channel)"),
        // No declared defaults: given without criterion taylor they are mistakes worth reporting.
        OptionSpec("batches", .integer, minimum: 1,
                   help: "batches of dataset (of its batch_size) the taylor criterion accumulates over (8)"),
        OptionSpec("measure_size", .boolean,
                   help: "report ONNX file and gzip -9 sizes before and after (default: when weights take at most 256 MiB)"),
        OptionSpec("measure_latency", .boolean,
                   help: "report median latency on nnpipe's runtime before and after, runs of the two interleaved: at least 5 runs each and 100 ms in all, after 50 ms of warm-up (default: up to 1G MACs)"),
    ]

    public enum Granularity: String, Sendable { case weight, channel }
    public enum Criterion: String, Sendable { case l1, l2, bnScale = "bn_scale", taylor }

    public let path: String
    public let granularity: Granularity
    public let weightRequest: WeightPruningRequest
    public let schedule: PruningSchedule?
    public let criterion: Criterion
    public let channelRatio: Double?
    public let targetMACs: Double?
    public let exclude: [String]
    public let includeFirstLast: Bool
    public let pruneDepthwise: Bool
    /// Taylor importance data: dataset name and how many of its batches to use.
    public let dataset: String?
    public let taylorBatches: Int
    /// Nil: automatic (see `ModelFootprint`).
    public let measureSize: Bool?
    public let measureLatency: Bool?

    public init(options: StageOptions) throws {
        path = options.path
        exclude = options.strings("exclude") ?? []
        includeFirstLast = options.bool("include_first_last") ?? false
        pruneDepthwise = options.bool("prune_depthwise") ?? false
        dataset = options.string("dataset")
        taylorBatches = options.integer("batches") ?? 8
        measureSize = options.bool("measure_size")
        measureLatency = options.bool("measure_latency")
        for (name, low, high) in [("sparsity", 0.0, 1.0), ("channel_ratio", 0.0, 1.0), ("target_macs", 0.0, 1.0)] {
            if let value = options.double(name), !(value >= low && value < high) || (name != "sparsity" && value == 0) {
                throw options.error(name, "must be in \(name == "sparsity" ? "[0, 1)" : "(0, 1)"), got \(value)")
            }
        }
        if let cap = options.double("max_sparsity"), !(cap > 0 && cap <= 1) {
            throw options.error("max_sparsity", "must be in (0, 1], got \(cap)")
        }
        granularity = Granularity(rawValue: options.string("granularity") ?? "weight") ?? .weight
        criterion = Criterion(rawValue: options.string("criterion") ?? "l1") ?? .l1
        channelRatio = options.double("channel_ratio")
        targetMACs = options.double("target_macs")

        let scope = WeightPruningRequest.Scope(rawValue: options.string("scope") ?? "layer") ?? .layer
        let patternText = options.string("pattern")
        let pattern = try patternText.map { text in
            guard let pattern = SparsityPattern(text) else {
                throw options.error("pattern", "'\(text)' is not one of \(SparsityPattern.names.joined(separator: ", "))")
            }
            return pattern
        }
        var sparsity = options.double("sparsity")

        switch granularity {
        case .weight:
            for name in ["channel_ratio", "target_macs", "dataset", "batches"] where options.has(name) {
                throw options.error(name, "applies to granularity 'channel'; this stage prunes individual weights (granularity 'weight')")
            }
            if criterion != .l1 {
                throw options.error("criterion", "applies to granularity 'channel'; weights are ranked by magnitude")
            }
            if let implied = pattern?.impliedSparsity {
                if let sparsity, abs(sparsity - implied) > 1e-9 {
                    throw options.error("sparsity", "pattern \(patternText!) fixes sparsity at \(implied); got \(sparsity) (leave sparsity out)")
                }
                sparsity = implied
            }
        case .channel:
            for name in ["sparsity", "pattern", "max_sparsity", "schedule"] where options.has(name) {
                throw options.error(name, "applies to granularity 'weight'; channel pruning takes channel_ratio or target_macs")
            }
            for name in ["include_first_last", "prune_depthwise"] where options.bool(name) == true {
                throw options.error(name, "applies to granularity 'weight'; channel pruning always keeps graph inputs and outputs and prunes depthwise convs with their producers")
            }
            if options.string("scope") == "global" {
                throw options.error("scope", "applies to granularity 'weight'; channel_ratio is taken in every dependency group")
            }
            if options.has("channel_ratio") == options.has("target_macs") {
                throw options.error(options.has("channel_ratio") ? "target_macs" : "channel_ratio",
                                    "granularity 'channel' needs exactly one of channel_ratio or target_macs")
            }
            if criterion == .taylor {
                guard options.has("dataset") else {
                    throw options.error("criterion", "taylor ranks channels by weight x gradient of the loss and needs 'dataset' (a manifest dataset with labels)")
                }
            } else {
                for name in ["dataset", "batches"] where options.has(name) {
                    throw options.error(name, "applies to criterion 'taylor'; criterion '\(criterion.rawValue)' needs no data")
                }
            }
        }

        if let scheduleValue = options.object("schedule"), !scheduleValue.isNull {
            guard var parsed = PruningSchedule(json: scheduleValue, defaultFinalSparsity: sparsity) else {
                throw options.error("schedule", "needs final_sparsity (or a top-level sparsity)")
            }
            if scheduleValue["kind"] == nil { parsed.kind = .constant }
            if let sparsity, abs(parsed.finalSparsity - sparsity) > 1e-9 {
                throw options.error("schedule", "final_sparsity \(parsed.finalSparsity) differs from sparsity \(sparsity); give one of them")
            }
            if parsed.kind == .polynomial {
                if parsed.endStep <= parsed.beginStep {
                    throw options.error("schedule", "end_step (\(parsed.endStep)) must be after begin_step (\(parsed.beginStep))")
                }
                if parsed.initialSparsity > parsed.finalSparsity {
                    throw options.error("schedule", "initial_sparsity \(parsed.initialSparsity) is above final_sparsity \(parsed.finalSparsity)")
                }
            }
            sparsity = parsed.finalSparsity
            schedule = parsed
        } else {
            schedule = nil
        }
        if granularity == .weight, sparsity == nil {
            throw options.error("sparsity", "is required for granularity 'weight' (or give an N:M pattern or a schedule with final_sparsity)")
        }
        if scope == .layer, let cap = options.double("max_sparsity"), let sparsity, cap < sparsity {
            throw options.error("max_sparsity", "\(cap) is below sparsity \(sparsity); in layer scope every layer must reach the sparsity")
        }
        weightRequest = WeightPruningRequest(
            sparsity: sparsity ?? 0, scope: scope, pattern: pattern, maxSparsity: options.double("max_sparsity"))
    }

    public func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        switch granularity {
        case .weight: try runWeightPruning(&model, context: context)
        case .channel: try runChannelPruning(&model, context: context)
        }
    }
}
