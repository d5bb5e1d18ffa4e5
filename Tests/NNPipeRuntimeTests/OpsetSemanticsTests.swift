import NNPipeCore
import NNPipeRuntime
import Testing

/// Ops whose inputs or meaning changed between opsets, each checked on both sides of the change
/// with values worked out by hand.
@Suite struct OpsetSemanticsTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let opset: Int64
        let node: Node
        let input: [Float]
        let shape: [Int]
        let constants: [Tensor]
        let expected: [Float]
        let expectedShape: [Int]
        var testDescription: String { label }
    }

    static let axes = Tensor(name: "axes", shape: [1], values: [Int64(1)])

    static let cases: [Case] = [
        // [1, 2, 2]: opset 11 flattens at axis 1 (softmax over all four), opset 13 works along axis 1 only.
        Case(label: "Softmax opset 11 flattens", opset: 11,
             node: Node(opType: "Softmax", inputs: ["x"], outputs: ["y"], attributes: [.int("axis", 1)]),
             input: [0, 0, 0, 0], shape: [1, 2, 2], constants: [], expected: [0.25, 0.25, 0.25, 0.25], expectedShape: [1, 2, 2]),
        Case(label: "Softmax opset 13 per axis", opset: 13,
             node: Node(opType: "Softmax", inputs: ["x"], outputs: ["y"], attributes: [.int("axis", 1)]),
             input: [0, 0, 0, 0], shape: [1, 2, 2], constants: [], expected: [0.5, 0.5, 0.5, 0.5], expectedShape: [1, 2, 2]),
        Case(label: "Unsqueeze axes attribute (opset 11)", opset: 11,
             node: Node(opType: "Unsqueeze", inputs: ["x"], outputs: ["y"], attributes: [.ints("axes", [1])]),
             input: [1, 2], shape: [2], constants: [], expected: [1, 2], expectedShape: [2, 1]),
        Case(label: "Unsqueeze axes input (opset 13)", opset: 13,
             node: Node(opType: "Unsqueeze", inputs: ["x", "axes"], outputs: ["y"]),
             input: [1, 2], shape: [2], constants: [axes], expected: [1, 2], expectedShape: [2, 1]),
        Case(label: "ReduceSum axes attribute (opset 11)", opset: 11,
             node: Node(opType: "ReduceSum", inputs: ["x"], outputs: ["y"], attributes: [.ints("axes", [1]), .int("keepdims", 0)]),
             input: [1, 2, 3, 4], shape: [2, 2], constants: [], expected: [3, 7], expectedShape: [2]),
        Case(label: "ReduceSum axes input (opset 13)", opset: 13,
             node: Node(opType: "ReduceSum", inputs: ["x", "axes"], outputs: ["y"], attributes: [.int("keepdims", 0)]),
             input: [1, 2, 3, 4], shape: [2, 2], constants: [axes], expected: [3, 7], expectedShape: [2]),
        Case(label: "ReduceMean axes attribute (opset 17)", opset: 17,
             node: Node(opType: "ReduceMean", inputs: ["x"], outputs: ["y"], attributes: [.ints("axes", [0])]),
             input: [1, 2, 3, 4], shape: [2, 2], constants: [], expected: [2, 3], expectedShape: [1, 2]),
        Case(label: "ReduceMean axes input (opset 18)", opset: 18,
             node: Node(opType: "ReduceMean", inputs: ["x", "axes"], outputs: ["y"]),
             input: [1, 2, 3, 4], shape: [2, 2], constants: [axes], expected: [1.5, 3.5], expectedShape: [2, 1]),
        Case(label: "Clip bounds attributes (opset 7)", opset: 7,
             node: Node(opType: "Clip", inputs: ["x"], outputs: ["y"], attributes: [.float("min", 0), .float("max", 6)]),
             input: [-1, 3, 9], shape: [3], constants: [], expected: [0, 3, 6], expectedShape: [3]),
        Case(label: "Clip bounds inputs (opset 13)", opset: 13,
             node: Node(opType: "Clip", inputs: ["x", "low", "high"], outputs: ["y"]),
             input: [-1, 3, 9], shape: [3],
             constants: [Tensor(name: "low", shape: [], values: [Float(0)]), Tensor(name: "high", shape: [], values: [Float(6)])],
             expected: [0, 3, 6], expectedShape: [3]),
        Case(label: "Slice attributes (opset 9)", opset: 9,
             node: Node(opType: "Slice", inputs: ["x"], outputs: ["y"], attributes: [.ints("starts", [1]), .ints("ends", [3]), .ints("axes", [0])]),
             input: [1, 2, 3, 4], shape: [4], constants: [], expected: [2, 3], expectedShape: [2]),
        Case(label: "Slice inputs with negative step (opset 13)", opset: 13,
             node: Node(opType: "Slice", inputs: ["x", "starts", "ends", "axes", "steps"], outputs: ["y"]),
             input: [1, 2, 3, 4], shape: [4],
             constants: [Tensor(name: "starts", shape: [1], values: [Int64(-1)]), Tensor(name: "ends", shape: [1], values: [Int64.min]),
                         Tensor(name: "axes", shape: [1], values: [Int64(0)]), Tensor(name: "steps", shape: [1], values: [Int64(-2)])],
             expected: [4, 2], expectedShape: [2]),
        Case(label: "Pad attributes (opset 10)", opset: 10,
             node: Node(opType: "Pad", inputs: ["x"], outputs: ["y"], attributes: [.ints("pads", [1, 2]), .float("value", 9)]),
             input: [1], shape: [1], constants: [], expected: [9, 1, 9, 9], expectedShape: [4]),
        Case(label: "Reshape allowzero (opset 14)", opset: 14,
             node: Node(opType: "Reshape", inputs: ["x", "shape"], outputs: ["y"], attributes: [.int("allowzero", 0)]),
             input: [1, 2, 3, 4], shape: [2, 2], constants: [Tensor(name: "shape", shape: [2], values: [Int64(0), -1])],
             expected: [1, 2, 3, 4], expectedShape: [2, 2]),
    ]

    @Test(arguments: cases)
    func opMatchesItsOpset(_ testCase: Case) throws {
        let model = Model(
            opsetImports: [OperatorSetID(domain: "", version: testCase.opset)],
            graph: Graph(nodes: [testCase.node],
                         inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: testCase.shape.map { .fixed($0) }))],
                         outputs: [ValueInfo(name: "y", type: .unspecified)], initializers: testCase.constants))
        let plan = try ExecutionPlan(model: model, threads: 1)
        let output = try #require(try plan.run(inputs: ["x": RuntimeTensor(shape: testCase.shape, floats: testCase.input)])["y"])
        #expect(output.shape == testCase.expectedShape)
        #expect(output.floats.count == testCase.expected.count)
        for (got, want) in zip(output.floats, testCase.expected) { #expect(abs(got - want) <= 1e-6) }
    }
}
