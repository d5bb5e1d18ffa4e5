import Foundation
import NNPipeCore

/// QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear, bit-exact with onnxruntime:
/// q = clamp(round_half_even(x / scale) + zero_point) with float32 division.
enum QuantizationKernels {
    /// Which scale/zero point applies to each element: per tensor, per axis, or per block along an axis.
    struct Layout {
        enum Mode { case perTensor, perAxis, blocked }
        let mode: Mode
        let length: Int
        let inner: Int
        let blockSize: Int
        let blocks: Int

        init(shape: [Int], parameterShape: [Int], axis: Int, blockSize: Int) throws {
            let count = parameterShape.reduce(1, *)
            let rank = shape.count
            if parameterShape.isEmpty || (count == 1 && blockSize == 0) {
                mode = .perTensor
                length = 1
                inner = 1
                self.blockSize = 1
                blocks = 1
                return
            }
            let dimension = try normalizedAxis(axis, rank: rank)
            length = shape[dimension]
            inner = shape[(dimension + 1)...].reduce(1, *)
            if blockSize > 0 {
                mode = .blocked
                self.blockSize = blockSize
                blocks = (length + blockSize - 1) / blockSize
                guard parameterShape.count == rank, parameterShape[dimension] == blocks else {
                    throw KernelError("blocked scale \(parameterShape) does not have \(blocks) blocks on axis \(axis) of \(shape)")
                }
            } else {
                mode = .perAxis
                self.blockSize = 1
                blocks = length
                guard parameterShape.count == 1, parameterShape[0] == length else {
                    throw KernelError("per-axis scale \(parameterShape) does not match axis \(axis) of \(shape)")
                }
            }
        }

        @inline(__always)
        func index(_ element: Int) -> Int {
            switch mode {
            case .perTensor: return 0
            case .perAxis: return (element / inner) % length
            case .blocked:
                let position = (element / inner) % length
                return ((element / (length * inner)) * blocks + position / blockSize) * inner + element % inner
            }
        }
    }

    static func range(of type: DataType) throws -> (Double, Double) {
        switch type {
        case .uint8: return (0, 255)
        case .int8: return (-128, 127)
        case .uint16: return (0, 65535)
        case .int16: return (-32768, 32767)
        case .int32: return (Double(Int32.min), Double(Int32.max))
        case .uint4: return (0, 15)
        case .int4: return (-8, 7)
        default: throw unsupportedType(type)
        }
    }

    static func quantize(_ spec: inout NodeSpec) throws -> any Kernel {
        let axis = spec.int("axis", 1)
        let blockSize = spec.int("block_size", 0)
        let saturate = spec.int("saturate", 1)
        _ = saturate
        let outputType = spec.attribute("output_dtype")?.intValue.flatMap { DataType(rawValue: Int32($0)) }
        spec.ignore("precision")
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let scale = try inputs.required(1)
            let zeroPoint = inputs.optional(2)
            var target = zeroPoint?.dataType ?? outputType ?? .uint8
            if let outputType, outputType != .undefined { target = outputType }
            let (low, high) = try range(of: target)
            guard input.dataType == .float || input.dataType == .int32 else { throw unsupportedType(input.dataType) }
            let layout = try Layout(shape: input.shape, parameterShape: scale.shape, axis: axis, blockSize: blockSize)
            let values = input.floats
            let scales = scale.floats
            let zeros = zeroPoint.map { $0.integers.map(Float.init) } ?? [Float](repeating: 0, count: scales.count)
            let quantized = values.indices.map { element -> Double in
                let parameter = layout.index(element)
                let scaled = (values[element] / scales[parameter]).rounded(.toNearestOrEven) + zeros[parameter]
                if scaled.isNaN { return Double(zeros[parameter]) }
                return min(max(Double(scaled), low), high)
            }
            return [try makeTensor(target, shape: input.shape, doubles: quantized)]
        }
    }

    static func dequantize(_ spec: inout NodeSpec) throws -> any Kernel {
        let axis = spec.int("axis", 1)
        let blockSize = spec.int("block_size", 0)
        if let output = spec.attribute("output_dtype")?.intValue, output != 0, output != Int64(DataType.float.rawValue) {
            throw spec.unsupported("output_dtype \(output) is not supported")
        }
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let scale = try inputs.required(1)
            guard input.dataType.isInteger, scale.dataType == .float else { throw unsupportedType(input.dataType == .float ? scale.dataType : input.dataType) }
            let layout = try Layout(shape: input.shape, parameterShape: scale.shape, axis: axis, blockSize: blockSize)
            let values = input.integers
            let scales = scale.floats
            let zeros = inputs.optional(2)?.integers ?? [Int64](repeating: 0, count: scales.count)
            let result = values.indices.map { element -> Float in
                let parameter = layout.index(element)
                return Float(values[element] - zeros[parameter]) * scales[parameter]
            }
            return [RuntimeTensor(shape: input.shape, floats: result)]
        }
    }

    static func dynamicQuantize(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            guard input.dataType == .float else { throw unsupportedType(input.dataType) }
            let values = input.floats
            let minimum = min(0, values.min() ?? 0)
            let maximum = max(0, values.max() ?? 0)
            let scale = (maximum - minimum) / 255
            var zeroPoint: Float = 0
            var quantized = [UInt8](repeating: 0, count: values.count)
            if scale > 0 {
                zeroPoint = min(max((0 - minimum / scale).rounded(.toNearestOrEven), 0), 255)
                quantized = values.map { UInt8(min(max(($0 / scale).rounded(.toNearestOrEven) + zeroPoint, 0), 255)) }
            }
            return [RuntimeTensor(shape: input.shape, values: quantized), RuntimeTensor(shape: [], floats: [scale]),
                    RuntimeTensor(shape: [], values: [UInt8(zeroPoint)])]
        }
    }
}
