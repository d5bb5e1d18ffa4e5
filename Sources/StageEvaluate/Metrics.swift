import NNPipeCore

/// Evaluation metrics as pure computations over float arrays, accumulated batch by batch so a
/// data set of any size is scored in one pass with constant memory.
///
/// Sums are kept in `Double`: a million float32 squared errors summed in `Float` lose digits
/// that matter when comparing two runtimes.

/// Top-k classification accuracy from scores (logits or probabilities) `[N, C]`.
public struct AccuracyAccumulator: Sendable, Equatable {
    /// The k values counted, e.g. `[1, 5]`.
    public let topK: [Int]
    public private(set) var sampleCount = 0
    private var correct: [Int]

    public init(topK: [Int] = [1]) {
        precondition(!topK.isEmpty && topK.allSatisfy { $0 >= 1 }, "top-k values must be at least 1")
        self.topK = topK
        correct = Array(repeating: 0, count: topK.count)
    }

    /// Adds `labels.count` samples whose scores are the rows of `scores` (`labels.count * classCount`).
    ///
    /// A label counts as within the top k when fewer than k classes rank above it; a class ranks
    /// above when its score is greater, or equal with a lower index (so top-1 agrees with argmax).
    public mutating func add(scores: [Float], classCount: Int, labels: [Int]) throws {
        guard classCount >= 1, scores.count == labels.count * classCount else {
            throw NNPipeError(
                .invalidData,
                "accuracy needs \(labels.count) rows of \(classCount) scores, got \(scores.count) values")
        }
        for (row, label) in labels.enumerated() {
            guard (0..<classCount).contains(label) else {
                throw NNPipeError(
                    .invalidData, "label \(label) of sample \(sampleCount + row) is not a class in 0..<\(classCount)")
            }
            let base = row * classCount
            let target = scores[base + label]
            var rank = 0
            if target.isNaN {
                rank = classCount
            } else {
                for index in 0..<classCount where index != label {
                    let score = scores[base + index]
                    if score > target || (score == target && index < label) { rank += 1 }
                }
            }
            for (position, k) in topK.enumerated() where rank < k { correct[position] += 1 }
        }
        sampleCount += labels.count
    }

    /// Adds samples whose labels are one-hot (or probability) rows: the label is each row's argmax.
    public mutating func add(scores: [Float], classCount: Int, oneHotLabels: [Float]) throws {
        guard classCount >= 1, oneHotLabels.count % classCount == 0 else {
            throw NNPipeError(
                .invalidData, "one-hot labels have \(oneHotLabels.count) values, not rows of \(classCount)")
        }
        try add(scores: scores, classCount: classCount, labels: Metrics.argmaxRows(oneHotLabels, rowLength: classCount))
    }

    /// Fraction of samples with the label in the top `k` (nil before any sample or for an uncounted k).
    public func accuracy(topK k: Int = 1) -> Double? {
        guard sampleCount > 0, let position = topK.firstIndex(of: k) else { return nil }
        return Double(correct[position]) / Double(sampleCount)
    }
}

/// Mean squared error between predictions and targets of the same length.
public struct MeanSquaredErrorAccumulator: Sendable, Equatable {
    public private(set) var elementCount = 0
    private var sum: Double = 0

    public init() {}

    public mutating func add(predictions: [Float], targets: [Float]) throws {
        guard predictions.count == targets.count else {
            throw NNPipeError(
                .invalidData, "mean squared error needs equal lengths, got \(predictions.count) and \(targets.count)")
        }
        for (prediction, target) in zip(predictions, targets) {
            let difference = Double(prediction) - Double(target)
            sum += difference * difference
        }
        elementCount += predictions.count
    }

    public var value: Double? { elementCount > 0 ? sum / Double(elementCount) : nil }
}

/// Agreement of a model's outputs with reference outputs (another model or runtime) `[N, D]`.
public struct FidelityAccumulator: Sendable, Equatable {
    public private(set) var sampleCount = 0
    /// Largest |output - reference| seen. A NaN on one side only counts as infinity; NaN on both as equal.
    public private(set) var maximumAbsoluteDifference: Double = 0
    private var cosineSum: Double = 0
    private var argmaxMatches = 0

    public init() {}

    /// Adds rows of `rowLength` values from both sides.
    public mutating func add(outputs: [Float], reference: [Float], rowLength: Int) throws {
        guard outputs.count == reference.count, rowLength >= 1, outputs.count % rowLength == 0 else {
            throw NNPipeError(
                .invalidData,
                "fidelity needs outputs and reference of the same shape (rows of \(rowLength)), got \(outputs.count) and \(reference.count) values")
        }
        let rows = outputs.count / rowLength
        for row in 0..<rows {
            let range = (row * rowLength)..<((row + 1) * rowLength)
            var dot: Double = 0
            var outputNorm: Double = 0
            var referenceNorm: Double = 0
            for index in range {
                let output = Double(outputs[index])
                let expected = Double(reference[index])
                let difference: Double =
                    output.isNaN && expected.isNaN ? 0 : (output.isNaN || expected.isNaN ? .infinity : abs(output - expected))
                maximumAbsoluteDifference = max(maximumAbsoluteDifference, difference)
                dot += output * expected
                outputNorm += output * output
                referenceNorm += expected * expected
            }
            // Two all-zero rows agree perfectly; one all-zero row shares no direction with the other.
            if outputNorm == 0 && referenceNorm == 0 {
                cosineSum += 1
            } else if outputNorm > 0 && referenceNorm > 0 {
                cosineSum += dot / (outputNorm.squareRoot() * referenceNorm.squareRoot())
            }
            if Metrics.argmax(outputs[range]) == Metrics.argmax(reference[range]) { argmaxMatches += 1 }
        }
        sampleCount += rows
    }

