import NNPipeCore
import NNPipeRuntime
import Testing

/// The tail skl2onnx puts on classifiers: Softmax probabilities, ArgMax, ArrayFeatureExtractor over
/// the class labels, and ZipMap (which the runtime answers with the probability tensor).
@Suite struct ClassifierTailTests {
    static func model(labels: Tensor) -> Model {
        let weights = Tensor(name: "w", shape: [2, 3], values: [Float(1), 0, 0, 0, 1, 0])
        return Model(
            opsetImports: [OperatorSetID(domain: "", version: 13), OperatorSetID(domain: "ai.onnx.ml", version: 1)],
            graph: Graph(
                nodes: [
                    Node(opType: "MatMul", inputs: ["x", "w"], outputs: ["logits"]),
                    Node(opType: "Softmax", inputs: ["logits"], outputs: ["probabilities"], attributes: [.int("axis", 1)]),
                    Node(opType: "ArgMax", inputs: ["probabilities"], outputs: ["best"], attributes: [.int("axis", 1)]),
                    Node(opType: "ArrayFeatureExtractor", domain: "ai.onnx.ml", inputs: ["classes", "best"], outputs: ["label"]),
                    Node(opType: "ZipMap", domain: "ai.onnx.ml", inputs: ["probabilities"], outputs: ["output_probability"],
                         attributes: [.ints("classlabels_int64s", [10, 20, 30])]),
                ],
                inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("N"), .fixed(2)]))],
                outputs: [ValueInfo(name: "label", type: .unspecified), ValueInfo(name: "output_probability", type: .unspecified)],
                initializers: [weights, labels]))
    }

    @Test func integerLabelsAndProbabilities() throws {
        let plan = try ExecutionPlan(model: Self.model(labels: Tensor(name: "classes", shape: [3], values: [Int64(10), 20, 30])), threads: 1)
        let results = try plan.run(inputs: ["x": RuntimeTensor(shape: [2, 2], floats: [5, 0, 0, 5])])
        #expect(results["label"]?.integers == [10, 20])
        let probabilities = try #require(results["output_probability"])
        #expect(probabilities.shape == [2, 3])
        #expect(probabilities.floats[0] > 0.98)
    }

    @Test func stringLabelsFailOnlyWhenTheLabelIsNeeded() throws {
        let labels = Tensor(name: "classes", dataType: .string, shape: [3], storage: .strings(["a", "b", "c"].map { Array($0.utf8) }))
        let plan = try ExecutionPlan(model: Self.model(labels: labels), threads: 1)
        let input = ["x": RuntimeTensor(shape: [1, 2], floats: [5, 0])]
        #expect(try plan.run(inputs: input, outputs: ["output_probability"])["output_probability"]?.shape == [1, 3])
        #expect(throws: NNPipeError.self) { try plan.run(inputs: input) }
    }
}
