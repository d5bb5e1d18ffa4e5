import NNPipeCore
import NNPipeRuntime
import Testing

/// Fused chains (Conv with folded BatchNormalization / Mul / Add, residual Add, Relu; affine chains)
/// must give what the nodes give one by one. Observing a run turns fusion off, so each case is
/// checked against its own unfused run, and the GEMM batching against a direct convolution.
@Suite struct PlanFusionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let label: String
        let nodes: [Node]
        /// Non-constant inputs besides "x", e.g. a broadcasting residual.
        var extraInputs: [(String, [Int])] = []
        var testDescription: String { label }
    }

    static let channels = 4
    static func weights(_ name: String, _ shape: [Int], seed: UInt64, offset: Float = -0.5) -> Tensor {
        var generator = SeededGenerator(seed: seed)
        let values = (0..<shape.reduce(1, *)).map { _ in generator.nextUnit() + offset }
        return Tensor(name: name, dataType: .float, shape: shape, storage: .bytes(values.withUnsafeBytes { TensorBuffer(copying: $0) }))
    }
    static let initializers: [Tensor] = [
        weights("w", [channels, channels, 3, 3], seed: 1), weights("bias", [channels], seed: 2),
        weights("scale", [channels], seed: 3, offset: 0.5), weights("shift", [channels], seed: 4),
        weights("mean", [channels], seed: 5), weights("variance", [channels], seed: 6, offset: 0.5),
        weights("perChannel", [channels, 1, 1], seed: 7, offset: 0.5), weights("perChannel4", [1, channels, 1, 1], seed: 8),
        weights("pointwise", [channels, channels, 1, 1], seed: 9),
    ]
    static let convolution = Node(name: "conv", opType: "Conv", inputs: ["x", "w", "bias"], outputs: ["c"],
                                  attributes: [.ints("pads", [1, 1, 1, 1])])
    static func normalization(_ input: String, _ output: String) -> Node {
        Node(name: "bn_" + output, opType: "BatchNormalization", inputs: [input, "scale", "shift", "mean", "variance"], outputs: [output])
    }

    static let cases: [Case] = [
        Case(label: "Conv BN Relu", nodes: [convolution, normalization("c", "n"), Node(opType: "Relu", inputs: ["n"], outputs: ["y"])]),
        Case(label: "Conv BN Mul Add Relu", nodes: [
            convolution, normalization("c", "n"), Node(opType: "Mul", inputs: ["n", "perChannel"], outputs: ["m"]),
            Node(opType: "Add", inputs: ["perChannel4", "m"], outputs: ["a"]), Node(opType: "Relu", inputs: ["a"], outputs: ["y"])]),
        Case(label: "Conv BN Sum residual Relu", nodes: [
            convolution, normalization("c", "n"), Node(opType: "Sum", inputs: ["n", "x"], outputs: ["s"]),
            Node(opType: "Relu", inputs: ["s"], outputs: ["y"])]),
        Case(label: "Conv Add broadcasting residual (declined)", nodes: [
            convolution, Node(opType: "Add", inputs: ["c", "r"], outputs: ["a"]), Node(opType: "Relu", inputs: ["a"], outputs: ["y"])],
             extraInputs: [("r", [1, channels, 1, 1])]),
        Case(label: "BN Mul Add Relu without Conv", nodes: [
            normalization("x", "n"), Node(opType: "Mul", inputs: ["n", "perChannel"], outputs: ["m"]),
            Node(opType: "Add", inputs: ["m", "perChannel"], outputs: ["a"]), Node(opType: "Relu", inputs: ["a"], outputs: ["y"])]),
        Case(label: "BN Relu pointwise Conv (affine applied as the Conv reads its input)", nodes: [
            normalization("x", "n"), Node(opType: "Relu", inputs: ["n"], outputs: ["r"]),
            Node(name: "pointwise", opType: "Conv", inputs: ["r", "pointwise", "bias"], outputs: ["y"])]),
        Case(label: "BN Mul Add Relu pointwise Conv BN Relu", nodes: [
            normalization("x", "n"), Node(opType: "Mul", inputs: ["n", "perChannel"], outputs: ["m"]),
            Node(opType: "Add", inputs: ["m", "perChannel"], outputs: ["a"]), Node(opType: "Relu", inputs: ["a"], outputs: ["r"]),
            Node(name: "pointwise", opType: "Conv", inputs: ["r", "pointwise"], outputs: ["c"]), normalization("c", "n2"),
            Node(opType: "Relu", inputs: ["n2"], outputs: ["y"])]),
        Case(label: "BN Relu read by a pointwise Conv and an Add (Conv not fused)", nodes: [
            normalization("x", "n"), Node(opType: "Relu", inputs: ["n"], outputs: ["r"]),
            Node(name: "pointwise", opType: "Conv", inputs: ["r", "pointwise", "bias"], outputs: ["c"]),
            Node(opType: "Add", inputs: ["c", "r"], outputs: ["y"])]),
        Case(label: "Conv output also read elsewhere (not fused)", nodes: [
            convolution, normalization("c", "n"), Node(opType: "Add", inputs: ["n", "c"], outputs: ["y"])]),
    ]

    /// Shapes of "x": two images per worker; one image on every thread in row segments (17x17) or
    /// in blocks of output channels (1x1 map, fewer positions than channels).
    @Test(arguments: cases, [[2, 4, 5, 5], [1, 4, 17, 17], [1, 4, 1, 1]])
    func fusedRunsMatchUnfusedRuns(_ testCase: Case, shape: [Int]) throws {
        for threads in [1, 2] { try fusedRunMatchesUnfusedRun(testCase, shape: shape, threads: threads) }
    }

    func fusedRunMatchesUnfusedRun(_ testCase: Case, shape: [Int], threads: Int) throws {
        let inputs = [ExecutionPlanTests.floatInput("x", shape.map { .fixed($0) })]
            + testCase.extraInputs.map { ExecutionPlanTests.floatInput($0.0, $0.1.map { .fixed($0) }) }
        let model = ExecutionPlanTests.model(testCase.nodes, inputs: inputs, outputs: ["y"], initializers: Self.initializers)
        let plan = try ExecutionPlan(model: model, threads: threads)
        var feeds: [String: RuntimeTensor] = [:]
        for (index, input) in inputs.enumerated() {
            let shape = input.type.tensorShape!.compactMap(\.fixedValue)
            feeds[input.name] = try RuntimeTensor(Self.weights(input.name, shape, seed: 100 + UInt64(index)))
        }
        let fused = try #require(try plan.run(inputs: feeds)["y"])
        let unfused = try #require(try plan.run(inputs: feeds, observe: { _, _ in })["y"])
        #expect(fused.shape == unfused.shape)
        for (left, right) in zip(fused.floats, unfused.floats) { #expect(abs(left - right) <= 1e-5 * max(1, abs(right))) }
    }

    struct Batching: CustomTestStringConvertible, Sendable {
        let label: String
        let batch: Int
        let kernel: Int
        let size: Int
        let threads: Int
        var outputChannels = 5
        var testDescription: String { label }
    }

    /// Small feature maps put several images in one GEMM (and scatter the result); large batches run
    /// whole images per worker; large maps run im2col + GEMM in row segments. All against a direct convolution.
    @Test(arguments: [
        Batching(label: "3x3 on 4x4, batch 40 (tasks of 16, 16, 8 images), 2 threads", batch: 40, kernel: 3, size: 4, threads: 2),
        Batching(label: "1x1 on 4x4, batch 64 (4 tasks on 2 workers)", batch: 64, kernel: 1, size: 4, threads: 2),
        Batching(label: "1x1 on 17x17, batch 3, 1 thread", batch: 3, kernel: 1, size: 17, threads: 1),
        Batching(label: "3x3 on 17x17, batch 5 (one image per task), 2 threads", batch: 5, kernel: 3, size: 17, threads: 2),
        Batching(label: "3x3 on 150x150 (im2col in row segments), batch 2, 2 threads", batch: 2, kernel: 3, size: 150, threads: 2),
        Batching(label: "1x1 on 17x17, batch 1 (blocks of positions), 2 threads", batch: 1, kernel: 1, size: 17, threads: 2),
        Batching(label: "3x3 on 17x17, batch 1 (row segments), 2 threads", batch: 1, kernel: 3, size: 17, threads: 2),
        Batching(label: "3x3 on 5x5, 40 outputs, batch 1 (blocks of channels), 2 threads", batch: 1, kernel: 3, size: 5, threads: 2,
                 outputChannels: 40),
        Batching(label: "1x1 on 5x5, 40 outputs, batch 1 (blocks of channels), 2 threads", batch: 1, kernel: 1, size: 5, threads: 2,
                 outputChannels: 40),
    ])
    func batchedConvolutionMatchesDirectConvolution(_ batching: Batching) throws {
        let (inputChannels, outputChannels, pad) = (3, batching.outputChannels, batching.kernel / 2)
        let weights = Self.weights("w", [outputChannels, inputChannels, batching.kernel, batching.kernel], seed: 11)
        let bias = Self.weights("b", [outputChannels], seed: 12)
        let node = Node(opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"], attributes: [.ints("pads", [Int64](repeating: Int64(pad), count: 4))])
        let shape = [batching.batch, inputChannels, batching.size, batching.size]
        let model = ExecutionPlanTests.model([node], inputs: [ExecutionPlanTests.floatInput("x", shape.map { .fixed($0) })],
                                             outputs: ["y"], initializers: [weights, bias])
        let input = try RuntimeTensor(Self.weights("x", shape, seed: 13))
        let output = try #require(try ExecutionPlan(model: model, threads: batching.threads).run(input).floats)
        let (x, w, b) = (input.floats, try RuntimeTensor(weights).floats, try RuntimeTensor(bias).floats)
        let size = batching.size, kernel = batching.kernel
        #expect(output.count == batching.batch * outputChannels * size * size)
        var worst: Float = 0
        for image in 0..<batching.batch {
            for out in 0..<outputChannels {
                for row in 0..<size {
                    for column in 0..<size {
                        var total = b[out]
                        for channel in 0..<inputChannels {
                            for kh in 0..<kernel {
                                for kw in 0..<kernel {
                                    let (ih, iw) = (row + kh - pad, column + kw - pad)
                                    guard ih >= 0, ih < size, iw >= 0, iw < size else { continue }
                                    total += x[((image * inputChannels + channel) * size + ih) * size + iw]
                                        * w[((out * inputChannels + channel) * kernel + kh) * kernel + kw]
                                }
                            }
                        }
                        let index = ((image * outputChannels + out) * size + row) * size + column
                        worst = max(worst, abs(output[index] - total))
                    }
                }
            }
        }
        #expect(worst < 1e-5)
    }
}
