import Foundation
import NNPipeCore
import NNPipeKeras
import NNPipeONNX
import NNPipeRuntime
import NNPipeTestKit
import Testing
@testable import StagePrune

/// Models converted by Keras (2 and 3): residual Add, Concatenate, DepthwiseConv2D, ZeroPadding2D.
struct KerasModelTests {
    static let script = """
    import json, sys
    import numpy as np, onnx, onnxruntime as ort
    model = onnx.load(sys.argv[1])
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in feed.shape]
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    print(json.dumps({"shape": shape, "input": x.ravel().tolist(), "output": session.run(None, {feed.name: x})[0].ravel().tolist()}))
    """

    @Test(arguments: ["k2_functional_residual.h5", "k3_functional_residual.h5", "k2_sequential_cnn.h5", "k3_sequential_cnn.h5", "k2_mlp.h5"])
    func halfTheChannelsOfAKerasModel(_ file: String) throws {
        let original = try KerasFormat().read(from: TestEnvironment.fixture("keras/\(file)"))
        var model = original
        let result = try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5)], on: &model)
        try GraphCheck.validate(model)
        let before = try #require(result.detail("macs_before")?.numberValue)
        let after = try #require(result.detail("macs_after")?.numberValue)
        if file.contains("functional_residual") {
            #expect(after <= 0.5 * before, "MACs \(after) of \(before)")
        } else {
            #expect(after < before)
        }
        // The stage proved masked == removed on the runtime.
        let proof = try #require(result.detail("equivalence_max_difference")?.numberValue, "\(result.warnings)")
        #expect(proof <= 1e-4)

        guard TestEnvironment.python != nil else { return }
        let folder = try TestEnvironment.temporaryFolder("prune-keras")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("pruned.onnx")
        try ONNXFormat().write(model, to: path)
        let run = try ProcessRunner.python(Self.script, [path.path])
        try #require(run.status == 0, "onnxruntime failed: \(run.standardError)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        let shape = try #require(facts["shape"] as? [Int])
        let input = try #require(facts["input"] as? [Double]).map { Float($0) }
        let expected = try #require(facts["output"] as? [Double]).map { Float($0) }
        let ours = try ExecutionPlan(model: try ONNXFormat().read(from: path), threads: 1, batchSize: 1)
            .run(RuntimeTensor(shape: shape, floats: input)).floats
        let magnitude = expected.map { abs($0) }.max() ?? 0
        let difference = zip(ours, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference <= 1e-5 * max(1, magnitude), "nnpipe vs onnxruntime \(difference)")
    }

    static let kerasScript = """
    import json, os, sys
    os.environ["KERAS_BACKEND"] = "numpy"
    import numpy as np, keras
    model = keras.models.load_model(sys.argv[1], compile=False)
    shape = [1] + [d for d in model.inputs[0].shape[1:]]
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    layers = sorted({layer.__class__.__name__ for layer in model.layers})
    print(json.dumps({"shape": shape, "input": x.ravel().tolist(), "output": np.asarray(model.predict(x, verbose=0)).ravel().tolist(), "layers": layers}))
    """

    /// The Done-when case: half the channels of a Functional model with Add, Concatenate and
    /// DepthwiseConv2D, exported back to .h5, loads in Keras 3 and predicts like nnpipe's runtime.
    @Test(arguments: ["k2_functional_residual.h5", "k3_functional_residual.h5"])
    func prunedFunctionalModelRunsInKeras(_ file: String) throws {
        var model = try KerasFormat().read(from: TestEnvironment.fixture("keras/\(file)"))
        let result = try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5)], on: &model)
        let before = try #require(result.detail("macs_before")?.numberValue)
        let after = try #require(result.detail("macs_after")?.numberValue)
        #expect(after <= 0.5 * before, "MACs \(after) of \(before)")
        guard TestEnvironment.python != nil else { return }
        let folder = try TestEnvironment.temporaryFolder("prune-keras-h5")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("pruned.h5")
        try KerasFormat().write(model, to: path)
        let run = try ProcessRunner.python(Self.kerasScript, [path.path])
        try #require(run.status == 0, "Keras failed: \(run.standardError.suffix(1500))")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        let layers = try #require(facts["layers"] as? [String])
        #expect(["Add", "Concatenate", "DepthwiseConv2D"].allSatisfy(layers.contains), "\(layers)")
        let shape = try #require(facts["shape"] as? [Int])
        let input = try #require(facts["input"] as? [Double]).map { Float($0) }
        let expected = try #require(facts["output"] as? [Double]).map { Float($0) }
        let ours = try ExecutionPlan(model: model, threads: 1, batchSize: 1).run(RuntimeTensor(shape: shape, floats: input)).floats
        let magnitude = expected.map { abs($0) }.max() ?? 0
        let difference = zip(ours, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(ours.count == expected.count)
        #expect(difference <= 1e-5 * max(1, magnitude), "nnpipe vs Keras \(difference)")
    }

    /// SeparableConv2D on the input, then UpSampling and Conv2DTranspose, which the analysis
    /// does not follow: nothing can go, and the error says why.
    @Test func modelWithNothingRemovableSaysWhy() throws {
        var model = try KerasFormat().read(from: TestEnvironment.fixture("keras/k3_separable.h5"))
        let error = try #require(throws: NNPipeError.self) {
            try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5)], on: &model)
        }
        #expect(error.code == .stageFailed)
        #expect(error.message.contains("no channel could be removed") && error.message.contains("Resize"), "\(error)")
    }
}
