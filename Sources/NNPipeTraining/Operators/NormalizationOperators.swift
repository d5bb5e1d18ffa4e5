import NNPipeCore

/// BatchNormalization. Training normalises with the batch's statistics and moves the running
/// mean and variance toward them by the node's `momentum` (ONNX: running = running·m + batch·(1 − m),
/// population variance); inference uses the running statistics.
final class BatchNormalizationOperator: DifferentiableOperator {
    let epsilon: Float
    let momentum: Float
    /// New running mean and variance after a training forward; the graph writes them back.
    private(set) var runningUpdate: (mean: TrainingTensor, variance: TrainingTensor)?
    private var normalized: [Float] = []
    private var inverseDeviation: [Float] = []
    private var usedBatchStatistics = false

    init(node: Node) {
        epsilon = node.float("epsilon", default: 1e-5)
        momentum = node.float("momentum", default: 0.9)
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let x = try required(inputs, 0, "X")
        let scale = try required(inputs, 1, "scale")
        let bias = try required(inputs, 2, "B")
        let runningMean = try required(inputs, 3, "input_mean")
        let runningVariance = try required(inputs, 4, "input_var")
        guard x.rank >= 2 else { throw NNPipeError(.invalidModel, "BatchNormalization needs rank ≥ 2, got \(x.shape)") }
        let channels = x.shape[1]
        let spatial = x.shape[2...].reduce(1, *)
        let count = x.shape[0] * spatial
        var mean = runningMean.values
        var variance = runningVariance.values
        usedBatchStatistics = phase == .training
        if usedBatchStatistics {
            for channel in 0..<channels {
                var sum: Double = 0
                var squares: Double = 0
                for image in 0..<x.shape[0] {
                    let base = (image * channels + channel) * spatial
                    for position in 0..<spatial {
                        let value = Double(x.values[base + position])
                        sum += value
                        squares += value * value
                    }
                }
                let batchMean = sum / Double(count)
                mean[channel] = Float(batchMean)
                variance[channel] = Float(max(squares / Double(count) - batchMean * batchMean, 0))
            }
            let newMean = zip(runningMean.values, mean).map { $0 * momentum + $1 * (1 - momentum) }
            let newVariance = zip(runningVariance.values, variance).map { $0 * momentum + $1 * (1 - momentum) }
            runningUpdate = (TrainingTensor(shape: runningMean.shape, values: newMean),
                             TrainingTensor(shape: runningVariance.shape, values: newVariance))
        } else {
            runningUpdate = nil
        }
        // Locals, stored once at the end: the class's properties pay an exclusivity check per element access.
        let inverseDeviation = variance.map { 1 / ($0 + epsilon).squareRoot() }
        var normalized = [Float](repeating: 0, count: x.elementCount)
        defer {
            self.inverseDeviation = inverseDeviation
            self.normalized = normalized
        }
        var output = normalized
        for image in 0..<x.shape[0] {
            for channel in 0..<channels {
                let base = (image * channels + channel) * spatial
                for position in 0..<spatial {
                    let value = (x.values[base + position] - mean[channel]) * inverseDeviation[channel]
                    normalized[base + position] = value
                    output[base + position] = value * scale.values[channel] + bias.values[channel]
                }
            }
        }
        return [TrainingTensor(shape: x.shape, values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let x = try required(inputs, 0, "X")
        let scale = try required(inputs, 1, "scale")
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        let channels = x.shape[1]
        let spatial = x.shape[2...].reduce(1, *)
        let count = Float(x.shape[0] * spatial)
        let normalized = self.normalized
        let inverseDeviation = self.inverseDeviation
        let usedBatchStatistics = self.usedBatchStatistics
        var gradientScale = [Float](repeating: 0, count: channels)
        var gradientBias = [Float](repeating: 0, count: channels)
        for image in 0..<x.shape[0] {
            for channel in 0..<channels {
                let base = (image * channels + channel) * spatial
                for position in 0..<spatial {
                    gradientBias[channel] += upstream.values[base + position]
                    gradientScale[channel] += upstream.values[base + position] * normalized[base + position]
                }
            }
        }
        var gradientX = [Float](repeating: 0, count: x.elementCount)
        for image in 0..<x.shape[0] {
            for channel in 0..<channels {
                let base = (image * channels + channel) * spatial
                let factor = scale.values[channel] * inverseDeviation[channel]
                for position in 0..<spatial {
                    let dy = upstream.values[base + position]
                    // Batch statistics depend on x: subtract the mean gradient and its projection on x̂.
                    gradientX[base + position] = usedBatchStatistics
                        ? factor * (dy - gradientBias[channel] / count - normalized[base + position] * gradientScale[channel] / count)
                        : factor * dy
                }
            }
        }
        return [TrainingTensor(shape: x.shape, values: gradientX), TrainingTensor(shape: scale.shape, values: gradientScale),
                TrainingTensor(shape: scale.shape, values: gradientBias), nil, nil]
    }
}

/// Dropout: in training zeroes each element with probability `ratio` and scales the rest by
/// 1/(1 − ratio), from a seeded generator so runs repeat; identity at inference.
final class DropoutOperator: DifferentiableOperator {
    let attributeRatio: Float
    private var generator: SeededGenerator
    private var mask: [Float] = []

    init(node: Node, seed: UInt64) {
        attributeRatio = node.float("ratio", default: 0.5)
        generator = SeededGenerator(seed: seed)
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        var x = try required(inputs, 0, "data")
        let ratio = (inputs.count > 1 ? inputs[1]?.values.first : nil) ?? attributeRatio
        // Fine-tuning trains with dropout whatever the exported model's training_mode says.
        let training = phase == .training
        guard training, ratio > 0 else {
            mask = []
            return [x, TrainingTensor(shape: x.shape, values: Array(repeating: 1, count: x.elementCount))]
        }
        let keep = 1 / (1 - ratio)
        mask = (0..<x.elementCount).map { _ in generator.nextUnit() < ratio ? 0 : keep }
        for index in 0..<x.elementCount { x.values[index] *= mask[index] }
        return [x, TrainingTensor(shape: x.shape, values: mask.map { $0 == 0 ? 0 : 1 })]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        var result = gradient(outputGradients, 0, like: outputs[0])
        if !mask.isEmpty { for index in 0..<result.elementCount { result.values[index] *= mask[index] } }
        return [result, nil, nil]
    }
}

