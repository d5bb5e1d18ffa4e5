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
        // Thresholds t with the same ⌊t/q⌋ = w have levels of w or w + 1 bins only: one table of
        // both widths' shares serves them all, and it is built once per w.
        for narrow in 1...bins / quantizedBins {
            let first = max(quantizedBins, narrow * quantizedBins)
            let last = min(bins, (narrow + 1) * quantizedBins - 1)
            sums.prepareShares(narrow: narrow, through: last)
            for group in stride(from: first, through: last, by: LevelSums.lanes) {
                let leading = sums.leadingShares(from: group, through: last)
                for lane in 0..<min(LevelSums.lanes, last - group + 1) {
                    let threshold = group + lane
                    let kept = sums.mass[threshold]
                    guard kept > 0 else { continue }
                    let outliers = suffix[threshold]
                    let lastCount = counts[threshold - 1]
                    // The folded outlier mass would sit where Q is empty: this threshold cannot represent P.
                    if outliers > 0 && lastCount == 0 { continue }
                    var weighted = leading[lane]
                    var lastShare = 0.0
                    // The last level, [⌊(q−1)·t/q⌋, t), also gives the outlier correction its log Q.
                    let start = (quantizedBins - 1) * threshold / quantizedBins
                    let nonEmpty = sums.nonEmpty[threshold] - sums.nonEmpty[start]
                    let sum = sums.mass[threshold] - sums.mass[start]
                    if nonEmpty > 0 && sum > 0 {
                        lastShare = log(sum / Double(nonEmpty))
                        weighted += (sums.term[threshold] - sums.term[start]) - sum * lastShare
                    }
                    if outliers > 0 {
                        let folded = lastCount + outliers
                        weighted += (folded * log(folded) - folded * lastShare) - (sums.binTerm[threshold - 1] - lastCount * lastShare)
                    }
                    // P sums to one over its non-empty bins, so the shared log(E/T) term counts once.
                    let divergence = weighted / total + (log(kept) - logTotal)
                    if divergence < bestDivergence {
                        bestDivergence = divergence
                        bestIndex = threshold
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

/// Prefix sums over the |x| histogram that make a level's share of KL(P‖Q) O(1): its mass S, its
/// Σ c·log c and its non-empty bin count n. A level's share depends only on its bin range, and
/// neighbouring thresholds share most ranges, so each share is computed once, into a table of the
/// two widths that thresholds with the same ⌊t/q⌋ use: one logarithm per (start, width), read back
/// in order. Raw buffers in a class with constant properties, not arrays captured by a closure: the
/// closure's dynamic exclusivity and bounds checks cost more than the arithmetic.
private final class LevelSums {
    /// Thresholds summed together: their sums are independent chains the CPU overlaps, each still
    /// added level by level in order, so every threshold's sum is the same number as alone.
    static let lanes = 4

    let mass: UnsafeMutableBufferPointer<Double>
    let term: UnsafeMutableBufferPointer<Double>
    let nonEmpty: UnsafeMutableBufferPointer<Int>
    /// c·log c of each bin (0 for an empty bin), the terms `term` adds up.
    let binTerm: UnsafeMutableBufferPointer<Double>
    /// shares[2·s] is the share of bins [s, s + w), shares[2·s + 1] that of [s, s + w + 1], for the
    /// w of `prepareShares`; a level [s, e) of w or w + 1 bins is at s + e − w.
    private let shares: UnsafeMutableBufferPointer<Double>
    private var narrow = 0
    private var prepared = 0
    private let quantizedBins: Int
    private let bins: Int
    /// ⌈2⁶⁴ / q⌉: ⌊n / q⌋ is the high word of n · this for every n < 2⁶⁴ / q (here n < q · bins),
    /// which spares a division per level.
    private let reciprocal: UInt64

    init(counts: [Double], quantizedBins: Int) {
        bins = counts.count
        self.quantizedBins = quantizedBins
        reciprocal = quantizedBins > 1 ? UInt64.max / UInt64(quantizedBins) + 1 : 0
        mass = .allocate(capacity: bins + 1)
        term = .allocate(capacity: bins + 1)
        nonEmpty = .allocate(capacity: bins + 1)
        binTerm = .allocate(capacity: bins)
        mass[0] = 0
        term[0] = 0
        nonEmpty[0] = 0
        for (index, count) in counts.enumerated() {
            binTerm[index] = count > 0 ? count * log(count) : 0
            mass[index + 1] = mass[index] + count
            term[index + 1] = term[index] + binTerm[index]
            nonEmpty[index + 1] = nonEmpty[index] + (count != 0 ? 1 : 0)
        }
        shares = .allocate(capacity: 2 * bins)
    }

    deinit {
        mass.deallocate()
        term.deallocate()
        nonEmpty.deallocate()
        binTerm.deallocate()
        shares.deallocate()
    }

    /// Σ p·log(p/q) over bins [start, end) up to the shared factor: Σ c·log c − S·log(S/n).
    @inline(__always) private func share(_ start: Int, _ end: Int) -> Double {
        guard end <= bins else { return 0 }  // past the histogram: no threshold reads it
        let count = nonEmpty[end] &- nonEmpty[start]
        let sum = mass[end] - mass[start]
        // An empty level, or one holding only fractional re-binned crumbs lost to rounding, adds nothing.
        return count > 0 && sum > 0 ? (term[end] - term[start]) - sum * log(sum / Double(count)) : 0
    }

    /// Fills the table for levels of `narrow` and `narrow + 1` bins starting before `last`, the
    /// largest threshold it serves. Called with `narrow` rising by one: the old wide shares become
    /// the new narrow ones in place, so each share is computed once.
    func prepareShares(narrow newNarrow: Int, through last: Int) {
        guard quantizedBins > 1 else { return }  // one level: no leading levels to sum
        let reused = newNarrow == narrow + 1 ? prepared : 0
        for start in 0..<reused { shares[2 * start] = shares[2 * start + 1] }
        for start in reused..<last { shares[2 * start] = share(start, start + newNarrow) }
        for start in 0..<last { shares[2 * start + 1] = share(start, start + newNarrow + 1) }
        narrow = newNarrow
        prepared = last
    }

    /// Σ of the shares of levels 0 ..< q − 1 for thresholds `first` ..< `first + lanes` (beyond
    /// `last`, lanes repeat `last` and are ignored). Level l is [⌊l·t/q⌋, ⌊(l + 1)·t/q⌋), in integers.
    @inline(__always) func leadingShares(from first: Int, through last: Int) -> SIMD4<Double> {
        let table = shares.baseAddress!
        let thresholds = (UInt64(first), UInt64(min(first + 1, last)), UInt64(min(first + 2, last)), UInt64(min(first + 3, last)))
        var scaled: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var starts: (Int, Int, Int, Int) = (0, 0, 0, 0)
        var sums: (Double, Double, Double, Double) = (0, 0, 0, 0)
        let narrow = self.narrow
        for _ in 0..<quantizedBins - 1 {
            scaled.0 &+= thresholds.0
            scaled.1 &+= thresholds.1
            scaled.2 &+= thresholds.2
            scaled.3 &+= thresholds.3
            let ends = (Int(truncatingIfNeeded: scaled.0.multipliedFullWidth(by: reciprocal).high),
                        Int(truncatingIfNeeded: scaled.1.multipliedFullWidth(by: reciprocal).high),
                        Int(truncatingIfNeeded: scaled.2.multipliedFullWidth(by: reciprocal).high),
                        Int(truncatingIfNeeded: scaled.3.multipliedFullWidth(by: reciprocal).high))
            sums.0 += table[starts.0 &+ ends.0 &- narrow]
            sums.1 += table[starts.1 &+ ends.1 &- narrow]
            sums.2 += table[starts.2 &+ ends.2 &- narrow]
            sums.3 += table[starts.3 &+ ends.3 &- narrow]
            starts = ends
        }
        return SIMD4(sums.0, sums.1, sums.2, sums.3)
    }
}
