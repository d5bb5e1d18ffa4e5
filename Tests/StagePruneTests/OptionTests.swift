import NNPipeCore
import Testing
@testable import StagePrune

struct OptionTests {
    struct BadCase: CustomTestStringConvertible, Sendable {
        var name: String
        var options: [String: JSONValue]
        var path: String
        var message: String
        var testDescription: String { name }
    }

    static let badCases: [BadCase] = [
        BadCase(name: "sparsity 1", options: ["sparsity": .number(1)], path: "stages[0].sparsity", message: "[0, 1)"),
        BadCase(name: "negative sparsity", options: ["sparsity": .number(-0.1)], path: "stages[0].sparsity", message: "[0, 1)"),
        BadCase(name: "no sparsity", options: [:], path: "stages[0].sparsity", message: "required"),
        BadCase(name: "N:M with another sparsity", options: ["pattern": .string("2:4"), "sparsity": .number(0.7)], path: "stages[0].sparsity", message: "fixes sparsity at 0.5"),
        BadCase(name: "unknown pattern", options: ["sparsity": .number(0.5), "pattern": .string("3:4")], path: "stages[0].pattern", message: "not one of"),
        BadCase(name: "channel_ratio on weights", options: ["sparsity": .number(0.5), "channel_ratio": .number(0.5)], path: "stages[0].channel_ratio", message: "granularity 'channel'"),
        BadCase(name: "channel without ratio", options: ["granularity": .string("channel")], path: "stages[0].channel_ratio", message: "exactly one"),
        BadCase(name: "channel with both", options: ["granularity": .string("channel"), "channel_ratio": .number(0.5), "target_macs": .number(0.5)], path: "stages[0].target_macs", message: "exactly one"),
        BadCase(name: "channel with sparsity", options: ["granularity": .string("channel"), "channel_ratio": .number(0.5), "sparsity": .number(0.5)], path: "stages[0].sparsity", message: "granularity 'weight'"),
        BadCase(name: "channel ratio 1", options: ["granularity": .string("channel"), "channel_ratio": .number(1)], path: "stages[0].channel_ratio", message: "(0, 1)"),
        BadCase(name: "taylor without data", options: ["granularity": .string("channel"), "channel_ratio": .number(0.5), "criterion": .string("taylor")], path: "stages[0].criterion", message: "dataset"),
        BadCase(name: "dataset without taylor", options: ["granularity": .string("channel"), "channel_ratio": .number(0.5), "dataset": .string("train")], path: "stages[0].dataset", message: "criterion 'taylor'"),
        BadCase(name: "batches without taylor", options: ["granularity": .string("channel"), "channel_ratio": .number(0.5), "criterion": .string("l2"), "batches": .number(4)], path: "stages[0].batches", message: "criterion 'taylor'"),
        BadCase(name: "batches on weights", options: ["sparsity": .number(0.5), "batches": .number(4)], path: "stages[0].batches", message: "granularity 'channel'"),
        BadCase(name: "criterion on weights", options: ["sparsity": .number(0.5), "criterion": .string("l2")], path: "stages[0].criterion", message: "granularity 'channel'"),
        BadCase(name: "include_first_last on channels", options: ["granularity": .string("channel"), "channel_ratio": .number(0.5), "include_first_last": .bool(true)], path: "stages[0].include_first_last", message: "granularity 'weight'"),
        BadCase(name: "global scope on channels", options: ["granularity": .string("channel"), "channel_ratio": .number(0.5), "scope": .string("global")], path: "stages[0].scope", message: "granularity 'weight'"),
        BadCase(name: "cap below layer sparsity", options: ["sparsity": .number(0.8), "max_sparsity": .number(0.5)], path: "stages[0].max_sparsity", message: "below sparsity"),
        BadCase(name: "schedule end before begin", options: ["schedule": .object([("kind", .string("polynomial")), ("final_sparsity", .number(0.8)), ("begin_step", .number(10)), ("end_step", .number(5))])], path: "stages[0].schedule", message: "end_step"),
        BadCase(name: "schedule disagrees with sparsity", options: ["sparsity": .number(0.5), "schedule": .object([("final_sparsity", .number(0.8))])], path: "stages[0].schedule", message: "differs"),
    ]

    @Test(arguments: badCases)
    func rejectedAtConstructionWithThePath(_ example: BadCase) throws {
        let error = try #require(throws: NNPipeError.self) { try makeStage(example.options) }
        #expect(error.path == example.path)
        #expect(error.message.contains(example.message), "\(error.message)")
    }

