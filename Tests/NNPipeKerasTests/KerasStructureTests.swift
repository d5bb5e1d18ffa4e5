import Foundation
import NNPipeCore
import NNPipeHDF5
import NNPipeKeras
import NNPipeTestKit
import Testing

/// How Keras layers land in the IR: names, layouts, weight orders, Keras defaults made explicit.
@Suite("Keras import structure")
struct KerasStructureTests {
    func node(_ model: Model, _ name: String) throws -> Node {
        try #require(model.graph.nodes.first { $0.name == name }, "no node '\(name)'")
    }

    func initializer(_ model: Model, _ name: String) throws -> Tensor {
        try #require(model.graph.initializer(named: name), "no initializer '\(name)'")
    }

    /// A weight as Keras stored it.
    func kerasWeight(_ file: String, _ layer: String, _ suffix: String) throws -> (values: [Float], shape: [Int]) {
        let group = try HDF5File(reading: TestEnvironment.fixture("keras/\(file)")).rootGroup().group("model_weights/\(layer)")
        let names = try #require(try group.attributes.stringList("weight_names"))
        let name = try #require(names.first { $0.hasSuffix(suffix) || $0.hasSuffix(suffix + ":0") })
        let dataset = try group.dataset(name)
        return (try dataset.readFloats(), dataset.shape)
    }

    static let prefixes = ["k2", "k3"]

    @Test("Sequential CNN: one Transpose, OIHW kernels, Flatten->Dense rows permuted", arguments: prefixes)
    func sequentialCNN(prefix: String) throws {
        let file = "\(prefix)_sequential_cnn.h5"
        let model = try KerasFixtures.read(file)
        let graph = model.graph
        #expect(graph.inputs.map(\.name) == ["image"])
        #expect(graph.inputs[0].type.tensorShape == [.symbolic("batch"), .fixed(8), .fixed(8), .fixed(1)])
        #expect(graph.outputs.map(\.name) == ["logits"])
        let transposes = graph.nodes.filter { $0.opType == "Transpose" }
        #expect(transposes.count == 1)
        #expect(transposes.first?.inputs == ["image"])
        #expect(transposes.first?.attribute("perm")?.intsValue == [0, 3, 1, 2])

        let conv = try node(model, "conv1")
        #expect(conv.opType == "Conv")
        #expect(conv.attribute("pads")?.intsValue == [1, 1, 1, 1])
        let kernel = try initializer(model, "conv1/kernel")
        #expect(kernel.shape == [4, 1, 3, 3])
        let keras = try kerasWeight(file, "conv1", "kernel")
        #expect(keras.shape == [3, 3, 1, 4])
        let onnx = try #require(kernel.values(as: Float.self))
        for (o, h, w) in [(0, 0, 0), (3, 2, 1), (2, 1, 2)] {
            #expect(onnx[o * 9 + h * 3 + w] == keras.values[(h * 3 + w) * 4 + o])
        }
        #expect(try node(model, "conv1/relu").opType == "Relu")
        #expect(try node(model, "bn1").attribute("epsilon")?.floatValue == 0.001)
        #expect(try node(model, "leaky").attribute("alpha")?.floatValue == 0.3)
        #expect(try node(model, "pool1").attribute("kernel_shape")?.intsValue == [2, 2])

        // conv2 output is 2x2x6; Keras flattens (h, w, c), the IR flattens (c, h, w): Dense rows follow.
        let gemm = try node(model, "logits")
        #expect(gemm.opType == "Gemm")
        let rows = try #require(try initializer(model, "logits/kernel").values(as: Float.self))
        let kerasRows = try kerasWeight(file, "logits", "kernel")
        #expect(kerasRows.shape == [24, 10])
        for (c, h, w, unit) in [(0, 0, 0, 0), (5, 1, 0, 3), (2, 1, 1, 9)] {
            #expect(rows[((c * 2 + h) * 2 + w) * 10 + unit] == kerasRows.values[((h * 2 + w) * 6 + c) * 10 + unit])
        }
        #expect(try node(model, "logits/softmax").attribute("axis")?.intValue == -1)
    }

