import NNPipeCore
import NNPipeData

/// The samples a fine-tune trains on and their order in each epoch. Which samples is the data
/// set's own choice (its `limit`, taken after its own `shuffle`/`seed`) and stays fixed for the
/// whole run; only their order changes, reshuffled every epoch by the stage's seed. (Shuffling the
/// whole file per epoch and then applying `limit` would draw a new subset every epoch, so a
/// "200-sample" fine-tune would see the whole file over enough epochs.)
struct TrainingSamples {
    let specification: DatasetSpecification
    let expected: [ExpectedInput]
    let seed: UInt64

    /// Samples per epoch.
    let sampleCount: Int
    /// The data set's fixed selection, when `limit` makes it a subset; nil reads the whole file.
    private let subset: DatasetReader?

    init(specification: DatasetSpecification, expected: [ExpectedInput], seed: UInt64) throws {
        self.specification = specification
        self.expected = expected
        self.seed = seed
        let reader = try DatasetReader(source: datasetSource(specification), expectedInputs: expected)
        sampleCount = reader.sampleCount
        // Without a limit the whole file trains and its own order does not matter.
        subset = specification.limit != nil ? reader : nil
    }

    /// One epoch's samples in its order, read a batch at a time.
    func epoch(_ epoch: Int) throws -> EpochBatches {
        let epochSeed = seed &* 1_000_003 &+ UInt64(epoch)
        if let subset {
            let order = Self.shuffledOrder(count: subset.sampleCount, seed: epochSeed)
            return EpochBatches(sampleCount: sampleCount) { range in
                try Self.gather(order[range].map { try subset.batch($0..<($0 + 1)) }, range: range)
            }
        }
        var source = datasetSource(specification)
        source.shuffle = true
        source.seed = epochSeed
        let reader = try DatasetReader(source: source, expectedInputs: expected)
        return EpochBatches(sampleCount: sampleCount) { try reader.batch($0) }
    }

    /// A Fisher-Yates permutation of `0 ..< count` by SplitMix64: the rule the data reader shuffles
    /// a file by, so a subset trains in the order the same samples would as a file of their own.
    static func shuffledOrder(count: Int, seed: UInt64) -> [Int] {
        var generator = SeededGenerator(seed: seed)
        var order = Array(0..<count)
        if count < 2 { return order }
        for index in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(index, Int(generator.next(below: UInt64(index + 1))))
        }
        return order
    }

    /// One batch from single-sample batches, stacked on the sample axis.
    static func gather(_ samples: [Batch], range: Range<Int>) throws -> Batch {
        var inputs: [String: Tensor] = [:]
        for name in samples[0].inputs.keys {
            inputs[name] = try stack(samples.map { $0.inputs[name]! })
        }
        let labels = try samples[0].labels.map { _ in try stack(samples.map { $0.labels! }) }
        return Batch(inputs: inputs, labels: labels, range: range)
    }

    private static func stack(_ tensors: [Tensor]) throws -> Tensor {
        let first = tensors[0]
        guard !first.shape.isEmpty, first.dataType.bitWidth >= 8, case .bytes = first.storage else {
            throw NNPipeError(.unsupported, "'\(first.name)' of type \(first.dataType) and shape \(first.shape) cannot be batched from a limited subset")
        }
        let byteCount = tensors.reduce(0) { $0 + $1.byteCount }
        let buffer = TensorBuffer(byteCount: byteCount) { destination in
            var offset = 0
            for tensor in tensors {
                tensor.withUnsafeBytes { source in
                    guard let base = source.baseAddress, source.count > 0 else { return }
                    (destination.baseAddress! + offset).copyMemory(from: base, byteCount: source.count)
                    offset += source.count
                }
            }
        }
        return Tensor(name: first.name, dataType: first.dataType, shape: [tensors.count] + first.shape.dropFirst(), storage: .bytes(buffer))
    }
}

/// One epoch's samples, read on demand by position in the epoch's order.
struct EpochBatches {
    let sampleCount: Int
    let read: (Range<Int>) throws -> Batch

    func batch(_ range: Range<Int>) throws -> Batch { try read(range) }
}
