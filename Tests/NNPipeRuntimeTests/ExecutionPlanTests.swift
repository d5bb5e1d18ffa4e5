import Foundation
import NNPipeCore
import NNPipeRuntime
import Testing

/// The executor's contract: plan-time errors, intermediate outputs, observation, freeing, input checks.
@Suite struct ExecutionPlanTests {
    static func model(_ nodes: [Node], inputs: [ValueInfo], outputs: [String], initializers: [Tensor] = [], opset: Int64 = 17) -> Model {
        Model(opsetImports: [OperatorSetID(domain: "", version: opset)],
              graph: Graph(name: "test", nodes: nodes, inputs: inputs, outputs: outputs.map { ValueInfo(name: $0, type: .unspecified) },
                           initializers: initializers))
    }

    static func floatInput(_ name: String, _ shape: [NNPipeCore.Dimension]) -> ValueInfo {
        ValueInfo(name: name, type: .tensor(elementType: .float, shape: shape))
    }

    static let chain = model(
        [Node(name: "first", opType: "Relu", inputs: ["x"], outputs: ["a"]),
         Node(name: "second", opType: "Neg", inputs: ["a"], outputs: ["b"]),
         Node(name: "third", opType: "Abs", inputs: ["b"], outputs: ["c"])],
        inputs: [floatInput("x", [.symbolic("batch"), .fixed(3)])], outputs: ["c"])

    struct PlanFailure: CustomTestStringConvertible, Sendable {
        let label: String
        let node: Node
        let opset: Int64
        let expected: [String]
        var testDescription: String { label }
    }

    static let planFailures: [PlanFailure] = [
        PlanFailure(label: "unknown op", node: Node(name: "mystery", opType: "Frobnicate", inputs: ["x"], outputs: ["y"]), opset: 17,
                    expected: ["op 'Frobnicate'", "node 'mystery'", "opset 17"]),
        PlanFailure(label: "unknown attribute", node: Node(name: "act", opType: "Relu", inputs: ["x"], outputs: ["y"], attributes: [.int("shiny", 1)]),
                    opset: 17, expected: ["attribute 'shiny'", "op 'Relu'", "node 'act'"]),
        PlanFailure(label: "opset too new", node: Node(name: "act", opType: "Relu", inputs: ["x"], outputs: ["y"]), opset: 99,
                    expected: ["opset 99", "op 'Relu'"]),
        PlanFailure(label: "unsupported mode", node: Node(name: "pad", opType: "Pad", inputs: ["x", "p"], outputs: ["y"], attributes: [.string("mode", "mirror")]),
                    opset: 17, expected: ["mode 'mirror'", "node 'pad'"]),
        PlanFailure(label: "training batch norm", node: Node(name: "bn", opType: "BatchNormalization", inputs: ["x", "s", "b", "m", "v"], outputs: ["y"],
                                                             attributes: [.int("training_mode", 1)]),
                    opset: 15, expected: ["training_mode", "node 'bn'"]),
    ]

