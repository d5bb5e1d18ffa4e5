import Foundation
import NNPipeCore

/// Resize (opset 10 to current): nearest, linear and cubic over any axes, every
/// coordinate_transformation_mode. Each output index reads a few weighted input taps per axis.
enum ResizeKernel {
    struct Settings: Sendable {
        var mode: String
        var coordinateMode: String
        var nearestMode: String
        var cubicCoefficient: Double
        var excludeOutside: Bool
        var extrapolation: Float
        var axes: [Int]?
        var aspectPolicy: String
        var scalesOnlyInput: Bool
    }

    static func resize(_ spec: inout NodeSpec) throws -> any Kernel {
        let opset10 = spec.opset < 11
        let settings = Settings(
            mode: spec.string("mode", "nearest"),
            coordinateMode: opset10 ? "asymmetric" : spec.string("coordinate_transformation_mode", "half_pixel"),
            nearestMode: opset10 ? "floor" : spec.string("nearest_mode", "round_prefer_floor"),
            cubicCoefficient: Double(spec.float("cubic_coeff_a", -0.75)),
            excludeOutside: spec.int("exclude_outside", 0) == 1,
            extrapolation: spec.float("extrapolation_value", 0),
            axes: spec.ints("axes"),
            aspectPolicy: spec.string("keep_aspect_ratio_policy", "stretch"),
            scalesOnlyInput: opset10)
        guard ["nearest", "linear", "cubic"].contains(settings.mode) else { throw spec.unsupported("mode '\(settings.mode)' is not supported") }
        let coordinateModes = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                               "tf_half_pixel_for_nn", "tf_crop_and_resize"]
        guard coordinateModes.contains(settings.coordinateMode) else {
            throw spec.unsupported("coordinate_transformation_mode '\(settings.coordinateMode)' is not supported")
        }
        guard ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(settings.nearestMode) else {
            throw spec.unsupported("nearest_mode '\(settings.nearestMode)' is not supported")
        }
        if spec.int("antialias", 0) == 1 { throw spec.unsupported("antialias=1 is not supported") }
        return ClosureKernel { inputs, _ in
            try run(inputs, settings)
        }
    }

    static func run(_ inputs: [RuntimeTensor?], _ settings: Settings) throws -> [RuntimeTensor?] {
        let input = try inputs.required(0)
        guard input.dataType == .float else { throw unsupportedType(input.dataType) }
        let rank = input.rank
        let axes = try (settings.axes ?? Array(0..<rank)).map { try normalizedAxis($0, rank: rank) }
        let roiValues = settings.scalesOnlyInput ? [] : (inputs.optional(1).map { try? doubleValues($0) } ?? []) ?? []
        let scalesTensor = settings.scalesOnlyInput ? inputs.optional(1) : inputs.optional(2)
        let sizesTensor = settings.scalesOnlyInput ? nil : inputs.optional(3)
        var scales = [Double](repeating: 1, count: rank)
        var outputShape = input.shape
        var roiStart = [Double](repeating: 0, count: rank)
        var roiEnd = [Double](repeating: 1, count: rank)
        if roiValues.count == 2 * axes.count {
            for (position, axis) in axes.enumerated() {
                roiStart[axis] = roiValues[position]
                roiEnd[axis] = roiValues[position + axes.count]
            }
        }
        if let sizesTensor, sizesTensor.elementCount > 0 {
            let sizes = sizesTensor.integers.map { Int($0) }
            guard sizes.count == axes.count else { throw KernelError("sizes \(sizes) do not fit axes \(axes)") }
            if settings.aspectPolicy == "stretch" {
                for (position, axis) in axes.enumerated() {
                    outputShape[axis] = sizes[position]
                    scales[axis] = Double(sizes[position]) / Double(input.shape[axis])
                }
            } else {
                let ratios = axes.enumerated().map { Double($0.element == $0.element ? sizes[$0.offset] : 0) / Double(input.shape[$0.element]) }
                let common = settings.aspectPolicy == "not_larger" ? ratios.min()! : ratios.max()!
                for axis in axes {
                    scales[axis] = common
                    outputShape[axis] = Int((common * Double(input.shape[axis]) + 0.5).rounded(.down))
                }
            }
        } else if let scalesTensor, scalesTensor.elementCount > 0 {
            let given = scalesTensor.floats.map(Double.init)
            guard given.count == axes.count else { throw KernelError("scales \(given) do not fit axes \(axes)") }
            for (position, axis) in axes.enumerated() {
                scales[axis] = given[position]
                let extent = settings.coordinateMode == "tf_crop_and_resize" ? roiEnd[axis] - roiStart[axis] : 1
                outputShape[axis] = Int((Double(input.shape[axis]) * extent * given[position]).rounded(.down))
            }
        } else {
            throw KernelError("Resize needs scales or sizes")
        }

        let strides = contiguousStrides(input.shape)
        // Per axis, per output index: the taps (input offset, weight); nil = extrapolate.
        var taps: [[[(Int, Double)]?]] = []
        for axis in 0..<rank {
            let inputLength = input.shape[axis]
            let outputLength = outputShape[axis]
            var axisTaps: [[(Int, Double)]?] = []
            for index in 0..<outputLength {
                if inputLength == outputLength && scales[axis] == 1 && settings.coordinateMode != "tf_crop_and_resize" {
                    axisTaps.append([(index * strides[axis], 1)])
                    continue
                }
                let coordinate = sourceCoordinate(index, inputLength: inputLength, outputLength: outputLength, scale: scales[axis],
                                                  roiStart: roiStart[axis], roiEnd: roiEnd[axis], mode: settings.coordinateMode)
                if settings.coordinateMode == "tf_crop_and_resize" && (coordinate < 0 || coordinate > Double(inputLength - 1)) {
                    axisTaps.append(nil)
                    continue
                }
                axisTaps.append(weights(coordinate, length: inputLength, settings: settings).filter { $0.1 != 0 }
                    .map { ($0.0 * strides[axis], $0.1) })
            }
            taps.append(axisTaps)
        }
        let result = RuntimeTensor(dataType: .float, shape: outputShape)
        input.withUnsafeBuffer(of: Float.self) { source in
            result.withUnsafeMutableBuffer(of: Float.self) { output in
                guard output.count > 0 else { return }
                var index = [Int](repeating: 0, count: rank)
                for position in 0..<output.count {
                    var outside = false
                    for axis in 0..<rank where taps[axis][index[axis]] == nil { outside = true }
                    if outside {
                        output[position] = settings.extrapolation
                    } else {
                        func accumulate(_ axis: Int, _ offset: Int, _ weight: Double) -> Double {
                            if axis == rank { return weight * Double(source[offset]) }
                            var total = 0.0
                            for (tapOffset, tapWeight) in taps[axis][index[axis]]! {
                                total += accumulate(axis + 1, offset + tapOffset, weight * tapWeight)
                            }
                            return total
                        }
                        output[position] = Float(accumulate(0, 0, 1))
                    }
                    var axis = rank - 1
                    while axis >= 0 {
                        index[axis] += 1
                        if index[axis] < outputShape[axis] { break }
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
        return [result]
    }

    /// As onnx's reference: `width` is the unrounded output length (scale × input length).
    static func sourceCoordinate(_ index: Int, inputLength: Int, outputLength: Int, scale: Double, roiStart: Double, roiEnd: Double,
                                 mode: String) -> Double {
        let x = Double(index)
        let width = scale * Double(inputLength)
        switch mode {
        case "half_pixel": return (x + 0.5) / scale - 0.5
        case "half_pixel_symmetric":
            let adjustment = Double(outputLength) / width
            let center = Double(inputLength) / 2
            return center * (1 - adjustment) + (x + 0.5) / scale - 0.5
        case "pytorch_half_pixel": return width == 1 ? -0.5 : (x + 0.5) / scale - 0.5
        case "align_corners": return width == 1 ? 0 : x * Double(inputLength - 1) / (width - 1)
        case "tf_half_pixel_for_nn": return (x + 0.5) / scale
        case "tf_crop_and_resize":
            if width != 1 {
                return roiStart * Double(inputLength - 1) + x * (roiEnd - roiStart) * Double(inputLength - 1) / (width - 1)
            }
            return 0.5 * (roiStart + roiEnd) * Double(inputLength - 1)
        default: return x / scale
        }
    }

    /// Input indices and weights for one source coordinate.
    static func weights(_ coordinate: Double, length: Int, settings: Settings) -> [(Int, Double)] {
        func clamp(_ index: Int) -> Int { min(max(index, 0), length - 1) }
        switch settings.mode {
        case "nearest":
            let rounded: Double
            switch settings.nearestMode {
            case "floor": rounded = coordinate.rounded(.down)
            case "ceil": rounded = coordinate.rounded(.up)
            case "round_prefer_ceil": rounded = coordinate - coordinate.rounded(.down) == 0.5 ? coordinate.rounded(.up) : coordinate.rounded()
            default: rounded = coordinate - coordinate.rounded(.down) == 0.5 ? coordinate.rounded(.down) : coordinate.rounded()
            }
            return [(clamp(Int(rounded)), 1)]
        case "linear":
            let clamped = min(max(coordinate, 0), Double(length - 1))
            let lower = Int(clamped.rounded(.down))
            let ratio = clamped - Double(lower)
            return [(clamp(lower), 1 - ratio), (clamp(lower + 1), ratio)]
        default:
            let lower = Int(coordinate.rounded(.down))
            let ratio = coordinate - Double(lower)
            let a = settings.cubicCoefficient
            let coefficients = [
                ((a * (ratio + 1) - 5 * a) * (ratio + 1) + 8 * a) * (ratio + 1) - 4 * a,
                ((a + 2) * ratio - (a + 3)) * ratio * ratio + 1,
                ((a + 2) * (1 - ratio) - (a + 3)) * (1 - ratio) * (1 - ratio) + 1,
                ((a * (2 - ratio) - 5 * a) * (2 - ratio) + 8 * a) * (2 - ratio) - 4 * a,
            ]
            var taps = (0..<4).map { (lower - 1 + $0, coefficients[$0]) }
            if settings.excludeOutside {
                taps = taps.map { $0.0 < 0 || $0.0 >= length ? ($0.0, 0) : $0 }
                let total = taps.reduce(0) { $0 + $1.1 }
                taps = taps.map { ($0.0, total == 0 ? 0 : $0.1 / total) }
            }
            return taps.map { (clamp($0.0), $0.1) }
        }
    }
}
