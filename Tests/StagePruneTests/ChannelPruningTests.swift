import NNPipeCore
import NNPipeRuntime
import Testing
@testable import StagePrune

/// Largest |a − b| between the first outputs of two models on the same pseudo-random input.
func outputDifference(_ first: Model, _ second: Model, seed: UInt64 = 3) throws -> (difference: Float, magnitude: Float) {
    let input = try #require(first.graph.inputs.first)
    let dimensions = input.type.tensorShape?.compactMap { $0.fixedValue }
    let shape = try #require(dimensions)
    var generator = SeededGenerator(seed: seed)
    let values = (0..<shape.reduce(1, *)).map { _ in generator.nextFloat() }
    let feed = RuntimeTensor(shape: shape, floats: values)
    let a = try ExecutionPlan(model: first, threads: 1).run(feed).floats
    let b = try ExecutionPlan(model: second, threads: 1).run(feed).floats
    #expect(a.count == b.count)
    let difference = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    return (difference, a.map { abs($0) }.max() ?? 0)
}

struct DependencyGroupTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var model: @Sendable () -> Model
        /// Weight name -> its shape after removing half the channels.
        var shapes: [String: [Int]]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "residual chain", model: ChannelModels.residualChain, shapes: [
            "stem.weight": [4, 3, 3, 3], "stem_bn.scale": [4], "block1a.weight": [6, 4, 3, 3], "block1b.weight": [4, 6, 3, 3],
            "block2a.weight": [6, 4, 3, 3], "block2b.weight": [4, 6, 3, 3], "block2b_bn.variance": [4], "head.weight": [10, 4],
        ]),
        Case(name: "concat of the same tensor twice", model: ChannelModels.concatSameTensorTwice, shapes: [
            "producer.weight": [4, 3, 3, 3], "producer.bias": [4], "consumer.weight": [4, 8, 3, 3],
        ]),
        Case(name: "concat of mixed sources", model: ChannelModels.concatMixedSources, shapes: [
            "left.weight": [4, 3, 3, 3], "right.weight": [2, 3, 1, 1], "right_bn.mean": [2], "consumer.weight": [4, 9, 3, 3],
        ]),
        Case(name: "depthwise", model: ChannelModels.depthwise, shapes: [
            "expand.weight": [4, 3, 3, 3], "depthwise.weight": [8, 1, 3, 3], "depthwise.bias": [8], "depthwise_bn.scale": [8],
            "pointwise.weight": [6, 8, 1, 1], "head.weight": [4, 6, 1, 1],
        ]),
        Case(name: "flatten to dense", model: { ChannelModels.flattenToDense(reshape: false) }, shapes: [
            "features.weight": [4, 3, 3, 3], "dense.weight": [64, 8], "dense.bias": [8], "classifier.weight": [8, 10],
        ]),
        Case(name: "reshape to dense", model: { ChannelModels.flattenToDense(reshape: true) }, shapes: [
            "features.weight": [4, 3, 3, 3], "dense.weight": [64, 8], "flat_shape": [2],
        ]),
        Case(name: "split and slice", model: ChannelModels.splitAndSlice, shapes: [
            "stem.weight": [4, 3, 3, 3], "left.weight": [3, 2, 3, 3], "right.weight": [3, 2, 3, 3], "merge.weight": [3, 6, 1, 1],
            "side.weight": [3, 3, 1, 1], "head.weight": [2, 3, 1, 1],
        ]),
    ]

    @Test(arguments: cases)
    func halfTheChannelsGoAndTheGraphStaysConsistent(_ example: Case) throws {
        let model = example.model()
        let plan = try ChannelPruning.plan(model, ratio: 0.5, criterion: .l1)
        let pruned = try ChannelPruning.apply(plan, to: model, mode: .remove)
        try GraphCheck.validate(pruned)
        for (name, shape) in example.shapes {
            #expect(pruned.graph.initializer(named: name)?.shape == shape, "\(name)")
        }
        #expect(ModelStatistics(pruned).parameterCount < ModelStatistics(model).parameterCount)
    }

    @Test(arguments: cases)
    func prunedModelMatchesTheMaskedModel(_ example: Case) throws {
        let model = example.model()
        let plan = try ChannelPruning.plan(model, ratio: 0.5, criterion: .l1)
        let masked = try ChannelPruning.apply(plan, to: model, mode: .mask)
        let pruned = try ChannelPruning.apply(plan, to: model, mode: .remove)
        let (difference, magnitude) = try outputDifference(masked, pruned)
        #expect(difference <= 1e-5 * max(1, magnitude), "max |masked − pruned| = \(difference), outputs up to \(magnitude)")
        // And masking really changed something, so the comparison is not vacuous.
        #expect(try outputDifference(model, masked).difference > 1e-4)
    }

    @Test func concatOfTheSameTensorTwiceRemovesBothCopies() throws {
        let model = ChannelModels.concatSameTensorTwice()
        let plan = try ChannelPruning.plan(model, ratio: 0.5, criterion: .l1)
        let removed = try #require(plan.removed["producer.out"])
        #expect(plan.removed["concat.out"] == (removed + removed.map { $0 + 8 }).sorted())
    }

    @Test func flattenRemovesEverySpatialPositionOfAChannel() throws {
        let model = ChannelModels.flattenToDense(reshape: true)
        let plan = try ChannelPruning.plan(model, ratio: 0.5, criterion: .l1)
        let channels = try #require(plan.removed["features.out"])
        #expect(plan.removed["flatten.out"] == channels.flatMap { channel in (0..<16).map { channel * 16 + $0 } })
        let pruned = try ChannelPruning.apply(plan, to: model, mode: .remove)
        #expect(pruned.graph.initializer(named: "flat_shape")?.integerValues() == [1, 64])
    }

    @Test func depthwiseGroupFollowsItsChannels() throws {
        let model = ChannelModels.depthwise()
        let pruned = try ChannelPruning.apply(try ChannelPruning.plan(model, ratio: 0.5, criterion: .l2), to: model, mode: .remove)
        let node = try #require(pruned.graph.nodes.first { $0.name == "depthwise" })
        #expect(node.attribute("group")?.intValue == 4)
    }

    @Test func splitSizesAndSliceBoundsFollow() throws {
        let model = ChannelModels.splitAndSlice()
        let plan = try ChannelPruning.plan(model, ratio: 0.5, criterion: .l1)
        let pruned = try ChannelPruning.apply(plan, to: model, mode: .remove)
        let split = try #require(pruned.graph.nodes.first { $0.name == "split" })
        let sizesName = try #require(split.inputs.count == 2 ? split.inputs[1] : nil)
        let sizes = try #require(pruned.graph.initializer(named: sizesName)?.integerValues())
        #expect(sizes.reduce(0, +) == 4)
        let start = try #require(pruned.graph.initializer(named: "slice_starts")?.integerValues()?.first)
        let end = try #require(pruned.graph.initializer(named: "slice_ends")?.integerValues()?.first)
        #expect(end - start == 3)
        let removedStem = try #require(plan.removed["stem.out"])
        #expect(start == Int64((0..<2).filter { !removedStem.contains($0) }.count))
    }

    @Test func residualGroupPrunesTheSameChannelsEverywhere() throws {
        let plan = try ChannelPruning.plan(ChannelModels.residualChain(), ratio: 0.5, criterion: .l1)
        let stem = try #require(plan.removed["stem.out"])
        #expect(plan.removed["block1b.out"] == stem)
        #expect(plan.removed["block2b.out"] == stem)
        #expect(plan.removed["block1_add.out"] == stem)
        #expect(plan.removed["block1a.out"]?.count == 6)
    }
}

