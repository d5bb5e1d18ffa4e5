import NNPipeCore

/// QuantizeLinear and DequantizeLinear exactly as onnxruntime's CPU kernels compute them.
public enum LinearQuantizer {
    /// One value: clamp(round_half_even(x / scale) + zeroPoint). The float32 division matters:
    /// multiplying by 1/scale rounds differently for some inputs.
    /// NaN saturates to the minimum, as onnxruntime's vector kernel does.
    @inlinable @inline(__always)
    public static func quantize(_ value: Float, scale: Float, zeroPoint: Int32, range: QuantizedRange) -> Int32 {
        let low = Float(range.minimum - zeroPoint)
        let high = Float(range.maximum - zeroPoint)
        var scaled = (value / scale).rounded(.toNearestOrEven)
        if !(scaled >= low) { scaled = low }
        if scaled > high { scaled = high }
        return Int32(scaled) + zeroPoint
    }

    @inlinable @inline(__always)
    public static func dequantize(_ value: Int32, scale: Float, zeroPoint: Int32) -> Float {
        Float(value - zeroPoint) * scale
    }

    /// Quantises `values` (shaped `shape`) into `destination`, clamping to `range`.
    /// - Complexity: O(n); one division per element.
    public static func quantize(
        _ values: UnsafeBufferPointer<Float>, shape: [Int], layout: QuantizationLayout,
        parameters: [QuantizationParameters], range: QuantizedRange,
        into destination: UnsafeMutableBufferPointer<Int32>
    ) {
        precondition(values.count == shape.reduce(1, *) && destination.count == values.count, "buffer sizes do not match the shape")
        precondition(parameters.count == layout.parameterShape(for: shape).reduce(1, *), "parameter count does not match the layout")
        guard let source = values.baseAddress, let target = destination.baseAddress else { return }
        parameters.withUnsafeBufferPointer { parameters in
            let parameterBase = parameters.baseAddress!
            layout.geometry(for: shape).forEachRun { first, stride, elements in
                if stride == 0 {
                    // One parameter for the whole run: hoist it and its clamp bounds out of the loop.
                    let scale = parameterBase[first].scale
                    let zeroPoint = parameterBase[first].zeroPoint
                    let low = Float(range.minimum - zeroPoint)
                    let high = Float(range.maximum - zeroPoint)
                    var index = elements.lowerBound
                    let end = elements.upperBound
                    while index < end {
                        var scaled = (source[index] / scale).rounded(.toNearestOrEven)
                        if !(scaled >= low) { scaled = low }
                        if scaled > high { scaled = high }
                        target[index] = Int32(scaled) &+ zeroPoint
                        index &+= 1
                    }
                } else {
                    var slot = first
                    for index in elements {
                        let parameter = parameterBase[slot]
                        target[index] = quantize(source[index], scale: parameter.scale, zeroPoint: parameter.zeroPoint, range: range)
                        slot &+= stride
                    }
                }
            }
        }
    }

    /// Convenience over arrays; returns the quantised integers unpacked.
    public static func quantize(
        _ values: [Float], shape: [Int], layout: QuantizationLayout,
        parameters: [QuantizationParameters], range: QuantizedRange
    ) -> [Int32] {
        [Int32](unsafeUninitializedCapacity: values.count) { destination, initialized in
            values.withUnsafeBufferPointer { source in
                quantize(source, shape: shape, layout: layout, parameters: parameters, range: range, into: destination)
            }
            initialized = values.count
        }
    }

    public static func dequantize(
        _ values: [Int32], shape: [Int], layout: QuantizationLayout, parameters: [QuantizationParameters]
    ) -> [Float] {
        precondition(values.count == shape.reduce(1, *), "value count does not match the shape")
        return [Float](unsafeUninitializedCapacity: values.count) { destination, initialized in
            values.withUnsafeBufferPointer { source in
                parameters.withUnsafeBufferPointer { parameters in
                    guard let source = source.baseAddress, let target = destination.baseAddress else { return }
                    let parameterBase = parameters.baseAddress!
                    layout.geometry(for: shape).forEachRun { first, stride, elements in
                        var slot = first
                        var index = elements.lowerBound
                        while index < elements.upperBound {
                            let parameter = parameterBase[slot]
                            target[index] = Float(source[index] &- parameter.zeroPoint) * parameter.scale
                            slot &+= stride
                            index &+= 1
                        }
                    }
                }
            }
            initialized = values.count
        }
    }

    /// Parameters from each slot's own min/max (weights), as onnxruntime's weight quantiser does.
    /// - Complexity: O(n).
    public static func parameters(
        for values: [Float], shape: [Int], layout: QuantizationLayout, range: QuantizedRange, symmetric: Bool
    ) -> [QuantizationParameters] {
        let count = layout.parameterShape(for: shape).reduce(1, *)
        var lower = [Float](repeating: .infinity, count: count)
        var upper = [Float](repeating: -.infinity, count: count)
        values.withUnsafeBufferPointer { values in
            lower.withUnsafeMutableBufferPointer { lower in
                upper.withUnsafeMutableBufferPointer { upper in
                    layout.geometry(for: shape).forEachRun { first, stride, elements in
                        var slot = first
                        for index in elements {
                            let value = values[index]
                            if value < lower[slot] { lower[slot] = value }
                            if value > upper[slot] { upper[slot] = value }
                            slot += stride
                        }
                    }
                }
            }
        }
        return (0..<count).map { slot in
            // An empty slot (zero-length tensor) gets the identity parameters.
            lower[slot] > upper[slot]
                ? QuantizationParameters(scale: 1, zeroPoint: 0)
                : QuantizationParameters(lower: lower[slot], upper: upper[slot], range: range, symmetric: symmetric)
        }
    }
}
