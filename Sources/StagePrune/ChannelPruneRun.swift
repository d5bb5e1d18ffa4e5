import NNPipeCore

extension PruneStage {
    var channelCriterion: ChannelCriterion {
        switch criterion {
        case .l2: .l2
        case .bnScale: .batchNormScale
        case .taylor: .taylor
        case .l1: .l1
        }
    }

    func runChannelPruning(_ model: inout Model, context: StageContext) throws -> StageResult {
        let dependencies = ChannelDependencies(graph: model.graph, exclude: exclude)
        guard !dependencies.sources.isEmpty else {
            throw NNPipeError(.stageFailed, "the model has no prunable channels (no Conv, Gemm or MatMul with its own weight initializer)", path: path)
        }
        let statisticsBefore = ModelStatistics(model)
        let macsBefore = MACCounter.count(model.graph)
        let taylor = try criterion == .taylor ? measureTaylor(model, dependencies: dependencies, context: context) : nil
        let plan: ChannelPlan
        var pruned = model
        if let channelRatio {
            context.progress.update("removing \(PruneReport.percent(channelRatio)) of the channels")
            plan = try ChannelPlanner.plan(model.graph, dependencies: dependencies, ratio: channelRatio, criterion: channelCriterion, taylor: taylor, path: path)
            try ChannelSurgery.apply(plan, dependencies: dependencies, to: &pruned, mode: .remove)
        } else {
            (plan, pruned) = try searchRatio(model, dependencies: dependencies, taylor: taylor, macsBefore: macsBefore.total, context: context)
        }
        guard plan.removedUnitCount > 0 else {
            throw NNPipeError(.stageFailed, "no channel could be removed: \(plan.unitCount) removable channel groups\(plan.frozenReasons.isEmpty ? "" : "; kept because of " + plan.frozenReasons.prefix(5).joined(separator: ", "))", path: path)
        }
        try GraphCheck.validate(pruned)
        var warnings: [String] = []
        let proof = try proveEquivalence(original: model, pruned: pruned, plan: plan, dependencies: dependencies, context: context)
        if proof == nil { warnings.append("masked-vs-removed check skipped: nnpipe's runtime cannot run this model with a generated input") }
        let costs = try PruneReport.costs(
            before: model, after: pruned, weightBytes: statisticsBefore.totalBytes, macs: macsBefore.total,
            measureSize: measureSize, measureLatency: measureLatency, context: context)
        model = pruned
        let statisticsAfter = ModelStatistics(model)
        let macsAfter = MACCounter.count(model.graph)
        if let targetMACs, macsBefore.total > 0, Double(macsAfter.total) > targetMACs * Double(macsBefore.total) + 0.5 {
            throw NNPipeError(.stageFailed, "reached \(PruneReport.percent(Double(macsAfter.total) / Double(macsBefore.total))) of the MACs, asked at most \(PruneReport.percent(targetMACs))", path: path)
        }

        var details: [(key: String, value: JSONValue)] = [
            ("granularity", .string("channel")),
            ("criterion", .string(channelCriterion.rawValue)),
            ("channel_ratio", .number(plan.layers.isEmpty ? 0 : Double(plan.removedUnitCount) / Double(max(plan.unitCount, 1)))),
            ("dependency_groups", .number(Double(plan.groupCount))),
            ("removable_units", .number(Double(plan.unitCount))),
            ("removed_units", .number(Double(plan.removedUnitCount))),
        ]
        if let targetMACs { details.append(("target_macs", .number(targetMACs))) }
        if let taylor, let dataset {
            details.append(("taylor", .object([
                ("dataset", .string(dataset)), ("batches", .number(Double(taylor.batchCount))), ("mean_loss", .number(taylor.meanLoss)),
            ])))
        }
        details += PruneReport.modelFacts(before: statisticsBefore, after: statisticsAfter, macsBefore: macsBefore, macsAfter: macsAfter)
        details.append(("layers", .array(plan.layers.map { layer in
            .object([
                ("node", .string(layer.nodeName)),
                ("channels_before", .number(Double(layer.channelsBefore))),
                ("channels_after", .number(Double(layer.channelsAfter))),
                ("macs_before", .number(Double(macsBefore.perNode[layer.nodeName] ?? 0))),
                ("macs_after", .number(Double(macsAfter.perNode[layer.nodeName] ?? 0))),
            ])
        })))
        details.append(("kept_because", .array(plan.frozenReasons.map { .string($0) })))
        details.append(("equivalence_max_difference", proof.map { .number(Double($0)) } ?? .null))
        details += costs.details
        let macRatio = macsBefore.total == 0 ? 1 : Double(macsAfter.total) / Double(macsBefore.total)
        let parameterRatio = statisticsBefore.parameterCount == 0 ? 1 : Double(statisticsAfter.parameterCount) / Double(statisticsBefore.parameterCount)
        let removedSummary = "removed \(plan.removedUnitCount) of \(plan.unitCount) channel groups: parameters \(PruneReport.percent(parameterRatio)), MACs \(PruneReport.percent(macRatio)) of before"
        return StageResult(
            summary: costs.summary.isEmpty ? removedSummary : removedSummary + "; " + costs.summary,
            details: details,
            warnings: warnings + costs.warnings + (macsBefore.unknownNodes.isEmpty ? [] : ["MACs not counted for \(macsBefore.unknownNodes.count) layers with unknown shapes"]))
    }

