import Foundation
import StageCalibrate
import Testing

/// The fast entropy search and the vector histogram against direct, slow versions of the same rules.
@Suite struct ThresholdSearchTests {
    /// The KL search as written in TensorRT's description: P and Q built bin by bin for every
    /// threshold, one logarithm per bin. O(bins²) logarithms; the reference the fast search must match.
    static func directEntropy(_ histogram: Histogram, quantizedBins: Int = 128) -> (threshold: Float, divergence: Double) {
        let (counts, width) = histogram.magnitudes()
        let bins = counts.count
        var best = (index: bins, divergence: Double.infinity)
        let total = counts.reduce(0, +)
        for threshold in quantizedBins...bins {
            var reference = Array(counts[0..<threshold])
            reference[threshold - 1] += counts[threshold...].reduce(0, +)
            var expanded = [Double](repeating: 0, count: threshold)
            let merge = Double(threshold) / Double(quantizedBins)
            for level in 0..<quantizedBins {
                let start = Int((Double(level) * merge).rounded(.down))
                let end = level == quantizedBins - 1 ? threshold : Int((Double(level + 1) * merge).rounded(.down))
                let slice = counts[start..<end]
                let nonEmpty = slice.filter { $0 != 0 }.count
                let share = nonEmpty > 0 ? slice.reduce(0, +) / Double(nonEmpty) : 0
                for index in start..<end { expanded[index] = counts[index] != 0 ? share : 0 }
            }
            let expandedTotal = expanded.reduce(0, +)
            guard total > 0, expandedTotal > 0 else { continue }
            var divergence = 0.0
            var infinite = false
            for index in 0..<threshold where reference[index] > 0 {
                let p = reference[index] / total
                let q = expanded[index] / expandedTotal
                if q == 0 { infinite = true; break }
                divergence += p * log(p / q)
            }
            if !infinite, divergence < best.divergence { best = (threshold, divergence) }
        }
        return (Float(best.index) * width, best.divergence)
    }

    struct Distribution: CustomStringConvertible, Sendable {
        let description: String
        let values: @Sendable (inout SampleSource) -> [Float]
    }

    static let distributions: [Distribution] = [
        Distribution(description: "unit Gaussian") { $0.normal(count: 50_000) },
        Distribution(description: "Gaussian with far outliers") { $0.normal(count: 50_000) + [40, -35, 55, 60] },
        Distribution(description: "Relu of a Gaussian (half zeros)") { $0.normal(count: 50_000).map { max($0, 0) } },
        Distribution(description: "Laplace, heavy tail") { source in
            (0..<50_000).map { _ in let u = source.uniform() - 0.5; return Float(-(u < 0 ? -1.0 : 1.0) * log(1 - 2 * abs(u))) }
        },
        Distribution(description: "sparse: few distinct values") { source in
            (0..<20_000).map { _ in Float(Int(source.uniform() * 7)) * 0.37 }
        },
        Distribution(description: "merged batches of growing scale") { source in
            (1...8).flatMap { source.normal(count: 5_000, scale: Float($0)) }
        },
    ]

    @Test("fast KL search picks the direct search's threshold", arguments: distributions, [512, 2048])
    func entropyMatchesDirectSearch(distribution: Distribution, bins: Int) throws {
        var source = SampleSource(state: 21)
        var histogram = Histogram(bins: bins)
        // In several batches, so re-binning (fractional counts) is part of the check.
        let values = distribution.values(&source)
        for start in stride(from: 0, to: values.count, by: 7_001) {
            values[start..<min(start + 7_001, values.count)].withUnsafeBufferPointer { histogram.add($0) }
        }
        let direct = Self.directEntropy(histogram)
        let fast = ThresholdSearch.entropy(histogram)
        #expect(fast == direct.threshold, "fast \(fast) vs direct \(direct.threshold) (KL \(direct.divergence))")
    }

    /// Level counts other than 128 take other paths through the fast search: uneven levels (⌊l·t/q⌋
    /// by a reciprocal, not a shift), and runs of thresholds per level width that do not fill the
    /// last group of four.
    @Test("fast KL search picks the direct search's threshold for other level counts", arguments: distributions, [
        (bins: 512, levels: 100), (bins: 512, levels: 37), (bins: 300, levels: 128), (bins: 256, levels: 255),
    ])
    func entropyMatchesDirectSearchForOtherLevels(distribution: Distribution, shape: (bins: Int, levels: Int)) throws {
        var source = SampleSource(state: 5)
        var histogram = Histogram(bins: shape.bins)
        let values = distribution.values(&source)
        for start in stride(from: 0, to: values.count, by: 9_001) {
            values[start..<min(start + 9_001, values.count)].withUnsafeBufferPointer { histogram.add($0) }
        }
        let direct = Self.directEntropy(histogram, quantizedBins: shape.levels)
        let fast = ThresholdSearch.entropy(histogram, quantizedBins: shape.levels)
        #expect(fast == direct.threshold, "\(shape): fast \(fast) vs direct \(direct.threshold) (KL \(direct.divergence))")
    }

