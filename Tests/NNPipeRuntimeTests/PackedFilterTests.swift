import NNPipeCore
@testable import NNPipeRuntime
import Testing

/// The runtime's own conv product (CNNPipeKernels through `PackedFilter`): against a Double
/// reference on shapes that hit every edge of its blocking, and in whole convs against the same
/// convs with their weights fed at run time (which are never packed, so OpenBLAS computes them).
@Suite(.enabled(if: PackedFilter.isAvailable, "the packed product needs AVX2 and FMA"))
struct PackedFilterTests {
    struct Product: CustomTestStringConvertible, Sendable {
        let label: String
        let rows: Int
        let depth: Int
        let width: Int
        var channels: Range<Int>? = nil
        var bias = true
        var residual = false
        var relu = false
        /// Extra elements at the end of each row of the columns, output and residual.
        var padding = 0
        var testDescription: String { label }
    }

    static let products: [Product] = [
        Product(label: "one full tile", rows: 6, depth: 8, width: 16),
        Product(label: "a single value", rows: 1, depth: 1, width: 1, bias: false),
        Product(label: "7 rows (tail of 1), 17 columns (tail of 1)", rows: 7, depth: 13, width: 17),
        Product(label: "32 rows (tail of 2), 49 columns (7x7 map)", rows: 32, depth: 1152, width: 49, residual: true, relu: true),
        Product(label: "61 rows, depth 300 (two depth blocks), 300 columns (two width blocks)", rows: 61, depth: 300, width: 300,
                residual: true, relu: true, padding: 5),
        Product(label: "depth 600 (three blocks), no bias", rows: 16, depth: 600, width: 40, bias: false, relu: true),
        Product(label: "channels 6..<16 of 20 (a block), padded rows", rows: 20, depth: 27, width: 33, channels: 6..<16, residual: true,
                relu: true, padding: 3),
        Product(label: "channels 12..<13 of 13", rows: 13, depth: 9, width: 8, channels: 12..<13, residual: true),
    ]

    @Test(arguments: products)
    func productMatchesDoubleReference(_ product: Product) {
        var generator = SeededGenerator(seed: UInt64(product.rows * 1000 + product.depth))
        func values(_ count: Int) -> [Float] { (0..<count).map { _ in generator.nextUnit() * 2 - 1 } }
        let channels = product.channels ?? 0..<product.rows
        let stride = product.width + product.padding
        let filter = values(product.rows * product.depth)
        let columns = values(product.depth * stride)
        let bias = values(product.rows)
        let residual = values(channels.count * stride)
        let sentinel: Float = 12345
        let packed = filter.withUnsafeBufferPointer { PackedFilter($0.baseAddress!, rows: product.rows, depth: product.depth) }
        func multiply(avx2Only: Bool) -> [Float] {
            var output = [Float](repeating: sentinel, count: channels.count * stride)
            columns.withUnsafeBufferPointer { columns in
                bias.withUnsafeBufferPointer { bias in
                    residual.withUnsafeBufferPointer { residual in
                        output.withUnsafeMutableBufferPointer { output in
                            packed.multiply(channels: channels, columns: columns.baseAddress!, columnStride: stride, width: product.width,
                                            into: output.baseAddress!, outputStride: stride, bias: product.bias ? bias.baseAddress! : nil,
                                            residual: product.residual ? residual.baseAddress! : nil, residualStride: stride,
                                            relu: product.relu, avx2Only: avx2Only)
                        }
                    }
                }
            }
            return output
        }
        let output = multiply(avx2Only: false)
        var worst = 0.0
        for (row, channel) in channels.enumerated() {
            for column in 0..<stride {
                let got = output[row * stride + column]
                guard column < product.width else {
                    #expect(got == sentinel, "padding at row \(row) column \(column) was written")
                    continue
                }
                var expected = product.bias ? Double(bias[channel]) : 0
                var magnitude = abs(expected)
                for inner in 0..<product.depth {
                    let term = Double(filter[channel * product.depth + inner]) * Double(columns[inner * stride + column])
                    expected += term
                    magnitude += abs(term)
                }
                if product.residual { expected += Double(residual[row * stride + column]) }
                if product.relu { expected = max(expected, 0) }
                worst = max(worst, abs(Double(got) - expected) / (magnitude + 1))
            }
        }
        #expect(worst < 1e-6, "worst error relative to the sum of magnitudes: \(worst)")

        // Where the AVX-512 tiles ran, the AVX2 ones must give every output bit for bit: the same
        // fused multiply-adds in the same order, only more columns at a time.
        guard PackedFilter.usesAVX512 else { return }
        #expect(multiply(avx2Only: true).map(\.bitPattern) == output.map(\.bitPattern), "the AVX2 and AVX-512 tiles differ")
    }

