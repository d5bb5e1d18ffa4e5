import NNPipeCore
import Testing

@testable import NNPipeTraining

/// One op on random float initializers: its analytic gradients must match central differences
/// of L = Σ output · R for a fixed random R.
struct GradientCase: CustomStringConvertible, Sendable {
    var name: String
    var node: Node
    /// Inputs in node order: float tensors are checked, others (shapes, pads) stay constant.
    var inputs: [Tensor]
    var opset: Int64 = 17
    var description: String { name }
}

private func random(_ name: String, _ shape: [Int], seed: UInt64, scale: Float = 1, offset: Float = 0) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    let values = (0..<shape.reduce(1, *)).map { _ in (generator.nextUnit() * 2 - 1) * scale + offset }
    return Tensor(name: name, shape: shape, values: values)
}

private func integers(_ name: String, _ values: [Int64]) -> Tensor {
    Tensor(name: name, shape: [values.count], values: values)
}

private func node(_ op: String, _ inputs: [String], outputs: [String] = ["y"], _ attributes: [Attribute] = []) -> Node {
    Node(name: op.lowercased(), opType: op, inputs: inputs, outputs: outputs, attributes: attributes)
}

enum GradientCases {
    static let all: [GradientCase] = [
        GradientCase(name: "Gemm", node: node("Gemm", ["a", "b", "c"]), inputs: [random("a", [3, 4], seed: 1), random("b", [4, 5], seed: 2), random("c", [5], seed: 3)]),
        GradientCase(name: "Gemm transA transB alpha beta", node: node("Gemm", ["a", "b", "c"], [.int("transA", 1), .int("transB", 1), .float("alpha", 0.5), .float("beta", 2)]),
                     inputs: [random("a", [4, 3], seed: 4), random("b", [5, 4], seed: 5), random("c", [3, 1], seed: 6)]),
        GradientCase(name: "MatMul 3-D by 2-D", node: node("MatMul", ["a", "b"]), inputs: [random("a", [2, 3, 4], seed: 7), random("b", [4, 2], seed: 8)]),
        GradientCase(name: "MatMul batched", node: node("MatMul", ["a", "b"]), inputs: [random("a", [2, 3, 4], seed: 9), random("b", [2, 4, 3], seed: 10)]),
        GradientCase(name: "Add broadcast", node: node("Add", ["a", "b"]), inputs: [random("a", [2, 3, 4], seed: 11), random("b", [3, 1], seed: 12)]),
        GradientCase(name: "Sub broadcast", node: node("Sub", ["a", "b"]), inputs: [random("a", [4], seed: 13), random("b", [2, 3, 4], seed: 14)]),
        GradientCase(name: "Mul broadcast", node: node("Mul", ["a", "b"]), inputs: [random("a", [2, 3], seed: 15), random("b", [1, 3], seed: 16)]),
        GradientCase(name: "Div broadcast", node: node("Div", ["a", "b"]), inputs: [random("a", [2, 3], seed: 17), random("b", [3], seed: 18, scale: 0.5, offset: 2)]),
        GradientCase(name: "Relu", node: node("Relu", ["x"]), inputs: [random("x", [3, 5], seed: 19)]),
        GradientCase(name: "LeakyRelu", node: node("LeakyRelu", ["x"], [.float("alpha", 0.2)]), inputs: [random("x", [3, 5], seed: 20)]),
        GradientCase(name: "Sigmoid", node: node("Sigmoid", ["x"]), inputs: [random("x", [3, 5], seed: 21, scale: 3)]),
        GradientCase(name: "Tanh", node: node("Tanh", ["x"]), inputs: [random("x", [3, 5], seed: 22, scale: 2)]),
        GradientCase(name: "Softmax axis -1", node: node("Softmax", ["x"]), inputs: [random("x", [2, 3, 4], seed: 23, scale: 2)]),
        GradientCase(name: "Softmax opset 11 coerced", node: node("Softmax", ["x"], [.int("axis", 1)]), inputs: [random("x", [2, 3, 2], seed: 24)], opset: 11),
        GradientCase(name: "LogSoftmax", node: node("LogSoftmax", ["x"], [.int("axis", 1)]), inputs: [random("x", [3, 4], seed: 25, scale: 3)]),
        GradientCase(name: "Flatten", node: node("Flatten", ["x"], [.int("axis", 2)]), inputs: [random("x", [2, 3, 2, 2], seed: 26)]),
        GradientCase(name: "Reshape with -1 and 0", node: node("Reshape", ["x", "shape"]), inputs: [random("x", [2, 3, 4], seed: 27), integers("shape", [0, -1])]),
        GradientCase(name: "Transpose", node: node("Transpose", ["x"], [.ints("perm", [2, 0, 1])]), inputs: [random("x", [2, 3, 4], seed: 28)]),
        GradientCase(name: "Concat axis 1", node: node("Concat", ["a", "b"], [.int("axis", 1)]), inputs: [random("a", [2, 2, 3], seed: 29), random("b", [2, 1, 3], seed: 30)]),
        GradientCase(name: "Split uneven", node: node("Split", ["x", "split"], outputs: ["y", "z"], [.int("axis", 1)]),
                     inputs: [random("x", [2, 5], seed: 31), integers("split", [2, 3])]),
        GradientCase(name: "Pad constant", node: node("Pad", ["x", "pads"]), inputs: [random("x", [1, 2, 3], seed: 32), integers("pads", [0, 1, 2, 0, 0, 1])]),
        GradientCase(name: "Clip", node: node("Clip", ["x", "lo", "hi"]), inputs: [random("x", [4, 5], seed: 33, scale: 2), Tensor(name: "lo", shape: [], values: [Float(-0.55)]), Tensor(name: "hi", shape: [], values: [Float(0.65)])]),
        GradientCase(name: "Conv 3x3 pads", node: node("Conv", ["x", "w", "b"], [.ints("pads", [1, 1, 1, 1])]),
                     inputs: [random("x", [2, 2, 5, 5], seed: 34), random("w", [3, 2, 3, 3], seed: 35), random("b", [3], seed: 36)]),
        GradientCase(name: "Conv strides dilations", node: node("Conv", ["x", "w"], [.ints("strides", [2, 1]), .ints("dilations", [1, 2]), .ints("pads", [0, 1, 1, 0])]),
                     inputs: [random("x", [1, 2, 6, 6], seed: 37), random("w", [2, 2, 2, 3], seed: 38)]),
        GradientCase(name: "Conv groups", node: node("Conv", ["x", "w"], [.int("group", 2)]),
                     inputs: [random("x", [1, 4, 4, 4], seed: 39), random("w", [6, 2, 2, 2], seed: 40)]),
        GradientCase(name: "Conv depthwise SAME_UPPER", node: node("Conv", ["x", "w", "b"], [.int("group", 3), .string("auto_pad", "SAME_UPPER"), .ints("strides", [2, 2])]),
                     inputs: [random("x", [1, 3, 5, 5], seed: 41), random("w", [3, 1, 3, 3], seed: 42), random("b", [3], seed: 43)]),
        GradientCase(name: "Conv 1-D", node: node("Conv", ["x", "w"], [.ints("pads", [1, 1])]), inputs: [random("x", [2, 2, 6], seed: 44), random("w", [3, 2, 3], seed: 45)]),
        GradientCase(name: "MaxPool", node: node("MaxPool", ["x"], [.ints("kernel_shape", [2, 2]), .ints("strides", [2, 2])]), inputs: [random("x", [1, 2, 4, 4], seed: 46)]),
        GradientCase(name: "MaxPool overlapping padded", node: node("MaxPool", ["x"], [.ints("kernel_shape", [3, 3]), .ints("pads", [1, 1, 1, 1])]), inputs: [random("x", [1, 1, 4, 4], seed: 47)]),
        GradientCase(name: "AveragePool", node: node("AveragePool", ["x"], [.ints("kernel_shape", [2, 2]), .ints("strides", [1, 1]), .ints("pads", [1, 1, 0, 0])]), inputs: [random("x", [2, 1, 3, 3], seed: 48)]),
        GradientCase(name: "AveragePool count_include_pad", node: node("AveragePool", ["x"], [.ints("kernel_shape", [3, 3]), .ints("pads", [1, 1, 1, 1]), .int("count_include_pad", 1)]), inputs: [random("x", [1, 1, 3, 3], seed: 49)]),
        GradientCase(name: "GlobalAveragePool", node: node("GlobalAveragePool", ["x"]), inputs: [random("x", [2, 3, 2, 3], seed: 50)]),
        GradientCase(name: "BatchNormalization training", node: node("BatchNormalization", ["x", "scale", "bias", "mean", "var"]),
                     inputs: [random("x", [3, 2, 2, 2], seed: 51), random("scale", [2], seed: 52, offset: 1), random("bias", [2], seed: 53),
                              random("mean", [2], seed: 54), random("var", [2], seed: 55, scale: 0.2, offset: 1)]),
    ]
}

