import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeRuntime
import NNPipeTestKit
import Testing
@testable import StagePrune

/// Pruned models written as ONNX must pass onnx.checker, run in onnxruntime, agree with nnpipe's
/// runtime, and (unstructured) gzip far smaller than the dense file.
struct InteropTests {
    /// A CNN whose bulk sits in the middle layers, as in real models.
    static func wideModel() -> Model {
        var builder = ModelBuilder(shape: [1, 3, 8, 8])
        builder.generator = SeededGenerator(seed: 11)
        var x = builder.conv("stem", "input", inputChannels: 3, outputChannels: 16)
        x = builder.batchNorm("stem_bn", x, channels: 16)
        x = builder.node("Relu", "stem_relu", [x])
        x = builder.conv("expand", x, inputChannels: 16, outputChannels: 64)
        x = builder.node("Relu", "expand_relu", [x])
        var y = builder.conv("block_a", x, inputChannels: 64, outputChannels: 64)
        y = builder.batchNorm("block_a_bn", y, channels: 64)
        y = builder.node("Relu", "block_a_relu", [y])
        y = builder.conv("block_b", y, inputChannels: 64, outputChannels: 64)
        x = builder.node("Add", "residual", [x, y])
        x = builder.node("Relu", "residual_relu", [x])
        let z = builder.conv("depthwise", x, inputChannels: 64, outputChannels: 64, group: 64)
        x = builder.node("Concat", "concat", [x, z], attributes: [.int("axis", 1)])
        x = builder.node("GlobalAveragePool", "pool", [x])
        x = builder.node("Flatten", "flatten", [x])
        x = builder.gemm("head", x, inputFeatures: 128, outputFeatures: 10)
        return builder.model(output: x, shape: [1, 10])
    }

    static let script = """
    import gzip, json, sys
    import numpy as np, onnx, onnxruntime as ort
    dense, pruned = sys.argv[1], sys.argv[2]
    result = {}
    for label, path in (("dense", dense), ("pruned", pruned)):
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        data = open(path, "rb").read()
        result[label + "_bytes"] = len(data)
        result[label + "_gzip"] = len(gzip.compress(data, 9))
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    session = ort.InferenceSession(pruned, providers=["CPUExecutionProvider"])
    result["input"] = x.ravel().tolist()
    result["output"] = session.run(None, {"input": x})[0].ravel().tolist()
    print(json.dumps(result))
    """

    struct Interop {
        var facts: [String: Any]
        var number: (String) -> Double
    }

    /// Writes both models, runs the script, and checks nnpipe's runtime against onnxruntime.
    func exportAndCompare(dense: Model, pruned: Model) throws -> [String: Any]? {
        guard TestEnvironment.python != nil else {
            if TestEnvironment.isCI { Issue.record("Python interop environment missing in CI") }
            return nil
        }
        let folder = try TestEnvironment.temporaryFolder("prune-interop")
        defer { try? FileManager.default.removeItem(at: folder) }
        let densePath = folder.appendingPathComponent("dense.onnx")
        let prunedPath = folder.appendingPathComponent("pruned.onnx")
        try ONNXFormat().write(dense, to: densePath)
        try ONNXFormat().write(pruned, to: prunedPath)
        let run = try ProcessRunner.python(Self.script, [densePath.path, prunedPath.path])
        try #require(run.status == 0, "python failed: \(run.standardError)")
        let facts = try #require(try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        let input = try #require(facts["input"] as? [Double]).map { Float($0) }
        let expected = try #require(facts["output"] as? [Double]).map { Float($0) }
        let reread = try ONNXFormat().read(from: prunedPath)
        let ours = try ExecutionPlan(model: reread, threads: 1).run(RuntimeTensor(shape: [1, 3, 8, 8], floats: input)).floats
        #expect(ours.count == expected.count)
        let difference = zip(ours, expected).map { abs($0 - $1) }.max() ?? .infinity
        let magnitude = expected.map { abs($0) }.max() ?? 0
        #expect(difference <= 1e-5 * max(1, magnitude), "nnpipe vs onnxruntime: \(difference), outputs up to \(magnitude)")
        return facts
    }

    @Test func globalNinetyPercentGzipsToAQuarterAndRunsInOnnxruntime() throws {
        let dense = Self.wideModel()
        var pruned = dense
        let result = try runStage(["sparsity": .number(0.9), "scope": .string("global")], on: &pruned)
        let achieved = try #require(result.detail("achieved_sparsity")?.numberValue)
        #expect(abs(achieved - 0.9) < 0.001)
        guard let facts = try exportAndCompare(dense: dense, pruned: pruned) else { return }
        let denseGzip = try #require(facts["dense_gzip"] as? Double ?? (facts["dense_gzip"] as? Int).map(Double.init))
        let prunedGzip = try #require(facts["pruned_gzip"] as? Double ?? (facts["pruned_gzip"] as? Int).map(Double.init))
        #expect(prunedGzip <= 0.25 * denseGzip, "gzip \(prunedGzip) vs dense \(denseGzip)")
    }

    @Test func channelPrunedModelRunsInOnnxruntimeWithHalfTheMACs() throws {
        let dense = Self.wideModel()
        var pruned = dense
        let result = try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5)], on: &pruned)
        let before = try #require(result.detail("macs_before")?.numberValue)
        let after = try #require(result.detail("macs_after")?.numberValue)
        #expect(after <= 0.5 * before)
        #expect(result.detail("equivalence_max_difference")?.numberValue != nil)
        #expect(pruned.graph.initializer(named: "depthwise.weight")?.shape == [32, 1, 3, 3])
        _ = try exportAndCompare(dense: dense, pruned: pruned)
    }
}
