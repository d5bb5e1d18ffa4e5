import Foundation
import NNPipeCore
import NNPipeData
import NNPipeRuntime

/// Runs the model on a data set and records the range of every tensor quantisation needs,
/// in `model.annotations.calibrationRanges`, for a later quantize stage.
public struct CalibrateStage: Stage {
    public static let kind = "calibrate"
    public static let summary = "Record activation ranges on a data set (minmax, percentile, entropy, mse) for static quantisation"
    public static let options: [OptionSpec] = [
        OptionSpec("dataset", .datasetReference, required: true, help: "data set to run the model on"),
        OptionSpec("method", .choice(RangeCollector.Method.allCases.map(\.rawValue)), default: .string("minmax"), help: "minmax, percentile (histogram), entropy (KL divergence, TensorRT), mse"),
        OptionSpec("percentile", .number, default: .number(99.999), minimum: 50, maximum: 100, exclusiveMinimum: false, help: "percentile method: share of values inside the range, in %"),
        OptionSpec("bins", .integer, default: .number(2048), minimum: 128, maximum: 65536, help: "histogram bins for percentile, entropy and mse"),
        OptionSpec("symmetric", .boolean, default: .bool(false), help: "ranges symmetric around zero"),
        OptionSpec("moving_average", .number, allowsNull: true, minimum: 0, maximum: 1, exclusiveMinimum: true, help: "minmax: moving-average constant per batch; null keeps the global min/max"),
        OptionSpec("limit", .integer, minimum: 1, help: "use at most this many samples"),
    ]

    public let datasetName: String
    public let settings: RangeCollector.Settings
    public let limit: Int?

    public init(options: StageOptions) throws {
        datasetName = options.string("dataset") ?? ""
        let method = RangeCollector.Method(rawValue: options.string("method") ?? "minmax") ?? .minmax
        if options.has("moving_average") && method != .minmax {
            throw options.error("moving_average", "applies to method 'minmax' only, not '\(method.rawValue)'")
        }
        settings = RangeCollector.Settings(
            method: method, percentile: options.double("percentile") ?? 99.999, bins: options.integer("bins") ?? 2048,
            symmetric: options.bool("symmetric") ?? false, movingAverage: options.double("moving_average"))
        limit = options.integer("limit")
    }

    public func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        let specification = try context.dataset(datasetName)
        let targets = CalibrationTargets.tensors(in: model.graph)
        guard !targets.isEmpty else {
            throw NNPipeError(.stageFailed, "the model has no Conv, ConvTranspose, Gemm or MatMul whose activations need ranges", path: context.stagePath)
        }
        let source = DatasetSource(
            path: specification.path, inputs: Self.selection(specification.inputs), labels: nil,
            limit: [specification.limit, limit].compactMap { $0 }.min(), shuffle: specification.shuffle, seed: specification.seed)
        let expected = model.graph.runtimeInputs.compactMap(ExpectedInput.init)
        let reader = try DatasetReader(source: source, expectedInputs: expected)
        let batchSize = Self.batchSize(for: model.graph, preferred: specification.batchSize)
        // Not fixed to `batchSize`: the last batch of a data set may be shorter (the reader has
        // already checked every other dimension against the model).
        let plan = try ExecutionPlan(model: model)

        // Targets that copy another target's values are not counted; they take its range at the end.
        let aliases = CalibrationTargets.aliases(in: model.graph, targets: targets)
        let counted = Set(targets.filter { aliases[$0] == nil })
        let counting = CountingQueue(targets: counted, settings: settings)
        var nonFloat = Set<String>()
        var seen = 0
        try reader.forEachBatch(size: batchSize) { batch in
            let feeds = try batch.inputs.mapValues { try RuntimeTensor($0) }
            counting.beginBatch()
            // Also when the run throws: a semaphore freed below its starting value aborts the process.
            defer { counting.endBatch() }
            _ = try plan.run(inputs: feeds) { name, value in
                guard counted.contains(name) else { return }
                guard value.dataType == .float else {
                    nonFloat.insert(name)
                    return
                }
                counting.add(value, to: name)
            }
            seen += batch.range.count
            context.progress.update("calibrating (\(settings.method.rawValue)): \(seen) of \(reader.sampleCount) samples", fraction: Double(seen) / Double(reader.sampleCount))
        }
        var collectors = counting.finish()
        for (alias, source) in aliases {
            collectors[alias] = collectors[source]
            if nonFloat.contains(source) { nonFloat.insert(alias) }
        }