    @Test func declaredOptionNamesAreTheContract() {
        let names = PruneStage.options.map(\.name)
        for name in ["sparsity", "scope", "pattern", "granularity", "criterion", "channel_ratio", "target_macs",
                     "exclude", "max_sparsity", "schedule", "include_first_last", "prune_depthwise"] {
            #expect(names.contains(name), "\(name)")
        }
        let sparsity = PruneStage.options.first { $0.name == "sparsity" }
        #expect(sparsity?.rangeDescription == "[0, 1)")
        #expect(PruneStage.descriptor.kind == "prune")
    }

    @Test func noPrunableWeightsIsAnError() throws {
        var builder = ModelBuilder(shape: [1, 4])
        let x = builder.node("Relu", "relu", ["input"])
        var model = builder.model(output: x)
        let error = try #require(throws: NNPipeError.self) { try runStage(["sparsity": .number(0.5)], on: &model) }
        #expect(error.code == .stageFailed)
        #expect(error.message.contains("no prunable weights"))
        // Only first and last layers: the message says why each was left out.
        var chain = chainModel()
        let onlyEnds = try #require(throws: NNPipeError.self) {
            try runStage(["sparsity": .number(0.5), "exclude": .array([.string("body*")])], on: &chain)
        }
        #expect(onlyEnds.message.contains("first layer") && onlyEnds.message.contains("excluded by 'body*'"))
    }

    @Test func sparsityThatRoundsToNothingFails() throws {
        var model = chainModel()
        let error = try #require(throws: NNPipeError.self) { try runStage(["sparsity": .number(0.0001)], on: &model) }
        #expect(error.code == .stageFailed && error.message.contains("pruned 0"))
        var zero = chainModel()
        #expect(throws: NNPipeError.self) { try runStage(["sparsity": .number(0)], on: &zero) }
    }
}

struct ScheduleTests {
    static let polynomial = PruningSchedule(kind: .polynomial, initialSparsity: 0, finalSparsity: 0.9, beginStep: 0, endStep: 1000, frequency: 100)

    @Test(arguments: [(0, 0.0), (250, 0.520312), (500, 0.7875), (750, 0.8859375), (1000, 0.9), (2000, 0.9), (-5, 0.0)])
    func polynomialDecayMatchesZhuAndGupta(step: Int, expected: Double) {
        #expect(abs(Self.polynomial.sparsity(at: step) - expected) < 1e-6)
    }

    @Test(arguments: [(0, true), (100, true), (150, false), (1000, true), (1100, false)])
    func masksUpdateEveryFrequencySteps(step: Int, expected: Bool) {
        #expect(Self.polynomial.updatesMasks(at: step) == expected)
    }

    @Test func scheduleRoundTripsThroughTheAnnotation() throws {
        var model = chainModel()
        let options: [String: JSONValue] = ["schedule": .object([
            ("kind", .string("polynomial")), ("initial_sparsity", .number(0.2)), ("final_sparsity", .number(0.8)),
            ("begin_step", .number(0)), ("end_step", .number(1000)), ("frequency", .number(50)),
        ])]
        let result = try runStage(options, on: &model)
        let annotation = try #require(model.annotations.pruningSchedule)
        let schedule = try #require(PruningSchedule(json: annotation))
        #expect(schedule == PruningSchedule(kind: .polynomial, initialSparsity: 0.2, finalSparsity: 0.8, beginStep: 0, endStep: 1000, frequency: 50, power: 3))
        // The stage prunes to the schedule's starting sparsity; fine-tuning takes it to the final one.
        #expect(result.detail("target_sparsity")?.numberValue == 0.2)
        #expect(zeroCount(model.weights("body1.weight")) == MagnitudeRanking.prunedCount(fraction: 0.2, of: 1152))
    }

    @Test func polynomialFromZeroLeavesAllOnesMasks() throws {
        var model = chainModel()
        let result = try runStage(["schedule": .object([
            ("kind", .string("polynomial")), ("final_sparsity", .number(0.9)), ("begin_step", .number(0)), ("end_step", .number(100)),
        ])], on: &model)
        #expect(result.summary.contains("fine-tuning"))
        let mask = try #require(model.annotations.pruningMasks["body2.weight"]?.values(as: UInt8.self))
        #expect(mask.allSatisfy { $0 == 1 })
    }
}
