import Foundation
import NNPipeCore
import Testing

@testable import NNPipeTraining
@testable import StageFineTune

@Suite("Schedules, optimisers, losses")
struct TrainingPartsTests {
    @Test("learning-rate schedules with warm-up", arguments: [
        (LearningRateSchedule.Kind.constant, 0, 0, 0.1),
        (.constant, 2, 0, 0.1 / 3),  // warm-up: step 0 of 3 runs at a third of the rate
        (.constant, 2, 2, 0.1),
        (.step, 0, 9, 0.1),
        (.step, 0, 10, 0.01),
        (.step, 0, 25, 0.001),
        (.cosine, 0, 0, 0.1),
        (.cosine, 0, 50, 0.05),
        (.cosine, 10, 55, 0.05),
        (.cosine, 0, 100, 0),
    ])
    func learningRates(kind: LearningRateSchedule.Kind, warmup: Int, step: Int, expected: Double) {
        let schedule = LearningRateSchedule(kind: kind, baseRate: 0.1, warmupSteps: warmup == 2 ? 3 : warmup, stepSize: 10, gamma: 0.1, totalSteps: 100)
        #expect(abs(schedule.rate(at: step) - expected) < 1e-12)
    }

    @Test("polynomial sparsity matches tfmot's reference values", arguments: [
        (0, 0.0, true), (250, 0.520312, true), (500, 0.7875, true), (1000, 0.9, true), (1500, 0.9, false), (260, 0.535298, false),
    ])
    func sparsitySchedule(step: Int, sparsity: Double, prunes: Bool) {
        let schedule = SparsitySchedule(kind: .polynomial, initialSparsity: 0, finalSparsity: 0.9, beginStep: 0, endStep: 1000, frequency: 50)
        #expect(abs(schedule.sparsity(at: step) - sparsity) < 1e-4)
        #expect(schedule.prunes(at: step) == prunes)
    }

    @Test("magnitude masks prune the exact count; ties go to the lower index")
    func magnitudeMask() {
        let mask = MagnitudeMask.mask(for: [0.5, -0.1, 0.1, 0.3, -0.2, 0.1], sparsity: 1.0 / 3)
        #expect(mask == [1, 0, 0, 1, 1, 1])
    }

