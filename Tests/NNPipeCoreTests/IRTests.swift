import NNPipeCore
import Testing

@Suite("Graph checks")
struct GraphCheckTests {
    static func node(_ op: String, _ inputs: [String], _ outputs: [String]) -> Node {
        Node(name: outputs.first ?? op, opType: op, inputs: inputs, outputs: outputs)
    }
    static let input = ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("batch"), .fixed(3)]))
    static func output(_ name: String) -> ValueInfo { ValueInfo(name: name, type: .tensor(elementType: .float, shape: nil)) }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let graph: Graph
        let fragment: String?
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "valid chain", graph: Graph(nodes: [node("Relu", ["x"], ["a"]), node("Neg", ["a"], ["y"])], inputs: [input], outputs: [output("y")]), fragment: nil),
        Case(name: "optional input omitted", graph: Graph(nodes: [node("Clip", ["x", "", ""], ["y"])], inputs: [input], outputs: [output("y")]), fragment: nil),
        Case(name: "not SSA", graph: Graph(nodes: [node("Relu", ["x"], ["a"]), node("Neg", ["x"], ["a"])], inputs: [input], outputs: [output("a")]), fragment: "'a' is defined more than once"),
        Case(name: "out of order", graph: Graph(nodes: [node("Neg", ["a"], ["y"]), node("Relu", ["x"], ["a"])], inputs: [input], outputs: [output("y")]), fragment: "not in topological order"),
        Case(name: "dangling input", graph: Graph(nodes: [node("Add", ["x", "w"], ["y"])], inputs: [input], outputs: [output("y")]), fragment: "uses 'w', which nothing produces"),
        Case(name: "output never produced", graph: Graph(nodes: [node("Relu", ["x"], ["a"])], inputs: [input], outputs: [output("z")]), fragment: "graph output 'z' is not produced"),
        Case(name: "initializer also input (IR 3)", graph: Graph(nodes: [node("Add", ["x", "w"], ["y"])], inputs: [input, ValueInfo(name: "w", type: .tensor(elementType: .float, shape: [.fixed(3)]))], outputs: [output("y")], initializers: [Tensor(name: "w", shape: [3], values: [Float](repeating: 1, count: 3))]), fragment: nil),
        Case(name: "wrong initializer size", graph: Graph(nodes: [node("Add", ["x", "w"], ["y"])], inputs: [input], outputs: [output("y")], initializers: [Tensor(name: "w", dataType: .float, shape: [4], storage: .bytes(TensorBuffer(byteCount: 12) { _ in }))]), fragment: "holds 12 bytes"),
        Case(name: "subgraph sees outer scope", graph: Graph(nodes: [node("Relu", ["x"], ["a"]), Node(name: "if", opType: "If", inputs: ["c"], outputs: ["y"], attributes: [Attribute(name: "then_branch", value: .graph(Graph(nodes: [node("Neg", ["a"], ["t"])], outputs: [output("t")])))])], inputs: [input, ValueInfo(name: "c", type: .tensor(elementType: .bool, shape: []))], outputs: [output("y")]), fragment: nil),
        Case(name: "subgraph dangling", graph: Graph(nodes: [Node(name: "if", opType: "If", inputs: ["c"], outputs: ["y"], attributes: [Attribute(name: "then_branch", value: .graph(Graph(name: "then", nodes: [node("Neg", ["nothing"], ["t"])], outputs: [output("t")])))])], inputs: [ValueInfo(name: "c", type: .tensor(elementType: .bool, shape: []))], outputs: [output("y")]), fragment: "graph 'then': node t uses 'nothing'"),
    ]

    @Test(arguments: cases)
    func check(_ testCase: Case) {
        let problems = GraphCheck.problems(in: testCase.graph)
        if let fragment = testCase.fragment {
            #expect(problems.contains { $0.description.contains(fragment) }, "\(problems)")
        } else {
            #expect(problems.isEmpty, "\(problems)")
        }
    }
}

