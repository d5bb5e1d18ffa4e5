import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeRuntime
import NNPipeTestKit
import Testing
@testable import StagePrune

/// The bundled example model, converted by skl2onnx (MatMul + Add layers, ai.onnx.ml ops).
struct ConvertedModelTests {
    static let path = TestEnvironment.repositoryRoot.appendingPathComponent("Examples/digits/mlp.onnx")

    static let script = """
    import gzip, json, sys
    import numpy as np, onnx, onnxruntime as ort
    result = {}
    for label, path in (("dense", sys.argv[1]), ("pruned", sys.argv[2])):
        onnx.checker.check_model(onnx.load(path), full_check=True)
        data = open(path, "rb").read()
        result[label + "_gzip"] = len(gzip.compress(data, 9))
    x = np.random.default_rng(0).uniform(0, 16, (4, 64)).astype(np.float32)
    session = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
    result["input"] = x.ravel().tolist()
    result["probabilities"] = session.run(["probabilities"], {"X": x})[0].ravel().tolist()
    print(json.dumps(result))
    """

    /// Writes the pruned model, runs onnxruntime on it and checks nnpipe's runtime agrees.
    func checkWithOnnxruntime(_ pruned: Model) throws -> [String: Any]? {
        guard TestEnvironment.python != nil else { return nil }
        let folder = try TestEnvironment.temporaryFolder("prune-digits")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("pruned.onnx")
        try ONNXFormat().write(pruned, to: path)
        let run = try ProcessRunner.python(Self.script, [Self.path.path, path.path])
        try #require(run.status == 0, "onnxruntime failed: \(run.standardError)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        let input = try #require(facts["input"] as? [Double]).map { Float($0) }
        let expected = try #require(facts["probabilities"] as? [Double]).map { Float($0) }
        let ours = try ExecutionPlan(model: try ONNXFormat().read(from: path), threads: 1)
            .run(inputs: ["X": RuntimeTensor(shape: [4, 64], floats: input)], outputs: ["probabilities"])["probabilities"]!.floats
        let difference = zip(ours, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference <= 1e-5, "nnpipe vs onnxruntime: \(difference)")
        return facts
    }

    @Test func ninetyPercentGlobal() throws {
        var model = try ONNXFormat().read(from: Self.path)
        let result = try runStage(["sparsity": .number(0.9), "scope": .string("global"), "include_first_last": .bool(true)], on: &model)
        let achieved = try #require(result.detail("achieved_sparsity")?.numberValue)
        #expect(abs(achieved - 0.9) <= 0.001)
        guard let facts = try checkWithOnnxruntime(model) else { return }
        let dense = try #require(facts["dense_gzip"] as? Int)
        let pruned = try #require(facts["pruned_gzip"] as? Int)
        #expect(Double(pruned) <= 0.25 * Double(dense), "gzip \(pruned) of \(dense)")
    }

    @Test func halfTheChannels() throws {
        var model = try ONNXFormat().read(from: Self.path)
        let result = try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5)], on: &model)
        let before = try #require(result.detail("macs_before")?.numberValue)
        let after = try #require(result.detail("macs_after")?.numberValue)
        #expect(after <= 0.5 * before)
        #expect(model.graph.initializer(named: "coefficient1")?.shape == [32, 16])
        #expect(model.graph.initializer(named: "intercepts1")?.shape == [1, 16])
        #expect(result.detail("equivalence_max_difference")?.numberValue != nil, "\(result.warnings)")
        _ = try checkWithOnnxruntime(model)
    }
}