    /// One step on w = [1, -2] with gradient g = [0.5, 0.5], rate 0.1, checked by hand.
    @Test("one optimiser step", arguments: [
        ("sgd", Optimizer(kind: .sgd, momentum: 0), [0.95, -2.05]),
        ("sgd weight decay", Optimizer(kind: .sgd, momentum: 0, weightDecay: 0.1), [0.94, -2.03]),
        ("sgd nesterov", Optimizer(kind: .sgd, momentum: 0.9, nesterov: true), [0.905, -2.095]),
        ("adam", Optimizer(kind: .adam), [0.9, -2.1]),
        ("adamw", Optimizer(kind: .adamw, weightDecay: 0.1), [0.89, -2.08]),
    ])
    func optimizerStep(name: String, optimizer: Optimizer, expected: [Float]) {
        var optimizer = optimizer
        var weights: [Float] = [1, -2]
        optimizer.beginStep()
        optimizer.update("w", parameter: &weights, gradient: [0.5, 0.5], rate: 0.1)
        for (value, wanted) in zip(weights, expected) { #expect(abs(value - wanted) < 1e-5, "\(name): \(weights)") }
    }

    @Test("cross-entropy from logits equals −log of the softmax probability; stable for huge logits")
    func crossEntropy() throws {
        let logits = TrainingTensor(shape: [2, 3], values: [1, 2, 3, 1000, 0, -1000])
        let result = try Losses.crossEntropy(logits: logits, labels: [2, 0])
        let expected = -log(exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0))) / 2
        #expect(abs(result.value - expected) < 1e-5)
        #expect(result.gradient.values.allSatisfy { $0.isFinite })
        let rowSums = [result.gradient.values[0..<3].reduce(0, +), result.gradient.values[3..<6].reduce(0, +)]
        #expect(rowSums.allSatisfy { abs($0) < 1e-6 })
    }

    /// Through the Softmax's backward pass, cross-entropy of probabilities must give the logits
    /// the same gradient p - y as cross-entropy of logits, also for a label the model all but
    /// rules out (p = e^-30 here, far below the 1e-7 a loss might floor p at).
    @Test("probability cross-entropy through Softmax equals logit cross-entropy", arguments: [
        [Float(0.3), -0.2, 0.9], [0, 15, 30], [-30, 0, 0],
    ])
    func probabilityCrossEntropy(row: [Float]) throws {
        let logits = TrainingTensor(shape: [1, 3], values: row)
        let largest = row.max()!
        let sum = row.reduce(Float(0)) { $0 + exp($1 - largest) }
        let probabilities = TrainingTensor(shape: [1, 3], values: row.map { exp($0 - largest) / sum })
        let fromProbabilities = try Losses.crossEntropy(probabilities: probabilities, labels: [0])
        let fromLogits = try Losses.crossEntropy(logits: logits, labels: [0])
        #expect(abs(fromProbabilities.value - fromLogits.value) < 1e-4 * max(1, fromLogits.value))
        let g = fromProbabilities.gradient.values
        let p = probabilities.values
        let dot = zip(g, p).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        for column in 0..<3 {
            let chained = p[column] * (g[column] - dot)  // Softmax's Jacobian-vector product
            #expect(abs(chained - fromLogits.gradient.values[column]) < 1e-5, "column \(column): \(chained) vs \(fromLogits.gradient.values[column])")
        }
    }

    @Test("distillation gradient matches finite differences")
    func distillationGradient() throws {
        let teacher = TrainingTensor(shape: [2, 3], values: [2, 0.5, -1, 0, 1, 3])
        var student = TrainingTensor(shape: [2, 3], values: [0.3, -0.2, 0.9, 1.5, 0.1, -0.4])
        let analytic = try Losses.distillation(student: student, teacher: teacher, temperature: 2, alpha: 0.7).gradient
        for index in 0..<student.elementCount {
            let original = student.values[index]
            student.values[index] = original + 1e-2
            let up = try Losses.distillation(student: student, teacher: teacher, temperature: 2, alpha: 0.7).value
            student.values[index] = original - 1e-2
            let down = try Losses.distillation(student: student, teacher: teacher, temperature: 2, alpha: 0.7).value
            student.values[index] = original
            #expect(abs((up - down) / 2e-2 - Double(analytic.values[index])) < 1e-3)
        }
        let same = try Losses.distillation(student: teacher, teacher: teacher, temperature: 2, alpha: 0.7)
        #expect(abs(same.value) < 1e-6, "KL of a distribution with itself is 0")
    }

    @Test("dropout: seeded mask, inverted scaling, gradient through the kept elements only")
    func dropout() throws {
        let node = Node(opType: "Dropout", inputs: ["x"], outputs: ["y"], attributes: [.float("ratio", 0.25)])
        let input = TrainingTensor(shape: [4000], values: [Float](repeating: 1, count: 4000))
        let first = DropoutOperator(node: node, seed: 5)
        let output = try first.forward([input], phase: .training)[0]
        let dropped = Double(output.values.filter { $0 == 0 }.count) / 4000
        #expect(abs(dropped - 0.25) < 0.03)
        #expect(output.values.allSatisfy { $0 == 0 || abs($0 - 4 / 3) < 1e-6 })
        let gradient = try #require(try first.backward([input], inputs: [input], outputs: [output])[0])
        #expect(gradient.values == output.values)
        #expect(try DropoutOperator(node: node, seed: 5).forward([input], phase: .training)[0] == output)
        #expect(try DropoutOperator(node: node, seed: 5).forward([input], phase: .inference)[0] == input)
    }

    @Test("QuantizeLinear → DequantizeLinear: straight-through gradient inside the grid, zero outside")
    func fakeQuantizationNode() throws {
        let quantize = Node(opType: "QuantizeLinear", inputs: ["x", "s", "z"], outputs: ["q"])
        let dequantize = Node(opType: "DequantizeLinear", inputs: ["q", "s", "z"], outputs: ["y"])
        let x = TrainingTensor(shape: [5], values: [-2, -0.26, 0.1, 0.24, 3])
        let scale = TrainingTensor(shape: [], values: [0.01])
        let zero = TrainingTensor(shape: [], values: [0])
        let q = QuantizeLinearOperator(node: quantize, dequantize: false, zeroPointType: .int8)
        let dq = QuantizeLinearOperator(node: dequantize, dequantize: true, zeroPointType: .int8)
        let levels = try q.forward([x, scale, zero], phase: .training)[0]
        let y = try dq.forward([levels, scale, zero], phase: .training)[0]
        #expect(levels.values == [-128, -26, 10, 24, 127])
        #expect(zip(y.values, [-1.28, -0.26, 0.1, 0.24, 1.27]).allSatisfy { abs($0 - $1) < 1e-6 })
        let ones = TrainingTensor(shape: [5], values: [1, 1, 1, 1, 1])
        let throughDequantize = try #require(try dq.backward([ones], inputs: [levels, scale, zero], outputs: [y])[0])
        let throughQuantize = try #require(try q.backward([throughDequantize], inputs: [x, scale, zero], outputs: [levels])[0])
        #expect(zip(throughQuantize.values, [0, 1, 1, 1, 0]).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("per-channel symmetric weight fake quantisation keeps zeros and each channel's largest weight")
    func weightFakeQuantization() {
        let weights = TrainingTensor(shape: [2, 3], values: [0.5, 0, -0.1234, 2, 1, -0.003])
        let quantized = FakeQuantization.weights(weights, axis: 0)
        #expect(quantized.values[1] == 0)
        #expect(quantized.values[0] == 0.5 && quantized.values[3] == 2)
        #expect(abs(quantized.values[2] - (-0.1234)) <= 0.5 / 127 / 2 + 1e-7)
    }

    @Test("freeze patterns", arguments: [
        ("dense", "dense", true), ("dense*", "dense.weight", true), ("*weight", "conv.weight", true),
        ("conv*bias", "conv1.bias", true), ("conv*bias", "conv1.weight", false), ("dense", "dense1", false), ("*", "anything", true),
    ])
    func patterns(pattern: String, name: String, matches: Bool) {
        #expect(NamePattern.matches(name, pattern: pattern) == matches)
    }

    @Test("progress reports epoch, loss and samples/s")
    func progress() throws {
        let lines = Lines()
        var model = try DigitsFixture.model()
        let stage = try DigitsFixture.stage(["dataset": .string("small"), "steps": .number(3)])
        _ = try stage.run(&model, context: DigitsFixture.context(progress: ProgressReporter { lines.append($0.message) }))
        let last = try #require(lines.all.last)
        #expect(last.hasPrefix("epoch 1/1 step 3/3 loss "))
        #expect(last.hasSuffix("samples/s"))
    }
}

final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ line: String) { lock.withLock { storage.append(line) } }
    var all: [String] { lock.withLock { storage } }
}