    /// Taylor contributions over `batches` batches of the `dataset` option.
    private func measureTaylor(_ model: Model, dependencies: ChannelDependencies, context: StageContext) throws -> TaylorContributions {
        guard let dataset else { throw NNPipeError(.invalidManifest, "criterion taylor needs 'dataset'", path: "\(path).criterion") }
        let specification = try context.dataset(dataset)
        return try TaylorImportance.measure(
            model, dependencies: dependencies, dataset: specification, batches: taylorBatches, path: path, progress: context.progress)
    }

    /// Runs the masked model (same channels zeroed) and the pruned one on a seeded input; they
    /// must agree, or the dependency analysis missed a coupling. Nil when the runtime cannot run them.
    private func proveEquivalence(original: Model, pruned: Model, plan: ChannelPlan, dependencies: ChannelDependencies, context: StageContext) throws -> Float? {
        guard let feeds = RuntimeProbe.inputs(for: original) else { return nil }
        context.progress.update("checking the pruned model against the masked model")
        var masked = original
        try ChannelSurgery.apply(plan, dependencies: dependencies, to: &masked, mode: .mask)
        guard let (difference, magnitude) = try? RuntimeProbe.difference(masked, pruned, feeds: feeds) else { return nil }
        // Summation order differs once zero terms are gone; beyond float noise it is a real break.
        if !(difference <= 1e-4 * max(1, magnitude)) {
            throw NNPipeError(.internalError, "the pruned model's outputs differ from the masked model's by \(difference) (outputs up to \(magnitude)); the channel dependency analysis missed a coupling", path: path)
        }
        return difference
    }

    /// The smallest channel ratio whose pruned model keeps at most `target_macs` of the MACs.
    /// - Complexity: about 20 plan-and-apply rounds.
    private func searchRatio(
        _ model: Model, dependencies: ChannelDependencies, taylor: TaylorContributions?, macsBefore: Int, context: StageContext
    ) throws -> (ChannelPlan, Model) {
        guard let targetMACs, macsBefore > 0 else {
            throw NNPipeError(.stageFailed, "target_macs needs static shapes to count MACs; none could be derived", path: path)
        }
        let budget = targetMACs * Double(macsBefore)
        func attempt(_ ratio: Double) -> (ChannelPlan, Model, Int)? {
            guard let plan = try? ChannelPlanner.plan(model.graph, dependencies: dependencies, ratio: ratio, criterion: channelCriterion, taylor: taylor, path: path) else { return nil }
            var copy = model
            guard (try? ChannelSurgery.apply(plan, dependencies: dependencies, to: &copy, mode: .remove)) != nil else { return nil }
            return (plan, copy, MACCounter.count(copy.graph).total)
        }
        var low = 0.0
        var high = 1.0
        var best: (ChannelPlan, Model, Int)?
        var closest: Int?
        for round in 0..<20 {
            context.progress.update("searching a channel ratio for \(PruneReport.percent(targetMACs)) of the MACs", fraction: Double(round) / 20)
            let middle = (low + high) / 2
            if let result = attempt(middle) {
                closest = min(closest ?? Int.max, result.2)
                if Double(result.2) <= budget {
                    best = result
                    high = middle
                } else {
                    low = middle
                }
            } else {
                high = middle
            }
        }
        guard let best else {
            let reached = closest.map { PruneReport.percent(Double($0) / Double(macsBefore)) } ?? "100%"
            throw NNPipeError(.stageFailed, "target_macs \(targetMACs) is not reachable: the most channel pruning can do without emptying a layer keeps \(reached) of the MACs", path: path)
        }
        return (best.0, best.1)
    }
}
