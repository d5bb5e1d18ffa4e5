import Foundation
import Logging
import NNPipeCore
import NNPipeData
import NNPipeTestKit
import Testing

@testable import StageFineTune

/// A training set with `limit` is a fixed subset: every epoch trains on the same samples, the
/// ones the data set's own `shuffle`/`seed` and `limit` pick, not a fresh draw from the whole file.
@Suite("Fine-tuning on a limited data set", .serialized)
struct LimitedDatasetTests {
    static let digits = DigitsFixture.folder.appendingPathComponent("digits.h5")

    static func context(_ datasets: [String: DatasetSpecification]) -> StageContext {
        StageContext(
            manifestDirectory: DigitsFixture.folder, outputDirectory: FileManager.default.temporaryDirectory, datasets: datasets,
            formats: FormatRegistry(), logger: Logger(label: "finetune-test"), progress: .silent, stagePath: "stages[0]")
    }

    static func train(_ dataset: DatasetSpecification, from start: Model) throws -> [Float] {
        var model = start
        let stage = try DigitsFixture.stage([
            "dataset": .string("train"), "epochs": .number(4), "batch_size": .number(16), "seed": .number(3),
            "optimizer": .string("sgd"), "lr": .number(0.05),
        ])
        _ = try stage.run(&model, context: context(["train": dataset]))
        return DigitsFixture.weightNames.flatMap { DigitsFixture.weights(model, $0) }
    }

    @Test("limit trains exactly as a file holding only the selected samples", arguments: [
        (shuffle: false, seed: UInt64(0)), (shuffle: true, seed: UInt64(5)),
    ])
    func fixedSubset(selection: (shuffle: Bool, seed: UInt64)) throws {
        let folder = try TestEnvironment.temporaryFolder("nnpipe-limit")
        defer { try? FileManager.default.removeItem(at: folder) }
        let limited = DatasetSpecification(
            name: "train", path: Self.digits, inputs: .single("train/x"), labels: "train/y", limit: 48,
            shuffle: selection.shuffle, seed: selection.seed)
        // The same 48 samples, in the data set's order, as a file of their own.
        let start = DigitsFixture.damaged(try DigitsFixture.model(), sparsity: 0.5)
        let reader = try DatasetReader(
            source: datasetSource(limited), expectedInputs: start.graph.runtimeInputs.compactMap(ExpectedInput.init))
        let selected = try reader.batch(0..<48)
        let subsetFile = folder.appendingPathComponent("subset.npz")
        try NumpyArchiveWriter.write([("x", try #require(selected.inputs["X"])), ("y", try #require(selected.labels))], to: subsetFile)
        let own = DatasetSpecification(name: "train", path: subsetFile, inputs: .single("x"), labels: "y")

        let fromLimit = try Self.train(limited, from: start)
        let fromFile = try Self.train(own, from: start)
        let sameWeights = fromLimit == fromFile
        #expect(sameWeights, "the limited set trained differently from a file of the same samples")
        // A different subset trains differently, so the equality above is not vacuous.
        var other = limited
        other.shuffle = true
        other.seed = selection.seed + 1
        let otherWeights = try Self.train(other, from: start) == fromLimit
        #expect(!otherWeights, "another subset gave the same weights: the data set's selection is ignored")
    }
}
