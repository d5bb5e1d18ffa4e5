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

    /// y = clamp(round_half_even(f32(accumulator) · multiplier) + zero point), multiplier per `axis`
    /// index or shared: MLAS's MlasRequantizeOutput, float32 product, clamp, then round-half-even.
    static func requantize(_ accumulators: RuntimeTensor, multipliers: [Float], axis: Int, zeroPoint: RuntimeTensor?, type: DataType) throws -> RuntimeTensor {
        let values = accumulators.values(as: Double.self)!
        let zero = Int32(try zeroPoint.map { try doubleValues($0)[0] } ?? 0)
        let (low, high) = try QuantizationKernels.range(of: type)
        let inner = accumulators.rank == 0 ? 1 : accumulators.shape[(try normalizedAxis(axis, rank: accumulators.rank) + 1)...].reduce(1, *)
        let result = values.indices.map { index -> Double in
            let multiplier = multipliers.count == 1 ? multipliers[0] : multipliers[(index / inner) % multipliers.count]
            let accumulator = Int32(truncatingIfNeeded: Int64(values[index]))
            return Double(requantized(accumulator, multiplier: multiplier, zeroPoint: zero, low: Int32(low), high: Int32(high)))
        }
        return try makeTensor(type, shape: accumulators.shape, doubles: result)
    }

    /// One output of MLAS's requantisation. The clamp before rounding equals one after it, as the
    /// bounds are whole numbers; Float(Int32) rounds to nearest even like cvtdq2ps.
    @inline(__always)
    static func requantized(_ accumulator: Int32, multiplier: Float, zeroPoint: Int32, low: Int32, high: Int32) -> Int32 {
        var value = Float(accumulator) * multiplier
        value = Swift.max(value, Float(low - zeroPoint))
        value = Swift.min(value, Float(high - zeroPoint))
        return Int32(value.rounded(.toNearestOrEven)) + zeroPoint
    }

    static func qLinearConvolution(_ spec: inout NodeSpec) throws -> any Kernel {
        let attributes = try SpatialGeometry.Attributes(&spec)
        let group = spec.int("group", 1)
        return ClosureKernel { inputs, context in
            let x = try inputs.required(0)
            let w = try inputs.required(3)
            let (multipliers, zeroPoint, outputType) = try qLinearRequantisation(inputs, inputType: x.dataType)
            if group == 1, x.rank >= 3, w.rank == x.rank {
                return [try integerConvolution(x, xZero: inputs.optional(2), w, wZero: inputs.optional(5), bias: inputs.optional(8),
                                               attributes: attributes, multipliers: multipliers, zeroPoint: zeroPoint, type: outputType)]
            }
            // Grouped and depthwise convolutions: exact sums (MLAS's depthwise kernels widen to 16 bits first).
            var accumulators = try convolve(try centered(x, inputs.optional(2), axis: 0), try centered(w, inputs.optional(5), axis: 0),
                                            attributes: attributes, group: group, threads: context.threads)
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
            return [try requantize(accumulators, multipliers: multipliers, axis: 1, zeroPoint: zeroPoint, type: outputType)]
        }
    }

    /// QLinearConv with one group as onnxruntime runs it: NHWC patches times the reordered filter in
    /// Int32, int32 bias, MLAS requantisation. Saturating pairs run over the whole flattened patch
    /// (kernel position outer, channel inner), which matched onnxruntime 1.32 on a one-channel and an
    /// eight-channel convolution, symmetric filters included.
    static func integerConvolution(_ x: RuntimeTensor, xZero: RuntimeTensor?, _ w: RuntimeTensor, wZero: RuntimeTensor?, bias: RuntimeTensor?,
                                   attributes: SpatialGeometry.Attributes, multipliers: [Float], zeroPoint: RuntimeTensor?, type: DataType) throws -> RuntimeTensor {
        let batch = x.shape[0], channels = x.shape[1], outputChannels = w.shape[0]
        guard channels == w.shape[1] else { throw KernelError("X has \(channels) channels, W \(w.shape) expects \(w.shape[1])") }
        let geometry = try SpatialGeometry(inputShape: Array(x.shape[2...]), kernelShape: attributes.kernelShape ?? Array(w.shape[2...]),
                                           attributes: attributes)
        let kernelPositions = geometry.kernelSize
        let depth = kernelPositions * channels
        let filter = w.integers.map { Int32(truncatingIfNeeded: $0) }
        // [M, C, positions] -> [positions · C, M]
        var reordered = [Int32](repeating: 0, count: depth * outputChannels)
        for m in 0..<outputChannels { for c in 0..<channels { for position in 0..<kernelPositions {
            reordered[(position * channels + c) * outputChannels + m] = filter[(m * channels + c) * kernelPositions + position]
        } } }
        let weightZeros = wZero.map { $0.integers.map { Int32(truncatingIfNeeded: $0) } } ?? [0]
        guard weightZeros.count == 1 || weightZeros.count == outputChannels else { throw KernelError("w_zero_point \(wZero?.shape ?? []) does not match \(outputChannels) filters") }
        let inputZero = Int32(truncatingIfNeeded: xZero?.integers.first ?? 0)
        let saturating = IntegerMatrixProduct.saturates(a: x.dataType, b: w.dataType)
        let biasValues = bias.map { $0.integers.map { Int32(truncatingIfNeeded: $0) } }
        let outputZero = Int32(truncatingIfNeeded: zeroPoint?.integers.first ?? 0)
        let (low, high) = try QuantizationKernels.range(of: type)
        let image = x.integers.map { Int32(truncatingIfNeeded: $0) }
        let positions = geometry.outputSize
        var result = [Double](repeating: 0, count: batch * outputChannels * positions)
        try image.withUnsafeBufferPointer { image in
            try reordered.withUnsafeBufferPointer { reordered in
                for n in 0..<batch {
                    let rows = IntegerMatrixProduct.patches(image.baseAddress! + n * channels * geometry.inputSize, channels: channels,
                                                            geometry: geometry, padValue: inputZero)
                    let accumulators = rows.withUnsafeBufferPointer { rows in
                        IntegerMatrixProduct.multiply(rows, rows: positions, depth: depth, reordered, columns: outputChannels, aZero: inputZero,
                                                      bZeros: weightZeros, saturating: saturating, pairBlock: depth)
                    }
                    guard biasValues == nil || biasValues!.count == outputChannels else { throw KernelError("bias does not have \(outputChannels) values") }
                    for m in 0..<outputChannels {
                        let multiplier = multipliers.count == 1 ? multipliers[0] : multipliers[m]
                        let offset = biasValues?[m] ?? 0
                        for position in 0..<positions {
                            result[(n * outputChannels + m) * positions + position] = Double(requantized(
                                accumulators[position * outputChannels + m] &+ offset, multiplier: multiplier, zeroPoint: outputZero,
                                low: Int32(low), high: Int32(high)))
                        }
                    }
                }
            }
        }
        return try makeTensor(type, shape: [batch, outputChannels] + geometry.output.suffix(geometry.spatialRank), doubles: result)
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

    /// QLinearConv and QLinearMatMul share their input layout (x, x_scale, x_zero, w, w_scale,
    /// w_zero, y_scale, y_zero): the requantisation multipliers in onnxruntime's order
    /// (x_scale · w_scale / y_scale in float32), the output zero point and the output type.
    static func qLinearRequantisation(_ inputs: [RuntimeTensor?], inputType: DataType) throws
        -> (multipliers: [Float], zeroPoint: RuntimeTensor?, type: DataType) {
        let inputScale = try inputs.required(1).floats[0]
        let outputScale = try inputs.required(6).floats[0]
        let multipliers = try inputs.required(4).floats.map { inputScale * $0 / outputScale }
        let zeroPoint = inputs.optional(7)
        return (multipliers, zeroPoint, zeroPoint?.dataType ?? inputType)
    }

    static func qLinearMatMul(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let a = try inputs.required(0)
            let b = try inputs.required(3)
            let (multipliers, zeroPoint, type) = try qLinearRequantisation(inputs, inputType: a.dataType)
            if a.rank >= 2, b.rank == 2, a.shape[a.rank - 1] == b.shape[0] {
                let rows = a.shape.dropLast().reduce(1, *)
                let accumulators = try integerProduct(a, aZero: inputs.optional(2), b, bZero: inputs.optional(5), rows: rows, transposedB: false)
                let values = try requantizeRows(accumulators, columns: b.shape[1], bias: nil, multipliers: multipliers, zeroPoint: zeroPoint, type: type)
                return [try makeTensor(type, shape: Array(a.shape.dropLast()) + [b.shape[1]], doubles: values)]
            }
            // Batched B: exact sums through the broadcasting product.
            let product = try centeredProduct(a, inputs.optional(2), b, inputs.optional(5))
            return [try requantize(product, multipliers: multipliers, axis: max(product.rank - 1, 0), zeroPoint: zeroPoint, type: type)]
        }
    }

    /// com.microsoft QGemm, what onnxruntime fuses DQ → Gemm → Q into: Int32 A·B plus the int32 C,
    /// requantised with (alpha · a_scale · b_scale) / y_scale, or scaled to float when there is no y_scale.
    static func quantizedGemm(_ spec: inout NodeSpec) throws -> any Kernel {
        let alpha = spec.float("alpha", 1)
        let transposeA = spec.int("transA", 0) != 0
        let transposeB = spec.int("transB", 0) != 0
        return ClosureKernel { inputs, _ in
            var a = try inputs.required(0)
            var b = try inputs.required(3)
            guard a.rank == 2, b.rank == 2 else { throw KernelError("QGemm needs 2-D A and B, not \(a.shape) and \(b.shape)") }
            if transposeA { a = try transposed(a) }
            if transposeB { b = try transposed(b) }
            guard a.shape[1] == b.shape[0] else { throw KernelError("A \(a.shape) and B \(b.shape) do not multiply") }
            let rows = a.shape[0], columns = b.shape[1]
            var accumulators = try integerProduct(a, aZero: inputs.optional(2), b, bZero: inputs.optional(5), rows: rows, transposedB: false)
            if let bias = inputs.optional(6) {
                let values = bias.integers.map { Int32(truncatingIfNeeded: $0) }
                for index in accumulators.indices {
                    let row = index / columns, column = index % columns
                    let offset: Int32
                    switch values.count {
                    case 1: offset = values[0]
                    case columns where bias.rank == 1 || bias.shape[0] == 1: offset = values[column]
                    case rows: offset = values[row]
                    case rows * columns: offset = values[index]
                    default: throw KernelError("QGemm C \(bias.shape) does not broadcast to [\(rows), \(columns)]")
                    }
                    accumulators[index] &+= offset
                }
            }
            let aScale = try inputs.required(1).floats[0]
            var scales = try inputs.required(4).floats.map { alpha * aScale * $0 }
            guard let yScale = inputs.optional(7) else {
                let values = accumulators.indices.map { Float(accumulators[$0]) * scales[scales.count == 1 ? 0 : $0 % columns] }
                return [RuntimeTensor(shape: [rows, columns], floats: values)]
            }
            let outputScale = yScale.floats[0]
            scales = scales.map { $0 / outputScale }
            let zeroPoint = inputs.optional(8)
            let type = zeroPoint?.dataType ?? .uint8
            let values = try requantizeRows(accumulators, columns: columns, bias: nil, multipliers: scales, zeroPoint: zeroPoint, type: type)
            return [try makeTensor(type, shape: [rows, columns], doubles: values)]
        }
    }

    static func transposed(_ matrix: RuntimeTensor) throws -> RuntimeTensor {
        let values = matrix.integers
        let rows = matrix.shape[0], columns = matrix.shape[1]
        var result = [Double](repeating: 0, count: values.count)
        for row in 0..<rows { for column in 0..<columns { result[column * rows + row] = Double(values[row * columns + column]) } }
        return try makeTensor(matrix.dataType, shape: [columns, rows], doubles: result)
    }

    /// A [rows, K] (leading axes flattened) times B [K, N] in Int32 as MLAS forms it.
    static func integerProduct(_ a: RuntimeTensor, aZero: RuntimeTensor?, _ b: RuntimeTensor, bZero: RuntimeTensor?, rows: Int, transposedB: Bool) throws -> [Int32] {
        let depth = b.shape[0], columns = b.shape[1]
        let left = a.integers.map { Int32(truncatingIfNeeded: $0) }
        let right = b.integers.map { Int32(truncatingIfNeeded: $0) }
        let leftZero = Int32(truncatingIfNeeded: aZero?.integers.first ?? 0)
        let rightZeros = bZero.map { $0.integers.map { Int32(truncatingIfNeeded: $0) } } ?? [0]
        guard rightZeros.count == 1 || rightZeros.count == columns else { throw KernelError("b_zero_point \(bZero?.shape ?? []) is neither scalar nor one per column") }
        let saturating = IntegerMatrixProduct.saturates(a: a.dataType, b: b.dataType)
        return left.withUnsafeBufferPointer { left in
            right.withUnsafeBufferPointer { right in
                IntegerMatrixProduct.multiply(left, rows: rows, depth: depth, right, columns: columns, aZero: leftZero, bZeros: rightZeros,
                                              saturating: saturating, pairBlock: depth)
            }
        }
    }

    /// Requantises row-major [rows, columns] accumulators with one multiplier per column or one for all.
    static func requantizeRows(_ accumulators: [Int32], columns: Int, bias: [Int32]?, multipliers: [Float], zeroPoint: RuntimeTensor?, type: DataType) throws -> [Double] {
        let (low, high) = try QuantizationKernels.range(of: type)
        let zero = Int32(truncatingIfNeeded: zeroPoint?.integers.first ?? 0)
        guard multipliers.count == 1 || multipliers.count == columns else { throw KernelError("\(multipliers.count) scales for \(columns) columns") }
        return accumulators.indices.map { index in
            let column = index % columns
            return Double(requantized(accumulators[index] &+ (bias?[column] ?? 0), multiplier: multipliers.count == 1 ? multipliers[0] : multipliers[column],
                                      zeroPoint: zero, low: Int32(low), high: Int32(high)))
        }
    }
}
