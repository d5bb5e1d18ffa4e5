import Foundation
import NNPipeCore

/// Reads a data set in batches shaped and typed for a model's inputs.
///
/// `init` opens the files and checks every array against its model input (rank, non-batch
/// dimensions, a convertible element type, equal sample counts) before any batch is read, so a
/// mismatch fails at once with both shapes. Batches are read on demand: only the batch being
/// built is in memory. The one exception is a deflated `.npz` member, which is inflated when
/// opened: into memory up to 64 MiB, into a deleted scratch file beyond that.
public final class DatasetReader {
    public let source: DatasetSource
    /// Samples the reader yields: the file's count, capped by `limit`.
    public let sampleCount: Int
    /// Model input names in the order given to `init`.
    public let inputNames: [String]
    /// Full shape of the array feeding each input, sample axis first, as stored (before `limit`).
    public let inputShapes: [String: [Int]]
    /// Full shape and element type of the labels array, when the source names one.
    public let labelsShape: [Int]?
    public let labelsElementType: DataType?

    private let inputs: [BoundInput]
    private let labels: DatasetArray?
    /// Sample order after shuffle and limit; nil means `0 ..< sampleCount` in file order.
    private let order: [Int]?
    private let container: DatasetContainer

    struct BoundInput {
        var name: String
        var elementType: DataType
        var array: DatasetArray
    }

    public init(source: DatasetSource, expectedInputs: [ExpectedInput]) throws {
        self.source = source
        inputNames = expectedInputs.map(\.name)
        let container = try DatasetContainers.open(source.path)
        self.container = container
        guard !expectedInputs.isEmpty else {
            throw NNPipeError(.invalidData, "the model has no inputs to feed", path: container.path)
        }
        if let limit = source.limit, limit < 1 {
            throw NNPipeError(.usage, "limit must be at least 1, got \(limit)", path: container.path)
        }

        let keys = try Self.keys(for: expectedInputs, selection: source.inputs, labels: source.labels, in: container)
        var bound: [BoundInput] = []
        for (expected, key) in zip(expectedInputs, keys) {
            let array = try container.array(key: key)
            try Self.check(array, against: expected)
            bound.append(BoundInput(name: expected.name, elementType: expected.elementType, array: array))
        }
        inputs = bound
        inputShapes = Dictionary(bound.map { ($0.name, $0.array.shape) }, uniquingKeysWith: { first, _ in first })
        labels = try source.labels.map { try container.array(key: $0) }
        labelsShape = labels?.shape
        labelsElementType = labels?.elementType

        let total = bound[0].array.sampleCount
        let others = bound.dropFirst().map(\.array) + (labels.map { [$0] } ?? [])
        for other in others where other.sampleCount != total {
            throw NNPipeError(
                .invalidData,
                "\(bound[0].array.displayName) has \(total) samples but \(other.displayName) has \(other.sampleCount)",
                path: container.path)
        }
        guard total > 0 else {
            throw NNPipeError(.invalidData, "\(bound[0].array.displayName) has no samples", path: container.path)
        }
        sampleCount = min(total, source.limit ?? total)
        order = source.shuffle ? Array(Self.shuffledOrder(count: total, seed: source.seed).prefix(sampleCount)) : nil
    }

    /// Batches of `size` samples (the last may be smaller), in the reader's order.
    /// The reader does not look at the model's first dimension: for a model with a fixed batch
    /// size, pass that size (and expect a short last batch unless `sampleCount` divides evenly).
    public func batches(size: Int) throws -> BatchIterator {
        guard size >= 1 else { throw NNPipeError(.usage, "batch size must be at least 1, got \(size)") }
        return BatchIterator(reader: self, size: size)
    }

    /// Calls `body` with each batch in turn.
    public func forEachBatch(size: Int, _ body: (Batch) throws -> Void) throws {
        var iterator = try batches(size: size)
        while let batch = try iterator.next() { try body(batch) }
    }

    /// Reads the samples at positions `range` of the reader's order.
    public func batch(_ range: Range<Int>) throws -> Batch {
        try batch(at: Array(range), range: range)
    }

    /// Reads the samples at `positions` of the reader's order as one batch labelled `range`, e.g.
    /// a fixed subset in a new order each epoch.
    public func batch(at positions: [Int], range: Range<Int>) throws -> Batch {
        precondition(positions.allSatisfy { $0 >= 0 && $0 < sampleCount }, "batch positions out of bounds")
        let indices = order.map { order in positions.map { order[$0] } } ?? positions
        var tensors: [String: Tensor] = [:]
        for input in inputs {
            tensors[input.name] = try read(input.array, rows: indices, as: input.elementType, name: input.name)
        }
        let labelTensor = try labels.map {
            try read($0, rows: indices, as: $0.elementType, name: source.labels ?? "labels")
        }
        return Batch(inputs: tensors, labels: labelTensor, range: range)
    }