    /// Relu keeps NaN as the runtime's Relu does (and as the OpenBLAS path's epilogue did).
    @Test func reluKeepsNaN() {
        let filter: [Float] = [1, 0, 0, 1]
        let columns: [Float] = [.nan, -0.0, -2, 3] + [Float](repeating: 0, count: 12) + [0, 0, 0, 0] + [Float](repeating: 0, count: 12)
        var output = [Float](repeating: 7, count: 32)
        let packed = filter.withUnsafeBufferPointer { PackedFilter($0.baseAddress!, rows: 2, depth: 2) }
        columns.withUnsafeBufferPointer { columns in
            output.withUnsafeMutableBufferPointer { output in
                packed.multiply(channels: 0..<2, columns: columns.baseAddress!, columnStride: 16, width: 16, into: output.baseAddress!,
                                outputStride: 16, bias: nil, residual: nil, residualStride: 0, relu: true)
            }
        }
        #expect(output[0].isNaN)
        #expect(output[1] == 0)
        #expect(output[2] == 0 && output[2].sign == .plus)
        #expect(output[3] == 3)
    }

    /// Only plan constants are packed: a weight fed at run time could change between runs.
    @Test func onlyPlanConstantsArePacked() {
        let weights = RuntimeTensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let cache = PackedFilterCache()
        #expect(cache.filter(for: weights, rows: 2, depth: 3) == nil)
        weights.storage.isPlanConstant = true
        let packed = cache.filter(for: weights, rows: 2, depth: 3)
        #expect(packed != nil)
        #expect(cache.filter(for: weights, rows: 2, depth: 3) === packed, "the same constant is packed once")
    }

    struct Convolution: CustomTestStringConvertible, Sendable {
        let label: String
        let input: [Int]
        let weights: [Int]
        var group = 1
        var pads = 1
        var stride = 1
        var dilation = 1
        var threads = 2
        var testDescription: String { label }
    }

