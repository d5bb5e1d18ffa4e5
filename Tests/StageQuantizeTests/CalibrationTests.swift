import Foundation
import NNPipeCore
import NNPipeData
import NNPipeRuntime
import NNPipeTestKit
import StageCalibrate
import Testing

/// Deterministic normal samples (Box–Muller over a small LCG) so the tests need no data files.
struct SampleSource {
    var state: UInt64

    mutating func uniform() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Double(state >> 11) + 0.5) / Double(1 << 53)
    }

    mutating func normal(count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in Float((-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())) * scale }
    }
}

@Suite struct CalibrationTests {
    @Test func entropyThresholdOnGaussianWithOutliersIsWellBelowMaximum() {
        var source = SampleSource(state: 1)
        var values = source.normal(count: 200_000)
        values += [40, -35, 55, 60]  // a few far outliers stretch the histogram
        var collector = RangeCollector(settings: .init(method: .entropy))
        collector.add(values)
        let range = collector.range()!
        #expect(range.upper < 15, "entropy threshold \(range.upper) should ignore the outliers (max 60)")
        #expect(range.upper > 2.5, "entropy threshold \(range.upper) should keep the body of a unit Gaussian")
        #expect(range.lower == -range.upper || range.lower >= -35)
    }

    /// MSE weighs outliers by their squared error, so only moderate ones are clipped: with two at
    /// ±20 among 2·10^5 unit normals, clipping to ~14 costs less than the coarser step of range 20.
    @Test func mseThresholdClipsModerateOutliers() {
        var source = SampleSource(state: 2)
        var values = source.normal(count: 200_000)
        values += [20, -20]
        var collector = RangeCollector(settings: .init(method: .mse))
        collector.add(values)
        let range = collector.range()!
        #expect(range.upper < 19 && range.upper > 3, "mse threshold \(range.upper)")
        #expect(range.lower == -range.upper || range.lower > -20)
    }

    struct PercentileCase: CustomTestStringConvertible, Sendable {
        var label: String
        var percentile: Double
        var symmetric: Bool
        var shift: Float
        var testDescription: String { label }
    }

    static let percentileCases: [PercentileCase] = [
        PercentileCase(label: "99.9 symmetric", percentile: 99.9, symmetric: true, shift: 0),
        PercentileCase(label: "99 asymmetric", percentile: 99, symmetric: false, shift: 0.5),
        // (99.999% of 10^5 samples leaves half a sample per tail: order statistics, not density, decide it.)
        PercentileCase(label: "99.9 asymmetric shifted", percentile: 99.9, symmetric: false, shift: -1.5),
    ]

    /// The percentile range agrees with numpy.percentile (linear interpolation on sorted values):
    /// within one bin when the data comes in one batch, within a few when it comes in 10 batches
    /// (growing the range re-bins old counts, spreading each over the new bins it overlaps).
    @Test("percentile matches numpy's", arguments: percentileCases, [1, 10])
    func percentileMatchesNumpy(_ example: PercentileCase, batches: Int) {
        var source = SampleSource(state: 3)
        let values = source.normal(count: 100_000).map { $0 + example.shift }
        var collector = RangeCollector(settings: .init(method: .percentile, percentile: example.percentile, symmetric: example.symmetric))
        let batchSize = values.count / batches
        for batch in stride(from: 0, to: values.count, by: batchSize) { collector.add(Array(values[batch..<(batch + batchSize)])) }
        let range = collector.range()!
        let histogram = collector.histogram!
        // Like onnxruntime, the histogram answers with the sample where the mass is reached; numpy
        // interpolates to the next one, so the gap between neighbouring samples is allowed on top.
        func tolerance(_ spacing: Float) -> Float { histogram.binWidth * (batches == 1 ? 1.01 : 6) + spacing + 1e-6 }
        if example.symmetric {
            let (magnitude, spacing) = Self.numpyPercentile(values.map(abs), example.percentile)
            #expect(abs(range.upper - magnitude) <= tolerance(spacing), "upper \(range.upper) vs numpy \(magnitude)")
            #expect(range.lower == -range.upper)
        } else {
            let cut = (100 - example.percentile) / 2
            let (lower, lowerSpacing) = Self.numpyPercentile(values, cut)
            let (upper, upperSpacing) = Self.numpyPercentile(values, 100 - cut)
            #expect(abs(range.lower - lower) <= tolerance(lowerSpacing), "lower \(range.lower) vs numpy \(lower)")
            #expect(abs(range.upper - upper) <= tolerance(upperSpacing), "upper \(range.upper) vs numpy \(upper)")
        }
    }

