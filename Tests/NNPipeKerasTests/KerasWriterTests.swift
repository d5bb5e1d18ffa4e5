import Foundation
import NNPipeCore
import NNPipeHDF5
import NNPipeKeras
import NNPipeTestKit
import Testing

/// The writer on graphs that did not come from Keras: NCHW interfaces, QDQ nodes, failures.
@Suite("Keras writer")
struct KerasWriterTests {
    /// x: NCHW [N, 3, 4, 4] -> Conv 1x1 (5) -> Relu -> GlobalAveragePool -> Squeeze/Unsqueeze -> Flatten -> Gemm(transB) (2),
    /// as PyTorch exports such things.
    static func channelsFirstModel() -> (Model, weights: [Float], bias: [Float], dense: [Float], denseBias: [Float]) {
        let weights = (0..<15).map { Float($0 % 7) * 0.25 - 0.6 }
        let bias = [Float](arrayLiteral: 0.1, -0.2, 0.3, 0, 0.05)
        let dense = (0..<10).map { Float($0) * 0.1 - 0.45 }
        let denseBias = [Float](arrayLiteral: 0.5, -0.5)
        let graph = Graph(
            name: "torch_like",
            nodes: [
                Node(name: "/conv/Conv", opType: "Conv", inputs: ["x", "conv.weight", "conv.bias"], outputs: ["/conv/Conv_output_0"],
                     attributes: [.ints("kernel_shape", [1, 1]), .ints("pads", [0, 0, 0, 0]), .ints("strides", [1, 1])]),
                Node(name: "/relu/Relu", opType: "Relu", inputs: ["/conv/Conv_output_0"], outputs: ["/relu/Relu_output_0"]),
                Node(name: "/pool/GlobalAveragePool", opType: "GlobalAveragePool", inputs: ["/relu/Relu_output_0"], outputs: ["pooled"]),
                Node(name: "/Squeeze", opType: "Squeeze", inputs: ["pooled", "squeeze_axes"], outputs: ["squeezed"]),
                Node(name: "/Unsqueeze", opType: "Unsqueeze", inputs: ["squeezed"], outputs: ["unsqueezed"], attributes: [.ints("axes", [2])]),
                Node(name: "/Flatten", opType: "Flatten", inputs: ["unsqueezed"], outputs: ["flat"], attributes: [.int("axis", 1)]),
                Node(name: "/fc/Gemm", opType: "Gemm", inputs: ["flat", "fc.weight", "fc.bias"], outputs: ["logits"],
                     attributes: [.int("transB", 1)]),
            ],
            inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(3), .fixed(4), .fixed(4)]))],
            outputs: [ValueInfo(name: "logits", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(2)]))],
            initializers: [
                Tensor(name: "conv.weight", shape: [5, 3, 1, 1], values: weights), Tensor(name: "conv.bias", shape: [5], values: bias),
                Tensor(name: "fc.weight", shape: [2, 5], values: dense), Tensor(name: "fc.bias", shape: [2], values: denseBias),
                Tensor(name: "squeeze_axes", shape: [2], values: [Int64(-1), 2]),
            ])
        return (Model(irVersion: 8, opsetImports: [OperatorSetID(domain: "", version: 17)], graph: graph), weights, bias, dense, denseBias)
    }

    @Test("an NCHW (PyTorch-style) graph keeps its NCHW interface and predicts what the ops compute")
    func channelsFirstGraph() throws {
        let (model, weights, bias, dense, denseBias) = Self.channelsFirstModel()
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("torch_like.h5")
        try KerasFormat().write(model, to: url)

        // Reference computed directly from the op definitions.
        let batch = 2
        let input = (0..<(batch * 48)).map { Float(($0 * 37) % 23) / 11 - 1 }
        var expected: [Float] = []
        for n in 0..<batch {
            var pooled = [Float](repeating: 0, count: 5)
            for o in 0..<5 {
                for position in 0..<16 {
                    var sum = bias[o]
                    for c in 0..<3 { sum += weights[o * 3 + c] * input[n * 48 + c * 16 + position] }
                    pooled[o] += max(sum, 0) / 16
                }
            }
            for u in 0..<2 { expected.append(denseBias[u] + (0..<5).reduce(0) { $0 + pooled[$1] * dense[u * 5 + $1] }) }
        }
        let io = folder.appendingPathComponent("io.h5")
        do {
            let root = try HDF5File(creating: io).rootGroup()
            try root.createDataset("inputs/x", tensor: Tensor(name: "x", shape: [batch, 3, 4, 4], values: input))
            try root.createDataset("outputs/0", tensor: Tensor(name: "y", shape: [batch, 2], values: expected))
        }
        // The file itself: layer classes and the model's input shape stay channels-first.
        let root = try HDF5File(reading: url).rootGroup()
        let config = try JSONParser.parse(try #require(try root.attributes.string("model_config")))
        let classes = config["config"]?["layers"]?.arrayValue?.compactMap { $0["class_name"]?.stringValue }
        #expect(classes == ["InputLayer", "Permute", "Conv2D", "GlobalAveragePooling2D", "Permute", "Reshape", "Reshape", "Flatten", "Dense"])
        let result: ProcessResult
        do { result = try ProcessRunner.python(KerasRoundTripTests.predictScript, [url.path, io.path]) } catch is InteropUnavailable {
            if TestEnvironment.isCI { Issue.record("Python interop environment missing in CI") }
            return
        }
        try #require(result.status == 0, "\(result.standardError.suffix(1500))")
        let difference = try #require(try JSONParser.parse(String(result.standardOutput.split(separator: "\n").last ?? ""))["max_abs_diff"]?.numberValue)
        #expect(difference <= 1e-5)
    }

    @Test("QDQ and unknown ops are refused naming the node, and nothing is left behind", arguments: ["QuantizeLinear", "NonMaxSuppression"])
    func unsupportedNode(opType: String) throws {
        var (model, _, _, _, _) = Self.channelsFirstModel()
        model.graph.initializers += [Tensor(name: "scale", shape: [], values: [Float(0.1)]), Tensor(name: "zero", shape: [], values: [UInt8(0)])]
        model.graph.nodes.insert(Node(name: "quantize_pooled", opType: opType, inputs: ["flat", "scale", "zero"], outputs: ["q"]), at: 6)
        model.graph.outputs.append(ValueInfo(name: "q", type: .tensor(elementType: .uint8, shape: nil)))
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("quantized.h5")
        let error = try #require(throws: NNPipeError.self) { try KerasFormat().write(model, to: url) }
        #expect(error.code == .unsupported)
        #expect(error.message.contains("node 'quantize_pooled' (\(opType))"))
        #expect(error.message.contains("export ONNX (.onnx) instead"))
        #expect(error.path == url.path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    /// Window attributes no layer has (a stride of 0, a dilation of 2^62 overflowed the writer's
    /// shape arithmetic) are refused naming the node, and nothing is written.
    @Test("impossible window attributes are refused naming the node", arguments: [
        ("strides", [Int64(0), 1]), ("dilations", [Int64(1) << 62, 1]), ("pads", [Int64(1) << 62, 0, 0, 0]),
    ])
    func impossibleWindow(attribute: String, values: [Int64]) throws {
        var (model, _, _, _, _) = Self.channelsFirstModel()
        let conv = try #require(model.graph.nodes.firstIndex { $0.opType == "Conv" })
        model.graph.nodes[conv].attributes.removeAll { $0.name == attribute }
        model.graph.nodes[conv].attributes.append(.ints(attribute, values))
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("window.h5")
        let error = try #require(throws: NNPipeError.self) { try KerasFormat().write(model, to: url) }
        #expect(error.message.contains("node '/conv/Conv' (Conv): \(attribute)"), "\(error.message)")
        #expect(error.path == url.path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test("writing over an existing file replaces it only when complete")
    func atomicReplace() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("model.h5")
        try Data("old".utf8).write(to: url)
        var (model, _, _, _, _) = Self.channelsFirstModel()
        model.graph.nodes[1].opType = "Hardmax"
        #expect(throws: NNPipeError.self) { try KerasFormat().write(model, to: url) }
        #expect(try Data(contentsOf: url) == Data("old".utf8))
        try KerasFormat().write(Self.channelsFirstModel().0, to: url)
        #expect(try KerasFixtures.registry.format(forInput: url).name == "keras-h5")
        let reread = try KerasFixtures.registry.read(url)
        #expect(reread.graph.inputs.map(\.name) == ["x"])
        #expect(reread.graph.outputs.map(\.name) == ["logits"])
    }

    @Test("a shared layer imports with one set of weights and exports as one layer called twice", arguments: ["k2", "k3"])
    func sharedLayer(prefix: String) throws {
        let model = try KerasFixtures.read("\(prefix)_extras.h5")
        let convs = model.graph.nodes.filter { $0.opType == "Conv" && $0.inputs[1] == "shared_conv/kernel" }
        #expect(convs.map(\.name) == ["shared_conv", "shared_conv_call1"])
        #expect(model.graph.initializers.filter { $0.name.hasPrefix("shared_conv/") }.count == 2)
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("extras.h5")
        try KerasFormat().write(model, to: url)
        let config = try JSONParser.parse(try #require(try HDF5File(reading: url).rootGroup().attributes.string("model_config")))
        let layers = try #require(config["config"]?["layers"]?.arrayValue)
        let shared = layers.filter { $0["name"]?.stringValue == "shared_conv" }
        #expect(shared.count == 1)
        #expect(shared.first?["inbound_nodes"]?.arrayValue?.count == 2)
        #expect(!layers.contains { $0["name"]?.stringValue?.hasPrefix("shared_conv_call") == true })
    }

    @Test("re-importing nnpipe's own .h5 gives the same ops and weights", arguments: KerasFixtures.names)
    func reimport(name: String) throws {
        let original = try KerasFixtures.read("k3_\(name).h5")
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("again.h5")
        try KerasFormat().write(original, to: url)
        let again = try KerasFixtures.registry.read(url)
        #expect(again.graph.nodes.map(\.opType) == original.graph.nodes.map(\.opType))
        #expect(again.graph.inputs.map(\.name) == original.graph.inputs.map(\.name))
        #expect(again.graph.outputs.map(\.name) == original.graph.outputs.map(\.name))
        #expect(again.graph.initializers.count == original.graph.initializers.count)
        for (left, right) in zip(again.graph.initializers, original.graph.initializers) {
            #expect(left.shape == right.shape)
            #expect(left.values(as: Float.self) == right.values(as: Float.self) || left.dataType != .float)
        }
    }
}