    @Test("Functional residual: depthwise as grouped Conv, strided 'same' as explicit pads", arguments: prefixes)
    func functionalResidual(prefix: String) throws {
        let file = "\(prefix)_functional_residual.h5"
        let model = try KerasFixtures.read(file)
        #expect(model.graph.nodes.filter { $0.opType == "Transpose" }.count == 1)
        let stem = try node(model, "stem")
        #expect(stem.attribute("strides")?.intsValue == [2, 2])
        #expect(stem.attribute("pads")?.intsValue == [1, 1, 1, 1])  // 9 -> 5 with a 3x3 kernel
        let depthwise = try node(model, "depthwise")
        #expect(depthwise.opType == "Conv")
        #expect(depthwise.attribute("group")?.intValue == 8)
        #expect(try initializer(model, "depthwise/depthwise_kernel").shape == [8, 1, 3, 3])
        #expect(try node(model, "depthwise_relu6").opType == "Clip")
        #expect(try node(model, "residual").opType == "Add")
        #expect(try node(model, "concat").attribute("axis")?.intValue == 1)
        let pad = try node(model, "pad")
        #expect(pad.opType == "Pad")
        #expect(try initializer(model, "pad/pads").integerValues() == [0, 0, 1, 0, 0, 0, 0, 1])
        #expect(try node(model, "avgpool").attribute("count_include_pad")?.intValue == 0)
        #expect(try node(model, "stem_bn").attribute("epsilon")?.floatValue == 0.001)
    }

    @Test("multi-input, multi-output: Keras names, spatial output transposed back", arguments: prefixes)
    func multiInput(prefix: String) throws {
        let model = try KerasFixtures.read("\(prefix)_multi_input.h5")
        let graph = model.graph
        #expect(graph.inputs.map(\.name) == ["image", "side"])
        #expect(graph.outputs.map(\.name) == ["score", "spatial"])
        #expect(graph.outputs[1].type.tensorShape == [.symbolic("batch"), .fixed(6), .fixed(6), .fixed(3)])
        let back = try #require(graph.nodes.first { $0.outputs == ["spatial"] })
        #expect(back.opType == "Transpose")
        #expect(back.attribute("perm")?.intsValue == [0, 2, 3, 1])
        // One in, one for Flatten feeding Concatenate (Keras order needed), one back out.
        #expect(graph.nodes.filter { $0.opType == "Transpose" }.count == 3)
    }

    @Test("MLP: gelu, swish, selu and PReLU spelled out in opset-17 ops", arguments: prefixes)
    func mlp(prefix: String) throws {
        let model = try KerasFixtures.read("\(prefix)_mlp.h5")
        let ops = Set(model.graph.nodes.map(\.opType))
        #expect(!ops.contains("Transpose"))
        #expect(ops.isSuperset(of: ["Gemm", "Erf", "Sigmoid", "PRelu", "LayerNormalization", "Elu", "BatchNormalization", "Selu", "Softmax"]))
        let selu = try node(model, "dense4/selu")
        #expect(abs((selu.attribute("alpha")?.floatValue ?? 0) - 1.6732632) < 1e-6)
        #expect(try node(model, "norm").attribute("epsilon")?.floatValue == 0.001)
    }

    @Test("Conv1D 'causal' pads only at the start", arguments: prefixes)
    func causal(prefix: String) throws {
        let model = try KerasFixtures.read("\(prefix)_sequence.h5")
        #expect(try node(model, "conv1d").attribute("pads")?.intsValue == [2, 0])
        #expect(try initializer(model, "conv1d/kernel").shape == [4, 3, 3])
    }

    @Test("a .keras archive imports the same graph as the .h5 of the same model")
    func archiveMatchesLegacy() throws {
        let archive = try KerasFixtures.read("k3_functional_residual.keras")
        let legacy = try KerasFixtures.read("k3_functional_residual.h5")
        #expect(archive.graph.nodes.map(\.opType) == legacy.graph.nodes.map(\.opType))
        for tensor in legacy.graph.initializers {
            let other = try #require(archive.graph.initializer(named: tensor.name))
            #expect(other.values(as: Float.self) == tensor.values(as: Float.self), "\(tensor.name)")
        }
    }
}
