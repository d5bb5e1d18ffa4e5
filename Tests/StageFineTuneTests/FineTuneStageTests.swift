import Foundation
import NNPipeCore
import NNPipeData
import NNPipeONNX
import NNPipeTestKit
import Testing

@testable import NNPipeTraining
@testable import StageFineTune

@Suite("Fine-tuning the digits MLP", .serialized)
struct FineTuneStageTests {
    @Test("90% pruned MLP wins accuracy back, masks held exactly, runtime agrees")
    func recoversFromPruning() throws {
        let original = try DigitsFixture.model()
        let baseline = try DigitsFixture.accuracy(original)
        var model = DigitsFixture.damaged(original, sparsity: 0.9)
        let damaged = try DigitsFixture.accuracy(model)
        let stage = try DigitsFixture.stage(["dataset": .string("train"), "epochs": .number(4), "lr": .number(0.01), "validation": .string("test")])
        let result = try stage.run(&model, context: DigitsFixture.context())
        let tuned = try DigitsFixture.accuracy(model)
        print("digits MLP: float \(baseline), 90% pruned \(damaged), fine-tuned \(tuned); \(result.summary)")
        #expect(damaged < baseline - 0.3)
        #expect(tuned > damaged + 0.3)
        #expect(tuned > 0.85)
        for name in DigitsFixture.weightNames {
            let mask = try #require(model.annotations.pruningMasks[name]?.integerValues())
            let weights = DigitsFixture.weights(model, name)
            #expect(zip(mask, weights).allSatisfy { $0 != 0 || $1 == 0 }, "pruned weights of \(name) stay zero")
            #expect(abs(DigitsFixture.zeroFraction(weights) - 0.9) < 0.01)
        }
        let history = try #require(result.details.first { $0.key == "history" }?.value.arrayValue)
        #expect(history.count == 4)
        let losses = history.compactMap { $0["loss"]?.numberValue }
        #expect(losses.last! < losses.first!)
    }

    @Test("equal seeds give bit-identical weights; another seed does not")
    func reproducible() throws {
        let start = DigitsFixture.damaged(try DigitsFixture.model(), sparsity: 0.9)
        func train(seed: Int) throws -> [Float] {
            var model = start
            let stage = try DigitsFixture.stage(["dataset": .string("small"), "steps": .number(12), "seed": .number(Double(seed)), "optimizer": .string("sgd"), "lr": .number(0.05)])
            _ = try stage.run(&model, context: DigitsFixture.context())
            return DigitsFixture.weightNames.flatMap { DigitsFixture.weights(model, $0) }
        }
        let first = try train(seed: 7)
        #expect(first == (try train(seed: 7)))
        #expect(first != (try train(seed: 8)))
    }

    @Test("polynomial schedule raises sparsity gradually to exactly final_sparsity")
    func gradualPruning() throws {
        var model = try DigitsFixture.model()
        model.annotations.pruningSchedule = .object([
            ("kind", .string("polynomial")), ("initial_sparsity", .number(0)), ("final_sparsity", .number(0.8)),
            ("begin_step", .number(0)), ("end_step", .number(40)), ("frequency", .number(5)), ("power", .number(3)),
        ])
        let stage = try DigitsFixture.stage(["dataset": .string("train"), "epochs": .number(2), "batch_size": .number(32), "lr": .number(0.005)])
        let result = try stage.run(&model, context: DigitsFixture.context())
        let history = try #require(result.details.first { $0.key == "history" }?.value.arrayValue)
        let sparsities = history.compactMap { $0["sparsity"]?.numberValue }
        #expect(sparsities.count == 2)
        #expect(sparsities[0] > 0.7 && sparsities[0] <= 0.8)
        for name in DigitsFixture.weightNames {
            let weights = DigitsFixture.weights(model, name)
            let expected = (0.8 * Double(weights.count)).rounded(.toNearestOrEven) / Double(weights.count)
            #expect(DigitsFixture.zeroFraction(weights) == expected, "\(name) sparsity exact")
        }
        #expect(try DigitsFixture.accuracy(model) > 0.85)
    }

