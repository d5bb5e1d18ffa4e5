import NNPipeCore
import Testing
@testable import StagePrune

/// One Gemm whose weight holds `values` (shape [1, n]), for exact-count and tie checks.
private func singleLayer(_ values: [Float]) -> Model {
    var builder = ModelBuilder(shape: [1, values.count])
    builder.addInitializer("w", shape: [1, values.count], values: values)
    builder.node("MatMul", "dense", ["input", "w"])
    return builder.model(output: "dense.out")
}

private func prunedIndices(_ model: Model, _ name: String = "w") -> [Int] {
    model.weights(name).enumerated().filter { $0.element == 0 }.map(\.offset)
}

/// Conv -> Conv -> Conv -> Gemm: first and last are excluded by default.
func chainModel(seed: UInt64 = 7) -> Model {
    var builder = ModelBuilder(shape: [1, 3, 8, 8])
    builder.generator = SeededGenerator(seed: seed)
    var x = builder.conv("stem", "input", inputChannels: 3, outputChannels: 8)
    x = builder.node("Relu", "relu0", [x])
    x = builder.conv("body1", x, inputChannels: 8, outputChannels: 16)
    x = builder.node("Relu", "relu1", [x])
    x = builder.conv("body2", x, inputChannels: 16, outputChannels: 16)
    x = builder.node("GlobalAveragePool", "pool", [x])
    x = builder.node("Flatten", "flatten", [x])
    x = builder.gemm("head", x, inputFeatures: 16, outputFeatures: 10)
    return builder.model(output: x)
}

struct TiePolicyTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var values: [Float]
        var sparsity: Double
        var pruned: [Int]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "all equal: lowest indices go first", values: Array(repeating: 2, count: 10), sparsity: 0.3, pruned: [0, 1, 2]),
        Case(name: "sign does not matter, ties by index", values: [1, -1, 1, 1, 0.5, -1, 1, 1], sparsity: 0.5, pruned: [0, 1, 2, 4]),
        Case(name: "threshold tie straddles the count", values: [3, 1, 2, 1, 1, 3, 1, 2], sparsity: 0.375, pruned: [1, 3, 4]),
        Case(name: "zeros first, then ties", values: [0, 5, 0, 5, 5, 5], sparsity: 0.5, pruned: [0, 1, 2]),
        Case(name: "negative zero is zero", values: [-0.0, 1, 1, 1], sparsity: 0.25, pruned: [0]),
    ]

    @Test(arguments: cases)
    func tiesPrunedByLowerIndex(_ example: Case) throws {
        var model = singleLayer(example.values)
        let layers = PrunableWeights.all(in: model.graph)
        try WeightPruning.prune(&model, layers: layers, request: WeightPruningRequest(sparsity: example.sparsity))
        #expect(prunedIndices(model) == example.pruned)
    }

    @Test func thresholdRuleWouldUndershootButExactCountDoesNot() throws {
        // tfmot keeps every weight equal to the threshold: with 90 ties of 1.0 it would prune only 10%.
        let values = [Float](repeating: 0.5, count: 10) + [Float](repeating: 1, count: 90)
        var model = singleLayer(values)
        try WeightPruning.prune(&model, layers: PrunableWeights.all(in: model.graph), request: WeightPruningRequest(sparsity: 0.9))
        #expect(zeroCount(model.weights("w")) == 90)
    }
}

struct ExactCountTests {
    @Test(arguments: [
        (0.5, 5, 2), (0.5, 7, 4), (0.35, 10, 4), (0.25, 10, 2), (0.9, 10, 9), (0.7, 10, 7),
        (0.1, 3, 0), (0.999, 1000, 999), (0.5, 1, 0), (0.33, 100, 33),
    ])
    func roundsHalfToEven(sparsity: Double, count: Int, expected: Int) {
        #expect(MagnitudeRanking.prunedCount(fraction: sparsity, of: count) == expected)
    }

    @Test(arguments: [0.1, 0.25, 0.5, 0.75, 0.9, 0.95])
    func layerScopeHitsEveryLayerExactly(sparsity: Double) throws {
        var model = chainModel()
        let result = try runStage(["sparsity": .number(sparsity)], on: &model)
        for name in ["body1.weight", "body2.weight"] {
            let weights = model.weights(name)
            #expect(zeroCount(weights) == MagnitudeRanking.prunedCount(fraction: sparsity, of: weights.count), "\(name)")
        }
        // First and last stay dense; biases are never pruned.
        #expect(zeroCount(model.weights("stem.weight")) == 0)
        #expect(zeroCount(model.weights("head.weight")) == 0)
        #expect(zeroCount(model.weights("body1.bias")) == 0)
        let achieved = try #require(result.detail("achieved_sparsity")?.numberValue)
        #expect(abs(achieved - sparsity) < 1e-3)
    }

    @Test func masksAndScheduleAreLeftForFineTuning() throws {
        var model = chainModel()
        _ = try runStage(["sparsity": .number(0.5)], on: &model)
        let mask = try #require(model.annotations.pruningMasks["body1.weight"])
        let keep = try #require(mask.values(as: UInt8.self))
        let weights = model.weights("body1.weight")
        #expect(mask.shape == [16, 8, 3, 3])
        #expect(zip(keep, weights).allSatisfy { ($0 == 0) == ($1 == 0) })
        #expect(model.annotations.pruningMasks["stem.weight"] == nil)
        let schedule = try #require(model.annotations.pruningSchedule)
        #expect(schedule["kind"]?.stringValue == "constant")
        #expect(schedule["final_sparsity"]?.numberValue == 0.5)
    }
}

