import NNPipeCore

extension PruneStage {
    /// The sparsity the stage reaches now: the schedule's value at step 0 (fine-tuning does the rest).
    var sparsityNow: Double {
        schedule.map { $0.kind == .polynomial ? $0.sparsity(at: $0.beginStep) : $0.finalSparsity } ?? weightRequest.sparsity
    }

    func runWeightPruning(_ model: inout Model, context: StageContext) throws -> StageResult {
        let selection = PrunableWeights.select(
            in: model.graph, exclude: exclude, includeFirstLast: includeFirstLast, pruneDepthwise: pruneDepthwise)
        guard !selection.layers.isEmpty else {
            let reasons = selection.skipped.map { "\($0.layer.nodeName): \($0.reason)" }
            throw NNPipeError(.stageFailed, reasons.isEmpty
                ? "the model has no prunable weights (no Conv, Gemm or MatMul with a floating-point weight initializer)"
                : "no prunable weights left: " + reasons.joined(separator: "; "), path: path)
        }
        let statisticsBefore = ModelStatistics(model)
        let macsBefore = MACCounter.count(model.graph)
        let original = model
        var request = weightRequest
        request.sparsity = sparsityNow
        context.progress.update("pruning \(selection.layers.count) layers to \(PruneReport.percent(request.sparsity)) sparsity")
        let layers = try WeightPruning.prune(&model, layers: selection.layers, request: request, optionsPath: path)

        let total = layers.reduce(0) { $0 + $1.parameterCount }
        let pruned = layers.reduce(0) { $0 + $1.prunedCount }
        let achieved = total == 0 ? 0 : Double(pruned) / Double(total)
        let deferred = schedule?.kind == .polynomial && request.sparsity == 0
        if pruned == 0 && !deferred {
            throw NNPipeError(.stageFailed, "pruned 0 of \(total) weights: sparsity \(request.sparsity) rounds to no weight in any layer", path: path)
        }
        let tolerance = WeightPruning.roundingTolerance(layers: selection.layers, request: request)
        if achieved + tolerance < request.sparsity {
            let capped = request.maxSparsity.map { " with max_sparsity \($0)" } ?? ""
            throw NNPipeError(.stageFailed, "reached \(PruneReport.percent(achieved)) sparsity over prunable weights, asked \(PruneReport.percent(request.sparsity))\(capped)", path: path)
        }
        // The schedule plus how this stage ranked, so fine-tuning re-prunes the same way.
        var annotation = (schedule ?? .constant(request.sparsity)).json
        if case .object(var members) = annotation.kind {
            members.append((key: "scope", value: .string(request.scope.rawValue)))
            if let pattern = request.pattern { members.append((key: "pattern", value: .string(pattern.description))) }
            annotation = JSONValue(.object(members))
        }
        model.annotations.pruningSchedule = annotation
        let statisticsAfter = ModelStatistics(model)
        let macsAfter = MACCounter.count(model.graph)

        var details: [(key: String, value: JSONValue)] = [
            ("granularity", .string("weight")),
            ("scope", .string(request.pattern.map { if case .nOfM = $0 { "layer" } else { request.scope.rawValue } } ?? request.scope.rawValue)),
            ("pattern", request.pattern.map { .string($0.description) } ?? .null),
            ("target_sparsity", .number(request.sparsity)),
            ("achieved_sparsity", .number(achieved)),
            ("prunable_parameters", .number(Double(total))),
            ("pruned_parameters", .number(Double(pruned))),
        ]
        details += PruneReport.modelFacts(before: statisticsBefore, after: statisticsAfter, macsBefore: macsBefore, macsAfter: macsAfter)
        details.append(("sparse_macs_after", .number(Double(PruneReport.effectiveMACs(macsAfter, model: model, layers: layers)))))
        let costs = try PruneReport.costs(
            before: original, after: model, weightBytes: statisticsBefore.totalBytes, macs: macsBefore.total,
            measureSize: measureSize, measureLatency: measureLatency, context: context)
        details += costs.details
        details.append(("layers", .array(layers.map(PruneReport.layerJSON))))
        details.append(("skipped_layers", .array(selection.skipped.map {
            .object([("node", .string($0.layer.nodeName)), ("weight", .string($0.layer.weightName)), ("reason", .string($0.reason))])
        })))
        if let schedule { details.append(("schedule", schedule.json)) }
        let patternText = request.pattern.map { " in \($0) pattern" } ?? ""
        let prunedSummary = deferred
            ? "masks ready for \(selection.layers.count) layers; fine-tuning raises sparsity to \(PruneReport.percent(schedule!.finalSparsity))"
            : "pruned \(PruneReport.percent(achieved)) of \(PruneReport.count(total)) weights in \(selection.layers.count) layer\(selection.layers.count == 1 ? "" : "s")\(patternText)"
        let summary = costs.summary.isEmpty ? prunedSummary : prunedSummary + "; " + costs.summary
        var warnings = costs.warnings
        if !macsBefore.unknownNodes.isEmpty {
            warnings.append("MACs not counted for \(macsBefore.unknownNodes.count) layers with unknown shapes")
        }
        return StageResult(summary: summary, details: details, warnings: warnings)
    }
}
