import Foundation
import NNPipeCore

/// Integer grid of a fake-quantised value: q = clamp(round_half_even(x / scale) + zeroPoint, minimum, maximum).
public struct QuantizationGrid: Sendable, Equatable {
    public var minimum: Float
    public var maximum: Float

    public init(minimum: Float, maximum: Float) {
        self.minimum = minimum
        self.maximum = maximum
    }

    public static let signed8 = QuantizationGrid(minimum: -128, maximum: 127)
    /// Symmetric int8 for weights: −127…127 so the grid is centred on zero.
    public static let symmetricSigned8 = QuantizationGrid(minimum: -127, maximum: 127)
    public static let unsigned8 = QuantizationGrid(minimum: 0, maximum: 255)

    public init(zeroPointType: DataType) {
        switch zeroPointType {
        case .int8: self = .signed8
        case .uint16: self.init(minimum: 0, maximum: 65535)
        case .int16: self.init(minimum: -32768, maximum: 32767)
        case .int4: self.init(minimum: -8, maximum: 7)
        case .uint4: self.init(minimum: 0, maximum: 15)
        default: self = .unsigned8
        }
    }

    /// Quantised level of `value` (float32 division, ties to even, as onnxruntime).
    @inline(__always)
    public func level(_ value: Float, scale: Float, zeroPoint: Float) -> Float {
        min(max((value / scale).rounded(.toNearestOrEven) + zeroPoint, minimum), maximum)
    }

    /// Whether `value` lands inside the grid, where the straight-through estimator passes the gradient.
    @inline(__always)
    public func passes(_ value: Float, scale: Float, zeroPoint: Float) -> Bool {
        let level = (value / scale).rounded(.toNearestOrEven) + zeroPoint
        return level >= minimum && level <= maximum
    }
}

/// QuantizeLinear and DequantizeLinear on the loss path (a QDQ model in simulate form).
/// Levels travel as floats; QuantizeLinear's gradient is the straight-through estimator
/// (1/scale inside the grid, zero outside), so a Q→DQ pair passes the gradient exactly where
/// x ∈ [min, max] of the grid.
final class QuantizeLinearOperator: DifferentiableOperator {
    let dequantize: Bool
    let axis: Int
    let grid: QuantizationGrid

    init(node: Node, dequantize: Bool, zeroPointType: DataType) {
        self.dequantize = dequantize
        axis = node.integer("axis", default: 1)
        grid = QuantizationGrid(zeroPointType: zeroPointType)
    }

    /// Scale and zero point for each element's channel.
    private func parameters(_ inputs: [TrainingTensor?], shape: [Int]) throws -> (scales: [Float], zeroPoints: [Float], channelOf: (Int) -> Int) {
        let scale = try required(inputs, 1, "scale")
        let zeroPoint = inputs.count > 2 ? inputs[2] : nil
        let zeroPoints = zeroPoint?.values ?? Array(repeating: 0, count: scale.elementCount)
        if scale.elementCount == 1 { return (scale.values, zeroPoints, { _ in 0 }) }
        guard scale.rank == 1 else { throw NNPipeError(.unsupported, "blocked quantisation is not trainable yet") }
        let resolved = try normalizedAxis(axis, rank: shape.count)
        let inner = shape[(resolved + 1)...].reduce(1, *)
        let channels = shape[resolved]
        return (scale.values, zeroPoints, { ($0 / inner) % channels })
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        var x = try required(inputs, 0, "x")
        let (scales, zeroPoints, channelOf) = try parameters(inputs, shape: x.shape)
        for index in 0..<x.elementCount {
            let channel = channelOf(index)
            x.values[index] = dequantize
                ? (x.values[index] - zeroPoints[channel]) * scales[channel]
                : grid.level(x.values[index], scale: scales[channel], zeroPoint: zeroPoints[channel])
        }
        return [x]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let x = try required(inputs, 0, "x")
        let (scales, zeroPoints, channelOf) = try parameters(inputs, shape: x.shape)
        var result = gradient(outputGradients, 0, like: outputs[0])
        for index in 0..<result.elementCount {
            let channel = channelOf(index)
            if dequantize {
                result.values[index] *= scales[channel]
            } else {
                let passes = grid.passes(x.values[index], scale: scales[channel], zeroPoint: zeroPoints[channel])
                result.values[index] = passes ? result.values[index] / scales[channel] : 0
            }
        }
        return [result, nil, nil]
    }
}

/// Fake quantisation of one value during quantisation-aware training: quantise, dequantise,
/// and remember which elements the straight-through estimator lets through.
public enum FakeQuantization {
    /// Per-channel symmetric int8 of a weight along `axis`: scale = max|w| / 127 per channel.
    /// All weights lie inside their channel's range, so the gradient passes unchanged.
    public static func weights(_ tensor: TrainingTensor, axis: Int) -> TrainingTensor {
        guard tensor.rank >= 1 else { return tensor }
        let channels = tensor.shape[axis]
        let inner = tensor.shape[(axis + 1)...].reduce(1, *)
        var largest = [Float](repeating: 0, count: channels)
        for index in 0..<tensor.elementCount {
            let channel = (index / inner) % channels
            largest[channel] = max(largest[channel], abs(tensor.values[index]))
        }
        let grid = QuantizationGrid.symmetricSigned8
        var result = tensor
        for index in 0..<tensor.elementCount {
            let scale = largest[(index / inner) % channels] / grid.maximum
            guard scale > 0 else { continue }
            result.values[index] = grid.level(tensor.values[index], scale: scale, zeroPoint: 0) * scale
        }
        return result
    }

    /// Per-tensor asymmetric uint8 over `range` (widened to include 0, as onnxruntime does);
    /// returns the fake-quantised values and the STE pass mask.
    public static func activations(_ tensor: TrainingTensor, range: ValueRange) -> (TrainingTensor, [Bool]) {
        let lower = min(range.lower, 0)
        let upper = max(range.upper, 0)
        let grid = QuantizationGrid.unsigned8
        let scale = Float((Double(upper) - Double(lower)) / Double(grid.maximum - grid.minimum))
        guard scale >= Float.leastNormalMagnitude else { return (tensor, Array(repeating: true, count: tensor.elementCount)) }
        let zeroPoint = Float((Double(grid.minimum) - Double(lower) / Double(scale)).rounded(.toNearestOrEven))
        var result = tensor
        var passes = [Bool](repeating: true, count: tensor.elementCount)
        for index in 0..<tensor.elementCount {
            let value = tensor.values[index]
            passes[index] = value >= lower && value <= upper
            result.values[index] = (grid.level(value, scale: scale, zeroPoint: zeroPoint) - zeroPoint) * scale
        }
        return (result, passes)
    }
}
