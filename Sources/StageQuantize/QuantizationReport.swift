import NNPipeCore

/// The stage's report: one row per layer (scheme, scale range, SQNR, bytes) and model sizes.
struct QuantizationReport {
    var configuration: QuantizeConfiguration
    var layers: [LayerQuantization]
    var bytesBefore: Int
    var bytesAfter: Int
    var notes: [String]

    func result() -> StageResult {
        let quantized = layers.filter { !$0.keptFloat }
        let kept = layers.count - quantized.count
        let ratio = bytesBefore == 0 ? 1 : Double(bytesAfter) / Double(bytesBefore)
        let activations = configuration.activations.map { ", \($0) activations" } ?? ""
        var summary = "\(configuration.mode.rawValue) \(configuration.format.rawValue): \(quantized.count) layers to \(configuration.weights)\(activations); weights \(ByteCountText.format(bytesBefore)) -> \(ByteCountText.format(bytesAfter)) (\(String(format: "%.2f", ratio))x)"
        if kept > 0 { summary += ", \(kept) kept in float" }
        let rows: [JSONValue] = layers.map { layer in
            var members: [(String, JSONValue)] = [
                ("node", .string(layer.node)), ("op_type", .string(layer.opType)), ("weight", .string(layer.weight)),
                ("scheme", .string(layer.scheme)),
                ("sqnr_db", layer.signalToNoise.isFinite ? .number((layer.signalToNoise * 100).rounded() / 100) : .null),
                ("bytes_before", .number(Double(layer.bytesBefore))), ("bytes_after", .number(Double(layer.bytesAfter))),
                ("kept_float", .bool(layer.keptFloat)),
            ]
            if let low = layer.scaleMinimum, let high = layer.scaleMaximum {
                members.append(("scale_range", .array([.number(Double(low)), .number(Double(high))])))
            }
            return .object(members)
        }
        var warnings = notes
        if let worst = quantized.min(by: { $0.signalToNoise < $1.signalToNoise }), worst.signalToNoise < 20 {
            warnings.append("\(worst.node) has weight SQNR \(QuantizationRewriter.format(worst.signalToNoise)) dB; consider per_channel, a wider type, or keep_float_below_sqnr")
        }
        return StageResult(
            summary: summary,
            details: [
                ("mode", .string(configuration.mode.rawValue)), ("format", .string(configuration.format.rawValue)),
                ("weights", .string(configuration.weights.description)),
                ("activations", configuration.activations.map { .string($0.rawValue) } ?? .null),
                ("weight_bytes_before", .number(Double(bytesBefore))), ("weight_bytes_after", .number(Double(bytesAfter))),
                ("layers", .array(rows)),
            ],
            warnings: warnings)
    }
}
