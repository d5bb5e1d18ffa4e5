import Foundation

/// Signal-to-quantisation-noise ratio, the per-layer quality figure in the report.
public enum SignalToNoise {
    /// 10·log10(Σx² / Σ(x − x̂)²) in dB; +∞ when the reconstruction is exact.
    /// - Complexity: O(n), accumulated in float64.
    public static func decibels(original: [Float], reconstructed: [Float]) -> Double {
        precondition(original.count == reconstructed.count, "arrays differ in length")
        var signal = 0.0
        var noise = 0.0
        original.withUnsafeBufferPointer { original in
            reconstructed.withUnsafeBufferPointer { reconstructed in
                for index in original.indices {
                    let value = Double(original[index])
                    let error = value - Double(reconstructed[index])
                    signal += value * value
                    noise += error * error
                }
            }
        }
        if noise == 0 { return .infinity }
        if signal == 0 { return -.infinity }
        return 10 * log10(signal / noise)
    }
}
