import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeRuntime
import NNPipeTestKit
import Testing

/// Plan-time shape inference: on good models it must give exactly the types and shapes a run
/// produces; on bad ones it must fail before running, naming the node, the op and both shapes.
@Suite struct ShapeInferenceTests {
    // MARK: Good models: inferred == ran

    @Test(arguments: ReferenceFixtureTests.cases)
    func runtimeFixturesInferAsTheyRun(_ name: String) throws {
        let testCase = try RuntimeCase(contentsOf: TestEnvironment.fixture("runtime/\(name).json"))
        try #require(testCase.unreadable == nil)
        let check = try testCase.shapeInferenceCheck()
        #expect(check.mismatches.isEmpty, "\(name): \(check.mismatches)")
        #expect(check.unknown.isEmpty, "\(name): not inferred: \(check.unknown)")
        #expect(check.checked > 0)
    }

    /// Converted models, where shapes flow through Shape/Gather/Concat/Reshape arithmetic and Transposes.
    static let convertedModels = [
        "Examples/digits/mlp.onnx",
        "Tests/Fixtures/tf2onnx/plain_cnn_opset13.onnx", "Tests/Fixtures/tf2onnx/plain_cnn_opset13_unoptimized.onnx",
        "Tests/Fixtures/tf2onnx/branchy_cnn_opset17.onnx", "Tests/Fixtures/tf2onnx/branchy_cnn_opset13_unoptimized.onnx",
        "Tests/Fixtures/tf2onnx/layout_cnn_opset13.onnx", "Tests/Fixtures/tf2onnx/layout_cnn_opset13_unoptimized.onnx",
        // onnx's light models: real architectures whose weights are ConstantOfShape placeholders.
        "Tests/Fixtures/onnx/light/light_squeezenet.onnx", "Tests/Fixtures/onnx/light/light_resnet50.onnx",
        "Tests/Fixtures/onnx/light/light_densenet121.onnx", "Tests/Fixtures/onnx/light/light_inception_v2.onnx",
        "Tests/Fixtures/onnx/light/light_shufflenet.onnx", "Tests/Fixtures/onnx/light/light_bvlc_alexnet.onnx",
    ]

    @Test(arguments: convertedModels)
    func convertedModelsInferAsTheyRun(_ path: String) throws {
        let model = try ONNXFormat().read(from: TestEnvironment.repositoryRoot.appendingPathComponent(path))
        let batchSize = path.contains("/light/") ? 1 : 3
        let plan = try ExecutionPlan(model: model, threads: 2, batchSize: batchSize)
        let input = try #require(plan.inputs.first)
        let dimensions = try #require(input.type.tensorShape)
        let shape = dimensions.compactMap(\.fixedValue)
        var generator = SeededGenerator(seed: 7)
        let values = (0..<shape.reduce(1, *)).map { _ in Float(generator.next() % 17) }
        final class Seen: @unchecked Sendable { var values: [String: (DataType, [Int])] = [:] }
        let seen = Seen()
        _ = try plan.run(inputs: [input.name: RuntimeTensor(shape: shape, floats: values)]) { name, value in
            seen.values[name] = (value.dataType, value.shape)
        }
        let inferred = try plan.inferShapes(batchSize: batchSize)
        for (name, (type, ranShape)) in seen.values {
            let guess = try #require(inferred[name], "\(path): '\(name)' not inferred")
            #expect(guess.shape == ranShape && guess.dataType == type, "\(path): '\(name)' inferred \(guess), ran \(type)\(ranShape)")
        }
    }

