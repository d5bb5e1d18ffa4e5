import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

@testable import StageFineTune

@Suite("Training a CNN imported from ONNX")
struct ConvolutionTrainingTests {
    static let fixture = TestEnvironment.fixture("finetune/digits_cnn.onnx")

    /// scripts/make_finetune_fixtures.py's CNN (Reshape → Conv → BatchNormalization → Relu → MaxPool →
    /// Dropout → Flatten → Gemm → Softmax, random weights) trained from scratch while pruned gradually
    /// to 70%, exported, and scored again by onnxruntime.
    @Test("trains from random weights with gradual pruning; onnxruntime agrees on the exported model")
    func trainsFromScratch() throws {
        var model = try ONNXFormat().read(from: Self.fixture)
        let before = try DigitsFixture.accuracy(model)
        let stage = try DigitsFixture.stage([
            "dataset": .string("train"), "epochs": .number(2), "lr": .number(0.01), "seed": .number(3),
            "prune_schedule": .object([
                ("initial_sparsity", .number(0)), ("final_sparsity", .number(0.7)), ("begin_step", .number(20)),
                ("end_step", .number(60)), ("frequency", .number(10)),
            ]),
        ])
        let result = try stage.run(&model, context: DigitsFixture.context())
        let after = try DigitsFixture.accuracy(model)
        print("digits CNN: random \(before), trained and 70% pruned \(after); \(result.summary)")
        #expect(before < 0.3)
        #expect(after > 0.85)
        for name in ["conv.weight", "dense.weight"] {
            let weights = DigitsFixture.weights(model, name)
            let expected = (0.7 * Double(weights.count)).rounded(.toNearestOrEven) / Double(weights.count)
            #expect(DigitsFixture.zeroFraction(weights) == expected, "\(name) held at exactly 70%")
        }
        let mean = try #require(model.graph.initializer(named: "bn.mean")?.floatValues())
        #expect(mean.contains { $0 != 0 }, "running mean moved toward the batch means")
        #expect(model.graph.initializer(named: "image_shape")?.dataType == .int64, "shape constants are not touched")

        let folder = try TestEnvironment.temporaryFolder("finetune-cnn")
        defer { try? FileManager.default.removeItem(at: folder) }
        let exported = folder.appendingPathComponent("cnn.onnx")
        try ONNXFormat().write(model, to: exported)
        guard let python = TestEnvironment.python else {
            #expect(!TestEnvironment.isCI, "CI needs NNPIPE_PYTHON with onnxruntime")
            return
        }
        let scored = try ProcessRunner.run(python, [
            TestEnvironment.fixture("finetune/score_onnx.py").path, exported.path,
            DigitsFixture.folder.appendingPathComponent("digits.h5").path,
        ])
        try #require(scored.status == 0, "\(scored.standardError)")
        let onnxruntimeAccuracy = try #require(Double(scored.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(abs(onnxruntimeAccuracy - after) < 1e-5)
    }
}
