import Foundation
import NNPipeCore

/// QLinearConv, QLinearMatMul, ConvInteger and MatMulInteger. Zero points are subtracted and the
/// products accumulated in Double through BLAS, which is exact for 8- and 16-bit operands (sums
/// stay far below 2^53), so results equal int32 accumulation.
enum IntegerKernels {
    /// `tensor - zeroPoint` as Double; the zero point is a scalar or one value per index of `axis`.
    static func centered(_ tensor: RuntimeTensor, _ zeroPoint: RuntimeTensor?, axis: Int) throws -> RuntimeTensor {
        let values = try doubleValues(tensor)
        guard let zeroPoint, zeroPoint.elementCount > 0 else { return RuntimeTensor(shape: tensor.shape, values: values) }
        let zeros = try doubleValues(zeroPoint)
        if zeros.count == 1 { return RuntimeTensor(shape: tensor.shape, values: values.map { $0 - zeros[0] }) }
        let dimension = try normalizedAxis(axis, rank: tensor.rank)
        guard zeros.count == tensor.shape[dimension] else { throw KernelError("zero point \(zeroPoint.shape) does not match axis \(axis) of \(tensor.shape)") }
        let inner = tensor.shape[(dimension + 1)...].reduce(1, *)
        return RuntimeTensor(shape: tensor.shape, values: values.indices.map { values[$0] - zeros[($0 / inner) % zeros.count] })
    }

    /// Exact integer convolution in Double; returns [N, M, spatial...] accumulators.
    static func convolve(_ input: RuntimeTensor, _ weights: RuntimeTensor, attributes: SpatialGeometry.Attributes, group: Int,
                         threads: Int) throws -> RuntimeTensor {
        guard input.rank >= 3, weights.rank == input.rank else { throw KernelError("X and W ranks do not fit a convolution") }
        let batch = input.shape[0], channels = input.shape[1], outputChannels = weights.shape[0]
        guard channels == weights.shape[1] * group, outputChannels % group == 0 else {
            throw KernelError("X has \(channels) channels, W \(weights.shape) with group \(group) expects \(weights.shape[1] * group)")
        }
        let geometry = try SpatialGeometry(inputShape: Array(input.shape[2...]), kernelShape: attributes.kernelShape ?? Array(weights.shape[2...]),
                                           attributes: attributes)
        let result = RuntimeTensor(dataType: .double, shape: [batch, outputChannels] + geometry.outputSpatialShape)
        input.withUnsafeBuffer(of: Double.self) { source in
            weights.withUnsafeBuffer(of: Double.self) { filter in
                result.withUnsafeMutableBuffer(of: Double.self) { output in
                    ConvolutionKernels.convolve(source.baseAddress!, filter.baseAddress!, output.baseAddress!, batch: batch, channels: channels,
                                                outputChannels: outputChannels, group: group, geometry: geometry, threads: threads)
                }
            }
        }
        return result
    }

    /// y = clamp(round_half_even(accumulator · multiplier) + zero point), multiplier per `axis` index or shared.
    static func requantize(_ accumulators: RuntimeTensor, multipliers: [Float], axis: Int, zeroPoint: RuntimeTensor?, type: DataType) throws -> RuntimeTensor {
        let values = accumulators.values(as: Double.self)!
        let zero = try zeroPoint.map { try doubleValues($0)[0] } ?? 0
        let (low, high) = try QuantizationKernels.range(of: type)
        let inner = accumulators.rank == 0 ? 1 : accumulators.shape[(try normalizedAxis(axis, rank: accumulators.rank) + 1)...].reduce(1, *)
        let result = values.indices.map { index -> Double in
            let multiplier = Double(multipliers.count == 1 ? multipliers[0] : multipliers[(index / inner) % multipliers.count])
            return min(max((values[index] * multiplier).rounded(.toNearestOrEven) + zero, low), high)
        }
        return try makeTensor(type, shape: accumulators.shape, doubles: result)
    }

    static func qLinearConvolution(_ spec: inout NodeSpec) throws -> any Kernel {
        let attributes = try SpatialGeometry.Attributes(&spec)
        let group = spec.int("group", 1)
        return ClosureKernel { inputs, context in
            let x = try centered(try inputs.required(0), inputs.optional(2), axis: 0)
            let w = try centered(try inputs.required(3), inputs.optional(5), axis: 0)
            var accumulators = try convolve(x, w, attributes: attributes, group: group, threads: context.threads)
            if let bias = inputs.optional(8) {
                let values = try doubleValues(bias)
                let channels = accumulators.shape[1]
                let size = accumulators.shape[2...].reduce(1, *)
                let biased = RuntimeTensor(dataType: .double, shape: accumulators.shape)
                accumulators.withUnsafeBuffer(of: Double.self) { source in
                    biased.withUnsafeMutableBuffer(of: Double.self) { output in
                        for index in source.indices { output[index] = source[index] + values[(index / size) % channels] }
                    }
                }
                accumulators = biased
            }
            let inputScale = try inputs.required(1).floats[0]
            let outputScale = try inputs.required(6).floats[0]
            let multipliers = try inputs.required(4).floats.map { inputScale * $0 / outputScale }
            let zeroPoint = inputs.optional(7)
            return [try requantize(accumulators, multipliers: multipliers, axis: 1, zeroPoint: zeroPoint,
                                   type: zeroPoint?.dataType ?? (try inputs.required(0)).dataType)]
        }
    }

    static func convolutionInteger(_ spec: inout NodeSpec) throws -> any Kernel {
        let attributes = try SpatialGeometry.Attributes(&spec)
        let group = spec.int("group", 1)
        return ClosureKernel { inputs, context in
            let x = try centered(try inputs.required(0), inputs.optional(2), axis: 0)
            let w = try centered(try inputs.required(1), inputs.optional(3), axis: 0)
            let accumulators = try convolve(x, w, attributes: attributes, group: group, threads: context.threads)
            return [RuntimeTensor(shape: accumulators.shape, values: accumulators.values(as: Double.self)!.map { Int32($0) })]
        }
    }

    /// A - a_zero_point (scalar or per row) times B - b_zero_point (scalar or per column), in Double.
    static func centeredProduct(_ a: RuntimeTensor, _ aZero: RuntimeTensor?, _ b: RuntimeTensor, _ bZero: RuntimeTensor?) throws -> RuntimeTensor {
        let left = try centered(a, aZero, axis: a.rank >= 2 ? a.rank - 2 : 0)
        let right = try centered(b, bZero, axis: b.rank - 1)
        return try MatrixKernels.multiply(left, right)
    }

    static func matMulInteger(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let product = try centeredProduct(try inputs.required(0), inputs.optional(2), try inputs.required(1), inputs.optional(3))
            return [RuntimeTensor(shape: product.shape, values: product.values(as: Double.self)!.map { Int32($0) })]
        }
    }

    static func qLinearMatMul(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let product = try centeredProduct(try inputs.required(0), inputs.optional(2), try inputs.required(3), inputs.optional(5))
            let aScale = try inputs.required(1).floats[0]
            let yScale = try inputs.required(6).floats[0]
            let multipliers = try inputs.required(4).floats.map { aScale * $0 / yScale }
            let zeroPoint = inputs.optional(7)
            return [try requantize(product, multipliers: multipliers, axis: max(product.rank - 1, 0), zeroPoint: zeroPoint,
                                   type: zeroPoint?.dataType ?? (try inputs.required(0)).dataType)]
        }
    }
}