    @Test("QAT keeps masks and leaves activation ranges for the quantize stage")
    func quantizationAware() throws {
        var model = DigitsFixture.damaged(try DigitsFixture.model(), sparsity: 0.5)
        let stage = try DigitsFixture.stage(["dataset": .string("train"), "epochs": .number(2), "lr": .number(0.005), "qat": .bool(true)])
        _ = try stage.run(&model, context: DigitsFixture.context())
        let ranges = model.annotations.calibrationRanges
        for name in ["X", "mul_result", "add_result", "next_activations", "add_result2", "out_activations_result", "probabilities"] {
            let range = try #require(ranges[name], "range for \(name)")
            #expect(range.lower <= range.upper)
        }
        #expect(ranges["next_activations"]!.lower >= 0, "a Relu output's range starts at 0")
        #expect(ranges["probabilities"] == ValueRange(lower: 0, upper: 1))
        for name in DigitsFixture.weightNames {
            #expect(abs(DigitsFixture.zeroFraction(DigitsFixture.weights(model, name)) - 0.5) < 0.01)
        }
        #expect(try DigitsFixture.accuracy(model) > 0.9)
    }

    @Test("distillation from the input model trains a damaged student")
    func distillation() throws {
        let original = try DigitsFixture.model()
        var model = DigitsFixture.damaged(original, sparsity: 0.9)
        let damaged = try DigitsFixture.accuracy(model)
        let stage = try DigitsFixture.stage([
            "dataset": .string("train"), "epochs": .number(3), "lr": .number(0.01),
            "distill": .object([("temperature", .number(4)), ("alpha", .number(0.7))]),
        ])
        _ = try stage.run(&model, context: DigitsFixture.context(original: original))
        #expect(try DigitsFixture.accuracy(model) > damaged + 0.3)
    }

    @Test("frozen layers keep their weights")
    func freeze() throws {
        let start = DigitsFixture.damaged(try DigitsFixture.model(), sparsity: 0.9)
        var model = start
        let stage = try DigitsFixture.stage(["dataset": .string("small"), "steps": .number(5), "freeze": .array([.string("coefficient"), .string("intercepts*")])])
        _ = try stage.run(&model, context: DigitsFixture.context())
        for name in ["coefficient", "intercepts", "intercepts1", "intercepts2"] {
            #expect(model.graph.initializer(named: name)!.floatValues() == start.graph.initializer(named: name)!.floatValues(), "\(name) frozen")
        }
        #expect(DigitsFixture.weights(model, "coefficient1") != DigitsFixture.weights(start, "coefficient1"))
    }

    @Test("early stopping keeps the best validation epoch")
    func earlyStopping() throws {
        var model = DigitsFixture.damaged(try DigitsFixture.model(), sparsity: 0.5)
        // A rate this large makes validation accuracy jump around, so a later epoch is rarely the best.
        let stage = try DigitsFixture.stage([
            "dataset": .string("small"), "validation": .string("test"), "epochs": .number(8), "early_stopping": .number(2),
            "optimizer": .string("sgd"), "lr": .number(0.5), "momentum": .number(0.9),
        ])
        let result = try stage.run(&model, context: DigitsFixture.context())
        let best = try #require(result.details.first { $0.key == "best_epoch" }?.value.integerValue)
        let history = try #require(result.details.first { $0.key == "history" }?.value.arrayValue)
        let accuracies = history.compactMap { $0["validation_accuracy"]?.numberValue }
        #expect(accuracies[best - 1] == accuracies.max())
        let kept = try DigitsFixture.accuracy(model)
        #expect(abs(kept - accuracies.max()!) < 1e-5)  // the report rounds to 6 digits
        #expect(best < accuracies.count)
        #expect(result.details.contains { $0.key == "stopped_early" })
    }

