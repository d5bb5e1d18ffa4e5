import NNPipeCore
@testable import NNPipeRuntime
import Testing

/// 3x3 stride-1 convs with constant weights run by Winograd F(2x2, 3x3) where the CPU has AVX2;
/// each must give what the same conv with its weights fed at run time gives (never packed, so
/// im2col + OpenBLAS): over odd and even maps (a last tile half outside), tile rows that are not
/// a multiple of eight, asymmetric and no padding, batches, one and two threads, channel counts
/// off the product's panels, the fused residual and Concat placement, and both ways of sharing
/// the work (per-image steps for small maps; segments of tile rows, or whole images, otherwise).
@Suite struct WinogradTests {
    struct Convolution: CustomTestStringConvertible, Sendable {
        let label: String
        let input: [Int]
        let outputs: Int
        var pads: [Int64] = [1, 1, 1, 1]
        var threads = 2
        /// Conv -> Add(r) -> Relu, the Add fused as the conv's residual.
        var residual = false
        /// Conv -> Relu -> Concat with another input: the conv writes into the Concat's output.
        var concatenated = false
        var testDescription: String { label }
    }

    @Test(arguments: [
        Convolution(label: "13x13, 16 -> 24 (one tile group, odd map)", input: [1, 16, 13, 13], outputs: 24),
        Convolution(label: "56x56, 32 -> 16 (tile rows of 28)", input: [1, 32, 56, 56], outputs: 16),
        Convolution(label: "10x9, no padding (output 8x7)", input: [1, 16, 10, 9], outputs: 20, pads: [0, 0, 0, 0]),
        Convolution(label: "asymmetric pads", input: [1, 17, 12, 15], outputs: 19, pads: [1, 0, 0, 2]),
        Convolution(label: "batch 3, 7x7", input: [3, 20, 7, 7], outputs: 33),
        Convolution(label: "one thread, 27x27", input: [1, 16, 27, 27], outputs: 16, threads: 1),
        Convolution(label: "fused residual", input: [2, 16, 14, 14], outputs: 16, residual: true),
        Convolution(label: "into a Concat", input: [1, 16, 11, 11], outputs: 22, concatenated: true),
        Convolution(label: "segments of tile rows, 66x61 (last segment short)", input: [1, 16, 66, 61], outputs: 24),
        Convolution(label: "segments of whole images, batch 4", input: [4, 16, 9, 9], outputs: 18),
        Convolution(label: "segments with a residual, batch 2 on 30x30", input: [2, 24, 30, 30], outputs: 16, residual: true),
        Convolution(label: "segments into a Concat, 60x60", input: [1, 16, 60, 60], outputs: 20, concatenated: true),
    ])
    func winogradMatchesIm2col(_ convolution: Convolution) throws {
        let (channels, height, width) = (convolution.input[1], convolution.input[2], convolution.input[3])
        let weightShape = [convolution.outputs, channels, 3, 3]
        let weights = PlanFusionTests.weights("w", weightShape, seed: 51)
        let bias = PlanFusionTests.weights("b", [convolution.outputs], seed: 52)
        let pads: [Int] = convolution.pads.map { Int($0) }
        let outputHeight = height + pads[0] + pads[2] - 2
        let outputWidth = width + pads[1] + pads[3] - 2
        let outputShape: [Int] = [convolution.input[0], convolution.outputs, outputHeight, outputWidth]
        var nodes = [Node(opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"], attributes: [.ints("pads", convolution.pads)])]
        var inputs = [ExecutionPlanTests.floatInput("x", convolution.input.map { .fixed($0) })]
        var feeds = ["x": try RuntimeTensor(PlanFusionTests.weights("x", convolution.input, seed: 53))]
        if convolution.residual {
            nodes.append(Node(opType: "Add", inputs: ["c", "r"], outputs: ["s"]))
            nodes.append(Node(opType: "Relu", inputs: ["s"], outputs: ["y"]))
            inputs.append(ExecutionPlanTests.floatInput("r", outputShape.map { NNPipeCore.Dimension.fixed($0) }))
            feeds["r"] = try RuntimeTensor(PlanFusionTests.weights("r", outputShape, seed: 54))
        } else if convolution.concatenated {
            var other = outputShape
            other[1] = 5
            nodes.append(Node(opType: "Relu", inputs: ["c"], outputs: ["a"]))
            nodes.append(Node(opType: "Concat", inputs: ["z", "a"], outputs: ["y"], attributes: [.int("axis", 1)]))
            inputs.append(ExecutionPlanTests.floatInput("z", other.map { NNPipeCore.Dimension.fixed($0) }))
            feeds["z"] = try RuntimeTensor(PlanFusionTests.weights("z", other, seed: 55))
        } else {
            nodes.append(Node(opType: "Relu", inputs: ["c"], outputs: ["y"]))
        }
        let geometry = try SpatialGeometry(inputShape: [height, width], kernelShape: [3, 3],
                                           attributes: .init(kernelShape: [3, 3], strides: nil, dilations: nil, pads: pads, autoPad: "NOTSET",
                                                             ceilMode: false))
        #expect(ConvolutionKernels.usesWinograd(geometry: geometry, group: 1, channels: channels, outputChannels: convolution.outputs)
                == WinogradFilter.isAvailable)
        let constant = ExecutionPlanTests.model(nodes, inputs: inputs, outputs: ["y"], initializers: [weights, bias])
        // The same graph with "w" a graph input: fed at run time, never packed.
        let fed = ExecutionPlanTests.model(nodes, inputs: inputs + [ExecutionPlanTests.floatInput("w", weightShape.map { .fixed($0) })],
                                           outputs: ["y"], initializers: [bias])
        let result = try #require(try ExecutionPlan(model: constant, threads: convolution.threads).run(inputs: feeds)["y"])
        feeds["w"] = try RuntimeTensor(weights)
        let reference = try #require(try ExecutionPlan(model: fed, threads: convolution.threads).run(inputs: feeds)["y"])
        #expect(result.shape == reference.shape)
        let worst = zip(result.floats, reference.floats).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst < 1e-5, "worst relative difference \(worst)")
    }

    @Test("convs that stay with im2col", arguments: [
        ("strided", [2, 2], [1, 1], 16, 16, 1),
        ("dilated", [1, 1], [2, 2], 16, 16, 1),
        ("3 input channels (a first layer)", [1, 1], [1, 1], 3, 16, 1),
        ("grouped", [1, 1], [1, 1], 32, 32, 2),
    ])
    func otherConvolutionsStay(label: String, strides: [Int], dilations: [Int], channels: Int, outputs: Int, group: Int) throws {
        let geometry = try SpatialGeometry(inputShape: [20, 20], kernelShape: [3, 3],
                                           attributes: .init(kernelShape: [3, 3], strides: strides, dilations: dilations, pads: [1, 1, 1, 1],
                                                             autoPad: "NOTSET", ceilMode: false))
        #expect(!ConvolutionKernels.usesWinograd(geometry: geometry, group: group, channels: channels, outputChannels: outputs), "\(label)")
    }
}