    /// Mean over samples of the cosine similarity of each output row with its reference row.
    public var cosineSimilarity: Double? { sampleCount > 0 ? cosineSum / Double(sampleCount) : nil }
    /// Fraction of samples whose argmax is the same on both sides.
    public var argmaxAgreement: Double? { sampleCount > 0 ? Double(argmaxMatches) / Double(sampleCount) : nil }
}

/// Batch-by-batch evaluation of one model output: accuracy against labels, mean squared error
/// against labels of the output's shape, and fidelity against reference outputs. Each part is
/// only fed when its data is given.
public struct MetricsAccumulator: Sendable, Equatable {
    public var accuracy: AccuracyAccumulator
    public var meanSquaredError = MeanSquaredErrorAccumulator()
    public var fidelity = FidelityAccumulator()

    public init(topK: [Int] = [1]) {
        accuracy = AccuracyAccumulator(topK: topK)
    }

    /// Scores accuracy of `outputs` `[N, C]` against `labels`: class ids `[N]`/`[N, 1]` of any
    /// numeric type, or one-hot rows `[N, C]`.
    ///
    /// A single score per sample (`[N]` or `[N, 1]`, a sigmoid output) is a binary classifier:
    /// it is scored as the two classes `[1 - p, p]`, so class 1 wins above 0.5.
    public mutating func addAccuracy(outputs: Tensor, labels: Tensor) throws {
        var (scores, classCount) = try Metrics.rows(of: outputs, role: "output '\(outputs.name)'")
        if classCount == 1 {
            scores = scores.flatMap { [1 - $0, $0] }
            classCount = 2
        }
        let sampleCount = outputs.shape.first ?? 1
        if labels.shape == outputs.shape, outputs.shape.count >= 2, outputs.shape.last! > 1 {
            try accuracy.add(scores: scores, classCount: classCount, oneHotLabels: try Metrics.floats(labels, role: "labels"))
            return
        }
        guard labels.elementCount == sampleCount else {
            throw NNPipeError(
                .invalidData,
                "labels shape \(labels.shape) fits neither class ids [\(sampleCount)] nor one-hot \(outputs.shape)")
        }
        let ids: [Int]
        if let integers = labels.integerValues() {
            ids = integers.map { Int(clamping: $0) }
        } else {
            let values = try Metrics.floats(labels, role: "labels")
            guard values.allSatisfy({ $0.rounded() == $0 }) else {
                throw NNPipeError(.invalidData, "float labels of shape \(labels.shape) are not whole class ids")
            }
            ids = values.map { Int($0) }
        }
        try accuracy.add(scores: scores, classCount: classCount, labels: ids)
    }

    /// Adds squared errors of `outputs` against `targets` of the same element count.
    public mutating func addMeanSquaredError(outputs: Tensor, targets: Tensor) throws {
        try meanSquaredError.add(
            predictions: try Metrics.floats(outputs, role: "output '\(outputs.name)'"),
            targets: try Metrics.floats(targets, role: "targets"))
    }

    /// Compares `outputs` with `reference` of the same shape, row by row along the first axis.
    public mutating func addFidelity(outputs: Tensor, reference: Tensor) throws {
        guard outputs.shape == reference.shape else {
            throw NNPipeError(
                .invalidData, "output '\(outputs.name)' shape \(outputs.shape) differs from reference \(reference.shape)")
        }
        let (values, rowLength) = try Metrics.rows(of: outputs, role: "output '\(outputs.name)'")
        try fidelity.add(outputs: values, reference: try Metrics.floats(reference, role: "reference"), rowLength: rowLength)
    }
}

/// Helpers shared by the accumulators.
public enum Metrics {
    /// Index of the first largest value (NaN never wins); 0 for an empty slice.
    public static func argmax<Values: Collection>(_ values: Values) -> Int where Values.Element == Float {
        var best = 0
        var bestValue = -Float.infinity
        var found = false
        for (offset, value) in values.enumerated() where !value.isNaN {
            if !found || value > bestValue {
                best = offset
                bestValue = value
                found = true
            }
        }
        return best
    }

    /// Argmax of each row of `rowLength` values.
    public static func argmaxRows(_ values: [Float], rowLength: Int) -> [Int] {
        stride(from: 0, to: values.count, by: rowLength).map { argmax(values[$0..<min($0 + rowLength, values.count)]) }
    }

    static func floats(_ tensor: Tensor, role: String) throws -> [Float] {
        guard let values = tensor.floatValues() else {
            throw NNPipeError(.invalidData, "\(role) of type \(tensor.dataType) is not numeric")
        }
        return values
    }

    /// Values and row length with the first axis as samples (a rank-0/1 tensor is one value per sample).
    static func rows(of tensor: Tensor, role: String) throws -> ([Float], Int) {
        let values = try floats(tensor, role: role)
        let rowLength = tensor.shape.count >= 2 ? tensor.shape.dropFirst().reduce(1, *) : 1
        return (values, max(rowLength, 1))
    }
}
