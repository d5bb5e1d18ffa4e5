import NNPipeCore
@testable import NNPipeRuntime
import Testing

/// The direct convolution (CNNPipeKernels' DirectConvolution.c, AVX-512): whole Conv nodes run by
/// the plan must equal, bit for bit, the packed product (itself checked against a Double reference
/// in PackedFilterTests) on an im2col matrix built here: both seed each output with its bias and
/// add the taps in the same order with one fused multiply-add each, then the residual, then Relu.
@Suite(.enabled(if: DirectFilter.isAvailable, "the direct convolution needs AVX-512"))
struct DirectConvolutionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        /// N, C, spatial (one or two axes).
        let input: [Int]
        /// O, C, kernel (one or two axes).
        let weights: [Int]
        /// Begin pads, then end pads, per spatial axis.
        var pads: [Int] = [1, 1, 1, 1]
        var stride = 1
        var dilation = 1
        var residual = false
        var relu = true
        var threads = 2
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "3 channels, 3x3 stride 2 (SqueezeNet's first layer)", input: [1, 3, 35, 35], weights: [64, 3, 3, 3], pads: [0, 0, 0, 0],
             stride: 2),
        Case(label: "16 channels on 13x13, rows running on into each other", input: [1, 16, 13, 13], weights: [20, 16, 3, 3]),
        Case(label: "7x7 stride 2 pads 3 (ResNet's stem), batch 3: whole images per task", input: [3, 3, 40, 38], weights: [8, 3, 7, 7],
             pads: [3, 3, 3, 3], stride: 2),
        Case(label: "asymmetric pads (0, 2) top-left, (1, 0) bottom-right", input: [1, 5, 9, 11], weights: [9, 5, 3, 3], pads: [0, 2, 1, 0]),
        Case(label: "dilation 2, stride 2", input: [1, 4, 21, 20], weights: [11, 4, 3, 3], pads: [2, 2, 2, 2], stride: 2, dilation: 2),
        Case(label: "1-D, kernel 3, batch 2", input: [2, 6, 50], weights: [10, 6, 3], pads: [1, 1]),
        Case(label: "residual and Relu", input: [1, 8, 10, 10], weights: [8, 8, 3, 3], residual: true),
        Case(label: "residual, no Relu, odd outputs", input: [2, 7, 6, 17], weights: [13, 7, 3, 3], residual: true, relu: false),
        Case(label: "pads as wide as the kernel", input: [1, 2, 5, 5], weights: [3, 2, 3, 3], pads: [2, 2, 2, 2]),
        Case(label: "5x5 stride 3", input: [1, 4, 30, 31], weights: [17, 4, 5, 5], pads: [2, 2, 2, 2], stride: 3),
        Case(label: "64 channels (576 taps), stride 2 on 55x55, one thread", input: [1, 64, 55, 55], weights: [16, 64, 3, 3], stride: 2,
             threads: 1),
        Case(label: "2x2 stride 2, no padding, map of 1 column", input: [1, 3, 8, 2], weights: [5, 3, 2, 2], pads: [0, 0, 0, 0], stride: 2),
        Case(label: "stride 2, 96 channels (864 taps, past the stride-1 limit)", input: [1, 96, 15, 15], weights: [40, 96, 3, 3], stride: 2),
        Case(label: "pointwise, 512 channels to 20 on 13x13 (planes read in place, last tile masked), residual", input: [1, 512, 13, 13],
             weights: [20, 512, 1, 1], pads: [0, 0, 0, 0], residual: true),
        Case(label: "pointwise, 16 to 64 channels on 55x55", input: [1, 16, 55, 55], weights: [64, 16, 1, 1], pads: [0, 0, 0, 0]),
        Case(label: "pointwise 1-D, 9 channels, 130 positions", input: [1, 9, 130], weights: [11, 9, 1], pads: [0, 0], relu: false),
    ]

    @Test(arguments: cases)
    func directEqualsThePackedProductOnIm2col(_ testCase: Case) throws {
        let spatial = testCase.input.count - 2
        let geometry = try SpatialGeometry(inputShape: Array(testCase.input[2...]), kernelShape: Array(testCase.weights[2...]),
                                           attributes: .init(kernelShape: nil, strides: [Int](repeating: testCase.stride, count: spatial),
                                                             dilations: [Int](repeating: testCase.dilation, count: spatial),
                                                             pads: testCase.pads, autoPad: "NOTSET", ceilMode: false))
        #expect(ConvolutionKernels.usesDirect(geometry: geometry, group: 1, channels: testCase.input[1], outputChannels: testCase.weights[0],
                                              batch: testCase.input[0]), "this conv should take the direct path")
        let outputShape = [testCase.input[0], testCase.weights[0]] + geometry.outputSpatialShape
        let weights = PlanFusionTests.weights("w", testCase.weights, seed: 51)
        let bias = PlanFusionTests.weights("b", [testCase.weights[0]], seed: 52)
        let input = try RuntimeTensor(PlanFusionTests.weights("x", testCase.input, seed: 53))
        let residual = try RuntimeTensor(PlanFusionTests.weights("r", outputShape, seed: 54))
        let axes = { (values: [Int]) in values.map(Int64.init) }
        var nodes = [Node(opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"], attributes: [
            .ints("pads", axes(testCase.pads)), .ints("strides", axes([Int](repeating: testCase.stride, count: spatial))),
            .ints("dilations", axes([Int](repeating: testCase.dilation, count: spatial)))])]
        var last = "c"
        if testCase.residual {
            nodes.append(Node(opType: "Add", inputs: [last, "r"], outputs: ["s"]))
            last = "s"
        }
        if testCase.relu {
            nodes.append(Node(opType: "Relu", inputs: [last], outputs: ["y"]))
            last = "y"
        }
        var inputs = [ExecutionPlanTests.floatInput("x", testCase.input.map { .fixed($0) })]
        if testCase.residual { inputs.append(ExecutionPlanTests.floatInput("r", outputShape.map { .fixed($0) })) }
        let model = ExecutionPlanTests.model(nodes, inputs: inputs, outputs: [last], initializers: [weights, bias])
        var feeds = ["x": input]
        if testCase.residual { feeds["r"] = residual }
        let output = try #require(try ExecutionPlan(model: model, threads: testCase.threads).run(inputs: feeds)[last])
        #expect(output.shape == outputShape)
        let expected = try Self.packedOnIm2col(input: input, weights: RuntimeTensor(weights), bias: RuntimeTensor(bias),
                                               residual: testCase.residual ? residual : nil, relu: testCase.relu, geometry: geometry)
        let got = output.floats
        let mismatches = zip(got, expected).filter { $0.bitPattern != $1.bitPattern }.count
        let worst = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
        #expect(mismatches == 0, "\(mismatches) of \(got.count) outputs differ, by up to \(worst)")
    }

    /// Two convs written straight into their Concat's output (SqueezeNet's expands): each lands
    /// at its channel offset.
    @Test func writesIntoAConcat() throws {
        let shape = [1, 16, 13, 13]
        let nodes = [
            Node(opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"], attributes: [.ints("pads", [1, 1, 1, 1])]),
            Node(opType: "Conv", inputs: ["x", "w2", "b2"], outputs: ["c2"], attributes: [.ints("pads", [1, 1, 1, 1])]),
            Node(opType: "Concat", inputs: ["c1", "c2"], outputs: ["y"], attributes: [.int("axis", 1)]),
        ]
        let initializers = [PlanFusionTests.weights("w1", [24, 16, 3, 3], seed: 61), PlanFusionTests.weights("b1", [24], seed: 62),
                            PlanFusionTests.weights("w2", [12, 16, 3, 3], seed: 63), PlanFusionTests.weights("b2", [12], seed: 64)]
        let model = ExecutionPlanTests.model(nodes, inputs: [ExecutionPlanTests.floatInput("x", shape.map { .fixed($0) })], outputs: ["y"],
                                             initializers: initializers)
        let input = try RuntimeTensor(PlanFusionTests.weights("x", shape, seed: 65))
        let output = try #require(try ExecutionPlan(model: model, threads: 2).run(inputs: ["x": input])["y"])
        let geometry = try SpatialGeometry(inputShape: [13, 13], kernelShape: [3, 3],
                                           attributes: .init(kernelShape: nil, strides: nil, dilations: nil, pads: [1, 1, 1, 1], autoPad: "NOTSET",
                                                             ceilMode: false))
        let first = try Self.packedOnIm2col(input: input, weights: RuntimeTensor(initializers[0]), bias: RuntimeTensor(initializers[1]),
                                            residual: nil, relu: false, geometry: geometry)
        let second = try Self.packedOnIm2col(input: input, weights: RuntimeTensor(initializers[2]), bias: RuntimeTensor(initializers[3]),
                                             residual: nil, relu: false, geometry: geometry)
        #expect(output.shape == [1, 36, 13, 13])
        #expect(output.floats.map(\.bitPattern) == (first + second).map(\.bitPattern))
    }

    /// The conv as im2col (written here, channel-major taps) and the packed product, image by image.
    static func packedOnIm2col(input: RuntimeTensor, weights: RuntimeTensor, bias: RuntimeTensor, residual: RuntimeTensor?, relu: Bool,
                               geometry g: SpatialGeometry) -> [Float] {
        let (batch, channels, outputs) = (input.shape[0], input.shape[1], weights.shape[0])
        let depth = channels * g.kernelSize, positions = g.outputSize
        let x = input.floats, filter = weights.floats, shifts = bias.floats, addend = residual?.floats
        let packed = filter.withUnsafeBufferPointer { PackedFilter($0.baseAddress!, rows: outputs, depth: depth) }
        var result = [Float](repeating: 0, count: batch * outputs * positions)
        for image in 0..<batch {
            var columns = [Float](repeating: 0, count: depth * positions)
            for channel in 0..<channels {
                for kh in 0..<g.kernel[1] {
                    for kw in 0..<g.kernel[2] {
                        let row = (channel * g.kernel[1] + kh) * g.kernel[2] + kw
                        for oh in 0..<g.output[1] {
                            for ow in 0..<g.output[2] {
                                let ih = oh * g.strides[1] - g.padBegin[1] + kh * g.dilations[1]
                                let iw = ow * g.strides[2] - g.padBegin[2] + kw * g.dilations[2]
                                guard ih >= 0, ih < g.input[1], iw >= 0, iw < g.input[2] else { continue }
                                columns[row * positions + oh * g.output[2] + ow] = x[((image * channels + channel) * g.input[1] + ih) * g.input[2] + iw]
                            }
                        }
                    }
                }
            }
            let offset = image * outputs * positions
            columns.withUnsafeBufferPointer { columns in
                shifts.withUnsafeBufferPointer { shifts in
                    result.withUnsafeMutableBufferPointer { output in
                        func run(_ residual: UnsafePointer<Float>?) {
                            packed.multiply(channels: 0..<outputs, columns: columns.baseAddress!, columnStride: positions, width: positions,
                                            into: output.baseAddress! + offset, outputStride: positions, bias: shifts.baseAddress!,
                                            residual: residual, residualStride: positions, relu: relu)
                        }
                        guard let addend else { return run(nil) }
                        addend.withUnsafeBufferPointer { run($0.baseAddress! + offset) }
                    }
                }
            }
        }
        return result
    }
}
