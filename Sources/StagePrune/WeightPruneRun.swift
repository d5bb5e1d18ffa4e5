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
        model.annotations.pruningSchedule = (schedule ?? .constant(request.sparsity)).json
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
        details.append(("layers", .array(layers.map(PruneReport.layerJSON))))
        details.append(("skipped_layers", .array(selection.skipped.map {
            .object([("node", .string($0.layer.nodeName)), ("weight", .string($0.layer.weightName)), ("reason", .string($0.reason))])
        })))
        if let schedule { details.append(("schedule", schedule.json)) }
        let patternText = request.pattern.map { " in \($0) pattern" } ?? ""
        let summary = deferred
            ? "masks ready for \(selection.layers.count) layers; fine-tuning raises sparsity to \(PruneReport.percent(schedule!.finalSparsity))"
            : "pruned \(PruneReport.percent(achieved)) of \(PruneReport.count(total)) weights in \(selection.layers.count) layers\(patternText)"
        var warnings: [String] = []
        if !macsBefore.unknownNodes.isEmpty {
            warnings.append("MACs not counted for \(macsBefore.unknownNodes.count) layers with unknown shapes")
        }
        return StageResult(summary: summary, details: details, warnings: warnings)
    }
}

/// Formatting and shared facts for the stage's report.
enum PruneReport {
    static func percent(_ fraction: Double) -> String {
        let tenths = (fraction * 1000).rounded() / 10
        return "\(tenths)%"
    }

    static func count(_ value: Int) -> String {
        if value >= 1_000_000 { return "\((Double(value) / 100_000).rounded() / 10)M" }
        if value >= 10_000 { return "\((Double(value) / 100).rounded() / 10)K" }
        return "\(value)"
    }

    static func modelFacts(before: ModelStatistics, after: ModelStatistics, macsBefore: MACCounter.Count, macsAfter: MACCounter.Count) -> [(key: String, value: JSONValue)] {
        [
            ("parameters_before", .number(Double(before.parameterCount))),
            ("parameters_after", .number(Double(after.parameterCount))),
            ("non_zeros_before", .number(Double(before.nonZeroCount))),
            ("non_zeros_after", .number(Double(after.nonZeroCount))),
            ("macs_before", .number(Double(macsBefore.total))),
            ("macs_after", .number(Double(macsAfter.total))),
        ]
    }

    /// MACs when multiplications by pruned weights are skipped (dense MACs times each layer's density).
    static func effectiveMACs(_ count: MACCounter.Count, model: Model, layers: [LayerPruningResult]) -> Int {
        var total = Double(count.total)
        for layer in layers {
            guard let macs = count.perNode[layer.nodeName], layer.parameterCount > 0 else { continue }
            total -= Double(macs) * Double(layer.prunedCount) / Double(layer.parameterCount)
        }
        return Int(total.rounded())
    }

    static func layerJSON(_ layer: LayerPruningResult) -> JSONValue {
        .object([
            ("node", .string(layer.nodeName)),
            ("op", .string(layer.opType)),
            ("weight", .string(layer.weightName)),
            ("target_sparsity", layer.targetSparsity.map { .number($0) } ?? .null),
            ("achieved_sparsity", .number(layer.achievedSparsity)),
            ("parameters", .number(Double(layer.parameterCount))),
            ("non_zeros_before", .number(Double(layer.nonZerosBefore))),
            ("non_zeros_after", .number(Double(layer.nonZerosAfter))),
        ])
    }
}