struct ScopeTests {
    /// Two middle layers, one with weights ten times smaller than the other.
    func unevenModel() -> Model {
        var model = chainModel()
        let index = model.graph.initializerIndex()
        let small = model.graph.initializers[index["body1.weight"]!]
        model.graph.initializers[index["body1.weight"]!] = Tensor(name: small.name, shape: small.shape, values: small.floatValues()!.map { $0 * 0.01 })
        return model
    }

    @Test func globalScopeRanksLayersTogether() throws {
        var model = unevenModel()
        let result = try runStage(["sparsity": .number(0.4), "scope": .string("global")], on: &model)
        let small = model.weights("body1.weight")
        let large = model.weights("body2.weight")
        let total = small.count + large.count
        #expect(zeroCount(small) + zeroCount(large) == MagnitudeRanking.prunedCount(fraction: 0.4, of: total))
        // body1 (1,152 weights) is 100x smaller, so it goes first: 0.4 · 3,456 = 1,382 > 1,152.
        #expect(zeroCount(small) == small.count)
        #expect(result.detail("achieved_sparsity")?.numberValue.map { abs($0 - 0.4) < 1e-3 } == true)
    }

    @Test func maxSparsityCapsEachLayer() throws {
        var model = unevenModel()
        _ = try runStage(["sparsity": .number(0.4), "scope": .string("global"), "max_sparsity": .number(0.8)], on: &model)
        let small = model.weights("body1.weight")
        let large = model.weights("body2.weight")
        #expect(zeroCount(small) == Int(Double(small.count) * 0.8))
        #expect(zeroCount(small) + zeroCount(large) == MagnitudeRanking.prunedCount(fraction: 0.4, of: small.count + large.count))
    }

    @Test func capBelowGlobalTargetFailsLoudly() throws {
        var model = unevenModel()
        let error = try #require(throws: NNPipeError.self) {
            try runStage(["sparsity": .number(0.9), "scope": .string("global"), "max_sparsity": .number(0.5)], on: &model)
        }
        #expect(error.code == .stageFailed)
        #expect(error.message.contains("max_sparsity"))
    }

    @Test func layerScopeIgnoresScaleDifferences() throws {
        var model = unevenModel()
        _ = try runStage(["sparsity": .number(0.4)], on: &model)
        #expect(zeroCount(model.weights("body1.weight")) == MagnitudeRanking.prunedCount(fraction: 0.4, of: 1152))
        #expect(zeroCount(model.weights("body2.weight")) == MagnitudeRanking.prunedCount(fraction: 0.4, of: 2304))
    }
}

struct LayerSelectionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var options: [String: JSONValue]
        var pruned: Set<String>
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "default skips first and last", options: [:], pruned: ["body1.weight", "body2.weight"]),
        Case(name: "include_first_last", options: ["include_first_last": .bool(true)],
             pruned: ["stem.weight", "body1.weight", "body2.weight", "head.weight"]),
        Case(name: "exclude by wildcard", options: ["exclude": .array([.string("body1*")])], pruned: ["body2.weight"]),
        Case(name: "exclude by op type", options: ["include_first_last": .bool(true), "exclude": .array([.string("Conv")])],
             pruned: ["head.weight"]),
        Case(name: "exclude by exact name", options: ["include_first_last": .bool(true), "exclude": .array([.string("stem"), .string("*2")])],
             pruned: ["body1.weight", "head.weight"]),
    ]

    @Test(arguments: cases)
    func prunesTheSelectedLayers(_ example: Case) throws {
        var model = chainModel()
        var options = example.options
        options["sparsity"] = .number(0.5)
        _ = try runStage(options, on: &model)
        let pruned = Set(["stem.weight", "body1.weight", "body2.weight", "head.weight"].filter { zeroCount(model.weights($0)) > 0 })
        #expect(pruned == example.pruned)
    }

    @Test func depthwiseIsPrunedOnlyWhenAsked() throws {
        var builder = ModelBuilder(shape: [1, 4, 8, 8])
        var x = builder.conv("stem", "input", inputChannels: 4, outputChannels: 8)
        x = builder.conv("depthwise", x, inputChannels: 8, outputChannels: 8, group: 8)
        x = builder.conv("pointwise", x, inputChannels: 8, outputChannels: 8, kernel: 1)
        x = builder.conv("head", x, inputChannels: 8, outputChannels: 4, kernel: 1)
        let model = builder.model(output: x)
        var plain = model
        _ = try runStage(["sparsity": .number(0.5)], on: &plain)
        #expect(zeroCount(plain.weights("depthwise.weight")) == 0)
        #expect(zeroCount(plain.weights("pointwise.weight")) == 32)
        var withDepthwise = model
        _ = try runStage(["sparsity": .number(0.5), "prune_depthwise": .bool(true)], on: &withDepthwise)
        #expect(zeroCount(withDepthwise.weights("depthwise.weight")) == 36)
    }
}
