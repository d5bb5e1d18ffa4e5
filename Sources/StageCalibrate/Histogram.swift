/// A fixed-size histogram whose range grows as batches arrive, so memory stays the same however
/// many samples are seen. The range is [0, M] while every value seen is non-negative, else [-M, M]
/// (M the largest magnitude so far); growing re-bins old counts by overlap. It keeps 2·`bins`
/// counts so that |x| always has `bins` bins, whether the data is signed or not.
public struct Histogram: Sendable {
    public private(set) var counts: [Double]
    public private(set) var lower: Float = 0
    public private(set) var upper: Float = 0
    public private(set) var minimum: Float = .infinity
    public private(set) var maximum: Float = -.infinity
    public private(set) var total: Double = 0

    public init(bins: Int) {
        precondition(bins >= 1, "histogram needs at least one bin")
        counts = [Double](repeating: 0, count: 2 * bins)
    }

    public var bins: Int { counts.count }
    public var binWidth: Float { (upper - lower) / Float(bins) }
    public var isSigned: Bool { lower < 0 }

    /// Adds `values`: one pass for the batch's extremes, a re-bin if the range must grow, one pass to count.
    /// NaNs are skipped. - Complexity: O(n + bins).
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        guard let base = values.baseAddress, !values.isEmpty else { return }
        var low = Float.infinity
        var high = -Float.infinity
        var index = 0
        while index < values.count {
            let value = base[index]
            if value < low { low = value }
            if value > high { high = value }
            index &+= 1
        }
        guard low <= high else { return }  // all NaN
        minimum = min(minimum, low)
        maximum = max(maximum, high)
        let magnitude = max(abs(minimum), abs(maximum), Float.leastNormalMagnitude)
        let newLower: Float = minimum < 0 ? -magnitude : 0
        if magnitude > upper || newLower < lower { grow(lower: newLower, upper: magnitude) }

        let scale = Float(bins) / (upper - lower)
        let last = bins - 1
        counts.withUnsafeMutableBufferPointer { counts in
            let countBase = counts.baseAddress!
            var index = 0
            while index < values.count {
                let value = base[index]
                if value == value {
                    var bin = Int((value - lower) * scale)
                    if bin > last { bin = last }
                    if bin < 0 { bin = 0 }
                    countBase[bin] += 1
                }
                index &+= 1
            }
        }
        total += Double(values.count)
    }

    /// Moves counts into a wider range, splitting each old bin over the new bins it overlaps.
    private mutating func grow(lower newLower: Float, upper newUpper: Float) {
        let oldLower = Double(lower)
        let oldWidth = Double(upper - lower) / Double(bins)
        lower = newLower
        upper = newUpper
        guard total > 0, oldWidth > 0 else {
            counts = [Double](repeating: 0, count: bins)
            return
        }
        let newWidth = Double(newUpper - newLower) / Double(bins)
        var moved = [Double](repeating: 0, count: bins)
        for (oldBin, count) in counts.enumerated() where count > 0 {
            let start = oldLower + Double(oldBin) * oldWidth
            let end = start + oldWidth
            var position = start
            while position < end - oldWidth * 1e-9 {
                let newBin = min(max(Int((position - Double(newLower)) / newWidth), 0), bins - 1)
                let binEnd = Double(newLower) + Double(newBin + 1) * newWidth
                let piece = min(end, binEnd) - position
                moved[newBin] += count * piece / oldWidth
                position = newBin == bins - 1 ? end : min(end, binEnd)
            }
        }
        counts = moved
    }

    /// Counts of |x| over [0, M] in `bins / 2` bins: mirror halves folded when signed, pairs merged when not.
    public func magnitudes() -> (counts: [Double], width: Float) {
        let half = bins / 2
        if isSigned {
            return ((0..<half).map { counts[half + $0] + counts[half - 1 - $0] }, binWidth)
        }
        return ((0..<half).map { counts[2 * $0] + counts[2 * $0 + 1] }, binWidth * 2)
    }
}
