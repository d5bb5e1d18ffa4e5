import Foundation
import NNPipeCore
import NNPipeRuntime
import Testing

/// Models whose own numbers ask for the impossible (a negative or astronomically large shape, a
/// NaN scale, pads wider than a pool's window) must fail as one line naming the node, whether
/// the plan knows the input shapes or meets them at the first run. Before, each of these trapped
/// or aborted the process: an overflowing product, a failed terabyte allocation, a NaN converted
/// to Int, a window wholly in the padding.
@Suite struct HostileModelTests {
    struct Hostile: CustomTestStringConvertible, Sendable {
        let label: String
        let node: Node
        let initializers: [Tensor]
        let expected: String
        var testDescription: String { label }
    }

    static func integers(_ name: String, _ values: [Int64]) -> Tensor { Tensor(name: name, shape: [values.count], values: values) }
    static func floats(_ name: String, _ values: [Float]) -> Tensor { Tensor(name: name, shape: [values.count], values: values) }
    static func node(_ opType: String, _ inputs: [String], _ attributes: [Attribute] = []) -> Node {
        Node(name: "hostile", opType: opType, inputs: inputs, outputs: ["y"], attributes: attributes)
    }

    static let cases: [Hostile] = [
        Hostile(label: "ConstantOfShape of 2^62 elements", node: node("ConstantOfShape", ["s"]),
                initializers: [integers("s", [1 << 31, 1 << 31])], expected: "needs more memory than this machine's"),
        Hostile(label: "Expand to a negative shape", node: node("Expand", ["x", "s"]),
                initializers: [integers("s", [-2, 3, 8, 8])], expected: "[-2, 3, 8, 8] has a negative dimension"),
        Hostile(label: "Expand to 2^40 images", node: node("Expand", ["x", "s"]),
                initializers: [integers("s", [1 << 40, 3, 8, 8])], expected: "needs more memory than this machine's"),
        Hostile(label: "Pad by 2^40", node: node("Pad", ["x", "p"]),
                initializers: [integers("p", [0, 0, 1 << 40, 0, 0, 0, 0, 0])], expected: "needs more memory than this machine's"),
        Hostile(label: "Pad by Int64.max", node: node("Pad", ["x", "p"]),
                initializers: [integers("p", [0, 0, .max, 0, 0, 0, .max, 0])], expected: "are too large"),
        Hostile(label: "Reshape to 2^124 elements", node: node("Reshape", ["x", "s"]),
                initializers: [integers("s", [1 << 62, 1 << 62])], expected: "cannot reshape [1, 3, 8, 8]"),
        Hostile(label: "Tile by a negative count", node: node("Tile", ["x", "r"]),
                initializers: [integers("r", [1, -1, 1, 1])], expected: "negative or too large"),
        Hostile(label: "Resize by NaN", node: node("Resize", ["x", "", "scales"]),
                initializers: [floats("scales", [1, 1, .nan, 2])], expected: "must be finite and above 0"),
        Hostile(label: "Resize by 1e9", node: node("Resize", ["x", "", "scales"]),
                initializers: [floats("scales", [1, 1, 1e9, 1e9])], expected: "needs more memory than this machine's"),
        Hostile(label: "Resize to a negative size", node: node("Resize", ["x", "", "", "sizes"]),
                initializers: [integers("sizes", [1, 3, -4, 4])], expected: "include a negative size"),
        Hostile(label: "Split with a negative part", node: Node(name: "hostile", opType: "Split", inputs: ["x", "parts"], outputs: ["y", "z"], attributes: [.int("axis", 1)]),
                initializers: [integers("parts", [-1, 4])], expected: "negative size"),
        Hostile(label: "Slice repeating an axis", node: node("Slice", ["x", "starts", "ends", "axes"]),
                initializers: [integers("starts", [0, 1]), integers("ends", [4, 3]), integers("axes", [2, 2])], expected: "repeat an axis"),
        Hostile(label: "LRN of size 0", node: node("LRN", ["x"], [.int("size", 0)]), initializers: [], expected: "size 0"),
        Hostile(label: "MaxPool pads wider than its window", node: node("MaxPool", ["x"], [.ints("kernel_shape", [2, 2]), .ints("pads", [5, 5, 5, 5])]),
                initializers: [], expected: "not smaller than kernel [2, 2]"),
        Hostile(label: "AveragePool with an empty window", node: node("AveragePool", ["x"], [.ints("kernel_shape", [0, 0])]),
                initializers: [], expected: "kernel [0, 0] has a size below 1"),
        Hostile(label: "Conv dilated by 2^62", node: node("Conv", ["x", "w"], [.ints("dilations", [1 << 62, 1])]),
                initializers: [Tensor(name: "w", shape: [4, 3, 3, 3], values: [Float](repeating: 1, count: 108))], expected: "is beyond 16777216"),
        Hostile(label: "MaxPool window of 2^62", node: node("MaxPool", ["x"], [.ints("kernel_shape", [1 << 62, 2]), .ints("pads", [1 << 61, 0, 1 << 61, 0])]),
                initializers: [], expected: "is beyond 16777216"),
        Hostile(label: "ConvTranspose with stride 0", node: node("ConvTranspose", ["x", "w"], [.ints("strides", [0, 0])]),
                initializers: [Tensor(name: "w", shape: [3, 2, 3, 3], values: [Float](repeating: 1, count: 54))], expected: "do not fit spatial rank 2"),
        Hostile(label: "InstanceNormalization with 5 scales for 3 channels", node: node("InstanceNormalization", ["x", "scale", "bias"]),
                initializers: [floats("scale", [1, 1, 1, 1, 1]), floats("bias", [0, 0, 0, 0, 0])], expected: "need 3 values, one per channel"),
    ]