struct ChannelStageTests {
    @Test(arguments: ["l1", "l2", "bn_scale"])
    func stageShrinksTheResidualModel(_ criterion: String) throws {
        var model = ChannelModels.residualChain()
        let result = try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5), "criterion": .string(criterion)], on: &model)
        try GraphCheck.validate(model)
        let before = try #require(result.detail("macs_before")?.numberValue)
        let after = try #require(result.detail("macs_after")?.numberValue)
        #expect(after <= 0.5 * before)
        #expect(result.detail("parameters_after")!.numberValue! < result.detail("parameters_before")!.numberValue!)
        #expect(result.summary.contains("removed"))
    }

    @Test func bnScaleRemovesTheSmallestScales() throws {
        var model = ChannelModels.residualChain()
        let index = model.graph.initializerIndex()
        model.graph.initializers[index["block1a_bn.scale"]!] = Tensor(name: "block1a_bn.scale", shape: [12], values: (0..<12).map { Float(12 - $0) })
        let plan = try ChannelPruning.plan(model, ratio: 0.5, criterion: .batchNormScale)
        #expect(plan.removed["block1a.out"] == [6, 7, 8, 9, 10, 11])
    }

    @Test func bnScaleWithoutBatchNormalizationNamesTheLayer() throws {
        var model = ChannelModels.concatSameTensorTwice()
        let error = try #require(throws: NNPipeError.self) {
            try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5), "criterion": .string("bn_scale")], on: &model)
        }
        #expect(error.message.contains("producer"))
    }

    @Test(arguments: [0.6, 0.4, 0.25])
    func targetMACsIsMet(_ target: Double) throws {
        var model = ChannelModels.residualChain()
        let result = try runStage(["granularity": .string("channel"), "target_macs": .number(target)], on: &model)
        let before = try #require(result.detail("macs_before")?.numberValue)
        let after = try #require(result.detail("macs_after")?.numberValue)
        #expect(after <= target * before)
        try GraphCheck.validate(model)
    }

    @Test func removingEveryChannelOfALayerIsAnError() throws {
        var builder = ModelBuilder(shape: [1, 3, 4, 4])
        var x = builder.conv("narrow", "input", inputChannels: 3, outputChannels: 2)
        x = builder.conv("head", x, inputChannels: 2, outputChannels: 4)
        var model = builder.model(output: x)
        let error = try #require(throws: NNPipeError.self) {
            try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.9)], on: &model)
        }
        #expect(error.code == .stageFailed)
        #expect(error.message.contains("narrow") && error.message.contains("no channel"))
    }

    @Test func channelsFeedingGraphOutputsStay() throws {
        var builder = ModelBuilder(shape: [1, 3, 4, 4])
        let x = builder.conv("only", "input", inputChannels: 3, outputChannels: 8)
        var model = builder.model(output: x)
        let error = try #require(throws: NNPipeError.self) {
            try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5)], on: &model)
        }
        #expect(error.message.contains("graph output"))
    }

    @Test func excludedLayersKeepTheirChannels() throws {
        var model = ChannelModels.residualChain()
        _ = try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5), "exclude": .array([.string("block1a")])], on: &model)
        #expect(model.graph.initializer(named: "block1a.weight")?.shape == [12, 4, 3, 3])
        #expect(model.graph.initializer(named: "block2a.weight")?.shape == [6, 4, 3, 3])
    }

    @Test func l1KeepsTheLargestFilters() throws {
        var model = ChannelModels.concatSameTensorTwice()
        let index = model.graph.initializerIndex()
        let weight = model.graph.initializers[index["producer.weight"]!]
        let scaled = weight.floatValues()!.enumerated().map { $0.element * (($0.offset / 27) % 2 == 0 ? 0.01 : 1) }
        model.graph.initializers[index["producer.weight"]!] = Tensor(name: weight.name, shape: weight.shape, values: scaled)
        let plan = try ChannelPruning.plan(model, ratio: 0.5, criterion: .l1)
        #expect(plan.removed["producer.out"] == [0, 2, 4, 6])
    }
}

struct MACCounterTests {
    @Test func countsConvGemmAndMatMul() {
        let model = ChannelModels.flattenToDense(reshape: false)
        let count = MACCounter.count(model.graph)
        // Conv 8·4·4 outputs × 3·3·3; Gemm 128·16; MatMul 16·10.
        #expect(count.perNode["features"] == 8 * 16 * 27)
        #expect(count.perNode["dense"] == 128 * 16)
        #expect(count.perNode["classifier"] == 160)
        #expect(count.total == 3456 + 2048 + 160)
        #expect(count.unknownNodes.isEmpty)
    }
}
