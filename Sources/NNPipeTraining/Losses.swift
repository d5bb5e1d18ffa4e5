import Foundation
import NNPipeCore

/// A loss value for a batch and its gradient at the model output, averaged over samples.
public struct LossResult: Sendable {
    public var value: Double
    public var gradient: TrainingTensor
}

public enum Losses {
    /// Softmax cross-entropy of logits `[N, C]` against class ids, computed through
    /// log-softmax so large logits neither overflow nor lose the gradient.
    public static func crossEntropy(logits: TrainingTensor, labels: [Int]) throws -> LossResult {
        let (rows, classes) = try matrix(logits, rows: labels.count)
        var gradient = logits
        var total: Double = 0
        for row in 0..<rows {
            let label = labels[row]
            guard (0..<classes).contains(label) else {
                throw NNPipeError(.invalidData, "label \(label) is not a class in 0..<\(classes)")
            }
            let logSoftmax = logSoftmaxRow(logits.values, row: row, classes: classes)
            total -= Double(logSoftmax[label])
            for column in 0..<classes {
                let probability = exp(logSoftmax[column])
                gradient.values[row * classes + column] = (probability - (column == label ? 1 : 0)) / Float(rows)
            }
        }
        return LossResult(value: total / Double(rows), gradient: gradient)
    }

    /// Cross-entropy of probabilities `[N, C]` (a model output after its own Softmax): −log p[label],
    /// with p clamped away from 0 so the loss stays finite. The floor is the smallest normal float,
    /// not a "small" 1e-7: through the Softmax's backward pass p·(−1/p) gives logits the same −1 as
    /// log-softmax does for any p above it, where a larger floor would shrink the gradient of
    /// exactly the samples the model gets most wrong.
    public static func crossEntropy(probabilities: TrainingTensor, labels: [Int]) throws -> LossResult {
        let (rows, classes) = try matrix(probabilities, rows: labels.count)
        var gradient = TrainingTensor(zeros: probabilities.shape)
        var total: Double = 0
        let floor = Float.leastNormalMagnitude
        for row in 0..<rows {
            let label = labels[row]
            guard (0..<classes).contains(label) else {
                throw NNPipeError(.invalidData, "label \(label) is not a class in 0..<\(classes)")
            }
            let probability = max(probabilities.values[row * classes + label], floor)
            total -= Double(log(probability))
            gradient.values[row * classes + label] = -1 / (probability * Float(rows))
        }
        return LossResult(value: total / Double(rows), gradient: gradient)
    }

    /// Mean squared error over every element: mean((y − t)²).
    public static func meanSquaredError(outputs: TrainingTensor, targets: [Float]) throws -> LossResult {
        guard outputs.elementCount == targets.count else {
            throw NNPipeError(.invalidData, "mse needs targets of \(outputs.elementCount) values (output \(outputs.shape)), got \(targets.count)")
        }
        var gradient = outputs
        var total: Double = 0
        let count = Float(max(targets.count, 1))
        for index in 0..<targets.count {
            let difference = outputs.values[index] - targets[index]
            total += Double(difference * difference)
            gradient.values[index] = 2 * difference / count
        }
        return LossResult(value: total / Double(count), gradient: gradient)
    }

    /// Distillation term alpha·T²·KL(softmax(teacher/T) ‖ softmax(student/T)), mean over samples,
    /// with its gradient at the student's logits: alpha·T·(softmax(student/T) − softmax(teacher/T)) / N.
    public static func distillation(student: TrainingTensor, teacher: TrainingTensor, temperature: Float, alpha: Float) throws -> LossResult {
        guard student.shape == teacher.shape else {
            throw NNPipeError(.invalidData, "teacher output \(teacher.shape) differs from student output \(student.shape)")
        }
        let (rows, classes) = try matrix(student, rows: student.shape.first ?? 1)
        let scaledStudent = student.values.map { $0 / temperature }
        let scaledTeacher = teacher.values.map { $0 / temperature }
        var gradient = student
        var total: Double = 0
        for row in 0..<rows {
            let logStudent = logSoftmaxRow(scaledStudent, row: row, classes: classes)
            let logTeacher = logSoftmaxRow(scaledTeacher, row: row, classes: classes)
            for column in 0..<classes {
                let teacherProbability = exp(logTeacher[column])
                total += Double(teacherProbability * (logTeacher[column] - logStudent[column]))
                gradient.values[row * classes + column] =
                    alpha * temperature * (exp(logStudent[column]) - teacherProbability) / Float(rows)
            }
        }
        return LossResult(value: Double(alpha * temperature * temperature) * total / Double(rows), gradient: gradient)
    }

    /// The output as `rows` rows: its first axis is the batch, the rest one row of scores.
    private static func matrix(_ tensor: TrainingTensor, rows: Int) throws -> (Int, Int) {
        guard rows > 0, tensor.elementCount % rows == 0, tensor.shape.first == rows else {
            throw NNPipeError(.invalidData, "output \(tensor.shape) does not have one row per label (\(rows) labels)")
        }
        return (rows, tensor.elementCount / rows)
    }

    static func logSoftmaxRow(_ values: [Float], row: Int, classes: Int) -> [Float] {
        let slice = values[(row * classes)..<((row + 1) * classes)]
        let largest = slice.max() ?? 0
        let logSum = log(slice.reduce(Float(0)) { $0 + exp($1 - largest) }) + largest
        return slice.map { $0 - logSum }
    }
}
