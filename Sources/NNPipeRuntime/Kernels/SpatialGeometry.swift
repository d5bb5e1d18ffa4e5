import NNPipeCore

/// Window geometry shared by Conv, ConvTranspose and the pools. Spatial ranks 1...3 are held
/// as 3-D with leading size-1 axes, so one loop nest serves all of them.
struct SpatialGeometry: Sendable {
    var input: [Int]
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    var padBegin: [Int]
    var padEnd: [Int]
    var output: [Int]
    let spatialRank: Int

    var inputSize: Int { input.reduce(1, *) }
    var outputSize: Int { output.reduce(1, *) }
    var kernelSize: Int { kernel.reduce(1, *) }

    /// The attributes a windowed op reads, checked once at plan time.
    struct Attributes: Sendable {
        var kernelShape: [Int]?
        var strides: [Int]?
        var dilations: [Int]?
        var pads: [Int]?
        var autoPad: String
        var ceilMode: Bool

        init(kernelShape: [Int]?, strides: [Int]?, dilations: [Int]?, pads: [Int]?, autoPad: String, ceilMode: Bool) {
            (self.kernelShape, self.strides, self.dilations, self.pads, self.autoPad, self.ceilMode) =
                (kernelShape, strides, dilations, pads, autoPad, ceilMode)
        }

        init(_ spec: inout NodeSpec, ceilMode: Bool = false) throws {
            kernelShape = spec.ints("kernel_shape")
            strides = spec.ints("strides")
            dilations = spec.ints("dilations")
            pads = spec.ints("pads")
            autoPad = spec.string("auto_pad", "NOTSET")
            self.ceilMode = ceilMode
            guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
                throw spec.invalid("auto_pad '\(autoPad)' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
            }
        }
    }