    static func model(_ hostile: Hostile) -> Model {
        Model(opsetImports: [OperatorSetID(domain: "", version: 17)],
              graph: Graph(name: "hostile", nodes: [hostile.node],
                           inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(3), .fixed(8), .fixed(8)]))],
                           outputs: hostile.node.outputs.map { ValueInfo(name: $0, type: .unspecified) },
                           initializers: hostile.initializers))
    }

    @Test(arguments: cases)
    func failsInOneLineAtPlanOrRun(_ hostile: Hostile) throws {
        let model = Self.model(hostile)
        let input = RuntimeTensor(shape: [1, 3, 8, 8], floats: [Float](repeating: 0.5, count: 192))
        // Input shapes known when the plan is made (bench, eval): refused by shape inference.
        let planned = try #require(throws: NNPipeError.self) {
            _ = try ExecutionPlan(model: model, threads: 1, batchSize: 1).run(inputs: ["x": input])
        }
        // Met at the first run: refused by the kernel (or by constant folding when the plan is made).
        let ran = try #require(throws: NNPipeError.self) {
            _ = try ExecutionPlan(model: model, threads: 1).run(inputs: ["x": input])
        }
        for error in [planned, ran] {
            #expect(error.message.contains(hostile.expected), "\(error.message)")
            #expect(error.message.contains("hostile"), "names the node: \(error.message)")
            #expect(!error.message.contains("\n"))
        }
    }

    /// A product over an empty inner dimension is legal and all bias: [2, 0] × [0, 5], a Conv of
    /// an image with no channels. BLAS refuses a leading dimension of 0; the wrapper answers first.
    @Test(arguments: [
        (opType: "Gemm", input: [2, 0], weights: [0, 5], output: [2, 5]),
        (opType: "MatMul", input: [2, 0], weights: [0, 5], output: [2, 5]),
        (opType: "Conv", input: [1, 0, 8, 8], weights: [4, 0, 3, 3], output: [1, 4, 6, 6]),
    ])
    func emptyInnerDimensionGivesTheBias(opType: String, input: [Int], weights: [Int], output: [Int]) throws {
        let bias = opType == "MatMul" ? [] : [Tensor(name: "b", shape: [output[1]], values: (0..<output[1]).map(Float.init))]
        let model = Model(opsetImports: [OperatorSetID(domain: "", version: 17)],
                          graph: Graph(name: "empty", nodes: [Node(opType: opType, inputs: ["x", "w"] + bias.map(\.name), outputs: ["y"])],
                                       inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: input.map { .fixed($0) }))],
                                       outputs: [ValueInfo(name: "y", type: .unspecified)],
                                       initializers: [Tensor(name: "w", shape: weights, values: [Float]())] + bias))
        let result = try ExecutionPlan(model: model, threads: 1).run(inputs: ["x": RuntimeTensor(shape: input, floats: [])])["y"]!
        #expect(result.shape == output)
        let perChannel = output.count == 4 ? output[2] * output[3] : 1
        let expected = (0..<result.elementCount).map { index -> Float in
            bias.isEmpty ? 0 : Float(output.count == 4 ? (index / perChannel) % output[1] : index % output[1])
        }
        #expect(result.floats == expected)
    }

    /// Slice bounds and steps at Int64's ends ("from the start", "to the end", "one element")
    /// are legal and common in exported models; their arithmetic must neither trap nor go wrong.
    @Test(arguments: [
        (starts: Int64.min, ends: Int64.max, steps: Int64.min, expected: [Float]()),
        (starts: Int64.min, ends: Int64.max, steps: Int64.max, expected: [Float(0)]),
        (starts: -1, ends: Int64.min, steps: -1, expected: [7, 6, 5, 4, 3, 2, 1, 0]),
        (starts: Int64.max, ends: Int64.min, steps: Int64.min, expected: [7]),
        (starts: 2, ends: Int64.max, steps: 3, expected: [2, 5]),
    ])
    func sliceAtInt64Extremes(starts: Int64, ends: Int64, steps: Int64, expected: [Float]) throws {
        let model = Model(opsetImports: [OperatorSetID(domain: "", version: 17)],
                          graph: Graph(name: "slice", nodes: [Node(opType: "Slice", inputs: ["x", "starts", "ends", "axes", "steps"], outputs: ["y"])],
                                       inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.fixed(8)]))],
                                       outputs: [ValueInfo(name: "y", type: .unspecified)],
                                       initializers: [Self.integers("starts", [starts]), Self.integers("ends", [ends]),
                                                      Self.integers("axes", [0]), Self.integers("steps", [steps])]))
        let input = RuntimeTensor(shape: [8], floats: (0..<8).map(Float.init))
        let shapes = try ShapeInference.infer(model, inputShapes: ["x": [8]])
        #expect(shapes["y"]?.shape == [expected.count])
        let output = try ExecutionPlan(model: model, threads: 1).run(inputs: ["x": input])["y"]!
        #expect(output.shape == [expected.count])
        #expect(output.floats == expected)
    }
}
