import Foundation
import NNPipeCore

/// Softmax and LogSoftmax. Before opset 13 the input is coerced to 2-D at `axis` (the row is
/// every axis from `axis` on); from 13 the normalisation runs along the single axis.
final class SoftmaxOperator: DifferentiableOperator {
    let logarithmic: Bool
    let axis: Int
    let coerces: Bool

    init(node: Node, opset: Int, logarithmic: Bool) {
        self.logarithmic = logarithmic
        coerces = opset < 13
        axis = node.integer("axis", default: opset < 13 ? 1 : -1)
    }

    /// (outer, length, inner) of the normalised rows.
    private func layout(_ shape: [Int]) throws -> (Int, Int, Int) {
        let resolved = try normalizedAxis(axis, rank: shape.count)
        let outer = shape[..<resolved].reduce(1, *)
        if coerces { return (outer, shape[resolved...].reduce(1, *), 1) }
        return (outer, shape[resolved], shape[(resolved + 1)...].reduce(1, *))
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let input = try required(inputs, 0, "input")
        let (outer, length, inner) = try layout(input.shape)
        var output = input
        output.values.withUnsafeMutableBufferPointer { values in
            for block in 0..<outer {
                for position in 0..<inner {
                    let base = block * length * inner + position
                    var largest = -Float.infinity
                    for index in 0..<length { largest = max(largest, values[base + index * inner]) }
                    var sum: Float = 0
                    for index in 0..<length { sum += exp(values[base + index * inner] - largest) }
                    let logSum = log(sum) + largest
                    for index in 0..<length {
                        let shifted = values[base + index * inner] - logSum
                        values[base + index * inner] = logarithmic ? shifted : exp(shifted)
                    }
                }
            }
        }
        return [output]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let output = outputs[0]
        let (outer, length, inner) = try layout(output.shape)
        var result = gradient(outputGradients, 0, like: output)
        result.values.withUnsafeMutableBufferPointer { values in
            output.values.withUnsafeBufferPointer { y in
                for block in 0..<outer {
                    for position in 0..<inner {
                        let base = block * length * inner + position
                        var sum: Float = 0
                        if logarithmic {
                            // d/dx log softmax: g - softmax · Σg
                            for index in 0..<length { sum += values[base + index * inner] }
                            for index in 0..<length {
                                values[base + index * inner] -= exp(y[base + index * inner]) * sum
                            }
                        } else {
                            // d/dx softmax: y · (g - Σ g·y)
                            for index in 0..<length { sum += values[base + index * inner] * y[base + index * inner] }
                            for index in 0..<length {
                                values[base + index * inner] = y[base + index * inner] * (values[base + index * inner] - sum)
                            }
                        }
                    }
                }
            }
        }
        return [result]
    }
}