    /// Forward geometry (Conv and pools): output size from input, kernel, pads or auto_pad.
    /// - Parameter pooling: also refuse pads as large as the kernel, as onnxruntime does for pools:
    ///   a window wholly in the padding has no element to take the maximum or mean of.
    init(inputShape: [Int], kernelShape: [Int], attributes: Attributes, pooling: Bool = false) throws {
        let rank = inputShape.count
        guard (1...3).contains(rank), kernelShape.count == rank else {
            throw KernelError("spatial rank \(rank) is not supported (1 to 3 are)", code: .unsupported)
        }
        spatialRank = rank
        let strides = attributes.strides ?? [Int](repeating: 1, count: rank)
        let dilations = attributes.dilations ?? [Int](repeating: 1, count: rank)
        var pads = attributes.pads ?? [Int](repeating: 0, count: 2 * rank)
        guard strides.count == rank, dilations.count == rank, pads.count == 2 * rank,
              strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 })
        else { throw KernelError("strides, dilations or pads do not fit spatial rank \(rank)") }
        guard kernelShape.allSatisfy({ $0 > 0 }) else { throw KernelError("kernel \(kernelShape) has a size below 1") }
        guard pads.allSatisfy({ $0 >= 0 }) else { throw KernelError("pads \(pads) are negative") }
        try Self.checkMagnitudes(kernelShape + strides + dilations + pads)
        var output = [Int](repeating: 0, count: rank)
        for axis in 0..<rank {
            let extent = (kernelShape[axis] - 1) * dilations[axis] + 1
            switch attributes.autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                output[axis] = (inputShape[axis] + strides[axis] - 1) / strides[axis]
                let total = max(0, (output[axis] - 1) * strides[axis] + extent - inputShape[axis])
                pads[axis] = attributes.autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                pads[axis + rank] = total - pads[axis]
            case "VALID":
                pads[axis] = 0
                pads[axis + rank] = 0
                output[axis] = max(0, (inputShape[axis] - extent) / strides[axis] + 1)
            default:
                let span = inputShape[axis] + pads[axis] + pads[axis + rank] - extent
                guard span >= 0 else { throw KernelError("the window is larger than the padded input") }
                if attributes.ceilMode {
                    output[axis] = (span + strides[axis] - 1) / strides[axis] + 1
                    // The last window must start inside the input or its leading pad.
                    if (output[axis] - 1) * strides[axis] >= inputShape[axis] + pads[axis] { output[axis] -= 1 }
                } else {
                    output[axis] = span / strides[axis] + 1
                }
            }
        }
        if pooling, let axis = (0..<rank).first(where: { pads[$0] >= kernelShape[$0] || pads[$0 + rank] >= kernelShape[$0] }) {
            throw KernelError("pads \(pads) are not smaller than kernel \(kernelShape) on spatial axis \(axis)")
        }
        let lead = [Int](repeating: 1, count: 3 - rank)
        let zeros = [Int](repeating: 0, count: 3 - rank)
        input = lead + inputShape
        kernel = lead + kernelShape
        self.strides = lead + strides
        self.dilations = lead + dilations
        padBegin = zeros + pads[0..<rank]
        padEnd = zeros + pads[rank...]
        self.output = lead + output
    }

    /// Backward geometry (ConvTranspose): input here is the transposed conv's input.
    init(transposedInput inputShape: [Int], kernelShape: [Int], attributes: Attributes, outputPadding: [Int]?, outputShape: [Int]?) throws {
        let rank = inputShape.count
        guard (1...3).contains(rank), kernelShape.count == rank else {
            throw KernelError("spatial rank \(rank) is not supported (1 to 3 are)", code: .unsupported)
        }
        spatialRank = rank
        let strides = attributes.strides ?? [Int](repeating: 1, count: rank)
        let dilations = attributes.dilations ?? [Int](repeating: 1, count: rank)
        let extraPadding = outputPadding ?? [Int](repeating: 0, count: rank)
        let same = attributes.autoPad == "SAME_UPPER" || attributes.autoPad == "SAME_LOWER"
        var pads = attributes.pads ?? [Int](repeating: 0, count: 2 * rank)
        var output = [Int](repeating: 0, count: rank)
        guard strides.count == rank, dilations.count == rank, pads.count == 2 * rank, extraPadding.count == rank,
              strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }), (outputShape?.count ?? rank) == rank
        else {
            throw KernelError("strides, dilations, pads, output_padding or output_shape do not fit spatial rank \(rank)")
        }
        guard kernelShape.allSatisfy({ $0 > 0 }) else { throw KernelError("kernel \(kernelShape) has a size below 1") }
        guard extraPadding.allSatisfy({ $0 >= 0 }), (outputShape ?? []).allSatisfy({ $0 >= 0 }) else {
            throw KernelError("output_padding \(extraPadding) or output_shape \(outputShape ?? []) is negative")
        }
        try Self.checkMagnitudes(kernelShape + strides + dilations + pads + extraPadding + (outputShape ?? []))
        for axis in 0..<rank {
            let natural = strides[axis] * (inputShape[axis] - 1) + extraPadding[axis] + (kernelShape[axis] - 1) * dilations[axis] + 1
            if same && attributes.pads == nil {
                output[axis] = outputShape?[axis] ?? inputShape[axis] * strides[axis]
                let total = natural - output[axis]
                let half = Int((Double(total) / 2).rounded(.down))
                pads[axis] = attributes.autoPad == "SAME_UPPER" ? half : total - half
                pads[axis + rank] = total - pads[axis]
            } else if let outputShape {
                // As onnx's reference: explicit output_shape keeps the given (or zero) leading pads.
                output[axis] = outputShape[axis]
                pads[axis + rank] = natural - output[axis] - pads[axis]
            } else {
                output[axis] = natural - pads[axis] - pads[axis + rank]
            }
            guard output[axis] >= 0 else { throw KernelError("pads \(pads) remove more than the output holds") }
        }
        let lead = [Int](repeating: 1, count: 3 - rank)
        let zeros = [Int](repeating: 0, count: 3 - rank)
        input = lead + inputShape
        kernel = lead + kernelShape
        self.strides = lead + strides
        self.dilations = lead + dilations
        padBegin = zeros + pads[0..<rank]
        padEnd = zeros + pads[rank...]
        self.output = lead + output
    }

    var outputSpatialShape: [Int] { Array(output.suffix(spatialRank)) }

    /// Window attributes past this bound describe no real model, and products of two of them
    /// with a dimension (a stride times an input length) could overflow: refused.
    static let attributeLimit = 1 << 24

    static func checkMagnitudes(_ values: [Int]) throws {
        if let large = values.first(where: { abs($0) > attributeLimit }) {
            throw KernelError("a kernel, stride, dilation or pad of \(large) is beyond \(attributeLimit)")
        }
    }

    /// Writes the im2col matrix of one image's `channels` planes: rows (channel, kernel offset),
    /// columns output positions; out-of-image taps are 0. Rows start `rowStride` elements apart
    /// (default: the output size), so several images' matrices can sit side by side. `outputRows`
    /// (2-D only) writes the columns of those output rows alone: a segment of the matrix.
    func imageToColumns<Element: BinaryFloatingPoint>(_ image: UnsafePointer<Element>, channels: Int, into columns: UnsafeMutablePointer<Element>,
                                                      rowStride: Int? = nil, outputRows: Range<Int>? = nil, threads: Int) {
        precondition(outputRows == nil || output[0] == 1, "output row segments are for 2-D convolutions")
        let heightRange = outputRows ?? 0..<output[1]
        let outputCount = output[0] * heightRange.count * output[2]
        let stride = rowStride ?? outputCount
        let kernelCount = kernelSize
        let work = channels * kernelCount
        // Locals, not array properties, inside the loops: no bounds checks or reference counting there.
        let (inputDepth, inputHeight, inputWidth) = (input[0], input[1], input[2])
        let (outputDepth, outputWidth) = (output[0], output[2])
        let (kernelHeight, kernelWidth) = (kernel[1], kernel[2])
        let (strideD, strideH, strideW) = (strides[0], strides[1], strides[2])
        let (dilationD, dilationH, dilationW) = (dilations[0], dilations[1], dilations[2])
        let (padD, padH, padW) = (padBegin[0], padBegin[1], padBegin[2])
        let planeSize = inputSize
        parallelChunks(work, threads: work * outputCount >= parallelElementThreshold ? threads : 1) { rows in
            for row in rows {
                let channel = row / kernelCount
                var offset = row % kernelCount
                let kw = offset % kernelWidth; offset /= kernelWidth
                let kh = offset % kernelHeight
                let kd = offset / kernelHeight
                let plane = image + channel * planeSize
                var destination = columns + row * stride
                let start = kw * dilationW - padW
                // Output columns whose tap lands inside the row.
                let firstColumn = min(outputWidth, max(0, (-start + strideW - 1) / strideW))
                let lastColumn = max(firstColumn, min(outputWidth, (inputWidth - start + strideW - 1) / strideW))
                for od in 0..<outputDepth {
                    let id = od * strideD - padD + kd * dilationD
                    for oh in heightRange {
                        let ih = oh * strideH - padH + kh * dilationH
                        if id < 0 || id >= inputDepth || ih < 0 || ih >= inputHeight {
                            destination.update(repeating: 0, count: outputWidth)
                        } else {
                            let source = plane + (id * inputHeight + ih) * inputWidth + start
                            for ow in 0..<firstColumn { destination[ow] = 0 }
                            if strideW == 1 {
                                (destination + firstColumn).update(from: source + firstColumn, count: lastColumn - firstColumn)
                            } else {
                                for ow in firstColumn..<lastColumn { destination[ow] = source[ow * strideW] }
                            }
                            for ow in lastColumn..<outputWidth { destination[ow] = 0 }
                        }
                        destination += outputWidth
                    }
                }
            }
        }
    }

    /// The inverse scatter of `imageToColumns` (for ConvTranspose): adds columns into the image.
    /// Here `input` is the column grid and `output` the image being accumulated.
    func columnsToImage(_ columns: UnsafePointer<Float>, channels: Int, into image: UnsafeMutablePointer<Float>, threads: Int) {
        let gridCount = inputSize
        let kernelCount = kernelSize
        let imageSize = outputSize
        parallelChunks(channels, threads: channels * kernelCount * gridCount >= parallelElementThreshold ? threads : 1) { channelRange in
            for channel in channelRange {
                let plane = image + channel * imageSize
                for offset in 0..<kernelCount {
                    var rest = offset
                    let kw = rest % kernel[2]; rest /= kernel[2]
                    let kh = rest % kernel[1]
                    let kd = rest / kernel[1]
                    var source = columns + (channel * kernelCount + offset) * gridCount
                    for id in 0..<input[0] {
                        let od = id * strides[0] - padBegin[0] + kd * dilations[0]
                        for ih in 0..<input[1] {
                            let oh = ih * strides[1] - padBegin[1] + kh * dilations[1]
                            if od >= 0 && od < output[0] && oh >= 0 && oh < output[1] {
                                let row = plane + (od * output[1] + oh) * output[2]
                                for iw in 0..<input[2] {
                                    let ow = iw * strides[2] - padBegin[2] + kw * dilations[2]
                                    if ow >= 0 && ow < output[2] { row[ow] += source[iw] }
                                }
                            }
                            source += input[2]
                        }
                    }
                }
            }
        }
    }
}