@Suite("Model statistics")
struct ModelStatisticsTests {
    @Test func countsParametersZerosBytesAndOperators() {
        let weights = Tensor(name: "w", shape: [2, 3], values: [Float]([0, 1, 0, -0.0, 2, 3]))
        let bias = Tensor(name: "b", shape: [2], values: [Int64]([0, 7]))
        let packed = Tensor(name: "q", dataType: .int4, shape: [3], storage: .bytes([UInt8]([0x10, 0x02]).withUnsafeBytes { TensorBuffer(copying: $0) }))
        let graph = Graph(
            nodes: [Node(opType: "MatMul", inputs: ["x", "w"], outputs: ["a"]), Node(opType: "Add", inputs: ["a", "b"], outputs: ["y"]),
                    Node(opType: "ZipMap", domain: "ai.onnx.ml", inputs: ["y"], outputs: ["z"])],
            initializers: [weights, bias, packed])
        let statistics = ModelStatistics(Model(graph: graph))
        #expect(statistics.parameterCount == 11)
        #expect(statistics.nonZeroCount == 3 + 1 + 2)
        #expect(statistics.bytesByDataType == ["float32": 24, "int64": 16, "int4": 2])
        #expect(statistics.operatorHistogram == ["MatMul": 1, "Add": 1, "ai.onnx.ml:ZipMap": 1])
    }

    @Test(arguments: [(1.0, 0x3C00), (-2.0, 0xC000), (65504, 0x7BFF), (1e-8, 0x0000), (5.96e-8, 0x0001), (0.1, 0x2E66), (Float.infinity, 0x7C00)] as [(Float, UInt16)])
    func halfPrecision(value: Float, bits: UInt16) {
        #expect(HalfPrecision.bits(from: value) == bits)
        if value.isFinite && value > 1e-7 {
            #expect(abs(HalfPrecision.float(fromBits: bits) - value) <= abs(value) * 1e-3)
        }
    }
}

@Suite("JSON")
struct JSONTests {
    @Test(arguments: [
        ("{\"a\": [1, 2.5, -3e2, true, null, \"x\\n\\u00e9\\ud83d\\ude00\"]}", true),
        ("[1,]", false), ("01", false), ("\"unterminated", false), ("{\"a\" 1}", false), ("nul", false), ("1 2", false),
    ])
    func parses(text: String, valid: Bool) {
        let result = Result { try JSONParser.parse(text) }
        #expect(((try? result.get()) != nil) == valid)
    }

    @Test func roundTripsThroughTheWriter() throws {
        let text = "{\"name\":\"a\\\"b\",\"values\":[1,0.25,-3],\"nested\":{\"ok\":true,\"none\":null}}"
        let value = try JSONParser.parse(text)
        #expect(JSONWriter.write(value, pretty: false) == text)
        #expect(try JSONParser.parse(JSONWriter.write(value, pretty: true)) == value)
    }
}

@Suite("Sparse initializers")
struct SparseInitializerTests {
    @Test func mostlyZeroWeightsBecomeSparseAndDenseAgain() throws {
        var values = [Float](repeating: 0, count: 60)
        values[3] = 1.5
        values[17] = -2
        values[59] = -0.0  // a signed zero is kept as a value, so the bits survive
        let weights = Tensor(name: "w", shape: [6, 10], values: values)
        let dense = Tensor(name: "d", shape: [4, 4], values: [Float](repeating: 1, count: 16))
        let model = Model(graph: Graph(initializers: [weights, dense]))
        let (converted, count) = SparseInitializers.convert(model)
        #expect(count == 1)
        #expect(converted.graph.initializers.map(\.name) == ["d"])
        let sparse = try #require(converted.graph.sparseInitializers.first)
        #expect(sparse.indices.integerValues() == [3, 17, 59])
        let back = try SparseInitializers.dense(sparse)
        #expect(back.shape == [6, 10])
        let restored: [Float] = try #require(back.values())
        #expect(restored.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test func outOfRangeIndicesAreAnError() {
        let sparse = SparseTensor(
            values: Tensor(name: "w", shape: [1], values: [Float(1)]),
            indices: Tensor(name: "", shape: [1], values: [Int64(99)]), shape: [2, 2])
        #expect(throws: NNPipeError.self) { try SparseInitializers.dense(sparse) }
    }
}
