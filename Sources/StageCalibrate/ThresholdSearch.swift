import Foundation

/// Range choices over a histogram: percentile, entropy (KL divergence) and MSE.
public enum ThresholdSearch {
    /// Edges holding `percentile`% of the mass, as onnxruntime's percentile calibrator picks them:
    /// symmetric cuts |x| at the percentile; otherwise half the excluded mass is cut from each side.
    public static func percentile(_ histogram: Histogram, percentile: Double, symmetric: Bool) -> (lower: Float, upper: Float) {
        guard histogram.total > 0 else { return (0, 0) }
        if symmetric || !histogram.isSigned {
            let (counts, width) = histogram.magnitudes()
            let edge = Float(searchCumulative(counts, fraction: percentile / 100) + 1) * width
            let upper = min(edge, max(abs(histogram.minimum), abs(histogram.maximum)))
            return symmetric && histogram.isSigned ? (-upper, upper) : (histogram.isSigned ? -upper : max(histogram.minimum, 0), upper)
        }
        let cut = (100 - percentile) / 200
        let left = searchCumulative(histogram.counts, fraction: cut)
        let right = searchCumulative(histogram.counts, fraction: 1 - cut)
        let lower = max(histogram.lower + Float(left) * histogram.binWidth, histogram.minimum)
        let upper = min(histogram.lower + Float(right + 1) * histogram.binWidth, histogram.maximum)
        return (lower, upper)
    }

    /// First bin at which the cumulative mass reaches `fraction` of the total.
    static func searchCumulative(_ counts: [Double], fraction: Double) -> Int {
        let total = counts.reduce(0, +)
        let target = total * fraction
        var running = 0.0
        for (index, count) in counts.enumerated() {
            running += count
            if running >= target { return index }
        }
        return counts.count - 1
    }

    /// TensorRT's entropy calibration (Migacz 2017) on the |x| histogram: for each candidate
    /// threshold bin i (from `quantizedBins` up), clip the outliers into bin i−1, quantise the kept
    /// bins into `quantizedBins` levels, expand back over the non-empty bins, and keep the i with
    /// the smallest KL(P‖Q). Returns the threshold magnitude.
    /// - Complexity: O(bins²).
    public static func entropy(_ histogram: Histogram, quantizedBins: Int = 128) -> Float {
        let (counts, width) = histogram.magnitudes()
        let bins = counts.count
        guard histogram.total > 0, bins > quantizedBins else { return Float(bins) * width }
        var bestDivergence = Double.infinity
        var bestIndex = bins
        var reference = [Double](repeating: 0, count: bins)
        var expanded = [Double](repeating: 0, count: bins)
        var suffix = [Double](repeating: 0, count: bins + 1)
        for index in stride(from: bins - 1, through: 0, by: -1) { suffix[index] = suffix[index + 1] + counts[index] }

        counts.withUnsafeBufferPointer { counts in
            reference.withUnsafeMutableBufferPointer { reference in
                expanded.withUnsafeMutableBufferPointer { expanded in
                    for threshold in quantizedBins...bins {
                        // P: the kept bins with every outlier folded into the last one.
                        for index in 0..<threshold { reference[index] = counts[index] }
                        reference[threshold - 1] += suffix[threshold]
                        // Q: kept bins merged into quantizedBins levels, each spread evenly over its non-empty bins.
                        let merge = Double(threshold) / Double(quantizedBins)
                        for level in 0..<quantizedBins {
                            let start = Int((Double(level) * merge).rounded(.down))
                            let end = level == quantizedBins - 1 ? threshold : Int((Double(level + 1) * merge).rounded(.down))
                            var sum = 0.0
                            var nonEmpty = 0
                            var index = start
                            while index < end {
                                sum += counts[index]
                                if counts[index] != 0 { nonEmpty += 1 }
                                index += 1
                            }
                            let share = nonEmpty > 0 ? sum / Double(nonEmpty) : 0
                            index = start
                            while index < end {
                                expanded[index] = counts[index] != 0 ? share : 0
                                index += 1
                            }
                        }
                        var referenceTotal = 0.0
                        var expandedTotal = 0.0
                        for index in 0..<threshold {
                            referenceTotal += reference[index]
                            expandedTotal += expanded[index]
                        }
                        guard referenceTotal > 0, expandedTotal > 0 else { continue }
                        var divergence = 0.0
                        var infinite = false
                        for index in 0..<threshold where reference[index] > 0 {
                            let p = reference[index] / referenceTotal
                            let q = expanded[index] / expandedTotal
                            // The folded outlier mass can sit where Q is empty: that threshold cannot represent P.
                            if q == 0 { infinite = true; break }
                            divergence += p * log(p / q)
                        }
                        if !infinite, divergence < bestDivergence {
                            bestDivergence = divergence
                            bestIndex = threshold
                        }
                    }
                }
            }
        }
        return Float(bestIndex) * width
    }

    /// The threshold minimising expected squared error for `levels` quantisation levels on the
    /// |x| histogram: clipping error above the threshold plus uniform rounding error Δ²/12 inside.
    /// - Complexity: O(bins²).
    public static func meanSquaredError(_ histogram: Histogram, levels: Int = 256) -> Float {
        let (counts, width) = histogram.magnitudes()
        let bins = counts.count
        guard histogram.total > 0 else { return Float(bins) * width }
        // Signed data spends half the levels on each side.
        let steps = Double(histogram.isSigned ? levels / 2 : levels) - 0.5
        // Suffix sums of c, c·x and c·x² make each candidate's clipping error O(1).
        var mass = [Double](repeating: 0, count: bins + 1)
        var first = [Double](repeating: 0, count: bins + 1)
        var second = [Double](repeating: 0, count: bins + 1)
        for index in stride(from: bins - 1, through: 0, by: -1) {
            let center = (Double(index) + 0.5) * Double(width)
            mass[index] = mass[index + 1] + counts[index]
            first[index] = first[index + 1] + counts[index] * center
            second[index] = second[index + 1] + counts[index] * center * center
        }
        var bestError = Double.infinity
        var bestIndex = bins
        for threshold in 1...bins {
            let limit = Double(threshold) * Double(width)
            let step = limit / steps
            let clipping = second[threshold] - 2 * limit * first[threshold] + limit * limit * mass[threshold]
            let rounding = (mass[0] - mass[threshold]) * step * step / 12
            if clipping + rounding < bestError {
                bestError = clipping + rounding
                bestIndex = threshold
            }
        }
        return Float(bestIndex) * width
    }
}
