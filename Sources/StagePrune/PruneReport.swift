import NNPipeCore

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

    /// Median runtime latency before and after, or nulls when the runtime cannot run the model.
    static func latency(before: Model, after: Model, context: StageContext) -> [(key: String, value: JSONValue)] {
        guard let feeds = RuntimeProbe.inputs(for: before) else {
            return [("latency_ms_before", .null), ("latency_ms_after", .null)]
        }
        context.progress.update("timing the model before and after on nnpipe's runtime")
        return [
            ("latency_ms_before", RuntimeProbe.latency(before, feeds: feeds).map { .number($0) } ?? .null),
            ("latency_ms_after", RuntimeProbe.latency(after, feeds: feeds).map { .number($0) } ?? .null),
        ]
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