@Suite("Gradients against finite differences")
struct GradientCheckTests {
    static func model(_ testCase: GradientCase) -> Model {
        let outputs = testCase.node.outputs.map { ValueInfo(name: $0, type: .tensor(elementType: .float, shape: nil)) }
        let graph = Graph(name: "check", nodes: [testCase.node], outputs: outputs, initializers: testCase.inputs)
        return Model(opsetImports: [OperatorSetID(domain: "", version: testCase.opset)], graph: graph)
    }

    /// L = Σ_outputs Σ output · R with R fixed per output.
    static func loss(_ graph: TrainingGraph, outputs: [String], weights: [String: [Float]]) throws -> Double {
        let values = try graph.forward([:], phase: .training)
        var total = 0.0
        for name in outputs {
            let value = try #require(values[name])
            for (output, weight) in zip(value.values, weights[name]!) { total += Double(output) * Double(weight) }
        }
        return total
    }

    @Test("analytic gradient matches central differences", arguments: GradientCases.all)
    func check(_ testCase: GradientCase) throws {
        let model = Self.model(testCase)
        let outputs = testCase.node.outputs
        // The graph ends at the first output; the others are reached through the same node.
        let graph = try TrainingGraph(model: model, target: outputs[0])
        let values = try graph.forward([:], phase: .training)
        var weights: [String: [Float]] = [:]
        for (index, name) in outputs.enumerated() {
            let value = try #require(values[name])
            var generator = SeededGenerator(seed: 1000 + UInt64(index))
            weights[name] = (0..<value.elementCount).map { _ in generator.nextUnit() * 2 - 1 }
        }
        let gradients = try backwardAll(graph, values: values, outputs: outputs, weights: weights)
        let checked = testCase.inputs.filter { $0.dataType == .float && graph.trainableNames.contains($0.name) }
        #expect(!checked.isEmpty)
        let epsilon: Float = 1e-2
        for tensor in checked {
            let gradient = try #require(gradients[tensor.name], "no gradient for \(tensor.name)")
            let original = try #require(graph.parameter(tensor.name))
            for index in 0..<original.elementCount {
                var plus = original
                plus.values[index] += epsilon
                graph.setParameter(tensor.name, plus)
                let up = try Self.loss(graph, outputs: outputs, weights: weights)
                var minus = original
                minus.values[index] -= epsilon
                graph.setParameter(tensor.name, minus)
                let down = try Self.loss(graph, outputs: outputs, weights: weights)
                graph.setParameter(tensor.name, original)
                let numeric = (up - down) / Double(2 * epsilon)
                let analytic = Double(gradient.values[index])
                #expect(abs(numeric - analytic) <= 2e-2 * max(1, abs(numeric)),
                        "\(testCase.name): d/d\(tensor.name)[\(index)] analytic \(analytic), numeric \(numeric)")
            }
        }
    }

    /// Backward with every output seeded (a Split's second part included).
    func backwardAll(_ graph: TrainingGraph, values: [String: TrainingTensor], outputs: [String], weights: [String: [Float]]) throws -> [String: TrainingTensor] {
        guard outputs.count > 1 else {
            return try graph.backward(values, targetGradient: TrainingTensor(shape: values[outputs[0]]!.shape, values: weights[outputs[0]]!))
        }
        // Several outputs: differentiate the node directly.
        let step = graph.steps[0]
        let arguments = step.node.inputs.map { graph.parameter($0) }
        let seeds = outputs.map { TrainingTensor(shape: values[$0]!.shape, values: weights[$0]!) }
        let inputGradients = try step.operation.backward(seeds, inputs: arguments, outputs: outputs.map { values[$0]! })
        var result: [String: TrainingTensor] = [:]
        for (name, gradient) in zip(step.node.inputs, inputGradients) where gradient != nil { result[name] = gradient }
        return result
    }
}
