import NNPipeCore

/// The `prune` stage: magnitude pruning of Conv/Gemm/MatMul weights (unstructured, block or N:M)
/// or structured removal of whole channels that physically shrinks the graph.
/// Register it with `StageDescriptor(PruneStage.self)`.
public struct PruneStage: Stage {
    public static let kind = "prune"
    public static let summary = "Zero the smallest weights (unstructured, block, N:M) or remove whole channels"
    public static let descriptor = StageDescriptor(PruneStage.self)

    public static let options: [OptionSpec] = [
        OptionSpec("sparsity", .number, minimum: 0, maximum: 1, exclusiveMaximum: true,
                   help: "fraction of prunable weights to zero (granularity weight); N:M patterns imply 1 - N/M"),
        OptionSpec("scope", .choice(["layer", "global"]), default: .string("layer"),
                   help: "layer: every layer reaches the sparsity; global: rank all prunable weights together"),
        OptionSpec("pattern", .choice(SparsityPattern.names),
                   help: "block (1x4, 4x1) or N:M (2:4, 4:8) sparsity along the input-channel axis"),
        OptionSpec("granularity", .choice(["weight", "channel"]), default: .string("weight"),
                   help: "weight: zero individual weights; channel: remove whole output channels and shrink the graph"),
        OptionSpec("criterion", .choice(["l1", "l2", "bn_scale", "taylor"]), default: .string("l1"),
                   help: "channel importance: filter L1 or L2 norm, |BatchNormalization scale|, or Taylor (needs dataset)"),
        OptionSpec("channel_ratio", .number, minimum: 0, maximum: 1, exclusiveMinimum: true, exclusiveMaximum: true,
                   help: "fraction of channels to remove in every dependency group (granularity channel)"),
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
        ]), help: "how fine-tuning raises sparsity; the stage prunes to the schedule's sparsity at step 0 now"),
        OptionSpec("include_first_last", .boolean, default: .bool(false),
                   help: "also prune the first and last prunable layers (granularity weight)"),
        OptionSpec("prune_depthwise", .boolean, default: .bool(false),
                   help: "also prune depthwise convolution weights (granularity weight)"),
        OptionSpec("dataset", .datasetReference, help: "data for the taylor criterion"),
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

    public init(options: StageOptions) throws {
        path = options.path
        exclude = options.strings("exclude") ?? []
        includeFirstLast = options.bool("include_first_last") ?? false
        pruneDepthwise = options.bool("prune_depthwise") ?? false
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
            for name in ["channel_ratio", "target_macs"] where options.has(name) {
                throw options.error(name, "applies to granularity 'channel'; this stage prunes individual weights (granularity 'weight')")
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
            if options.has("channel_ratio") == options.has("target_macs") {
                throw options.error(options.has("channel_ratio") ? "target_macs" : "channel_ratio",
                                    "granularity 'channel' needs exactly one of channel_ratio or target_macs")
            }
            if criterion == .taylor {
                guard options.has("dataset") else {
                    throw options.error("criterion", "taylor ranks channels by gradient x activation and needs 'dataset'")
                }
                throw NNPipeError(.unsupported, "criterion 'taylor' is not implemented yet (it needs gradients from the runtime); use l1, l2 or bn_scale", path: "\(options.path).criterion")
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