    @Test(arguments: planFailures)
    func unsupportedThingsFailWhenPlanning(_ failure: PlanFailure) throws {
        let model = Self.model([failure.node], inputs: [Self.floatInput("x", [.fixed(2)])] + ["p", "s", "b", "m", "v"].map { Self.floatInput($0, [.fixed(2)]) },
                               outputs: ["y"], opset: failure.opset)
        do {
            _ = try ExecutionPlan(model: model)
            Issue.record("planning should have failed")
        } catch let error as NNPipeError {
            #expect(error.code == .unsupported)
            for fragment in failure.expected { #expect(error.message.contains(fragment), "\(error.message)") }
        }
    }

    @Test func intermediatesCanBeRequestedAndObserved() throws {
        let plan = try ExecutionPlan(model: Self.chain, threads: 1)
        let input = RuntimeTensor(shape: [1, 3], floats: [-1, 2, -3])
        var seen: [String] = []
        let results = try plan.run(inputs: ["x": input], outputs: ["a", "c"]) { name, _ in seen.append(name) }
        #expect(seen == ["x", "a", "b", "c"])
        #expect(results["a"]?.floats == [0, 2, 0])
        #expect(results["c"]?.floats == [0, 2, 0])
        #expect(try plan.run(inputs: ["x": input], outputs: ["b"])["b"]?.floats == [0, -2, 0])
    }

    @Test func intermediatesAreFreedAfterTheirLastReader() throws {
        final class WeakStorage: @unchecked Sendable { weak var storage: RuntimeStorage? }
        let plan = try ExecutionPlan(model: Self.chain, threads: 1)
        let first = WeakStorage()
        var freedBeforeLast = false
        _ = try plan.run(inputs: ["x": RuntimeTensor(shape: [1, 3], floats: [1, 2, 3])]) { name, tensor in
            if name == "a" { first.storage = tensor.storage }
            if name == "c" { freedBeforeLast = first.storage == nil }
        }
        #expect(freedBeforeLast, "'a' should be released once 'b' is computed")
    }

    struct BadInput: CustomTestStringConvertible, Sendable {
        let label: String
        let feeds: [String: RuntimeTensor]
        let expected: String
        var testDescription: String { label }
    }

    static let badInputs: [BadInput] = [
        BadInput(label: "missing", feeds: [:], expected: "missing input 'x'"),
        BadInput(label: "wrong shape", feeds: ["x": RuntimeTensor(shape: [2, 4], floats: .init(repeating: 0, count: 8))],
                 expected: "expects shape [batch, 3], got [2, 4]"),
        BadInput(label: "wrong type", feeds: ["x": RuntimeTensor(shape: [1, 3], values: [Int64](repeating: 0, count: 3))],
                 expected: "expects float32, got int64"),
        BadInput(label: "unknown name", feeds: ["x": RuntimeTensor(shape: [1, 3], floats: [0, 0, 0]), "z": RuntimeTensor(shape: [1], floats: [0])],
                 expected: "'z' is not an input"),
    ]

    @Test(arguments: badInputs)
    func badInputsAreClearErrors(_ bad: BadInput) throws {
        let plan = try ExecutionPlan(model: Self.chain, threads: 1)
        do {
            _ = try plan.run(inputs: bad.feeds)
            Issue.record("run should have failed")
        } catch let error as NNPipeError {
            #expect(error.code == .invalidData)
            #expect(error.message.contains(bad.expected), "\(error.message)")
        }
    }

    @Test func shapeArithmeticOnConstantsIsFoldedAtPlanTime() throws {
        // Reshape's target comes from Shape -> Gather -> Concat over a weight: all constant.
        let weight = Tensor(name: "w", shape: [2, 3], values: [Float](repeating: 1, count: 6))
        let index = Tensor(name: "i", shape: [1], values: [Int64(1)])
        let minusOne = Tensor(name: "m", shape: [1], values: [Int64(-1)])
        let model = Self.model(
            [Node(opType: "Shape", inputs: ["w"], outputs: ["s"]),
             Node(opType: "Gather", inputs: ["s", "i"], outputs: ["g"]),
             Node(opType: "Concat", inputs: ["m", "g"], outputs: ["target"], attributes: [.int("axis", 0)]),
             Node(opType: "Reshape", inputs: ["x", "target"], outputs: ["y"])],
            inputs: [Self.floatInput("x", [.fixed(2), .fixed(3)])], outputs: ["y"], initializers: [weight, index, minusOne])
        let plan = try ExecutionPlan(model: model, threads: 1)
        var computed: [String] = []
        let result = try plan.run(inputs: ["x": RuntimeTensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])]) { name, _ in computed.append(name) }
        #expect(result["y"]?.shape == [2, 3])
        #expect(computed == ["x", "y"], "only the Reshape should run per batch")
    }

    @Test func tensorsConvertToAndFromTheIR() throws {
        let tensor = Tensor(name: "t", shape: [2, 2], values: [Float(1), 2, 3, 4])
        let runtime = try RuntimeTensor(tensor)
        #expect(runtime.floats == [1, 2, 3, 4])
        #expect(runtime.tensor(named: "back").values(as: Float.self) == [1, 2, 3, 4])
        // int4 is packed two per byte in the IR and one per byte in the runtime.
        let packed = Tensor(name: "q", dataType: .int4, shape: [3], storage: .bytes([UInt8(0x8F), 0x07].withUnsafeBytes { TensorBuffer(copying: $0) }))
        let unpacked = try RuntimeTensor(packed)
        #expect(unpacked.integers == [-1, -8, 7])
        #expect(unpacked.tensor(named: "q").buffer.map { Array($0.bytes) } == [0x8F, 0x07])
    }
}
