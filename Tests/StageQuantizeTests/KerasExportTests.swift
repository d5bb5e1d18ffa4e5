import Foundation
import Logging
import NNPipeCore
import NNPipeData
import NNPipeKeras
import NNPipeONNX
import NNPipeRuntime
import NNPipeTestKit
import StageQuantize
import Testing

/// Keras files hold float layers only: a quantised model is refused with one line, unless the user
/// asks for `dequantize_weights` on a weight-only model, which writes the dequantised float weights.
@Suite struct KerasExportTests {
    static func context(_ folder: URL) -> StageContext {
        var context = QuantizeFixtures.context(datasetFor: "cnn")
        context.formats = FormatRegistry([ONNXFormat(), KerasFormat()])
        context.outputDirectory = folder
        context.stagePath = "stages[2]"
        return context
    }

    struct RefusalCase: CustomTestStringConvertible, Sendable {
        var label: String
        var options: [String: JSONValue]
        var calibrate: Bool
        var dequantizeWeights: Bool
        var expected: String
        var testDescription: String { label }
    }

    static let refusals: [RefusalCase] = [
        RefusalCase(label: "static QDQ without the option", options: ["weights": .string("int8"), "activations": .string("uint8")], calibrate: true,
                    dequantizeWeights: false, expected: "Keras files hold float layers only"),
        RefusalCase(label: "static QDQ with dequantize_weights", options: ["weights": .string("int8"), "activations": .string("uint8")], calibrate: true,
                    dequantizeWeights: true, expected: "quantises activations"),
        RefusalCase(label: "QOperator with dequantize_weights", options: ["activations": .string("uint8"), "format": .string("qoperator")], calibrate: true,
                    dequantizeWeights: true, expected: "quantises activations"),
        RefusalCase(label: "dynamic with dequantize_weights", options: ["mode": .string("dynamic")], calibrate: false,
                    dequantizeWeights: true, expected: "quantises activations"),
        RefusalCase(label: "weight-only without the option", options: ["weights": .string("int8"), "per_channel": .bool(true)], calibrate: false,
                    dequantizeWeights: false, expected: "dequantize_weights"),
    ]

    @Test("quantised models are refused with one line", arguments: refusals)
    func refusesQuantisedModels(_ example: RefusalCase) throws {
        let folder = try TestEnvironment.temporaryFolder("keras-quantized")
        defer { try? FileManager.default.removeItem(at: folder) }
        var model = try QuantizeFixtures.model("cnn")
        if example.calibrate { _ = try QuantizeFixtures.calibrate(&model, fixture: "cnn") }
        _ = try QuantizeFixtures.quantize(&model, example.options)
        let stage = try ExportStage(options: QuantizeFixtures.options(["path": .string("model.h5"), "dequantize_weights": .bool(example.dequantizeWeights)], path: "stages[2]"))
        let error = try #require(throws: NNPipeError.self) { try stage.run(&model, context: Self.context(folder)) }
        #expect(error.message.contains(example.expected), "\(error.message)")
        #expect(!error.message.contains("\n"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("model.h5").path), "no file is left behind")
    }

    @Test func dequantizeWeightsIsForKerasOnly() throws {
        #expect(throws: NNPipeError.self) {
            try ExportStage(options: QuantizeFixtures.options(["path": .string("model.onnx"), "dequantize_weights": .bool(true)]))
        }
    }

    /// Keras loads and predicts:
    static let predictScript = """
        import os, sys, json
        os.environ["KERAS_BACKEND"] = "numpy"
        import numpy as np, h5py, keras
        model = keras.models.load_model(sys.argv[1], compile=False)
        with h5py.File(sys.argv[2], "r") as io:
            feeds = io["inputs"][model.inputs[0].name.split(":")[0]][()]
        got = np.asarray(model.predict(feeds, verbose=0), dtype=np.float64)
        expected = np.load(sys.argv[3])["y"].astype(np.float64)
        assert got.shape == expected.shape, f"shape {got.shape} vs {expected.shape}"
        print(json.dumps({"max_abs_diff": float(np.max(np.abs(got - expected))),
                          "argmax_disagreements": int(np.sum(got.argmax(-1) != expected.argmax(-1))),
                          "layers": [l.__class__.__name__ for l in model.layers]}))
        """

    @Test("weight-only model written with dequantize_weights loads in Keras 3 and predicts like nnpipe", arguments: [
        ["weights": JSONValue.string("int8"), "per_channel": .bool(true)],
        ["weights": .string("int4"), "block_size": .number(16)],
        ["weights": .string("fp16")],
    ])
    func fakeQuantisedKerasFile(options: [String: JSONValue]) throws {
        let folder = try TestEnvironment.temporaryFolder("keras-fake-quant")
        defer { try? FileManager.default.removeItem(at: folder) }
        var model = try KerasFormat().read(from: TestEnvironment.fixture("keras/k3_sequential_cnn.h5"))
        let original = model
        _ = try QuantizeFixtures.quantize(&model, options)
        #expect(FakeQuantization.findings(in: model.graph).weightNodes.count > 0)
        let stage = try ExportStage(options: QuantizeFixtures.options(["path": .string("fake.h5"), "dequantize_weights": .bool(true)], path: "stages[2]"))
        let result = try stage.run(&model, context: Self.context(folder))
        #expect(result.warnings.contains { $0.contains("no smaller") }, "\(result.warnings)")

        // nnpipe's runtime on the quantised model (dequantise-on-load), on the fixture's batch.
        let io = TestEnvironment.fixture("keras/k3_sequential_cnn.io.h5")
        let inputName = try #require(model.graph.runtimeInputs.first?.name)
        let reader = try DatasetReader(source: DatasetSource(path: io, inputs: .single(key: "inputs/\(inputName)")),
                                       expectedInputs: model.graph.runtimeInputs.compactMap(ExpectedInput.init))
        let batch = try reader.batch(0..<reader.sampleCount)
        let plan = try ExecutionPlan(model: model, batchSize: reader.sampleCount)
        let output = try #require(try plan.run(inputs: try batch.inputs.mapValues { try RuntimeTensor($0) })[plan.outputNames[0]])
        let expected = folder.appendingPathComponent("expected.npz")
        try NumpyArchiveWriter.write([("y", Tensor(name: "y", shape: output.shape, values: output.floats))], to: expected)
        let floatOutput = try ExecutionPlan(model: original, batchSize: reader.sampleCount).run(inputs: try batch.inputs.mapValues { try RuntimeTensor($0) })
        let floatDifference = zip(try #require(floatOutput.values.first).floats, output.floats).map { abs($0 - $1) }.max() ?? 0

        let run: ProcessResult
        do { run = try ProcessRunner.python(Self.predictScript, [folder.appendingPathComponent("fake.h5").path, io.path, expected.path]) } catch is InteropUnavailable {
            if TestEnvironment.isCI { Issue.record("Python interop environment missing in CI") }
            return
        }
        try #require(run.status == 0, "Keras 3 failed: \(run.standardError.suffix(1500))")
        let parsed = try JSONParser.parse(String(try #require(run.standardOutput.split(separator: "\n").last)))
        let difference = try #require(parsed["max_abs_diff"]?.numberValue)
        print("keras fake-quant \(options): Keras vs nnpipe max abs diff \(difference), quantised vs float \(floatDifference), layers \(parsed["layers"]!)")
        #expect(difference <= 1e-5, "Keras and nnpipe differ by \(difference)")
        #expect(parsed["argmax_disagreements"]?.numberValue == 0)
        #expect(floatDifference > 0, "the written weights should be the dequantised ones, not the float originals")
    }
}
