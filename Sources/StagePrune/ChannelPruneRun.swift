import NNPipeCore

extension PruneStage {
    var channelCriterion: ChannelCriterion {
        switch criterion {
        case .l2: .l2
        case .bnScale: .batchNormScale
        default: .l1
        }
    }

    func runChannelPruning(_ model: inout Model, context: StageContext) throws -> StageResult {
        let dependencies = ChannelDependencies(graph: model.graph, exclude: exclude)
        guard !dependencies.sources.isEmpty else {
            throw NNPipeError(.stageFailed, "the model has no prunable channels (no Conv, Gemm or MatMul with its own weight initializer)", path: path)
        }
        let statisticsBefore = ModelStatistics(model)
        let macsBefore = MACCounter.count(model.graph)
        let plan: ChannelPlan
        var pruned = model
        if let channelRatio {
            context.progress.update("removing \(PruneReport.percent(channelRatio)) of the channels")
            plan = try ChannelPlanner.plan(model.graph, dependencies: dependencies, ratio: channelRatio, criterion: channelCriterion, path: path)
            try ChannelSurgery.apply(plan, dependencies: dependencies, to: &pruned, mode: .remove)
        } else {
            (plan, pruned) = try searchRatio(model, dependencies: dependencies, macsBefore: macsBefore.total, context: context)
        }
        guard plan.removedUnitCount > 0 else {
            throw NNPipeError(.stageFailed, "no channel could be removed: \(plan.unitCount) removable channel groups\(plan.frozenReasons.isEmpty ? "" : "; kept because of " + plan.frozenReasons.prefix(5).joined(separator: ", "))", path: path)
        }
        try GraphCheck.validate(pruned)
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
        let macRatio = macsBefore.total == 0 ? 1 : Double(macsAfter.total) / Double(macsBefore.total)
        let parameterRatio = statisticsBefore.parameterCount == 0 ? 1 : Double(statisticsAfter.parameterCount) / Double(statisticsBefore.parameterCount)
        return StageResult(
            summary: "removed \(plan.removedUnitCount) of \(plan.unitCount) channel groups: parameters \(PruneReport.percent(parameterRatio)), MACs \(PruneReport.percent(macRatio)) of before",
            details: details,
            warnings: macsBefore.unknownNodes.isEmpty ? [] : ["MACs not counted for \(macsBefore.unknownNodes.count) layers with unknown shapes"])
    }

    /// The smallest channel ratio whose pruned model keeps at most `target_macs` of the MACs.
    /// - Complexity: about 20 plan-and-apply rounds.
    private func searchRatio(_ model: Model, dependencies: ChannelDependencies, macsBefore: Int, context: StageContext) throws -> (ChannelPlan, Model) {
        guard let targetMACs, macsBefore > 0 else {
            throw NNPipeError(.stageFailed, "target_macs needs static shapes to count MACs; none could be derived", path: path)
        }
        let budget = targetMACs * Double(macsBefore)
        func attempt(_ ratio: Double) -> (ChannelPlan, Model, Int)? {
            guard let plan = try? ChannelPlanner.plan(model.graph, dependencies: dependencies, ratio: ratio, criterion: channelCriterion, path: path) else { return nil }
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
