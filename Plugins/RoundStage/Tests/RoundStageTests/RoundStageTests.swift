import NNPipeCore
import NNPipeTestKit
import RoundStage
import Testing

@Suite("Round stage")
struct RoundStageTests {
    static var model: Model {
        let weights = Tensor(name: "w", shape: [4, 2], values: [Float]([0.1, -0.2, 0.333, 1e-3, 7.7, -5.5, 0.25, 3.14159]))
        return Model(graph: Graph(
            nodes: [Node(name: "mm", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])],
            inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("n"), .fixed(4)]))],
            outputs: [ValueInfo(name: "y", type: .tensor(elementType: .float, shape: [.symbolic("n"), .fixed(2)]))],
            initializers: [weights]))
    }

    @Test func passesTheStageConformanceChecks() {
        let problems = StageConformance.problems(StageDescriptor(RoundStage.self), options: "\"bits\": 4", model: Self.model)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test(arguments: [(Float(3.14159), 4, Float(3.125)), (0.1, 7, 0.10009765625), (-5.5, 1, -6.0), (1.0, 22, 1.0)])
    func roundsToNearestEven(value: Float, bits: Int, expected: Float) throws {
        let stage = try RoundStage(options: StageOptions(values: ["bits": .number(Double(bits)), "op_types": .array([.string("MatMul")])], path: "stages[0]"))
        var model = Model(graph: Graph(
            nodes: [Node(opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])],
            inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.fixed(1)]))],
            outputs: [ValueInfo(name: "y", type: .tensor(elementType: .float, shape: nil))],
            initializers: [Tensor(name: "w", shape: [1], values: [value])]))
        _ = try stage.run(&model, context: StageContext(
            manifestDirectory: TestEnvironment.repositoryRoot, outputDirectory: TestEnvironment.repositoryRoot,
            datasets: [:], formats: FormatRegistry(), logger: .init(label: "test"), progress: .silent, stagePath: "stages[0]"))
        let rounded: [Float] = try #require(model.graph.initializers[0].values())
        #expect(rounded == [expected])
    }
}
