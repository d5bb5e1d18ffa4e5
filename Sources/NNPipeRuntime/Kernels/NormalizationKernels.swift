import Foundation
import NNPipeCore

/// BatchNormalization (inference), InstanceNormalization, LayerNormalization and LRN.
enum NormalizationKernels {
    static func batchNormalization(_ spec: inout NodeSpec) throws -> any Kernel {
        let epsilon = spec.float("epsilon", 1e-5)
        spec.ignore("momentum", "is_test", "consumed_inputs")
        if spec.int("training_mode", 0) == 1 { throw spec.unsupported("training_mode=1 is not supported") }
        if spec.opset < 9, spec.int("spatial", 1) == 0 { throw spec.unsupported("spatial=0 is not supported") }
        return ClosureKernel { inputs, context in
            let input = try inputs.required(0)
            guard input.dataType == .float else { throw unsupportedType(input.dataType) }
            guard input.rank >= 2 else { throw KernelError("input \(input.shape) needs rank 2 or more") }
            let channels = input.shape[1]
            let scale = try inputs.required(1).floats
            let bias = try inputs.required(2).floats
            let mean = try inputs.required(3).floats
            let variance = try inputs.required(4).floats
            guard [scale, bias, mean, variance].allSatisfy({ $0.count == channels }) else {
                throw KernelError("scale, bias, mean and variance need \(channels) values")
            }
            let multiplier = (0..<channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
            let shift = (0..<channels).map { bias[$0] - mean[$0] * multiplier[$0] }
            return [try channelAffine(input, multiplier: multiplier, shift: shift, threads: context.threads)]
        }
    }

    /// y = x * multiplier[c] + shift[c] over NC... tensors, clamped at zero when `relu`.
    static func channelAffine(_ input: RuntimeTensor, multiplier: [Float], shift: [Float], relu: Bool = false,
                              threads: Int) throws -> RuntimeTensor {
        let channels = input.shape[1]
        let spatial = input.shape[2...].reduce(1, *)
        let result = RuntimeTensor(dataType: .float, shape: input.shape)
        input.withUnsafeBuffer(of: Float.self) { source in
            result.withUnsafeMutableBuffer(of: Float.self) { output in
                multiplier.withUnsafeBufferPointer { multiplier in
                    shift.withUnsafeBufferPointer { shift in
                        let minimumChunk = max(1, parallelElementThreshold / max(spatial, 1))
                        parallelChunks(input.shape[0] * channels, threads: source.count >= parallelElementThreshold ? threads : 1,
                                       minimumChunk: minimumChunk) { planes in
                            for plane in planes {
                                let channel = plane % channels
                                let a = multiplier[channel], b = shift[channel]
                                let from = source.baseAddress! + plane * spatial, to = output.baseAddress! + plane * spatial
                                if relu {
                                    for index in 0..<spatial { to[index] = max(from[index] * a + b, 0) }
                                } else {
                                    for index in 0..<spatial { to[index] = from[index] * a + b }
                                }
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    static func instanceNormalization(_ spec: inout NodeSpec) throws -> any Kernel {
        let epsilon = spec.float("epsilon", 1e-5)
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            guard input.dataType == .float else { throw unsupportedType(input.dataType) }
            guard input.rank >= 3 else { throw KernelError("input \(input.shape) needs rank 3 or more") }
            let scale = try inputs.required(1).floats
            let bias = try inputs.required(2).floats
            let channels = input.shape[1]
            guard scale.count == channels, bias.count == channels else {
                throw KernelError("scale [\(scale.count)] and bias [\(bias.count)] need \(channels) values, one per channel")
            }
            let spatial = input.shape[2...].reduce(1, *)
            let result = RuntimeTensor(dataType: .float, shape: input.shape)
            input.withUnsafeBuffer(of: Float.self) { source in
                result.withUnsafeMutableBuffer(of: Float.self) { output in
                    for plane in 0..<(input.shape[0] * channels) {
                        let range = (plane * spatial)..<((plane + 1) * spatial)
                        var total = 0.0
                        for index in range { total += Double(source[index]) }
                        let mean = total / Double(spatial)
                        var squares = 0.0
                        for index in range { squares += (Double(source[index]) - mean) * (Double(source[index]) - mean) }
                        let inverse = 1 / (squares / Double(spatial) + Double(epsilon)).squareRoot()
                        let channel = plane % channels
                        for index in range {
                            output[index] = Float((Double(source[index]) - mean) * inverse) * scale[channel] + bias[channel]
                        }
                    }
                }
            }
            return [result]
        }
    }

    static func layerNormalization(_ spec: inout NodeSpec) throws -> any Kernel {
        let axis = spec.int("axis", -1)
        let epsilon = spec.float("epsilon", 1e-5)
        spec.ignore("stash_type")
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            guard input.dataType == .float else { throw unsupportedType(input.dataType) }
            let dimension = try normalizedAxis(axis, rank: input.rank)
            let normalizedShape = Array(input.shape[dimension...])
            let rows = input.shape[..<dimension].reduce(1, *)
            let columns = normalizedShape.reduce(1, *)
            let scale = try ShapeKernels.broadcastTo(try inputs.required(1), normalizedShape).floats
            let bias = try inputs.optional(2).map { try ShapeKernels.broadcastTo($0, normalizedShape).floats }
            let result = RuntimeTensor(dataType: .float, shape: input.shape)
            var means = [Float](repeating: 0, count: rows)
            var inverses = [Float](repeating: 0, count: rows)
            input.withUnsafeBuffer(of: Float.self) { source in
                result.withUnsafeMutableBuffer(of: Float.self) { output in
                    for row in 0..<rows {
                        let base = row * columns
                        var total = 0.0
                        for column in 0..<columns { total += Double(source[base + column]) }
                        let mean = total / Double(columns)
                        var squares = 0.0
                        for column in 0..<columns { squares += (Double(source[base + column]) - mean) * (Double(source[base + column]) - mean) }
                        let inverse = 1 / (squares / Double(columns) + Double(epsilon)).squareRoot()
                        means[row] = Float(mean)
                        inverses[row] = Float(inverse)
                        for column in 0..<columns {
                            let normalized = Float((Double(source[base + column]) - mean) * inverse)
                            output[base + column] = normalized * scale[column] + (bias?[column] ?? 0)
                        }
                    }
                }
            }
            let statisticsShape = Array(input.shape[..<dimension]) + [Int](repeating: 1, count: input.rank - dimension)
            return [result, RuntimeTensor(shape: statisticsShape, floats: means), RuntimeTensor(shape: statisticsShape, floats: inverses)]
        }
    }

    static func localResponseNormalization(_ spec: inout NodeSpec) throws -> any Kernel {
        let alpha = spec.float("alpha", 1e-4)
        let beta = spec.float("beta", 0.75)
        let bias = spec.float("bias", 1)
        guard let size = spec.attribute("size")?.intValue.map({ Int($0) }) else { throw spec.invalid("LRN needs 'size'") }
        guard size >= 1 else { throw spec.invalid("size \(size) (below 1)") }
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            guard input.dataType == .float else { throw unsupportedType(input.dataType) }
            guard input.rank >= 3 else { throw KernelError("input \(input.shape) needs rank 3 or more") }
            let channels = input.shape[1]
            let spatial = input.shape[2...].reduce(1, *)
            let result = RuntimeTensor(dataType: .float, shape: input.shape)
            let below = (size - 1) / 2
            let above = size - 1 - below
            input.withUnsafeBuffer(of: Float.self) { source in
                result.withUnsafeMutableBuffer(of: Float.self) { output in
                    for batch in 0..<input.shape[0] {
                        for channel in 0..<channels {
                            let low = max(0, channel - below), high = min(channels - 1, channel + above)
                            for position in 0..<spatial {
                                var squares: Float = 0
                                for neighbour in low...high {
                                    let value = source[(batch * channels + neighbour) * spatial + position]
                                    squares += value * value
                                }
                                let index = (batch * channels + channel) * spatial + position
                                output[index] = source[index] / powf(bias + alpha / Float(size) * squares, beta)
                            }
                        }
                    }
                }
            }
            return [result]
        }
    }
}

extension NormalizationKernels {
    /// A chain of per-channel affine nodes (-> Relu) composed by `PlanFusion`; declines inputs whose
    /// rank would have made the nodes' constants broadcast differently.
    static func fusedChannelAffine(_ affine: ChannelAffine, requiredRank: Int?, relu: Bool) -> any Kernel {
        ClosureKernel { inputs, context in
            let input = try inputs.required(0)
            guard input.dataType == .float, input.rank >= affine.minimumRank, input.shape[1] == affine.channels,
                  requiredRank.map({ $0 == input.rank }) ?? true
            else { throw FusionDeclined() }
            return [try channelAffine(input, multiplier: affine.multiplier, shift: affine.shift, relu: relu, threads: context.threads)]
        }
    }
}