        // The threshold searches are independent and O(bins²) each: run them on all cores. An alias
        // holds a copy of its source's collector, so it takes the source's range instead of repeating
        // the same search (the Flatten before a Gemm: 1 of 7 searches on the test CNN).
        let searched = targets.filter { !nonFloat.contains($0) && collectors[$0] != nil }
        let searchedSet = Set(searched)
        func searchedSource(_ name: String) -> String {
            var current = name
            while let source = aliases[current], searchedSet.contains(source) { current = source }
            return current
        }
        let distinct = searched.filter { searchedSource($0) == $0 }
        let distinctRanges = Dictionary(uniqueKeysWithValues: zip(distinct, RangeCollector.ranges(distinct.map { collectors[$0]! })))
        let ranges = searched.map { distinctRanges[searchedSource($0)]! }
        var rows: [JSONValue] = []
        var recorded = 0
        for (name, range) in zip(searched, ranges) {
            guard let collector = collectors[name], let range else { continue }
            model.annotations.calibrationRanges[name] = range
            recorded += 1
            var row: [(String, JSONValue)] = [("tensor", .string(name)), ("lower", .number(Double(range.lower))), ("upper", .number(Double(range.upper)))]
            if let histogram = collector.histogram {
                row.append(("observed", .array([.number(Double(histogram.minimum)), .number(Double(histogram.maximum))])))
            }
            rows.append(.object(row))
        }
        guard recorded > 0 else {
            throw NNPipeError(.stageFailed, "no finite values seen in any of the \(targets.count) tensors to calibrate", path: context.stagePath)
        }
        return StageResult(
            summary: "\(settings.method.rawValue) ranges for \(recorded) tensors from \(seen) samples of '\(datasetName)'",
            details: [("method", .string(settings.method.rawValue)), ("samples", .number(Double(seen))), ("ranges", .array(rows))],
            warnings: nonFloat.sorted().map { "'\($0)' is not float32; no range recorded" })
    }

    static func selection(_ inputs: DatasetSpecification.Inputs) -> DatasetSource.InputSelection {
        switch inputs {
        case .single(let key): .single(key: key)
        case .named(let keys): .named(keys)
        }
    }

    /// The manifest's batch size, unless the model fixes its batch dimension.
    static func batchSize(for graph: Graph, preferred: Int) -> Int {
        if let first = graph.runtimeInputs.first?.type.tensorShape?.first, case .fixed(let size) = first, size > 0 { return size }
        return max(preferred, 1)
    }
}

/// Counts observed values on a background thread while the model computes the next layers and the
/// next batch: the forward pass of a small model leaves a core free, and counting a histogram costs
/// about as much as computing the activations. One serial queue keeps each tensor's batches in
/// order, so the result is the same as counting inline. At most two batches are in flight (one being
/// computed, one being counted), so memory stays flat in the sample count.
final class CountingQueue: @unchecked Sendable {
    private let queue = DispatchQueue(label: "nnpipe.calibrate.counting")
    private let inFlight = DispatchSemaphore(value: 2)
    /// Touched only on `queue` until `finish()`, which waits for it.
    private var collectors: [String: RangeCollector] = [:]

    init(targets: Set<String>, settings: RangeCollector.Settings) {
        for name in targets { collectors[name] = RangeCollector(settings: settings) }
    }

    func beginBatch() { inFlight.wait() }

    /// `value` stays alive (its storage is not reused) until it has been counted.
    func add(_ value: RuntimeTensor, to name: String) {
        queue.async {
            value.withUnsafeBuffer(of: Float.self) { self.collectors[name]!.add($0) }
        }
    }

    func endBatch() {
        queue.async { self.inFlight.signal() }
    }

    func finish() -> [String: RangeCollector] {
        queue.sync { collectors }
    }
}

