import NNPipeCore

/// Kernel windows over two spatial axes (a 1-D op is run with height 1): sizes, strides,
/// dilations and pads resolved from the node's attributes, including `auto_pad`.
struct WindowGeometry {
    var inputHeight: Int
    var inputWidth: Int
    var kernelHeight: Int
    var kernelWidth: Int
    var strideHeight: Int
    var strideWidth: Int
    var dilationHeight: Int
    var dilationWidth: Int
    var padTop: Int
    var padLeft: Int
    var outputHeight: Int
    var outputWidth: Int

    /// `spatial` is the input's spatial shape (1 or 2 axes), `kernel` the window's.
    init(node: Node, spatial: [Int], kernel: [Int], ceilMode: Bool = false) throws {
        guard spatial.count == kernel.count, (1...2).contains(spatial.count) else {
            throw NNPipeError(.unsupported, "\(node.opType) training supports 1-D and 2-D windows, got spatial shape \(spatial)")
        }
        let rank = spatial.count
        let strides = node.integers("strides") ?? Array(repeating: 1, count: rank)
        let dilations = node.integers("dilations") ?? Array(repeating: 1, count: rank)
        var pads = node.integers("pads") ?? Array(repeating: 0, count: 2 * rank)
        let autoPad = node.text("auto_pad", default: "NOTSET")
        var outputs: [Int] = []
        for axis in 0..<rank {
            let extent = dilations[axis] * (kernel[axis] - 1) + 1
            switch autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                let output = (spatial[axis] + strides[axis] - 1) / strides[axis]
                let total = max(0, (output - 1) * strides[axis] + extent - spatial[axis])
                let small = total / 2
                pads[axis] = autoPad == "SAME_UPPER" ? small : total - small
                pads[axis + rank] = total - pads[axis]
                outputs.append(output)
            case "VALID":
                pads[axis] = 0
                pads[axis + rank] = 0
                outputs.append((spatial[axis] - extent) / strides[axis] + 1)
            default:
                let span = spatial[axis] + pads[axis] + pads[axis + rank] - extent
                outputs.append((ceilMode ? (span + strides[axis] - 1) / strides[axis] : span / strides[axis]) + 1)
            }
        }
        guard outputs.allSatisfy({ $0 > 0 }) else {
            throw NNPipeError(.invalidModel, "\(node.displayName): window \(kernel) does not fit input \(spatial)")
        }
        let two = { (values: [Int], fill: Int) -> (Int, Int) in rank == 2 ? (values[0], values[1]) : (fill, values[0]) }
        (inputHeight, inputWidth) = two(spatial, 1)
        (kernelHeight, kernelWidth) = two(kernel, 1)
        (strideHeight, strideWidth) = two(strides, 1)
        (dilationHeight, dilationWidth) = two(dilations, 1)
        (padTop, padLeft) = rank == 2 ? (pads[0], pads[1]) : (0, pads[0])
        (outputHeight, outputWidth) = two(outputs, 1)
    }

    var outputSpatial: Int { outputHeight * outputWidth }
    var inputSpatial: Int { inputHeight * inputWidth }
    var kernelSpatial: Int { kernelHeight * kernelWidth }

    /// Calls `body(kernelIndex, outputIndex, inputIndex)` for every in-bounds tap; pads are skipped.
    @inline(__always)
    func forEachTap(_ body: (Int, Int, Int) -> Void) {
        for kernelRow in 0..<kernelHeight {
            for kernelColumn in 0..<kernelWidth {
                let kernelIndex = kernelRow * kernelWidth + kernelColumn
                for outputRow in 0..<outputHeight {
                    let inputRow = outputRow * strideHeight - padTop + kernelRow * dilationHeight
                    if inputRow < 0 || inputRow >= inputHeight { continue }
                    for outputColumn in 0..<outputWidth {
                        let inputColumn = outputColumn * strideWidth - padLeft + kernelColumn * dilationWidth
                        if inputColumn < 0 || inputColumn >= inputWidth { continue }
                        body(kernelIndex, outputRow * outputWidth + outputColumn, inputRow * inputWidth + inputColumn)
                    }
                }
            }
        }
    }
}
