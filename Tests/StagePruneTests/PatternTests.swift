import NNPipeCore
import Testing
@testable import StagePrune

/// Conv 3->8 (stem, skipped), Conv 8->16, Gemm (transB) 16->32, MatMul 32->8, Gemm (transB=0) 8->4 (last, skipped).
private func patternModel() -> Model {
    var builder = ModelBuilder(shape: [1, 3, 4, 4])
    var x = builder.conv("stem", "input", inputChannels: 3, outputChannels: 8)
    x = builder.conv("conv", x, inputChannels: 8, outputChannels: 16)
    x = builder.node("GlobalAveragePool", "pool", [x])
    x = builder.node("Flatten", "flatten", [x])
    x = builder.gemm("fc", x, inputFeatures: 16, outputFeatures: 32)
    x = builder.matMul("projection", x, inputFeatures: 32, outputFeatures: 8)
    x = builder.gemm("head", x, inputFeatures: 8, outputFeatures: 4, transposed: false)
    return builder.model(output: x)
}

struct PatternTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var pattern: String
        var sparsity: Double?
        var testDescription: String { "\(pattern) at \(sparsity.map { "\($0)" } ?? "implied") sparsity" }
    }

    /// Weight name and the input axis the pattern runs along.
    static let weights: [(String, Int)] = [("conv.weight", 1), ("fc.weight", 1), ("projection.weight", 0)]

    @Test(arguments: [
        Case(pattern: "2:4", sparsity: nil), Case(pattern: "4:8", sparsity: 0.5),
        Case(pattern: "1x4", sparsity: 0.5), Case(pattern: "4x1", sparsity: 0.75), Case(pattern: "1x4", sparsity: 0.9),
    ])
    func patternHoldsAfterTheStage(_ example: Case) throws {
        var model = patternModel()
        var options: [String: JSONValue] = ["pattern": .string(example.pattern)]
        if let sparsity = example.sparsity { options["sparsity"] = .number(sparsity) }
        let result = try runStage(options, on: &model)
        let pattern = try #require(SparsityPattern(example.pattern))
        for (name, axis) in Self.weights {
            let tensor = try #require(model.graph.initializer(named: name))
            let report = try PatternValidator.check(tensor: tensor, pattern: pattern, axis: axis)
            #expect(report.holds, "\(name): \(report.violatingGroupCount) groups break \(example.pattern)")
            let target = example.sparsity ?? 0.5
            let expected = Double(MagnitudeRanking.prunedCount(fraction: target, of: report.groupCount)) / Double(report.groupCount)
            #expect(abs(report.sparsity - (pattern.impliedSparsity ?? expected)) < 1e-9, "\(name)")
        }
        #expect(result.detail("pattern")?.stringValue == example.pattern)
    }

    @Test(arguments: ["2:4", "4:8", "1x4", "4x1"])
    func denseWeightsBreakThePattern(_ text: String) throws {
        let model = patternModel()
        let pattern = try #require(SparsityPattern(text))
        let tensor = try #require(model.graph.initializer(named: "fc.weight"))
        let report = try PatternValidator.check(tensor: tensor, pattern: pattern, axis: 1)
        // Random weights have no zeros: every block is "fully kept", every N:M group too dense.
        if case .block = pattern { #expect(report.holds && report.zeroGroupCount == 0) } else { #expect(!report.holds) }
    }

    @Test func validatorFindsAPartlyZeroBlock() throws {
        var values = [Float](repeating: 1, count: 16)
        values[5] = 0
        let tensor = Tensor(name: "w", shape: [2, 8], values: values)
        let report = try PatternValidator.check(tensor: tensor, pattern: .block(rows: 1, columns: 4), axis: 1)
        #expect(report.violatingGroupCount == 1)
        #expect(report.groupCount == 4)
        values[4] = 0; values[6] = 0; values[7] = 0
        let fixed = try PatternValidator.check(tensor: Tensor(name: "w", shape: [2, 8], values: values), pattern: .block(rows: 1, columns: 4), axis: 1)
        #expect(fixed.holds && fixed.zeroGroupCount == 1)
    }

    @Test func nOfMGroupsRunAlongTheInputAxis() throws {
        // A 4x4 weight where 2:4 along axis 1 holds but along axis 0 does not.
        let values: [Float] = [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0]
        let tensor = Tensor(name: "w", shape: [4, 4], values: values)
        #expect(try PatternValidator.check(tensor: tensor, pattern: .nOfM(kept: 2, groupSize: 4), axis: 1).holds)
        #expect(try !PatternValidator.check(tensor: tensor, pattern: .nOfM(kept: 2, groupSize: 4), axis: 0).holds)
    }

    @Test func patternThatDoesNotDivideTheShapeNamesTheLayer() throws {
        var builder = ModelBuilder(shape: [1, 3, 4, 4])
        var x = builder.conv("stem", "input", inputChannels: 3, outputChannels: 6)
        x = builder.conv("odd", x, inputChannels: 6, outputChannels: 8)
        x = builder.conv("head", x, inputChannels: 8, outputChannels: 2)
        var model = builder.model(output: x)
        let error = try #require(throws: NNPipeError.self) {
            try runStage(["pattern": .string("2:4")], on: &model)
        }
        #expect(error.path == "stages[0].pattern")
        #expect(error.message.contains("odd") && error.message.contains("multiple of 4"))
        #expect(throws: NNPipeError.self) {
            try PatternValidator.check(tensor: Tensor(name: "w", shape: [3, 6], values: [Float](repeating: 1, count: 18)), pattern: .nOfM(kept: 2, groupSize: 4), axis: 1)
        }
    }
}