    /// Every committed ONNX fixture model the runtime can plan and run on inputs of its declared
    /// shapes (symbolic dimensions 2; floats seeded, other types zero): inferred must equal ran.
    @Test func onnxFixtureModelsInferAsTheyRun() throws {
        let root = TestEnvironment.fixture("onnx")
        var compared: [String] = []
        for folder in ["pytorch-converted", "pytorch-operator", "simple"] {
            let files = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(folder).path)
            for file in files.sorted() where file.hasSuffix(".onnx") {
                let label = "\(folder)/\(file)"
                guard let model = try? ONNXFormat().read(from: root.appendingPathComponent(label)),
                      let plan = try? ExecutionPlan(model: model, threads: 1)
                else { continue }
                var feeds: [String: RuntimeTensor] = [:]
                var shapes: [String: [Int]] = [:]
                var generator = SeededGenerator(seed: 3)
                for input in plan.inputs {
                    guard case .tensor(let type, let dimensions?) = input.type else { continue }
                    let shape = dimensions.map { $0.fixedValue ?? 2 }
                    shapes[input.name] = shape
                    feeds[input.name] = type == .float
                        ? RuntimeTensor(shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in generator.nextUnit() - 0.5 })
                        : RuntimeTensor(dataType: type, shape: shape, zeroed: true)
                }
                final class Seen: @unchecked Sendable { var values: [String: (DataType, [Int])] = [:] }
                let seen = Seen()
                guard feeds.count == plan.inputs.count,
                      let results = try? plan.run(inputs: feeds, observe: { name, value in seen.values[name] = (value.dataType, value.shape) })
                else { continue }
                for (name, value) in results { seen.values[name] = (value.dataType, value.shape) }
                let inferred: [String: InferredTensor]
                do { inferred = try plan.inferShapes(inputShapes: shapes) } catch {
                    Issue.record("\(label): inference threw \(error) on a model that runs")
                    continue
                }
                for (name, (type, ranShape)) in seen.values {
                    guard let guess = inferred[name], let shape = guess.shape else { continue }
                    #expect(shape == ranShape && (guess.dataType ?? type) == type, "\(label): '\(name)' inferred \(guess), ran \(type)\(ranShape)")
                }
                compared.append(label)
            }
        }
        print("shape inference compared with runs on \(compared.count) ONNX fixture models")
        // Most of the PyTorch exports import opset 6, below the runtime's range, so few run.
        #expect(compared.count >= 6, "only \(compared.count) fixture models ran")
    }

    // MARK: Bad models: a clear error at plan time

    struct BadModel: CustomTestStringConvertible, Sendable {
        let label: String
        let nodes: [Node]
        let inputShape: [Int]
        let initializers: [Tensor]
        /// Every fragment must appear in the message.
        let expected: [String]
        var testDescription: String { label }
    }

    static func weights(_ name: String, _ shape: [Int]) -> Tensor {
        Tensor(name: name, shape: shape, values: [Float](repeating: 0.5, count: shape.reduce(1, *)))
    }

    static let badModels: [BadModel] = [
        BadModel(label: "MatMul inner dimensions", nodes: [Node(name: "dense", opType: "MatMul", inputs: ["x", "w"], outputs: ["y"])],
                 inputShape: [2, 3], initializers: [weights("w", [4, 5])],
                 expected: ["node 'dense'", "op 'MatMul'", "[2, 3] × [4, 5]"]),
        BadModel(label: "Gemm inner dimensions", nodes: [Node(name: "fc", opType: "Gemm", inputs: ["x", "w"], outputs: ["y"], attributes: [.int("transB", 1)])],
                 inputShape: [2, 3], initializers: [weights("w", [5, 4])],
                 expected: ["node 'fc'", "op 'Gemm'", "[2, 3]", "[5, 4]"]),
        BadModel(label: "broadcast mismatch", nodes: [Node(name: "bias", opType: "Add", inputs: ["x", "b"], outputs: ["y"])],
                 inputShape: [2, 3], initializers: [weights("b", [4])],
                 expected: ["node 'bias'", "op 'Add'", "[2, 3] and [4] do not broadcast"]),
        BadModel(label: "Conv channel mismatch", nodes: [Node(name: "conv1", opType: "Conv", inputs: ["x", "w"], outputs: ["y"])],
                 inputShape: [2, 3, 8, 8], initializers: [weights("w", [4, 2, 3, 3])],
                 expected: ["node 'conv1'", "op 'Conv'", "[2, 3, 8, 8] has 3 channels", "[4, 2, 3, 3]", "expect 2"]),
        BadModel(label: "Reshape element count",
                 nodes: [Node(name: "flat", opType: "Reshape", inputs: ["x", "target"], outputs: ["y"])],
                 inputShape: [2, 6], initializers: [Tensor(name: "target", shape: [2], values: [Int64(5), -1])],
                 expected: ["node 'flat'", "op 'Reshape'", "cannot reshape [2, 6] (12 elements) to [5, -1]"]),
        BadModel(label: "Concat outside its axis",
                 nodes: [Node(name: "join", opType: "Concat", inputs: ["x", "c"], outputs: ["y"], attributes: [.int("axis", 0)])],
                 inputShape: [2, 3], initializers: [weights("c", [1, 4])],
                 expected: ["node 'join'", "op 'Concat'", "[2, 3] and [1, 4] differ outside axis 0"]),
        // The mismatch sits behind shape arithmetic: Shape -> Gather -> Concat -> Reshape, then MatMul.
        BadModel(label: "mismatch after folded shape arithmetic",
                 nodes: [
                     Node(name: "shape", opType: "Shape", inputs: ["x"], outputs: ["s"]),
                     Node(name: "batch", opType: "Gather", inputs: ["s", "zero"], outputs: ["n"], attributes: [.int("axis", 0)]),
                     Node(name: "target", opType: "Concat", inputs: ["n", "minusOne"], outputs: ["t"], attributes: [.int("axis", 0)]),
                     Node(name: "flatten", opType: "Reshape", inputs: ["x", "t"], outputs: ["f"]),
                     Node(name: "classifier", opType: "MatMul", inputs: ["f", "w"], outputs: ["y"]),
                 ],
                 inputShape: [2, 4, 4],
                 initializers: [Tensor(name: "zero", shape: [1], values: [Int64(0)]), Tensor(name: "minusOne", shape: [1], values: [Int64(-1)]),
                                weights("w", [15, 10])],
                 expected: ["node 'classifier'", "op 'MatMul'", "[2, 16] × [15, 10]"]),
    ]

    static func model(_ bad: BadModel) -> Model {
        Model(
            opsetImports: [OperatorSetID(domain: "", version: 17)],
            graph: Graph(
                nodes: bad.nodes,
                inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.symbolic("N")] + bad.inputShape.dropFirst().map { .fixed($0) }))],
                outputs: [ValueInfo(name: "y", type: .tensor(elementType: .float, shape: nil))],
                initializers: bad.initializers))
    }

    @Test(arguments: badModels)
    func badModelsFailAtPlanTime(_ bad: BadModel) throws {
        let model = Self.model(bad)
        // Without input shapes the plan is made; with them (a batch size) it is refused before any run.
        let plan = try ExecutionPlan(model: model, threads: 1)
        let error = try #require(throws: NNPipeError.self) { try plan.inferShapes(inputShapes: ["x": bad.inputShape]) }
        for fragment in bad.expected { #expect(error.message.contains(fragment), "\(error.message) lacks \(fragment)") }
        #expect(throws: NNPipeError.self) { try ExecutionPlan(model: model, threads: 1, batchSize: bad.inputShape[0]) }
    }

    @Test func inputShapeMismatchNamesBothShapes() throws {
        let model = Self.model(Self.badModels[0])
        let error = try #require(throws: NNPipeError.self) {
            try ShapeInference.infer(model, inputShapes: ["x": [2, 3, 1]])
        }
        #expect(error.message.contains("input 'x' expects shape [N, 3], got [2, 3, 1]"), "\(error.message)")
    }
}
