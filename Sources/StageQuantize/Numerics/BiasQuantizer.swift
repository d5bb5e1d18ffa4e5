/// Bias to int32 for QLinear ops and QDQ bias DequantizeLinear nodes.
public enum BiasQuantizer {
    /// The bias scale onnxruntime stores: the float32 product input scale · weight scale.
    @inlinable
    public static func scale(input: Float, weight: Float) -> Float { input * weight }

    /// round_half_even(f64(b) / f64(biasScale)) clamped to int32, biasScale = f32(sx · sw) as
    /// onnxruntime 1.32's `quantize_bias_static_impl` computes it; a zero scale gives 0.
    @inlinable
    public static func quantize(_ bias: Float, biasScale: Float) -> Int32 {
        guard biasScale != 0 else { return 0 }
        let quotient = (Double(bias) / Double(biasScale)).rounded(.toNearestOrEven)
        if quotient.isNaN { return 0 }
        return Int32(Swift.min(Swift.max(quotient, Double(Int32.min)), Double(Int32.max)))
    }

    /// A whole bias vector; `weightScales` has one entry (per-tensor) or one per output channel.
    public static func quantize(_ bias: [Float], inputScale: Float, weightScales: [Float]) -> (values: [Int32], scales: [Float]) {
        let scales = weightScales.map { scale(input: inputScale, weight: $0) }
        let values = bias.indices.map { index in
            quantize(bias[index], biasScale: scales.count == 1 ? scales[0] : scales[index])
        }
        return (values, scales)
    }
}