    /// Every way a conv reaches the product, and grouped convs whose groups do and do not start on
    /// a panel (12 and 4 outputs per group).
    @Test(arguments: [
        Convolution(label: "batch 1, 3x3, row segments", input: [1, 5, 30, 30], weights: [16, 5, 3, 3]),
        Convolution(label: "batch 1, 1x1, blocks of positions", input: [1, 8, 20, 20], weights: [13, 8, 1, 1], pads: 0),
        Convolution(label: "batch 1, 3x3 on 4x4, blocks of channels", input: [1, 8, 4, 4], weights: [40, 8, 3, 3]),
        Convolution(label: "batch 4, whole images per worker", input: [4, 3, 17, 17], weights: [7, 3, 3, 3]),
        Convolution(label: "batch 40 on 4x4, several images per product", input: [40, 3, 4, 4], weights: [5, 3, 3, 3]),
        Convolution(label: "group 2, 12 outputs per group", input: [2, 6, 9, 9], weights: [24, 3, 3, 3], group: 2),
        Convolution(label: "group 2, 4 outputs per group (second group not on a panel)", input: [2, 6, 9, 9], weights: [8, 3, 3, 3], group: 2),
        Convolution(label: "one thread, batch 1", input: [1, 4, 11, 11], weights: [9, 4, 3, 3], threads: 1),
        Convolution(label: "row segments, stride 2", input: [1, 16, 161, 160], weights: [20, 16, 3, 3], stride: 2),
        Convolution(label: "row segments, dilation 2, pads 2", input: [1, 8, 100, 99], weights: [7, 8, 3, 3], pads: 2,
                    dilation: 2),
        Convolution(label: "row segments, 7x7 stride 2 (a stem), batch 2", input: [2, 3, 120, 120], weights: [13, 3, 7, 7], pads: 3,
                    stride: 2),
        Convolution(label: "batch 1, dilation 2 on 9x9, three depth blocks: blocks of channels sharing packed columns", input: [1, 80, 9, 9],
                    weights: [100, 80, 3, 3], pads: 2, dilation: 2),
        Convolution(label: "batch 1, 5x5 on 20x15, two width blocks: blocks of channels sharing packed columns", input: [1, 30, 20, 15],
                    weights: [320, 30, 5, 5], pads: 2),
    ])
    func packedConvolutionMatchesOpenBLAS(_ convolution: Convolution) throws {
        let bias = PlanFusionTests.weights("b", [convolution.weights[0]], seed: 32)
        let weights = PlanFusionTests.weights("w", convolution.weights, seed: 31)
        let pads = [Int64](repeating: Int64(convolution.pads), count: 4)
        let node = Node(opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"], attributes: [
            .ints("pads", pads), .int("group", Int64(convolution.group)), .ints("strides", [Int64(convolution.stride), Int64(convolution.stride)]),
            .ints("dilations", [Int64(convolution.dilation), Int64(convolution.dilation)])])
        let relu = Node(opType: "Relu", inputs: ["c"], outputs: ["y"])
        let x = ExecutionPlanTests.floatInput("x", convolution.input.map { .fixed($0) })
        let constant = ExecutionPlanTests.model([node, relu], inputs: [x], outputs: ["y"], initializers: [weights, bias])
        // The same graph with "w" a graph input: fed at run time, never packed.
        let fed = ExecutionPlanTests.model([node, relu], inputs: [x, ExecutionPlanTests.floatInput("w", convolution.weights.map { .fixed($0) })],
                                           outputs: ["y"], initializers: [bias])
        let feeds = ["x": try RuntimeTensor(PlanFusionTests.weights("x", convolution.input, seed: 33)), "w": try RuntimeTensor(weights)]
        let packed = try #require(try ExecutionPlan(model: constant, threads: convolution.threads).run(inputs: ["x": feeds["x"]!])["y"])
        let reference = try #require(try ExecutionPlan(model: fed, threads: convolution.threads).run(inputs: feeds)["y"])
        #expect(packed.shape == reference.shape)
        let worst = zip(packed.floats, reference.floats).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst < 1e-5, "worst relative difference \(worst)")
    }

    /// DenseNet's BatchNormalization -> Relu -> 1x1 Conv runs as one chain whose Conv applies the
    /// affine while packing its input (batch 1, 2 threads: blocks of positions; 1 thread: one
    /// block; a 7x7 map with more channels than positions: blocks of channels), and gives what
    /// the nodes give one by one.
    @Test(arguments: [([1, 16, 20, 20], 2), ([1, 16, 20, 20], 1), ([1, 16, 7, 7], 2)])
    func normalizationReluPointwiseConvolutionFuses(shape: [Int], threads: Int) throws {
        let channels = shape[1], outputs = 64
        let parameters = [("scale", 0.5), ("shift", -0.5), ("mean", -0.5), ("variance", 0.5)].enumerated().map { index, item in
            PlanFusionTests.weights(item.0, [channels], seed: 40 + UInt64(index), offset: Float(item.1))
        }
        let nodes = [
            Node(name: "bn", opType: "BatchNormalization", inputs: ["x", "scale", "shift", "mean", "variance"], outputs: ["n"]),
            Node(opType: "Relu", inputs: ["n"], outputs: ["r"]),
            Node(name: "pointwise", opType: "Conv", inputs: ["r", "w", "b"], outputs: ["y"]),
        ]
        let model = ExecutionPlanTests.model(nodes, inputs: [ExecutionPlanTests.floatInput("x", shape.map { .fixed($0) })], outputs: ["y"],
                                             initializers: parameters + [PlanFusionTests.weights("w", [outputs, channels, 1, 1], seed: 45),
                                                                         PlanFusionTests.weights("b", [outputs], seed: 46)])
        let plan = try ExecutionPlan(model: model, threads: threads)
        #expect(plan.chains.values.map(\.steps.count) == [3], "one chain of BatchNormalization, Relu and Conv")
        let feeds = ["x": try RuntimeTensor(PlanFusionTests.weights("x", shape, seed: 47))]
        let fused = try #require(try plan.run(inputs: feeds)["y"])
        let unfused = try #require(try plan.run(inputs: feeds, observe: { _, _ in })["y"])
        let worst = zip(fused.floats, unfused.floats).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 1
        #expect(fused.shape == unfused.shape && worst < 1e-5, "worst relative difference \(worst)")
    }
}
