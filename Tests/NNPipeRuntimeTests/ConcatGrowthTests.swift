import NNPipeCore
@testable import NNPipeRuntime
import Testing

/// Chains of Concats that append into one storage (`ConcatGrowth`) must give what copying Concats
/// give (an observed run never grows), share storage only where it is safe, and leave every
/// earlier tensor of the chain intact.
@Suite struct ConcatGrowthTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let nodes: [Node]
        /// Concat outputs expected to share one storage at batch 1.
        let shared: [[String]]
        var testDescription: String { label }
    }

    static func relu(_ input: String, _ output: String) -> Node { Node(opType: "Relu", inputs: [input], outputs: [output]) }
    static func concat(_ inputs: [String], _ output: String, axis: Int64 = 1) -> Node {
        Node(name: output, opType: "Concat", inputs: inputs, outputs: [output], attributes: [.int("axis", axis)])
    }
    /// A dense block: each layer appends as many channels as the input has (DenseNet's growth
    /// rate). The first Concat makes room for twice its channels: c2 and c3 fit, c4 does not.
    static let denseBlock: [Node] = [
        relu("x", "f1"), concat(["x", "f1"], "c1"),
        Node(opType: "Neg", inputs: ["x"], outputs: ["f2"]), concat(["c1", "f2"], "c2"),
        Node(opType: "Abs", inputs: ["x"], outputs: ["f3"]), concat(["c2", "f3"], "c3"),
        relu("f3", "f4"), concat(["c3", "f4", "x"], "c4"),
    ]

    static let cases: [Case] = [
        Case(label: "dense block of four Concats", nodes: denseBlock, shared: [["c1", "c2", "c3"]]),
        Case(label: "two Concats extend the same first input (neither appends)", nodes: [
            relu("x", "f1"), concat(["x", "f1"], "c1"), concat(["c1", "x"], "c2"), concat(["c1", "f1"], "c3"),
        ], shared: []),
        Case(label: "a Reshape view of the chain feeds another Concat (it copies)", nodes: [
            relu("x", "f1"), concat(["x", "f1"], "c1"), concat(["c1", "f1"], "c2"),
            Node(opType: "Identity", inputs: ["c1"], outputs: ["v"]), concat(["v", "x"], "c3"),
        ], shared: [["c1", "c2"]]),
        Case(label: "negative axis", nodes: [
            relu("x", "f1"), concat(["x", "f1"], "c1", axis: -3), concat(["c1", "f1"], "c2", axis: -3),
        ], shared: [["c1", "c2"]]),
    ]

    @Test(arguments: cases, [1, 3])
    func growingConcatsMatchCopyingConcats(_ testCase: Case, batch: Int) throws {
        let shape = [batch, 2, 3, 4]
        let outputs = Array(Set(testCase.nodes.filter { $0.opType == "Concat" }.map { $0.outputs[0] })).sorted()
        let model = ExecutionPlanTests.model(testCase.nodes, inputs: [ExecutionPlanTests.floatInput("x", shape.map { .fixed($0) })],
                                             outputs: outputs)
        let plan = try ExecutionPlan(model: model, threads: 2)
        let feeds = ["x": try RuntimeTensor(PlanFusionTests.weights("x", shape, seed: 51))]
        let grown = try plan.run(inputs: feeds)
        let copied = try plan.run(inputs: feeds, observe: { _, _ in })
        for name in outputs {
            let (left, right) = (try #require(grown[name]), try #require(copied[name]))
            #expect(left.shape == right.shape && left.floats == right.floats, "\(name) differs")
        }
        for group in testCase.shared {
            let storages = group.map { grown[$0]!.storage }
            let sharing = storages.allSatisfy { $0 === storages[0] }
            #expect(sharing == (batch == 1), "\(group) share one storage only with one image")
        }
        // Concats outside a shared group own their storage.
        let grouped = Set(testCase.shared.flatMap { $0 })
        for name in outputs where !grouped.contains(name) {
            for other in outputs where other != name {
                #expect(grown[name]!.storage !== grown[other]!.storage, "\(name) and \(other) share storage")
            }
        }
    }
}
