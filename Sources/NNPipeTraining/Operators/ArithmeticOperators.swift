import Foundation
import NNPipeCore

/// Add, Sub, Mul and Div with numpy broadcasting; gradients are summed back over broadcast axes.
final class BinaryArithmeticOperator: DifferentiableOperator {
    enum Kind { case add, subtract, multiply, divide }
    let kind: Kind
    private var pair: BroadcastPair?

    init(_ kind: Kind) { self.kind = kind }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let first = try required(inputs, 0, "A")
        let second = try required(inputs, 1, "B")
        let pair = try BroadcastPair(first.shape, second.shape)
        self.pair = pair
        var output = [Float](repeating: 0, count: pair.outputShape.reduce(1, *))
        output.withUnsafeMutableBufferPointer { result in
            first.values.withUnsafeBufferPointer { a in
                second.values.withUnsafeBufferPointer { b in
                    pair.firstIndices.withUnsafeBufferPointer { ia in
                        pair.secondIndices.withUnsafeBufferPointer { ib in
                            switch kind {
                            case .add: for i in 0..<result.count { result[i] = a[ia[i]] + b[ib[i]] }
                            case .subtract: for i in 0..<result.count { result[i] = a[ia[i]] - b[ib[i]] }
                            case .multiply: for i in 0..<result.count { result[i] = a[ia[i]] * b[ib[i]] }
                            case .divide: for i in 0..<result.count { result[i] = a[ia[i]] / b[ib[i]] }
                            }
                        }
                    }
                }
            }
        }
        return [TrainingTensor(shape: pair.outputShape, values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let first = try required(inputs, 0, "A")
        let second = try required(inputs, 1, "B")
        guard let pair else { throw NNPipeError(.internalError, "backward before forward") }
        let upstream = gradient(outputGradients, 0, like: outputs[0]).values
        var firstLocal = upstream
        var secondLocal = upstream
        switch kind {
        case .add: break
        case .subtract: secondLocal = upstream.map { -$0 }
        case .multiply:
            for i in 0..<upstream.count {
                firstLocal[i] = upstream[i] * second.values[pair.secondIndices[i]]
                secondLocal[i] = upstream[i] * first.values[pair.firstIndices[i]]
            }
        case .divide:
            for i in 0..<upstream.count {
                let b = second.values[pair.secondIndices[i]]
                firstLocal[i] = upstream[i] / b
                secondLocal[i] = -upstream[i] * first.values[pair.firstIndices[i]] / (b * b)
            }
        }
        return [
            BroadcastPair.reduce(firstLocal, indices: pair.firstIndices, operandShape: first.shape),
            BroadcastPair.reduce(secondLocal, indices: pair.secondIndices, operandShape: second.shape),
        ]
    }
}

/// Elementwise activations whose derivative depends only on the input or output value.
final class ActivationOperator: DifferentiableOperator {
    enum Kind {
        case relu
        case leakyRelu(alpha: Float)
        case sigmoid
        case tanh
        /// Identity, and Cast to float, Dropout at inference.
        case identity
    }
    let kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let input = try required(inputs, 0, "X")
        var output = input
        output.values.withUnsafeMutableBufferPointer { values in
            switch kind {
            case .relu: for i in 0..<values.count { values[i] = max(values[i], 0) }
            case .leakyRelu(let alpha): for i in 0..<values.count where values[i] < 0 { values[i] *= alpha }
            case .sigmoid: for i in 0..<values.count { values[i] = 1 / (1 + (-values[i]).exponential) }
            case .tanh: for i in 0..<values.count { values[i] = values[i].hyperbolicTangent }
            case .identity: break
            }
        }
        return [output]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let input = try required(inputs, 0, "X")
        var result = gradient(outputGradients, 0, like: outputs[0])
        let output = outputs[0].values
        result.values.withUnsafeMutableBufferPointer { values in
            switch kind {
            case .relu: for i in 0..<values.count where input.values[i] <= 0 { values[i] = 0 }
            case .leakyRelu(let alpha): for i in 0..<values.count where input.values[i] < 0 { values[i] *= alpha }
            case .sigmoid: for i in 0..<values.count { values[i] *= output[i] * (1 - output[i]) }
            case .tanh: for i in 0..<values.count { values[i] *= 1 - output[i] * output[i] }
            case .identity: break
            }
        }
        return [result]
    }
}

/// Clip: the gradient passes where the input lies inside [min, max].
final class ClipOperator: DifferentiableOperator {
    private let attributeMinimum: Float?
    private let attributeMaximum: Float?

    init(node: Node) {
        attributeMinimum = node.attribute("min")?.floatValue
        attributeMaximum = node.attribute("max")?.floatValue
    }

    private func bounds(_ inputs: [TrainingTensor?]) -> (Float, Float) {
        let minimum = (inputs.count > 1 ? inputs[1]?.values.first : nil) ?? attributeMinimum ?? -.infinity
        let maximum = (inputs.count > 2 ? inputs[2]?.values.first : nil) ?? attributeMaximum ?? .infinity
        return (minimum, maximum)
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        var output = try required(inputs, 0, "input")
        let (minimum, maximum) = bounds(inputs)
        output.values = output.values.map { min(max($0, minimum), maximum) }
        return [output]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let input = try required(inputs, 0, "input")
        let (minimum, maximum) = bounds(inputs)
        var result = gradient(outputGradients, 0, like: outputs[0])
        for i in 0..<result.values.count where input.values[i] < minimum || input.values[i] > maximum {
            result.values[i] = 0
        }
        return [result] + Array(repeating: nil, count: max(inputs.count - 1, 0))
    }
}

extension Float {
    var exponential: Float { Foundation.exp(self) }
    var hyperbolicTangent: Float { Foundation.tanh(self) }
}
