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
    ///
    /// Every candidate is evaluated (the real search), but without a logarithm per bin: within a
    /// level Q is constant, so Σ p·log(p/q) over the level is (Σ c·log c − S·log(S/n)) / T plus a
    /// term shared by all bins, where S is the level's mass, n its non-empty bins and T the total.
    /// Only the last kept bin, which holds the folded outliers, is corrected on its own.
    /// - Complexity: O(bins · quantizedBins) additions; O(bins · bins / quantizedBins) logarithms at most.
    public static func entropy(_ histogram: Histogram, quantizedBins: Int = 128) -> Float {
        let (counts, width) = histogram.magnitudes()
        let bins = counts.count
        guard histogram.total > 0, bins > quantizedBins else { return Float(bins) * width }
        let sums = LevelSums(counts: counts, quantizedBins: quantizedBins)
        var suffix = [Double](repeating: 0, count: bins + 1)
        for index in stride(from: bins - 1, through: 0, by: -1) { suffix[index] = suffix[index + 1] + counts[index] }
        let total = suffix[0]
        guard total > 0 else { return Float(bins) * width }
        let logTotal = log(total)
        var bestDivergence = Double.infinity
        var bestIndex = bins
        for threshold in quantizedBins...bins {
            let kept = sums.mass[threshold]
            guard kept > 0 else { continue }
            let outliers = suffix[threshold]
            let lastCount = counts[threshold - 1]
            // The folded outlier mass would sit where Q is empty: this threshold cannot represent P.
            if outliers > 0 && lastCount == 0 { continue }
            var weighted = 0.0
            var lastShare = 0.0
            var start = 0
            // Level l covers bins [⌊l·t/q⌋, ⌊(l+1)·t/q⌋), in integers: exact, and without the libm
            // floor call that rounding a double costs on baseline x86-64 (no SSE4.1 round).
            var scaledEnd = threshold
            for _ in 0..<quantizedBins - 1 {
                let end = scaledEnd / quantizedBins
                weighted += sums.contribution(start, end)
                start = end
                scaledEnd &+= threshold
            }
            // The last level also gives the outlier correction its log Q.
            let nonEmpty = sums.nonEmpty[threshold] - sums.nonEmpty[start]
            let sum = sums.mass[threshold] - sums.mass[start]
            if nonEmpty > 0 && sum > 0 {
                lastShare = log(sum / Double(nonEmpty))
                weighted += (sums.term[threshold] - sums.term[start]) - sum * lastShare
            }
            if outliers > 0 {
                let folded = lastCount + outliers
                let lastTerm = lastCount > 0 ? lastCount * log(lastCount) : 0
                weighted += (folded * log(folded) - folded * lastShare) - (lastTerm - lastCount * lastShare)
            }
            // P sums to one over its non-empty bins, so the shared log(E/T) term counts once.
            let divergence = weighted / total + (log(kept) - logTotal)
            if divergence < bestDivergence {
                bestDivergence = divergence
                bestIndex = threshold
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

/// Prefix sums over the |x| histogram that make a level's share of KL(P‖Q) O(1): its mass S, its
/// Σ c·log c and its non-empty bin count n. A level's share depends only on its bin range, and
/// neighbouring thresholds share most ranges (a few widths per start), so each range's share is
/// remembered: about 6x fewer logarithms than one per level per threshold, same sums.
/// Raw buffers in a class with constant properties, not arrays captured by a closure: the closure's
/// dynamic exclusivity and bounds checks cost more than the arithmetic (4 ms -> 1.5 ms a search).
private final class LevelSums {
    let mass: UnsafeMutableBufferPointer<Double>
    let term: UnsafeMutableBufferPointer<Double>
    let nonEmpty: UnsafeMutableBufferPointer<Int>
    private let remembered: UnsafeMutableBufferPointer<Double>
    private let widestLevel: Int

    init(counts: [Double], quantizedBins: Int) {
        let bins = counts.count
        mass = .allocate(capacity: bins + 1)
        term = .allocate(capacity: bins + 1)
        nonEmpty = .allocate(capacity: bins + 1)
        mass[0] = 0
        term[0] = 0
        nonEmpty[0] = 0
        for (index, count) in counts.enumerated() {
            mass[index + 1] = mass[index] + count
            term[index + 1] = term[index] + (count > 0 ? count * log(count) : 0)
            nonEmpty[index + 1] = nonEmpty[index] + (count != 0 ? 1 : 0)
        }
        widestLevel = bins / quantizedBins + 2
        remembered = .allocate(capacity: (bins + 1) * (widestLevel + 1))
        remembered.initialize(repeating: .nan)
    }

    deinit {
        mass.deallocate()
        term.deallocate()
        nonEmpty.deallocate()
        remembered.deallocate()
    }

    /// Σ p·log(p/q) over bins [start, end) up to the shared factor: Σ c·log c − S·log(S/n).
    @inline(__always) func contribution(_ start: Int, _ end: Int) -> Double {
        let width = end &- start
        let slot = start &* (widestLevel &+ 1) &+ width
        if width <= widestLevel, !remembered[slot].isNaN { return remembered[slot] }
        let count = nonEmpty[end] &- nonEmpty[start]
        let sum = mass[end] - mass[start]
        // An empty level, or one holding only fractional re-binned crumbs lost to rounding, adds nothing.
        let share = count > 0 && sum > 0 ? (term[end] - term[start]) - sum * log(sum / Double(count)) : 0
        if width <= widestLevel { remembered[slot] = share }
        return share
    }
}

