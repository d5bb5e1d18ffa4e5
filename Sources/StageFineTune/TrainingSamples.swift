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
            // The reader's own shuffle rule, so a subset trains in the order the same samples would as a file of their own.
            let order = DatasetReader.shuffledOrder(count: subset.sampleCount, seed: epochSeed)
            return EpochBatches(sampleCount: sampleCount) { range in try subset.batch(at: Array(order[range]), range: range) }
        }
        var source = datasetSource(specification)
        source.shuffle = true
        source.seed = epochSeed
        let reader = try DatasetReader(source: source, expectedInputs: expected)
        return EpochBatches(sampleCount: sampleCount) { try reader.batch($0) }
    }
}

/// One epoch's samples, read on demand by position in the epoch's order.
struct EpochBatches {
    let sampleCount: Int
    let read: (Range<Int>) throws -> Batch

    func batch(_ range: Range<Int>) throws -> Batch { try read(range) }
}
