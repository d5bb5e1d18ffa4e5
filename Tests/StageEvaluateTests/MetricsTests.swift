import NNPipeCore
import Testing

@testable import StageEvaluate

@Suite("Evaluation metrics")
struct MetricsTests {
    // Four samples of three classes; sample 2 ties classes 0 and 2.
    static let scores: [Float] = [
        0.1, 0.7, 0.2,
        0.5, 0.3, 0.2,
        0.4, 0.2, 0.4,
        0.3, 0.3, 0.4,
    ]

    @Test("top-k accuracy from class ids", arguments: [
        (labels: [1, 0, 0, 2], top1: 1.0, top2: 1.0),
        (labels: [1, 0, 2, 2], top1: 0.75, top2: 1.0),  // tie: the lower index wins top-1, as argmax
        (labels: [0, 1, 1, 0], top1: 0.0, top2: 0.5),
    ])
    func topK(labels: [Int], top1: Double, top2: Double) throws {
        var accuracy = AccuracyAccumulator(topK: [1, 2])
        try accuracy.add(scores: Self.scores, classCount: 3, labels: labels)
        #expect(accuracy.accuracy(topK: 1) == top1)
        #expect(accuracy.accuracy(topK: 2) == top2)
        #expect(accuracy.accuracy(topK: 5) == nil)
    }

    @Test("batch-by-batch accumulation equals one pass")
    func accumulation() throws {
        var whole = AccuracyAccumulator()
        try whole.add(scores: Self.scores, classCount: 3, labels: [1, 0, 2, 0])
        var batched = AccuracyAccumulator()
        try batched.add(scores: Array(Self.scores[0..<6]), classCount: 3, labels: [1, 0])
        try batched.add(scores: Array(Self.scores[6...]), classCount: 3, labels: [2, 0])
        #expect(whole == batched)
        #expect(batched.sampleCount == 4)
    }

    @Test("one-hot labels, integer and float class-id tensors agree")
    func labelForms() throws {
        let outputs = Tensor(name: "probs", shape: [4, 3], values: Self.scores)
        let forms: [Tensor] = [
            Tensor(name: "y", shape: [4], values: [Int64(1), 0, 0, 2]),
            Tensor(name: "y", shape: [4, 1], values: [UInt8(1), 0, 0, 2]),
            Tensor(name: "y", shape: [4], values: [Float(1), 0, 0, 2]),
            Tensor(name: "y", shape: [4, 3], values: [Float(0), 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1]),
        ]
        for labels in forms {
            var metrics = MetricsAccumulator()
            try metrics.addAccuracy(outputs: outputs, labels: labels)
            #expect(metrics.accuracy.accuracy() == 1.0, "\(labels.shape) \(labels.dataType)")
        }
    }

    @Test("a single sigmoid column is a binary classifier with threshold 0.5", arguments: [[4], [4, 1]])
    func binary(shape: [Int]) throws {
        var metrics = MetricsAccumulator()
        try metrics.addAccuracy(
            outputs: Tensor(name: "p", shape: shape, values: [Float(0.9), 0.2, 0.6, 0.5]),
            labels: Tensor(name: "y", shape: [4], values: [Int64(1), 0, 0, 1]))
        #expect(metrics.accuracy.accuracy() == 0.5)  // 0.6 -> 1 (wrong), 0.5 -> 0 (wrong)
    }

    @Test("bad labels are errors, not wrong numbers", arguments: [
        ([3, 0, 0, 0], "label 3 of sample 0 is not a class in 0..<3"),
        ([-1, 0, 0, 0], "label -1 of sample 0"),
    ])
    func badLabels(labels: [Int], message: String) {
        var accuracy = AccuracyAccumulator()
        do {
            try accuracy.add(scores: Self.scores, classCount: 3, labels: labels)
            Issue.record("expected an error")
        } catch let error as NNPipeError {
            #expect(error.description.contains(message))
        } catch { Issue.record("\(error)") }
    }