    /// numpy.percentile's default ("linear"): rank (n − 1)·p/100, interpolated; plus the gap
    /// between the samples on either side of the rank.
    static func numpyPercentile(_ values: [Float], _ percentile: Double) -> (value: Float, spacing: Float) {
        let sorted = values.sorted()
        let rank = Double(sorted.count - 1) * percentile / 100
        let low = Int(rank.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        let value = sorted[low] + Float(rank - Double(low)) * (sorted[high] - sorted[low])
        return (value, sorted[min(high + 1, sorted.count - 1)] - sorted[max(low - 1, 0)])
    }

    @Test func minmaxGlobalAndMovingAverage() {
        var global = RangeCollector(settings: .init(method: .minmax))
        var moving = RangeCollector(settings: .init(method: .minmax, movingAverage: 0.5))
        for batch: [Float] in [[-1, 2], [-3, 1], [0, 4]] {
            global.add(batch)
            moving.add(batch)
        }
        #expect(global.range() == ValueRange(lower: -3, upper: 4))
        // -1 → -1 + 0.5(-3 + 1) = -2 → -2 + 0.5(0 + 2) = -1; 2 → 1.5 → 2.75
        #expect(moving.range() == ValueRange(lower: -1, upper: 2.75))
        var symmetric = RangeCollector(settings: .init(method: .minmax, symmetric: true))
        symmetric.add([-1, 3])
        #expect(symmetric.range() == ValueRange(lower: -3, upper: 3))
    }

    /// Memory does not grow with samples: the histogram keeps 2·bins counts however much it sees,
    /// and re-binning keeps the total mass.
    @Test func histogramMemoryIsFlatAndMassIsKept() {
        var histogram = Histogram(bins: 2048)
        var source = SampleSource(state: 4)
        for round in 1...20 {
            source.normal(count: 5_000, scale: Float(round)).withUnsafeBufferPointer { histogram.add($0) }
        }
        #expect(histogram.counts.count == 4096)
        #expect(abs(histogram.counts.reduce(0, +) - 100_000) < 1e-6 * 100_000)
        #expect(histogram.total == 100_000)
    }

    @Test func nonNegativeDataKeepsAZeroLowerBound() {
        var collector = RangeCollector(settings: .init(method: .entropy))
        var source = SampleSource(state: 5)
        collector.add(source.normal(count: 50_000).map { max($0, 0) })
        let range = collector.range()!
        #expect(range.lower == 0)
        #expect(range.upper > 1 && range.upper <= 5)
    }

    @Test(arguments: ["minmax", "percentile", "entropy", "mse"])
    func calibrateStageRecordsEveryQuantisedActivation(method: String) throws {
        var model = try QuantizeFixtures.model("cnn")
        let result = try QuantizeFixtures.calibrate(&model, fixture: "cnn", method: method)
        let ranges = model.annotations.calibrationRanges
        for name in ["image", "conv1", "relu1", "conv2", "relu2", "flat", "logits"] {
            let range = try #require(ranges[name], "\(method): no range for \(name)")
            #expect(range.lower <= range.upper)
        }
        #expect(ranges["relu1"]!.lower >= 0)
        #expect(result.summary.contains("128 samples"))
    }

    /// The stage counts on a background thread, searches concurrently and gives an alias its source's
    /// range without searching it again; every range must be that of a collector of its own fed the
    /// same batches in order on one thread (four batches of 32, two, or three and a short one of 4).
    @Test("stage ranges equal collectors fed inline", arguments: ["minmax", "percentile", "entropy", "mse"], [nil, 64, 100] as [Int?])
    func stageRangesEqualInlineCollectors(method: String, limit: Int?) throws {
        var model = try QuantizeFixtures.model("cnn")
        let original = model
        let stage = try CalibrateStage(options: QuantizeFixtures.options(["dataset": .string("calib"), "method": .string(method)]))
        _ = try stage.run(&model, context: QuantizeFixtures.context(datasetFor: "cnn", limit: limit))
        let targets = CalibrationTargets.tensors(in: original.graph)
        var collectors = Dictionary(uniqueKeysWithValues: targets.map { ($0, RangeCollector(settings: stage.settings)) })
        let reader = try DatasetReader(
            source: DatasetSource(path: QuantizeFixtures.inputs("cnn"), limit: limit),
            expectedInputs: original.graph.runtimeInputs.compactMap(ExpectedInput.init))
        let plan = try ExecutionPlan(model: original)
        try reader.forEachBatch(size: 32) { batch in
            _ = try plan.run(inputs: batch.inputs.mapValues { try RuntimeTensor($0) }) { name, value in
                guard collectors[name] != nil else { return }
                value.withUnsafeBuffer(of: Float.self) { collectors[name]!.add($0) }
            }
        }
        for name in targets {
            #expect(model.annotations.calibrationRanges[name] == collectors[name]!.range(), "\(method), limit \(limit.map(String.init) ?? "none"): \(name)")
        }
    }

    /// A target that only reshapes another target's values takes its range instead of being counted twice.
    @Test("value-preserving ops make a target an alias", arguments: [
        ("Flatten", ["relu": "flat"] as [String: String], "flat", "relu" as String?),
        ("Reshape then Identity", ["relu": "shaped", "shaped": "copy"], "copy", "relu"),
        ("Transpose reorders values", ["relu": "turned"], "turned", nil),
    ])
    func aliases(description: String, chain: [String: String], last: String, source: String?) throws {
        // conv -> relu -> (chain) -> last -> Gemm, so both relu and last are calibration targets.
        var nodes = [Node(opType: "Conv", inputs: ["image", "w"], outputs: ["conv"]),
                     Node(opType: "Relu", inputs: ["conv"], outputs: ["relu"])]
        var current = "relu"
        while let next = chain[current] {
            let op = next == "flat" ? "Flatten" : next == "shaped" ? "Reshape" : next == "copy" ? "Identity" : "Transpose"
            nodes.append(Node(opType: op, inputs: op == "Reshape" ? [current, "shape"] : [current], outputs: [next]))
            current = next
        }
        nodes.append(Node(opType: "Gemm", inputs: [last, "fc", "bias"], outputs: ["logits"]))
        let graph = Graph(nodes: nodes)
        let targets = CalibrationTargets.tensors(in: graph)
        #expect(targets.contains(last) && targets.contains("relu"))
        #expect(CalibrationTargets.aliases(in: graph, targets: targets)[last] == source, "\(description)")
    }

    @Test func aliasGetsItsSourcesRange() throws {
        var model = try QuantizeFixtures.model("cnn")
        _ = try QuantizeFixtures.calibrate(&model, fixture: "cnn", method: "entropy")
        let ranges = model.annotations.calibrationRanges
        #expect(CalibrationTargets.aliases(in: model.graph, targets: CalibrationTargets.tensors(in: model.graph)) == ["flat": "relu2"])
        #expect(ranges["flat"] != nil && ranges["flat"] == ranges["relu2"])
    }

    @Test func calibrateOptionsAreChecked() {
        #expect(throws: NNPipeError.self) {
            try CalibrateStage(options: QuantizeFixtures.options(["dataset": .string("calib"), "method": .string("entropy"), "moving_average": .number(0.1)]))
        }
    }
}
