import NNPipeCore
@testable import NNPipeRuntime
import Testing

/// Convs writing straight into a Concat's output (`ConcatInPlace`) must give what the copying
/// Concat gives. An observed run neither fuses nor writes in place, so each case is checked
/// against its own observed run, and the plan must decline where writing in place would be wrong.
@Suite struct ConcatInPlaceTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let nodes: [Node]
        var outputs = ["y"]
        /// Whether the plan writes the Concat in place.
        let inPlace: Bool
        var testDescription: String { label }
    }

    static let channels = 4
    static let initializers: [Tensor] = [
        PlanFusionTests.weights("squeeze", [channels, channels, 1, 1], seed: 21), PlanFusionTests.weights("squeezeBias", [channels], seed: 22),
        PlanFusionTests.weights("expand", [3, channels, 3, 3], seed: 23), PlanFusionTests.weights("expandBias", [3], seed: 24),
        PlanFusionTests.weights("wide", [40, channels, 3, 3], seed: 25),
    ]
    static func convolution(_ input: String, _ weights: String, _ bias: String?, _ output: String, pads: Int64 = 0) -> Node {
        Node(name: "conv_" + output, opType: "Conv", inputs: [input, weights] + (bias.map { [$0] } ?? []), outputs: [output],
             attributes: [.ints("pads", [pads, pads, pads, pads])])
    }
    static func relu(_ input: String, _ output: String) -> Node { Node(opType: "Relu", inputs: [input], outputs: [output]) }
    static func concat(_ inputs: [String], axis: Int64, output: String = "y") -> Node {
        Node(name: "concat", opType: "Concat", inputs: inputs, outputs: [output], attributes: [.int("axis", axis)])
    }
    /// SqueezeNet's fire module: 1x1 and 3x3 expansions of one input, each with Relu, concatenated.
    static let fire = [convolution("x", "squeeze", "squeezeBias", "a"), relu("a", "ra"),
                       convolution("x", "expand", "expandBias", "b", pads: 1), relu("b", "rb")]

    static let cases: [Case] = [
        Case(label: "fire module, axis 1", nodes: fire + [concat(["ra", "rb"], axis: 1)], inPlace: true),
        Case(label: "fire module, axis -3", nodes: fire + [concat(["rb", "ra"], axis: -3)], inPlace: true),
        Case(label: "plain Convs without Relu or bias", nodes: [
            convolution("x", "squeeze", nil, "a"), convolution("x", "expand", nil, "b", pads: 1), concat(["a", "b"], axis: 1)], inPlace: true),
        Case(label: "more output channels than positions (GEMM split along channels)", nodes: [
            convolution("x", "wide", nil, "a", pads: 1), relu("a", "ra"), convolution("x", "squeeze", "squeezeBias", "b"),
            concat(["ra", "b"], axis: 1)], inPlace: true),
        Case(label: "residual that broadcasts: that Conv declines and is copied in", nodes: [
            Node(opType: "ReduceMean", inputs: ["x"], outputs: ["r"], attributes: [.ints("axes", [2, 3]), .int("keepdims", 1)]),
            convolution("x", "squeeze", "squeezeBias", "a"), Node(opType: "Add", inputs: ["a", "r"], outputs: ["s"]), relu("s", "rs"),
            convolution("x", "expand", "expandBias", "b", pads: 1), relu("b", "rb"),
            concat(["rs", "rb"], axis: 1)], inPlace: true),
        Case(label: "input also a graph output (copied)", nodes: fire + [concat(["ra", "rb"], axis: 1)], outputs: ["y", "ra"],
             inPlace: false),
        Case(label: "input also read by another node (copied)", nodes: fire + [
            concat(["ra", "rb"], axis: 1, output: "c"), Node(opType: "Add", inputs: ["c", "c"], outputs: ["d"]),
            Node(opType: "ReduceSum", inputs: ["rb"], outputs: ["e"], attributes: [.int("keepdims", 1)]),
            Node(opType: "Add", inputs: ["d", "e"], outputs: ["y"])], inPlace: false),
        Case(label: "input not made by a Conv (copied)", nodes: fire + [concat(["ra", "x"], axis: 1)], inPlace: false),
        Case(label: "same input twice (copied)", nodes: fire + [concat(["ra", "ra"], axis: 1)], inPlace: false),
        Case(label: "axis 2 (copied)", nodes: [convolution("x", "squeeze", nil, "a"), convolution("x", "squeeze", "squeezeBias", "b"),
                                                concat(["a", "b"], axis: 2)], inPlace: false),
    ]

    /// Batch 1 on 2 threads takes the blocked single-image paths (3x3 maps: blocks of channels
    /// for the 40-channel Conv); batch 3 whole images per worker; 2x2 maps put several images in
    /// one GEMM (staging); 40x40 runs im2col in row segments.
    @Test(arguments: cases, [[1, 4, 9, 9], [1, 4, 3, 3], [3, 4, 9, 9], [5, 4, 2, 2], [1, 4, 40, 40]])
    func matchesTheCopyingConcat(_ testCase: Case, shape: [Int]) throws {
        let model = ExecutionPlanTests.model(testCase.nodes, inputs: [ExecutionPlanTests.floatInput("x", shape.map { .fixed($0) })],
                                             outputs: testCase.outputs, initializers: Self.initializers)
        let input = try RuntimeTensor(PlanFusionTests.weights("x", shape, seed: 31))
        for threads in [1, 2] {
            let plan = try ExecutionPlan(model: model, threads: threads)
            #expect(!plan.concatsInPlace.isEmpty == testCase.inPlace)
            // Twice: the second run reuses pooled memory the first released.
            for _ in 0..<2 {
                let fast = try plan.run(inputs: ["x": input])
                let copied = try plan.run(inputs: ["x": input], observe: { _, _ in })
                for name in testCase.outputs {
                    let left = try #require(fast[name]), right = try #require(copied[name])
                    #expect(left.shape == right.shape)
                    for (a, b) in zip(left.floats, right.floats) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
                }
            }
        }
    }

    /// Asking for a Concat input by name turns writing in place off for that run.
    @Test func requestedInputIsMade() throws {
        let shape = [2, 4, 9, 9]
        let model = ExecutionPlanTests.model(Self.fire + [Self.concat(["ra", "rb"], axis: 1)],
                                             inputs: [ExecutionPlanTests.floatInput("x", shape.map { .fixed($0) })], outputs: ["y"],
                                             initializers: Self.initializers)
        let plan = try ExecutionPlan(model: model, threads: 2)
        let input = try RuntimeTensor(PlanFusionTests.weights("x", shape, seed: 32))
        let both = try plan.run(inputs: ["x": input], outputs: ["y", "rb"])
        let y = try #require(both["y"]), rb = try #require(both["rb"])
        #expect(rb.shape == [2, 3, 9, 9])
        // rb is channels 4..<7 of each image of y.
        let (whole, part) = (y.floats, rb.floats)
        for image in 0..<2 {
            for index in 0..<(3 * 81) {
                #expect(whole[image * 7 * 81 + 4 * 81 + index] == part[image * 3 * 81 + index])
            }
        }
    }
}
