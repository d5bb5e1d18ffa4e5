import Dispatch
import NNPipeCore

/// Accumulates one tensor's values batch by batch in constant memory and turns them into a range.
public struct RangeCollector: Sendable {
    public enum Method: String, Sendable, CaseIterable { case minmax, percentile, entropy, mse }

    public struct Settings: Sendable {
        public var method: Method
        public var percentile: Double = 99.999
        public var bins: Int = 2048
        public var symmetric: Bool = false
        /// Moving-average constant for minmax; nil keeps the global min/max.
        public var movingAverage: Double?

        public init(method: Method, percentile: Double = 99.999, bins: Int = 2048, symmetric: Bool = false, movingAverage: Double? = nil) {
            self.method = method
            self.percentile = percentile
            self.bins = bins
            self.symmetric = symmetric
            self.movingAverage = movingAverage
        }
    }

    public let settings: Settings
    public private(set) var lower = Float.infinity
    public private(set) var upper = -Float.infinity
    public private(set) var batches = 0
    public private(set) var histogram: Histogram?

    public init(settings: Settings) {
        self.settings = settings
        histogram = settings.method == .minmax ? nil : Histogram(bins: settings.bins)
    }

    /// - Complexity: O(n) per batch; memory O(bins) whatever the number of batches.
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        guard !values.isEmpty else { return }
        if histogram != nil {
            histogram!.add(values)
            batches += 1
            return
        }
        let (low, high, _) = Histogram.extremes(values)
        guard low <= high else { return }
        if let constant = settings.movingAverage, batches > 0 {
            // onnxruntime's moving average: old + c · (batch − old).
            lower += Float(constant) * (low - lower)
            upper += Float(constant) * (high - upper)
        } else if settings.movingAverage != nil {
            lower = low
            upper = high
        } else {
            lower = min(lower, low)
            upper = max(upper, high)
        }
        batches += 1
    }

    public mutating func add(_ values: [Float]) {
        values.withUnsafeBufferPointer { add($0) }
    }

    /// The calibrated range; nil when no finite value was seen.
    public func range() -> ValueRange? {
        guard let histogram else {
            guard lower <= upper else { return nil }
            if settings.symmetric {
                let magnitude = max(abs(lower), abs(upper))
                return ValueRange(lower: -magnitude, upper: magnitude)
            }
            return ValueRange(lower: lower, upper: upper)
        }
        guard histogram.total > 0, histogram.minimum <= histogram.maximum else { return nil }
        switch settings.method {
        case .minmax:
            return nil
        case .percentile:
            let (low, high) = ThresholdSearch.percentile(histogram, percentile: settings.percentile, symmetric: settings.symmetric)
            return ValueRange(lower: low, upper: high)
        case .entropy:
            return symmetricRange(ThresholdSearch.entropy(histogram), histogram)
        case .mse:
            return symmetricRange(ThresholdSearch.meanSquaredError(histogram), histogram)
        }
    }

    /// `range()` of each collector, computed concurrently.
    public static func ranges(_ collectors: [RangeCollector]) -> [ValueRange?] {
        // Each iteration writes only its own slot.
        nonisolated(unsafe) let results = UnsafeMutableBufferPointer<ValueRange?>.allocate(capacity: collectors.count)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: collectors.count) { index in
            results[index] = collectors[index].range()
        }
        return Array(results)
    }

    /// [−t, t] for signed data, [min(0, …), t] for non-negative data; never wider than what was seen.
    private func symmetricRange(_ threshold: Float, _ histogram: Histogram) -> ValueRange {
        let magnitude = max(abs(histogram.minimum), abs(histogram.maximum))
        let limit = min(threshold, magnitude)
        if histogram.isSigned {
            return settings.symmetric ? ValueRange(lower: -limit, upper: limit)
                : ValueRange(lower: max(-limit, histogram.minimum), upper: min(limit, histogram.maximum))
        }
        return ValueRange(lower: histogram.minimum, upper: limit)
    }
}