    @Test("option combinations the schema cannot express are rejected with their path", arguments: [
        (["dataset": JSONValue.string("train"), "optimizer": .string("adam"), "nesterov": .bool(true)], "stages[0].nesterov"),
        (["dataset": .string("train"), "early_stopping": .number(2)], "stages[0].early_stopping"),
        (["dataset": .string("train"), "loss": .string("mse"), "distill": .object([("alpha", .number(0.5))])], "stages[0].distill"),
        (["dataset": .string("train"), "prune_schedule": .object([("final_sparsity", .number(0.5)), ("begin_step", .number(10)), ("end_step", .number(5))])], "stages[0].prune_schedule.end_step"),
    ])
    func rejectsOptions(options: [String: JSONValue], path: String) {
        #expect {
            _ = try DigitsFixture.stage(options)
        } throws: { error in
            (error as? NNPipeError)?.path == path
        }
    }

    /// The student's weights after `steps` of distillation (T = 4, lr 0.01) from `teacher` on 256 samples.
    static func distilledWeights(_ start: Model, teacher: String, steps: Int, alpha: Double, context: StageContext) throws -> [Float] {
        var model = start
        let stage = try DigitsFixture.stage([
            "dataset": .string("small"), "steps": .number(Double(steps)), "lr": .number(0.01),
            "distill": .object([("temperature", .number(4)), ("alpha", .number(alpha)), ("teacher", .string(teacher))]),
        ])
        _ = try stage.run(&model, context: context)
        return DigitsFixture.weightNames.flatMap { DigitsFixture.weights(model, $0) }
    }

    /// `distill.teacher` names a model file: the same model as the input teacher must train the
    /// student bit for bit the same, also when its input has another name.
    @Test("a teacher file trains as the input model does", arguments: ["same file", "input renamed"])
    func teacherFile(variant: String) throws {
        let original = try DigitsFixture.model()
        let start = DigitsFixture.damaged(original, sparsity: 0.9)
        func train(teacher: String, context: StageContext) throws -> [Float] {
            try Self.distilledWeights(start, teacher: teacher, steps: 6, alpha: 0.7, context: context)
        }
        let fromInput = try train(teacher: "input", context: DigitsFixture.context(original: original))
        var context = DigitsFixture.context()
        context.formats = FormatRegistry([ONNXFormat()])
        let folder = try TestEnvironment.temporaryFolder("teacher-file")
        defer { try? FileManager.default.removeItem(at: folder) }
        context.manifestDirectory = folder
        var teacher = original
        if variant == "input renamed" {
            let old = teacher.graph.inputs[0].name
            teacher.graph.inputs[0].name = "pixels"
            for index in teacher.graph.nodes.indices {
                teacher.graph.nodes[index].inputs = teacher.graph.nodes[index].inputs.map { $0 == old ? "pixels" : $0 }
            }
        }
        try ONNXFormat().write(teacher, to: folder.appendingPathComponent("teacher.onnx"))
        #expect(try train(teacher: "teacher.onnx", context: context) == fromInput, "\(variant)")
        #expect(try train(teacher: "teacher.onnx", context: context) != (try train(teacher: "input", context: DigitsFixture.context(original: start))),
                "a different teacher trains differently")
        #expect {
            _ = try train(teacher: "missing.onnx", context: context)
        } throws: { error in
            (error as? NNPipeError)?.path == "stages[0].distill.teacher" && "\(error)".contains("missing.onnx")
        }
    }

    /// The digits MLP with a Reshape to [-1, 10] right after its Softmax (before the Identity to
    /// the 'probabilities' output): the same function, with the Softmax no longer at the output.
    static func reshapedAfterSoftmax(_ model: Model) throws -> Model {
        var model = model
        let softmax = try #require(model.graph.nodes.firstIndex { $0.opType == "Softmax" })
        let probabilities = model.graph.nodes[softmax].outputs[0]
        model.graph.nodes[softmax].outputs = ["softmax_output"]
        model.graph.initializers.append(Tensor(name: "class_rows", shape: [2], values: [Int64(-1), 10]))
        model.graph.nodes.insert(Node(name: "reshape_classes", opType: "Reshape", inputs: ["softmax_output", "class_rows"], outputs: [probabilities]), at: softmax + 1)
        return model
    }

    /// Cross-entropy of probabilities has the same gradient at the Softmax's input as that of
    /// logits (p - y), so a Softmax behind a Reshape must train as the stripped Softmax does;
    /// read as logits, its probabilities would train against softmax(p) and drift apart.
    @Test("a Softmax behind a Reshape trains as a Softmax at the output does")
    func softmaxBehindReshape() throws {
        let start = DigitsFixture.damaged(try DigitsFixture.model(), sparsity: 0.9)
        let reshaped = try Self.reshapedAfterSoftmax(start)
        #expect(try TrainingTarget(model: reshaped, loss: .crossEntropy).probabilities)
        #expect(try TrainingTarget(model: start, loss: .crossEntropy).strippedSoftmax)
        let stage = try DigitsFixture.stage(["dataset": .string("small"), "steps": .number(16), "lr": .number(0.05)])
        var direct = start
        var behind = reshaped
        _ = try stage.run(&direct, context: DigitsFixture.context())
        _ = try stage.run(&behind, context: DigitsFixture.context())
        var largest: Float = 0
        var moved: Float = 0
        for name in DigitsFixture.weightNames {
            for ((a, b), c) in zip(zip(DigitsFixture.weights(direct, name), DigitsFixture.weights(behind, name)), DigitsFixture.weights(start, name)) {
                largest = max(largest, abs(a - b))
                moved = max(moved, abs(a - c))
            }
        }
        #expect(moved > 0.01, "training moved the weights")
        #expect(largest < moved * 1e-3, "largest difference \(largest), largest step \(moved)")
        let accuracies = (start: try DigitsFixture.accuracy(start), direct: try DigitsFixture.accuracy(direct), behind: try DigitsFixture.accuracy(behind))
        #expect(abs(accuracies.behind - accuracies.direct) < 0.5 / 450, "\(accuracies)")
        #expect(accuracies.behind > accuracies.start + 0.2, "\(accuracies)")
        // Distillation needs the student's logits, which a reshaped Softmax no longer shows.
        let distilled = try DigitsFixture.stage(["dataset": .string("small"), "steps": .number(1), "distill": .object([])])
        var student = reshaped
        #expect { _ = try distilled.run(&student, context: DigitsFixture.context(original: start)) } throws: { error in
            (error as? NNPipeError)?.path == "stages[0].distill" && "\(error)".contains("'probabilities'")
        }
    }

    /// A teacher whose Softmax sits behind a Reshape gives log p as its logits, which differ from
    /// its real logits by one constant a row: distilling from it trains as from the original.
    @Test("a teacher with a Softmax behind a Reshape distils as the original does")
    func teacherBehindReshape() throws {
        let original = try DigitsFixture.model()
        let start = DigitsFixture.damaged(original, sparsity: 0.9)
        let folder = try TestEnvironment.temporaryFolder("teacher-reshaped")
        defer { try? FileManager.default.removeItem(at: folder) }
        try ONNXFormat().write(try Self.reshapedAfterSoftmax(original), to: folder.appendingPathComponent("reshaped.onnx"))
        var context = DigitsFixture.context(original: original)
        context.formats = FormatRegistry([ONNXFormat()])
        context.manifestDirectory = folder
        func train(teacher: String) throws -> [Float] {
            try Self.distilledWeights(start, teacher: teacher, steps: 8, alpha: 1, context: context)
        }
        let fromOriginal = try train(teacher: "input")
        let fromReshaped = try train(teacher: "reshaped.onnx")
        let before = DigitsFixture.weightNames.flatMap { DigitsFixture.weights(start, $0) }
        let moved = zip(fromOriginal, before).map { abs($0 - $1) }.max() ?? 0
        let largest = zip(fromOriginal, fromReshaped).map { abs($0 - $1) }.max() ?? 0
        #expect(moved > 0.01)
        #expect(largest < moved * 1e-3, "largest difference \(largest), largest step \(moved)")
    }

    /// A teacher with other classes than the student is named at its option, in one line,
    /// on the first batch rather than as a shape mismatch deep in the loss.
    @Test("a teacher with other classes fails at distill.teacher")
    func teacherWithOtherClasses() throws {
        var teacher = try DigitsFixture.model()
        let last = try #require(DigitsFixture.weightNames.last)
        for (position, tensor) in teacher.graph.initializers.enumerated() {
            guard let values = tensor.floatValues(), tensor.shape.last == 10 else { continue }
            // Keep the first 5 classes of the last layer's weights and bias.
            let rows = tensor.elementCount / 10
            let kept = (0..<rows).flatMap { row in values[(row * 10)..<(row * 10 + 5)] }
            teacher.graph.initializers[position] = Tensor(name: tensor.name, shape: Array(tensor.shape.dropLast()) + [5], values: Array(kept))
        }
        #expect(teacher.graph.initializer(named: last)?.shape.last == 5)
        let folder = try TestEnvironment.temporaryFolder("teacher-classes")
        defer { try? FileManager.default.removeItem(at: folder) }
        try ONNXFormat().write(teacher, to: folder.appendingPathComponent("five.onnx"))
        var context = DigitsFixture.context()
        context.formats = FormatRegistry([ONNXFormat()])
        context.manifestDirectory = folder
        var model = try DigitsFixture.model()
        let stage = try DigitsFixture.stage([
            "dataset": .string("small"), "steps": .number(2),
            "distill": .object([("teacher", .string("five.onnx"))]),
        ])
        #expect { _ = try stage.run(&model, context: context) } throws: { error in
            let failure = error as? NNPipeError
            return failure?.path == "stages[0].distill.teacher" && "\(error)".contains(", 5] differs") && !"\(error)".contains("\n")
        }
    }

    /// A label that is no class is the data's fault: the error names the data file, the data set
    /// and its labels key, for training and for validation data alike.
    @Test("a label outside the classes names its file, data set and key", arguments: ["dataset", "validation"])
    func labelOutsideTheClasses(role: String) throws {
        let folder = try TestEnvironment.temporaryFolder("finetune-labels")
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("bad.npz")
        let writer = NumpyArchiveWriter(url: data)
        try writer.append(Tensor(name: "x", shape: [4, 64], values: [Float](repeating: 0.5, count: 256)), as: "x")
        try writer.append(Tensor(name: "y", shape: [4], values: [Int64(1), 2, 12, 3]), as: "y")
        try writer.finish()
        var context = DigitsFixture.context()
        context.datasets["bad"] = DatasetSpecification(name: "bad", path: data, inputs: .single("x"), labels: "y")
        var options: [String: JSONValue] = ["dataset": .string("small"), "steps": .number(1)]
        options[role] = .string("bad")
        var model = try DigitsFixture.model()
        let stage = try DigitsFixture.stage(options)
        #expect { _ = try stage.run(&model, context: context) } throws: { error in
            let failure = error as? NNPipeError
            return failure?.path == data.path && failure?.message == "dataset 'bad', labels 'y': label 12 is not a class in 0..<10"
        }
    }

    @Test("distillation without an input model fails with the stage path")
    func distillationNeedsTeacher() throws {
        var model = try DigitsFixture.model()
        let stage = try DigitsFixture.stage(["dataset": .string("small"), "steps": .number(1), "distill": .object([])])
        #expect { _ = try stage.run(&model, context: DigitsFixture.context()) } throws: { error in
            (error as? NNPipeError)?.path == "stages[0]" && (error as? NNPipeError)?.code == .stageFailed
        }
    }
}