    @Test("labels that fit neither form are refused")
    func labelShape() {
        var metrics = MetricsAccumulator()
        #expect(throws: NNPipeError.self) {
            try metrics.addAccuracy(
                outputs: Tensor(name: "p", shape: [4, 3], values: Self.scores),
                labels: Tensor(name: "y", shape: [3], values: [Int64(0), 1, 2]))
        }
        #expect(throws: NNPipeError.self) {
            try metrics.addAccuracy(
                outputs: Tensor(name: "p", shape: [4, 3], values: Self.scores),
                labels: Tensor(name: "y", shape: [4], values: [Float(0.5), 1, 2, 0]))
        }
    }

    @Test("mean squared error", arguments: [
        (predictions: [Float(1), 2, 3], targets: [Float(1), 2, 3], expected: 0.0),
        (predictions: [1, 2, 3], targets: [2, 2, 1], expected: 5.0 / 3.0),
        (predictions: [0.5], targets: [-0.5], expected: 1.0),
    ])
    func meanSquaredError(predictions: [Float], targets: [Float], expected: Double) throws {
        var error = MeanSquaredErrorAccumulator()
        #expect(error.value == nil)
        try error.add(predictions: predictions, targets: targets)
        let value = try #require(error.value)
        #expect(abs(value - expected) < 1e-12)
    }

    @Test("fidelity: max abs difference, cosine similarity, argmax agreement")
    func fidelity() throws {
        var fidelity = FidelityAccumulator()
        try fidelity.add(
            outputs: [1, 0, 0, 0, 2, 0, 0, 0, 0],
            reference: [2, 0, 0, 0, 1.5, 0.5, 0, 0, 0],
            rowLength: 3)
        #expect(fidelity.sampleCount == 3)
        #expect(fidelity.maximumAbsoluteDifference == 1)
        let cosine = try #require(fidelity.cosineSimilarity)
        let secondRow = (2 * 1.5) / (2 * (1.5 * 1.5 + 0.25).squareRoot())
        #expect(abs(cosine - (1 + secondRow + 1) / 3) < 1e-9)
        #expect(fidelity.argmaxAgreement == 1)

        try fidelity.add(outputs: [0, 1, 0], reference: [1, 0, 0], rowLength: 3)
        #expect(fidelity.argmaxAgreement == 0.75)
    }

    @Test("NaN on one side is an infinite difference; on both sides it agrees")
    func fidelityNaN() throws {
        var both = FidelityAccumulator()
        try both.add(outputs: [.nan, 1], reference: [.nan, 1], rowLength: 2)
        #expect(both.maximumAbsoluteDifference == 0)
        var one = FidelityAccumulator()
        try one.add(outputs: [.nan, 1], reference: [0, 1], rowLength: 2)
        #expect(one.maximumAbsoluteDifference == .infinity)
    }

    @Test("fidelity and MSE over tensors check shapes")
    func tensorForms() throws {
        var metrics = MetricsAccumulator()
        let outputs = Tensor(name: "y", shape: [2, 2], values: [Float(1), 2, 3, 4])
        try metrics.addFidelity(outputs: outputs, reference: Tensor(name: "r", shape: [2, 2], values: [Float(1), 2, 3, 5]))
        try metrics.addMeanSquaredError(outputs: outputs, targets: Tensor(name: "t", shape: [2, 2], values: [Float(1), 2, 3, 6]))
        #expect(metrics.fidelity.maximumAbsoluteDifference == 1)
        #expect(metrics.meanSquaredError.value == 1)
        #expect(throws: NNPipeError.self) {
            try metrics.addFidelity(outputs: outputs, reference: Tensor(name: "r", shape: [4], values: [Float(1), 2, 3, 4]))
        }
    }

    @Test("argmax takes the first maximum and skips NaN")
    func argmax() {
        #expect(Metrics.argmax([Float(1), 3, 3]) == 1)
        #expect(Metrics.argmax([Float.nan, 2, 1]) == 1)
        #expect(Metrics.argmaxRows([0, 1, 1, 0], rowLength: 2) == [1, 0])
    }
}
