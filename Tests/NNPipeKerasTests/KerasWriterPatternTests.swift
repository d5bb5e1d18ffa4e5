import Foundation
import NNPipeCore
import NNPipeKeras
import NNPipeTestKit
import Testing

/// ONNX-style graphs (not from Keras) written as .h5: Keras 3's predictions must equal onnxruntime's
/// on the same IR. Covers patterns the Keras fixtures never produce.
@Suite("Keras writer against onnxruntime")
struct KerasWriterPatternTests {
    static func constant(_ name: String, _ shape: [Int], seed: Int, scale: Float = 0.3, offset: Float = 0) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(name: name, shape: shape, values: (0..<count).map { Float((($0 + seed) * 7919) % 101) / 101 * 2 * scale - scale + offset })
    }

    /// NCHW x [N,3,8,8]: asymmetric-padded strided Conv, BN, PRelu (C,1,1), MaxPool SAME_UPPER-like pads,
    /// AveragePool counting pads, Concat, ConvTranspose, LeakyRelu, nearest Resize, Sigmoid (spatial output),
    /// and GlobalMaxPool -> Flatten -> MatMul + Add -> Softmax (second output).
    static func model() -> Model {
        let nodes: [Node] = [
            Node(name: "conv", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"],
                 attributes: [.ints("kernel_shape", [3, 3]), .ints("strides", [2, 2]), .ints("pads", [0, 0, 1, 1])]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["c1", "gamma", "beta", "mean", "variance"], outputs: ["bn"],
                 attributes: [.float("epsilon", 1e-5)]),
            Node(name: "prelu", opType: "PRelu", inputs: ["bn", "slope"], outputs: ["pr"]),
            Node(name: "maxpool", opType: "MaxPool", inputs: ["pr"], outputs: ["mp"],
                 attributes: [.ints("kernel_shape", [2, 2]), .ints("strides", [1, 1]), .ints("pads", [0, 0, 1, 1])]),
            Node(name: "avgpool", opType: "AveragePool", inputs: ["mp"], outputs: ["ap"],
                 attributes: [.ints("kernel_shape", [3, 3]), .ints("pads", [1, 1, 1, 1]), .int("count_include_pad", 1)]),
            Node(name: "concat", opType: "Concat", inputs: ["mp", "ap"], outputs: ["cat"], attributes: [.int("axis", 1)]),
            Node(name: "deconv", opType: "ConvTranspose", inputs: ["cat", "wt", "bt"], outputs: ["dc"],
                 attributes: [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])]),
            Node(name: "leaky", opType: "LeakyRelu", inputs: ["dc"], outputs: ["lr"], attributes: [.float("alpha", 0.1)]),
            Node(name: "resize", opType: "Resize", inputs: ["lr", "", "scales"], outputs: ["up"],
                 attributes: [.string("mode", "nearest"), .string("coordinate_transformation_mode", "asymmetric"), .string("nearest_mode", "floor")]),
            Node(name: "sigmoid", opType: "Sigmoid", inputs: ["up"], outputs: ["y"]),
            Node(name: "gmp", opType: "GlobalMaxPool", inputs: ["cat"], outputs: ["g"]),
            Node(name: "flatten", opType: "Flatten", inputs: ["g"], outputs: ["f"]),
            Node(name: "matmul", opType: "MatMul", inputs: ["f", "wd"], outputs: ["m"]),
            Node(name: "bias", opType: "Add", inputs: ["m", "bd"], outputs: ["logits"]),
            Node(name: "softmax", opType: "Softmax", inputs: ["logits"], outputs: ["probs"], attributes: [.int("axis", 1)]),
        ]
        let initializers = [
            constant("w1", [4, 3, 3, 3], seed: 1), constant("b1", [4], seed: 2),
            constant("gamma", [4], seed: 3, offset: 1), constant("beta", [4], seed: 4), constant("mean", [4], seed: 5),
            constant("variance", [4], seed: 6, scale: 0.2, offset: 0.8), constant("slope", [4, 1, 1], seed: 7),
            constant("wt", [8, 2, 2, 2], seed: 8), constant("bt", [2], seed: 9),
            Tensor(name: "scales", shape: [4], values: [Float](arrayLiteral: 1, 1, 2, 2)),
            constant("wd", [8, 3], seed: 10), constant("bd", [3], seed: 11),
        ]
        let graph = Graph(
            name: "onnx_patterns", nodes: nodes,
            inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(3), .fixed(8), .fixed(8)]))],
            outputs: [ValueInfo(name: "y", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(2), .fixed(16), .fixed(16)])),
                      ValueInfo(name: "probs", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(3)]))],
            initializers: initializers)
        return Model(irVersion: 8, opsetImports: [OperatorSetID(domain: "", version: 17)], graph: graph)
    }

    static let script = IRBridge.pythonLibrary + """

        import os, sys
        os.environ["KERAS_BACKEND"] = "numpy"
        import keras
        dump, model_path = sys.argv[1:3]
        x = np.random.default_rng(7).normal(0, 1, (2, 3, 8, 8)).astype(np.float32)
        reference = onnx_run(dump, {"x": x})
        model = keras.models.load_model(model_path, compile=False)
        got = model.predict(x, verbose=0)
        diffs = [float(np.max(np.abs(np.asarray(k) - r))) for k, r in zip(got, reference)]
        print(json.dumps({"max_abs_diff": max(diffs), "layers": [l.__class__.__name__ for l in model.layers]}))
        """

    @Test("Keras 3 predicts what onnxruntime computes for the same IR")
    func matchesOnnxRuntime() throws {
        let folder = try TestEnvironment.temporaryFolder("nnpipe-writer-ort")
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = Self.model()
        try GraphCheck.validate(model)
        let url = folder.appendingPathComponent("patterns.h5")
        try KerasFormat().write(model, to: url)
        let dump = folder.appendingPathComponent("model.json")
        try Data(IRBridge.json(model).utf8).write(to: dump)
        let result: ProcessResult
        do {
            result = try ProcessRunner.python(Self.script, [dump.path, url.path])
        } catch is InteropUnavailable {
            if TestEnvironment.isCI { Issue.record("Python interop environment missing in CI") }
            return
        }
        try #require(result.status == 0, "\(result.standardError.suffix(2000))")
        let parsed = try JSONParser.parse(String(result.standardOutput.split(separator: "\n").last ?? ""))
        let difference = try #require(parsed["max_abs_diff"]?.numberValue)
        print("writer-vs-onnxruntime: max abs diff \(difference) layers \(parsed["layers"]!)")
        #expect(difference <= 1e-5)
    }
}
