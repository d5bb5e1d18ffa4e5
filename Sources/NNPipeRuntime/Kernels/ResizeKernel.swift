import Foundation
import NNPipeCore

/// Resize (opset 10 to current): nearest, linear and cubic over any axes, every
/// coordinate_transformation_mode, antialiased downsampling. Each output index reads a few
/// weighted input taps per axis.
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
        /// Linear and cubic downsampling widen the filter by 1/scale (opset 18); nearest ignores it.
        var antialias: Bool
    }

    static func resize(_ spec: inout NodeSpec) throws -> any Kernel {
        let settings = try settings(&spec)
        return ClosureKernel { inputs, _ in
            try run(inputs, settings)
        }
    }

    static func settings(_ spec: inout NodeSpec) throws -> Settings {
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
            scalesOnlyInput: opset10,
            antialias: spec.int("antialias", 0) == 1)
        guard ["nearest", "linear", "cubic"].contains(settings.mode) else { throw spec.unsupported("mode '\(settings.mode)' is not supported") }
        let coordinateModes = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                               "tf_half_pixel_for_nn", "tf_crop_and_resize"]
        guard coordinateModes.contains(settings.coordinateMode) else {
            throw spec.unsupported("coordinate_transformation_mode '\(settings.coordinateMode)' is not supported")
        }
        guard ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(settings.nearestMode) else {
            throw spec.unsupported("nearest_mode '\(settings.nearestMode)' is not supported")
        }
        return settings
    }

    /// Output shape, per-axis scales and region of interest, from the roi/scales/sizes inputs
    /// (input 0 is not read, so shape inference can call this with only the shape known).
    struct Geometry {
        var outputShape: [Int]
        var scales: [Double]
        var roiStart: [Double]
        var roiEnd: [Double]
    }

    static func geometry(inputShape: [Int], _ inputs: [RuntimeTensor?], _ settings: Settings) throws -> Geometry {
        let rank = inputShape.count
        let axes = try (settings.axes ?? Array(0..<rank)).map { try normalizedAxis($0, rank: rank) }
        let roiValues = settings.scalesOnlyInput ? [] : (inputs.optional(1).map { try? doubleValues($0) } ?? []) ?? []
        let scalesTensor = settings.scalesOnlyInput ? inputs.optional(1) : inputs.optional(2)
        let sizesTensor = settings.scalesOnlyInput ? nil : inputs.optional(3)
        var scales = [Double](repeating: 1, count: rank)
        var outputShape = inputShape
        var roiStart = [Double](repeating: 0, count: rank)
        var roiEnd = [Double](repeating: 1, count: rank)
        if roiValues.count == 2 * axes.count {
            for (position, axis) in axes.enumerated() {
                roiStart[axis] = roiValues[position]
                roiEnd[axis] = roiValues[position + axes.count]
            }
        }
        // Scales and sizes are the model's own numbers: a NaN, infinite or huge one must fail
        // here, not trap converting to Int or allocate terabytes.
        func length(_ value: Double) throws -> Int {
            guard value.isFinite, value >= 0, value < 0x1p53 else { throw KernelError("an output length of \(value) from scales or sizes") }
            return Int(value)
        }
        if let sizesTensor, sizesTensor.elementCount > 0 {
            let sizes = sizesTensor.integers.map { Int($0) }
            guard sizes.count == axes.count else { throw KernelError("sizes \(sizes) do not fit axes \(axes)") }
            guard sizes.allSatisfy({ $0 >= 0 }) else { throw KernelError("sizes \(sizes) include a negative size") }
            if settings.aspectPolicy == "stretch" {
                for (position, axis) in axes.enumerated() {
                    outputShape[axis] = sizes[position]
                    scales[axis] = Double(sizes[position]) / Double(inputShape[axis])
                }
            } else {
                let ratios = axes.enumerated().map { Double(sizes[$0.offset]) / Double(inputShape[$0.element]) }
                let common = settings.aspectPolicy == "not_larger" ? ratios.min()! : ratios.max()!
                for axis in axes {
                    scales[axis] = common
                    outputShape[axis] = try length((common * Double(inputShape[axis]) + 0.5).rounded(.down))
                }
            }
        } else if let scalesTensor, scalesTensor.elementCount > 0 {
            let given = scalesTensor.floats.map(Double.init)
            guard given.count == axes.count else { throw KernelError("scales \(given) do not fit axes \(axes)") }
            guard given.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw KernelError("scales \(given) must be finite and above 0") }
            for (position, axis) in axes.enumerated() {
                scales[axis] = given[position]
                let extent = settings.coordinateMode == "tf_crop_and_resize" ? roiEnd[axis] - roiStart[axis] : 1
                outputShape[axis] = try length((Double(inputShape[axis]) * extent * given[position]).rounded(.down))
            }
        } else {
            throw KernelError("Resize needs scales or sizes")
        }
        try TensorSize.check(outputShape, .float, what: "output shape")
        return Geometry(outputShape: outputShape, scales: scales, roiStart: roiStart, roiEnd: roiEnd)
    }

    static func run(_ inputs: [RuntimeTensor?], _ settings: Settings) throws -> [RuntimeTensor?] {
        let input = try inputs.required(0)
        guard input.dataType == .float else { throw unsupportedType(input.dataType) }
        let rank = input.rank
        let geometry = try geometry(inputShape: input.shape, inputs, settings)
        let outputShape = geometry.outputShape, scales = geometry.scales
        let roiStart = geometry.roiStart, roiEnd = geometry.roiEnd

        // Per axis, per output index: the taps (input index, weight); nil = extrapolate. An axis
        // left as it is gets no taps at all and is skipped.
        var taps: [[[(Int, Double)]?]?] = []
        for axis in 0..<rank {
            let inputLength = input.shape[axis]
            let outputLength = outputShape[axis]
            if inputLength == outputLength && scales[axis] == 1 && settings.coordinateMode != "tf_crop_and_resize" {
                taps.append(nil)
                continue
            }
            var axisTaps: [[(Int, Double)]?] = []
            for index in 0..<outputLength {
                let coordinate = sourceCoordinate(index, inputLength: inputLength, outputLength: outputLength, scale: scales[axis],
                                                  roiStart: roiStart[axis], roiEnd: roiEnd[axis], mode: settings.coordinateMode)
                if settings.coordinateMode == "tf_crop_and_resize" && (coordinate < 0 || coordinate > Double(inputLength - 1)) {
                    axisTaps.append(nil)
                    continue
                }
                let axisWeights = settings.antialias && settings.mode != "nearest" && scales[axis] < 1
                    ? antialiasWeights(coordinate, length: inputLength, scale: scales[axis], settings: settings)
                    : weights(coordinate, length: inputLength, settings: settings)
                axisTaps.append(axisWeights.filter { $0.1 != 0 })
            }
            taps.append(axisTaps)
        }
        // The filter is a product of per-axis filters, so it runs one axis at a time (in Double, as
        // onnx's reference sums): each pass reads a few taps per element instead of their product.
        var current = input.floats.map(Double.init)
        var currentShape = input.shape
        for axis in 0..<rank {
            guard let axisTaps = taps[axis] else { continue }
            let outer = currentShape[..<axis].reduce(1, *), inner = currentShape[(axis + 1)...].reduce(1, *)
            let inputLength = currentShape[axis], outputLength = outputShape[axis]
            var next = [Double](repeating: 0, count: outer * outputLength * inner)
            current.withUnsafeBufferPointer { source in
                next.withUnsafeMutableBufferPointer { target in
                    for block in 0..<outer {
                        for (index, entry) in axisTaps.enumerated() {
                            guard let entry else { continue }
                            let destination = (block * outputLength + index) * inner
                            for (tap, weight) in entry {
                                let origin = (block * inputLength + tap) * inner
                                for element in 0..<inner { target[destination + element] += weight * source[origin + element] }
                            }
                        }
                    }
                }
            }
            current = next
            currentShape[axis] = outputLength
        }
        let result = RuntimeTensor(dataType: .float, shape: outputShape)
        result.withUnsafeMutableBuffer(of: Float.self) { output in
            for position in 0..<output.count { output[position] = Float(current[position]) }
            // tf_crop_and_resize: an output outside the crop box on any axis takes extrapolation_value.
            guard taps.contains(where: { $0?.contains(where: { $0 == nil }) == true }) else { return }
            let strides = contiguousStrides(outputShape)
            for position in 0..<output.count {
                var remainder = position
                for axis in 0..<rank {
                    let index = remainder / strides[axis]
                    remainder %= strides[axis]
                    if let axisTaps = taps[axis], axisTaps[index] == nil {
                        output[position] = settings.extrapolation
                        break
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

    /// Antialiased linear or cubic taps, as onnx's reference: the filter is stretched by 1/scale so
    /// every input sample under the output pixel contributes, then normalised to sum to one.
    /// The reference counts taps from `coordinate - ratio` with `ratio` in (0, 1]; so does this.
    static func antialiasWeights(_ coordinate: Double, length: Int, scale: Double, settings: Settings) -> [(Int, Double)] {
        let integral = coordinate.rounded(.down)
        let ratio = coordinate == integral ? 1 : coordinate - integral
        let base = Int(integral) - (coordinate == integral ? 1 : 0)
        let linear = settings.mode == "linear"
        let support = linear ? 1.0 : 2.0
        let start = Int((-support / scale).rounded(.down)) + 1
        let end = linear ? start + 2 - 2 * start : 2 - start
        let a = settings.cubicCoefficient
        func filter(_ x: Double) -> Double {
            let x = abs(x)
            if linear { return min(max(1 - x, 0), 1) }
            if x <= 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
            return 0
        }
        var taps = (start..<end).map { (base + $0, filter(scale * (Double($0) - ratio))) }
        var total = taps.reduce(0) { $0 + $1.1 }
        taps = taps.map { ($0.0, $0.1 / total) }
        if settings.excludeOutside {
            taps = taps.map { $0.0 < 0 || $0.0 >= length ? ($0.0, 0) : $0 }
            total = taps.reduce(0) { $0 + $1.1 }
            taps = taps.map { ($0.0, total == 0 ? 0 : $0.1 / total) }
        }
        return taps.map { (min(max($0.0, 0), length - 1), $0.1) }
    }
}
