import Foundation
import NNPipeCore
import Testing

@testable import NNPipeTraining
@testable import StageFineTune

/// A small CNN built in the IR from random weights: Reshape → Conv → BatchNormalization → Relu →
/// MaxPool → Dropout → Flatten → Gemm → Softmax, trained from scratch on the digits images.
enum DigitsCNN {
    static func initializer(_ name: String, _ shape: [Int], seed: UInt64, scale: Float) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return Tensor(name: name, shape: shape, values: (0..<shape.reduce(1, *)).map { _ in (generator.nextUnit() * 2 - 1) * scale })
    }

    static func model() -> Model {
        let nodes = [
            Node(name: "image", opType: "Reshape", inputs: ["x", "image_shape"], outputs: ["image"]),
            Node(name: "conv", opType: "Conv", inputs: ["image", "conv.weight", "conv.bias"], outputs: ["conv_out"],
                 attributes: [.ints("kernel_shape", [3, 3]), .ints("pads", [1, 1, 1, 1])]),
            Node(name: "bn", opType: "BatchNormalization", inputs: ["conv_out", "bn.scale", "bn.bias", "bn.mean", "bn.var"], outputs: ["bn_out"],
                 attributes: [.float("momentum", 0.9)]),
            Node(name: "relu", opType: "Relu", inputs: ["bn_out"], outputs: ["relu_out"]),
            Node(name: "pool", opType: "MaxPool", inputs: ["relu_out"], outputs: ["pool_out"],
                 attributes: [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])]),
            Node(name: "dropout", opType: "Dropout", inputs: ["pool_out"], outputs: ["dropout_out"]),
            Node(name: "flatten", opType: "Flatten", inputs: ["dropout_out"], outputs: ["features"]),
            Node(name: "dense", opType: "Gemm", inputs: ["features", "dense.weight", "dense.bias"], outputs: ["logits"],
                 attributes: [.int("transB", 1)]),
            Node(name: "softmax", opType: "Softmax", inputs: ["logits"], outputs: ["probabilities"], attributes: [.int("axis", 1)]),
        ]
        let initializers = [
            Tensor(name: "image_shape", shape: [4], values: [Int64(-1), 1, 8, 8]),
            initializer("conv.weight", [8, 1, 3, 3], seed: 1, scale: 0.5),
            Tensor(name: "conv.bias", shape: [8], values: [Float](repeating: 0, count: 8)),
            Tensor(name: "bn.scale", shape: [8], values: [Float](repeating: 1, count: 8)),
            Tensor(name: "bn.bias", shape: [8], values: [Float](repeating: 0, count: 8)),
            Tensor(name: "bn.mean", shape: [8], values: [Float](repeating: 0, count: 8)),
            Tensor(name: "bn.var", shape: [8], values: [Float](repeating: 1, count: 8)),
            initializer("dense.weight", [10, 128], seed: 2, scale: 0.1),
            Tensor(name: "dense.bias", shape: [10], values: [Float](repeating: 0, count: 10)),
        ]
        let graph = Graph(
            name: "digits-cnn", nodes: nodes,
            inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(64)]))],
            outputs: [ValueInfo(name: "probabilities", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(10)]))],
            initializers: initializers)
        return Model(opsetImports: [OperatorSetID(domain: "", version: 13)], graph: graph)
    }
}

@Suite("Training a CNN")
struct ConvolutionTrainingTests {
    @Test("a CNN trained from random weights classifies digits; BN statistics move; runtime agrees")
    func trainsFromScratch() throws {
        var model = DigitsCNN.model()
        let before = try DigitsFixture.accuracy(model)
        let stage = try DigitsFixture.stage(["dataset": .string("train"), "epochs": .number(2), "lr": .number(0.01), "seed": .number(3)])
        let result = try stage.run(&model, context: DigitsFixture.context())
        let after = try DigitsFixture.accuracy(model)
        print("digits CNN: random \(before), trained \(after); \(result.summary)")
        #expect(before < 0.3)
        #expect(after > 0.9)
        let mean = try #require(model.graph.initializer(named: "bn.mean")?.floatValues())
        #expect(mean.contains { $0 != 0 }, "running mean moved toward the batch means")
        let image = try #require(model.graph.initializer(named: "image_shape"))
        #expect(image.dataType == .int64, "shape constants are not touched")
    }
}