    private func read(_ array: DatasetArray, rows: [Int], as elementType: DataType, name: String) throws -> Tensor {
        let shape = array.shape.isEmpty ? [] : [rows.count] + array.sampleShape
        let elementCount = shape.reduce(1, *)
        if array.elementType == elementType {  // no conversion: read straight into the tensor
            let buffer = try TensorBuffer(byteCount: rows.count * array.rowByteCount) { try array.readRows(rows, into: $0) }
            return Tensor(name: name, dataType: elementType, shape: shape, storage: .bytes(buffer))
        }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, rows.count * array.rowByteCount), alignment: 16)
        defer { raw.deallocate() }
        try array.readRows(rows, into: raw)
        let buffer = try TensorBuffer(byteCount: elementType.byteCount(elements: elementCount)) { destination in
            do {
                try ElementConversion.convert(
                    UnsafeRawBufferPointer(raw), from: array.elementType, to: elementType, count: elementCount,
                    into: destination)
            } catch let failure as ElementConversion.ConversionFailure {
                let perSample = max(1, elementCount / max(1, rows.count))
                let row = rows[min(rows.count - 1, failure.elementIndex / perSample)]
                throw NNPipeError(
                    .invalidData, "\(array.displayName), sample \(row), for input '\(name)': \(failure.reason)",
                    path: array.file)
            }
        }
        return Tensor(name: name, dataType: elementType, shape: shape, storage: .bytes(buffer))
    }

    // MARK: Opening

    /// Resolves the array key of each model input from the selection and the container's defaults.
    private static func keys(
        for expected: [ExpectedInput], selection: DatasetSource.InputSelection, labels: String?,
        in container: DatasetContainer
    ) throws -> [String] {
        let names = expected.map(\.name)
        switch selection {
        case .single(let key?):
            guard expected.count == 1 else {
                throw NNPipeError(
                    .usage,
                    "the model has \(expected.count) inputs (\(names.joined(separator: ", "))): map each input name to an array instead of one key '\(key)'",
                    path: container.path)
            }
            return [key]
        case .single(nil):
            return try expected.enumerated().map { index, input in
                guard
                    let key = container.defaultKey(
                        inputIndex: index, inputName: input.name, inputCount: expected.count, labels: labels)
                else {
                    throw NNPipeError(
                        .usage,
                        "name the array for model input '\(input.name)' (has: \(container.keyList))",
                        path: container.path)
                }
                return key
            }
        case .named(let mapping):
            if let unknown = mapping.keys.sorted().first(where: { !names.contains($0) }) {
                throw NNPipeError(
                    .usage, "'\(unknown)' is not a model input (inputs: \(names.joined(separator: ", ")))",
                    path: container.path)
            }
            return try names.map { name in
                guard let key = mapping[name] else {
                    throw NNPipeError(.usage, "no array given for model input '\(name)'", path: container.path)
                }
                return key
            }
        }
    }

    /// Checks rank, non-batch dimensions and element type against the model input.
    static func check(_ array: DatasetArray, against expected: ExpectedInput) throws {
        guard ElementConversion.supportedTypes.contains(expected.elementType) else {
            throw NNPipeError(
                .unsupported, "model input '\(expected.name)' takes \(expected.elementType), which data files cannot feed",
                path: array.file)
        }
        guard ElementConversion.supportedTypes.contains(array.elementType) else {
            throw NNPipeError(
                .unsupported, "\(array.displayName) holds \(array.elementType), which cannot feed a model input",
                path: array.file)
        }
        guard let modelShape = expected.shape else { return }
        let matches =
            modelShape.count == array.shape.count
            && zip(modelShape, array.shape).dropFirst().allSatisfy { dimension, size in
                dimension.fixedValue.map { $0 == size } ?? true
            }
        guard matches else {
            let dataShape = "[" + array.shape.map(String.init).joined(separator: ",") + "]"
            let inputShape = "[" + modelShape.map { $0.description }.joined(separator: ",") + "]"
            throw NNPipeError(
                .invalidData,
                "\(array.displayName): data shape \(dataShape) does not match model input '\(expected.name)' shape \(inputShape)",
                path: array.file)
        }
    }

    /// A Fisher-Yates permutation of `0 ..< count` driven by SplitMix64, stable across platforms.
    public static func shuffledOrder(count: Int, seed: UInt64) -> [Int] {
        var generator = SeededGenerator(seed: seed)
        var order = Array(0..<count)
        if count < 2 { return order }
        for index in stride(from: count - 1, to: 0, by: -1) {
            let other = Int(generator.next(below: UInt64(index + 1)))
            order.swapAt(index, other)
        }
        return order
    }
}

/// Yields a reader's batches; `next()` throws when a file turns out corrupt midway.
public struct BatchIterator {
    private let reader: DatasetReader
    private let size: Int
    private var position = 0

    init(reader: DatasetReader, size: Int) {
        self.reader = reader
        self.size = size
    }

    /// The next batch, or nil after the last one.
    public mutating func next() throws -> Batch? {
        guard position < reader.sampleCount else { return nil }
        let end = min(position + size, reader.sampleCount)
        defer { position = end }
        return try reader.batch(position..<end)
    }
}

