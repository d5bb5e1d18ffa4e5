import Foundation
import Logging
import NNPipeCore
import NNPipeData
import NNPipeONNX
import NNPipeRuntime
import NNPipeTestKit
import NNPipeTraining

@testable import StageFineTune

/// The bundled digits example: a scikit-learn MLP exported by skl2onnx (MatMul/Add/Relu/Softmax with
/// an ArgMax label tail) and the 8×8 digits data set (1347 training, 450 test samples).
enum DigitsFixture {
    static let folder = TestEnvironment.repositoryRoot.appendingPathComponent("Examples/digits")

    static func model() throws -> Model {
        try ONNXFormat().read(from: folder.appendingPathComponent("mlp.onnx"))
    }

    static let datasets: [String: DatasetSpecification] = [
        "train": DatasetSpecification(name: "train", path: folder.appendingPathComponent("digits.h5"), inputs: .single("train/x"), labels: "train/y"),
        "test": DatasetSpecification(name: "test", path: folder.appendingPathComponent("digits.h5"), inputs: .single("test/x"), labels: "test/y"),
        "small": DatasetSpecification(name: "small", path: folder.appendingPathComponent("digits.h5"), inputs: .single("train/x"), labels: "train/y", limit: 256),
    ]

    static func context(original: Model? = nil, progress: ProgressReporter = .silent) -> StageContext {
        StageContext(
            manifestDirectory: folder, outputDirectory: FileManager.default.temporaryDirectory, datasets: datasets,
            formats: FormatRegistry(), logger: Logger(label: "finetune-test"), progress: progress, stagePath: "stages[0]",
            originalModel: original)
    }

    static func stage(_ options: [String: JSONValue]) throws -> FineTuneStage {
        try FineTuneStage(options: StageOptions(values: options, path: "stages[0]"))
    }

    static let weightNames = ["coefficient", "coefficient1", "coefficient2"]

    /// Top-1 accuracy of the model's probabilities on the test split, on nnpipe's runtime
    /// (so the check does not trust the trainer's own forward pass).
    static func accuracy(_ model: Model) throws -> Double {
        let plan = try ExecutionPlan(model: model, threads: 1)
        let reader = try DatasetReader(
            source: DatasetSource(path: folder.appendingPathComponent("digits.h5"), inputs: .single(key: "test/x"), labels: "test/y"),
            expectedInputs: model.graph.runtimeInputs.compactMap(ExpectedInput.init))
        var correct = 0
        try reader.forEachBatch(size: 128) { batch in
            var feeds: [String: RuntimeTensor] = [:]
            for (name, tensor) in batch.inputs { feeds[name] = try RuntimeTensor(tensor) }
            let output = try plan.run(inputs: feeds, outputs: ["probabilities"])["probabilities"]!.floats
            let labels = batch.labels!.integerValues()!
            for (row, label) in labels.enumerated() {
                let scores = output[(row * 10)..<((row + 1) * 10)]
                if scores.firstIndex(of: scores.max()!)! - row * 10 == Int(label) { correct += 1 }
            }
        }
        return Double(correct) / Double(reader.sampleCount)
    }

    /// Prunes `sparsity` of every weight matrix by magnitude and leaves the masks as a prune stage would.
    static func damaged(_ model: Model, sparsity: Double) -> Model {
        var model = model
        for (index, tensor) in model.graph.initializers.enumerated() where weightNames.contains(tensor.name) {
            var values = tensor.floatValues()!
            let mask = MagnitudeMask.mask(for: values, sparsity: sparsity)
            for position in values.indices where mask[position] == 0 { values[position] = 0 }
            model.graph.initializers[index] = Tensor(name: tensor.name, shape: tensor.shape, values: values)
            model.annotations.pruningMasks[tensor.name] = Tensor(name: tensor.name, shape: tensor.shape, values: mask.map { UInt8($0) })
        }
        return model
    }

    static func weights(_ model: Model, _ name: String) -> [Float] {
        model.graph.initializer(named: name)!.floatValues()!
    }

    static func zeroFraction(_ values: [Float]) -> Double {
        Double(values.filter { $0 == 0 }.count) / Double(values.count)
    }
}
