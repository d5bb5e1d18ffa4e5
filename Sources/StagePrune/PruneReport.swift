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

    /// Human-readable byte count (1.2 MB, 340 KB, 812 B), decimal units as `ls -h --si`.
    static func bytes(_ value: Int) -> String {
        if value >= 1_000_000 { return "\((Double(value) / 100_000).rounded() / 10) MB" }
        if value >= 1_000 { return "\((Double(value) / 100).rounded() / 10) KB" }
        return "\(value) B"
    }

    static func milliseconds(_ value: Double) -> String {
        value >= 10 ? "\(Int(value.rounded())) ms" : "\((value * 100).rounded() / 100) ms"
    }

    /// What pruning bought: ONNX file and gzip sizes, and runtime latency, before and after.
    struct Costs {
        var details: [(key: String, value: JSONValue)] = []
        /// "ONNX 1.2 MB -> 1.2 MB, gzip 1.1 MB -> 240 KB; latency 3.1 -> 1.2 ms" (empty parts left out).
        var summary = ""
        var warnings: [String] = []
    }

    /// Measures both models. `measureSize`/`measureLatency` nil means automatic: sizes up to
    /// `ModelFootprint.automaticSizeLimit` bytes of weights, latency up to
    /// `ModelFootprint.automaticLatencyLimit` MACs, so a large model is not written or run twice by default.
    static func costs(
        before: Model, after: Model, weightBytes: Int, macs: Int, measureSize: Bool?, measureLatency: Bool?,
        context: StageContext
    ) throws -> Costs {
        var costs = Costs()
        var parts: [String] = []

        var sizes: (ModelFootprint.Sizes, ModelFootprint.Sizes)?
        if measureSize ?? (weightBytes <= ModelFootprint.automaticSizeLimit) {
            context.progress.update("writing the model before and after as ONNX to measure file and gzip sizes")
            if let first = try ModelFootprint.measure(before, formats: context.formats),
               let second = try ModelFootprint.measure(after, formats: context.formats)
            {
                sizes = (first, second)
            } else {
                costs.warnings.append("file sizes not measured: this build has no ONNX format")
            }
        } else if measureSize == nil {
            costs.warnings.append("file sizes not measured: \(bytes(weightBytes)) of weights is above the automatic limit; set measure_size true to measure them")
        }
        costs.details += [
            ("onnx_bytes_before", sizes.map { .number(Double($0.0.bytes)) } ?? .null),
            ("onnx_bytes_after", sizes.map { .number(Double($0.1.bytes)) } ?? .null),
            ("gzip_bytes_before", sizes.map { .number(Double($0.0.gzipBytes)) } ?? .null),
            ("gzip_bytes_after", sizes.map { .number(Double($0.1.gzipBytes)) } ?? .null),
        ]
        if let (first, second) = sizes {
            parts.append("ONNX \(bytes(first.bytes)) -> \(bytes(second.bytes)), gzip \(bytes(first.gzipBytes)) -> \(bytes(second.gzipBytes))")
        }

        var latency: (Double?, Double?) = (nil, nil)
        if measureLatency ?? (macs <= ModelFootprint.automaticLatencyLimit) {
            if let feeds = RuntimeProbe.inputs(for: before) {
                context.progress.update("timing the model before and after on nnpipe's runtime")
                if let measured = RuntimeProbe.latencies(before, after, feeds: feeds) { latency = (measured.first, measured.second) }
            }
            if latency.0 == nil || latency.1 == nil {
                costs.warnings.append("latency not measured: nnpipe's runtime cannot run this model with a generated input")
            }
        } else if measureLatency == nil {
            costs.warnings.append("latency not measured: \(count(macs)) MACs is above the automatic limit; set measure_latency true to time it")
        }
        costs.details += [
            ("latency_ms_before", latency.0.map { .number($0) } ?? .null),
            ("latency_ms_after", latency.1.map { .number($0) } ?? .null),
        ]
        if let first = latency.0, let second = latency.1 {
            parts.append("latency \(milliseconds(first)) -> \(milliseconds(second))")
        }
        costs.summary = parts.joined(separator: "; ")
        return costs
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