    /// The vector binning must count exactly as the scalar rule does: bin = ⌊(x − lower)·bins/(upper − lower)⌋, clamped.
    /// From 65,536 values a batch is split across cores (200,003 leaves an uneven last chunk).
    @Test("vector binning equals the scalar rule", arguments: [7, 8, 1_001, 65_535, 65_536, 200_003])
    func binningMatchesScalarRule(count: Int) throws {
        var source = SampleSource(state: UInt64(count))
        let values = source.normal(count: count, scale: 3)
        var histogram = Histogram(bins: 256)
        values.withUnsafeBufferPointer { histogram.add($0) }
        var expected = [Double](repeating: 0, count: histogram.bins)
        let scale = Float(histogram.bins) / (histogram.upper - histogram.lower)
        for value in values { expected[min(max(Int((value - histogram.lower) * scale), 0), histogram.bins - 1)] += 1 }
        #expect(histogram.counts == expected)
    }

    /// Later batches are counted in one pass with the range already set, and recounted only when
    /// they fall outside it. Either way the counts must be the scalar rule's.
    @Test("a second batch counts as the scalar rule does, inside or outside the range", arguments: [
        ("inside, signed", [Float](repeating: 0, count: 0), false),
        ("inside, with NaN", [Float.nan, 1.5, .nan], false),
        ("wider: grows", [Float(-12.5), 11], true),
        ("with ±∞: skipped, no growth", [Float.infinity, 2, -Float.infinity], false),
    ])
    func secondBatch(description: String, extra: [Float], grows: Bool) throws {
        var source = SampleSource(state: 9)
        // The first batch sets the range to about [-10, 10]; the second stays inside it unless `extra` widens it.
        let first = source.normal(count: 70_001, scale: 2) + [-10, 10]
        let second = source.normal(count: 90_003, scale: 1.5) + extra
        var histogram = Histogram(bins: 512)
        first.withUnsafeBufferPointer { histogram.add($0) }
        let firstUpper = histogram.upper
        second.withUnsafeBufferPointer { histogram.add($0) }
        let grew: Bool = histogram.upper != firstUpper
        #expect(grew == grows, "\(description)")
        let finite = (first + second).filter(\.isFinite)
        #expect(histogram.total == Double(first.count + second.count))
        if grows {
            // Re-binning spreads old counts by overlap, so only the mass is exact.
            let mass: Double = histogram.counts.reduce(0, +)
            let expectedMass = Double(finite.count)
            #expect(abs(mass - expectedMass) < 1e-6 * expectedMass)
            return
        }
        var expected = [Double](repeating: 0, count: histogram.bins)
        let scale = Float(histogram.bins) / (histogram.upper - histogram.lower)
        for value in finite { expected[min(max(Int((value - histogram.lower) * scale), 0), histogram.bins - 1)] += 1 }
        #expect(histogram.counts == expected, "\(description)")
    }

    /// Re-binning walks old bins across new bin edges; with widths that are not powers of two a
    /// position on an edge could divide into the bin ending there and never advance (bins = 300).
    @Test("growing re-bins and keeps the mass", arguments: [300, 333, 512])
    func growingTerminatesAndKeepsMass(bins: Int) throws {
        var source = SampleSource(state: 3)
        var histogram = Histogram(bins: bins)
        let values = (1...8).flatMap { source.normal(count: 5_000, scale: Float($0)) }
        for start in stride(from: 0, to: values.count, by: 7_001) {
            values[start..<min(start + 7_001, values.count)].withUnsafeBufferPointer { histogram.add($0) }
        }
        let mass: Double = histogram.counts.reduce(0, +)
        #expect(abs(mass - Double(values.count)) < 1e-6 * Double(values.count))
    }

    @Test func negativeValueInANonNegativeRangeMakesItSigned() throws {
        var histogram = Histogram(bins: 256)
        [Float](repeating: 0, count: 100).withUnsafeBufferPointer { histogram.add($0) }
        [Float(3), 1, 2].withUnsafeBufferPointer { histogram.add($0) }
        #expect(histogram.lower == 0)
        [Float(1), -0.5, 2].withUnsafeBufferPointer { histogram.add($0) }
        #expect(histogram.lower == -3)
        #expect(histogram.upper == 3)
        #expect(histogram.minimum == -0.5)
        let mass: Double = histogram.counts.reduce(0, +)
        #expect(abs(mass - 106) < 1e-9)
    }

    @Test func nanAndInfinityAreSkippedWithoutCrashing() throws {
        var histogram = Histogram(bins: 128)
        let values: [Float] = [1, 2, .nan, 3, -1, 0.5, .nan, 4, 2, 1, 0]
        values.withUnsafeBufferPointer { histogram.add($0) }
        #expect(histogram.counts.reduce(0, +) == 9)
        #expect(histogram.minimum == -1 && histogram.maximum == 4)
        var infinite = Histogram(bins: 128)
        let withInfinity: [Float] = [1, -.infinity, 2, 3, 4, 5, 6, 7, 8]
        withInfinity.withUnsafeBufferPointer { infinite.add($0) }
        #expect(infinite.maximum == 8)
        #expect(infinite.minimum == 1, "±∞ must not stretch the range")
    }
}
