import NNPipeCore

/// Conv (groups, depthwise, strides, pads, dilations) as im2col + one SGEMM per chunk of images
/// and group; backward is the same GEMMs transposed plus col2im.
final class ConvolutionOperator: DifferentiableOperator {
    let node: Node
    let groups: Int

    init(node: Node) {
        self.node = node
        groups = node.integer("group", default: 1)
    }

    private struct Layout {
        var geometry: WindowGeometry
        var batch: Int
        var inputChannels: Int
        var outputChannels: Int
        var channelsPerGroup: Int
        var outputsPerGroup: Int
        var outputShape: [Int]
        /// Rows of the column matrix: input channels of a group × kernel taps.
        var columnRows: Int { channelsPerGroup * geometry.kernelSpatial }
    }

    private func layout(_ x: TrainingTensor, _ w: TrainingTensor) throws -> Layout {
        guard x.rank == w.rank, x.rank == 3 || x.rank == 4 else {
            throw NNPipeError(.unsupported, "Conv training supports 1-D and 2-D convolutions, got input \(x.shape) and weight \(w.shape)")
        }
        let geometry = try WindowGeometry(node: node, spatial: Array(x.shape[2...]), kernel: node.integers("kernel_shape") ?? Array(w.shape[2...]))
        let inputChannels = x.shape[1]
        let outputChannels = w.shape[0]
        guard groups >= 1, inputChannels % groups == 0, outputChannels % groups == 0, w.shape[1] == inputChannels / groups else {
            throw NNPipeError(.invalidModel, "\(node.displayName): weight \(w.shape) does not fit input \(x.shape) with \(groups) groups")
        }
        let spatial = x.rank == 4 ? [geometry.outputHeight, geometry.outputWidth] : [geometry.outputWidth]
        return Layout(geometry: geometry, batch: x.shape[0], inputChannels: inputChannels, outputChannels: outputChannels,
                      channelsPerGroup: inputChannels / groups, outputsPerGroup: outputChannels / groups,
                      outputShape: [x.shape[0], outputChannels] + spatial)
    }

    /// Images per GEMM: small feature maps (8×8 digits) are far too small for one SGEMM each,
    /// so a chunk of images shares one column matrix, capped at 4M floats (16 MB).
    private func chunkSize(_ layout: Layout) -> Int {
        let perImage = max(layout.columnRows * layout.geometry.outputSpatial, 1)
        return max(1, min(layout.batch, (1 << 22) / perImage))
    }

    /// Fills one image's columns of the column matrix [channelsPerGroup·kernel, rowStride] from
    /// one group of that image; `columns` points at the image's first column. Padding stays 0.
    private func imageToColumns(_ x: UnsafePointer<Float>, _ layout: Layout, into columns: UnsafeMutablePointer<Float>, rowStride: Int) {
        let geometry = layout.geometry
        for channel in 0..<layout.channelsPerGroup {
            let image = x + channel * geometry.inputSpatial
            let block = columns + channel * geometry.kernelSpatial * rowStride
            geometry.forEachTap { kernel, output, input in block[kernel * rowStride + output] = image[input] }
        }
    }

    /// Adds one image's columns back onto one group of its gradient (col2im).
    private func columnsToImage(_ columns: UnsafePointer<Float>, _ layout: Layout, into x: UnsafeMutablePointer<Float>, rowStride: Int) {
        let geometry = layout.geometry
        for channel in 0..<layout.channelsPerGroup {
            let image = x + channel * geometry.inputSpatial
            let block = columns + channel * geometry.kernelSpatial * rowStride
            geometry.forEachTap { kernel, output, input in image[input] += block[kernel * rowStride + output] }
        }
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let x = try required(inputs, 0, "X")
        let w = try required(inputs, 1, "W")
        let bias = inputs.count > 2 ? inputs[2] : nil
        let layout = try layout(x, w)
        let geometry = layout.geometry
        let spatial = geometry.outputSpatial
        let chunk = chunkSize(layout)
        var output = [Float](repeating: 0, count: layout.outputShape.reduce(1, *))
        var columns = [Float](repeating: 0, count: layout.columnRows * chunk * spatial)
        var product = [Float](repeating: 0, count: layout.outputsPerGroup * chunk * spatial)
        x.values.withUnsafeBufferPointer { xx in
            w.values.withUnsafeBufferPointer { ww in
                output.withUnsafeMutableBufferPointer { yy in
                    columns.withUnsafeMutableBufferPointer { cc in
                        product.withUnsafeMutableBufferPointer { pp in
                            for first in stride(from: 0, to: layout.batch, by: chunk) {
                                let count = min(chunk, layout.batch - first)
                                let width = count * spatial
                                for group in 0..<groups {
                                    // Taps that fall in the padding are never written: start from zeros.
                                    cc.update(repeating: 0)
                                    for image in 0..<count {
                                        let source = xx.baseAddress! + ((first + image) * layout.inputChannels + group * layout.channelsPerGroup) * geometry.inputSpatial
                                        imageToColumns(source, layout, into: cc.baseAddress! + image * spatial, rowStride: width)
                                    }
                                    // Y_g [outputsPerGroup, images·spatial] = W_g · columns
                                    multiply(rows: layout.outputsPerGroup, columns: width, inner: layout.columnRows,
                                             ww.baseAddress! + group * layout.outputsPerGroup * layout.columnRows, cc.baseAddress!,
                                             into: pp.baseAddress!)
                                    for channel in 0..<layout.outputsPerGroup {
                                        let added = bias?.values[group * layout.outputsPerGroup + channel] ?? 0
                                        for image in 0..<count {
                                            let target = yy.baseAddress! + ((first + image) * layout.outputChannels + group * layout.outputsPerGroup + channel) * spatial
                                            let source = pp.baseAddress! + channel * width + image * spatial
                                            for position in 0..<spatial { target[position] = source[position] + added }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return [TrainingTensor(shape: layout.outputShape, values: output)]
    }

    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    {
        let x = try required(inputs, 0, "X")
        let w = try required(inputs, 1, "W")
        let layout = try layout(x, w)
        let geometry = layout.geometry
        let spatial = geometry.outputSpatial
        let chunk = chunkSize(layout)
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        var gradientX = [Float](repeating: 0, count: x.elementCount)
        var gradientW = [Float](repeating: 0, count: w.elementCount)
        var columns = [Float](repeating: 0, count: layout.columnRows * chunk * spatial)
        var columnGradient = columns
        var gathered = [Float](repeating: 0, count: layout.outputsPerGroup * chunk * spatial)
        x.values.withUnsafeBufferPointer { xx in
            w.values.withUnsafeBufferPointer { ww in
                upstream.values.withUnsafeBufferPointer { dy in
                    gradientX.withUnsafeMutableBufferPointer { dx in
                        gradientW.withUnsafeMutableBufferPointer { dw in
                            columns.withUnsafeMutableBufferPointer { cc in
                                columnGradient.withUnsafeMutableBufferPointer { dc in
                                    gathered.withUnsafeMutableBufferPointer { gg in
                                        for first in stride(from: 0, to: layout.batch, by: chunk) {
                                            let count = min(chunk, layout.batch - first)
                                            let width = count * spatial
                                            for group in 0..<groups {
                                                let weights = group * layout.outputsPerGroup * layout.columnRows
                                                // dY_g of the chunk as one [outputsPerGroup, images·spatial] matrix.
                                                for channel in 0..<layout.outputsPerGroup {
                                                    for image in 0..<count {
                                                        let source = dy.baseAddress! + ((first + image) * layout.outputChannels + group * layout.outputsPerGroup + channel) * spatial
                                                        (gg.baseAddress! + channel * width + image * spatial).update(from: source, count: spatial)
                                                    }
                                                }
                                                cc.update(repeating: 0)
                                                for image in 0..<count {
                                                    let source = xx.baseAddress! + ((first + image) * layout.inputChannels + group * layout.channelsPerGroup) * geometry.inputSpatial
                                                    imageToColumns(source, layout, into: cc.baseAddress! + image * spatial, rowStride: width)
                                                }
                                                // dW_g += dY_g · columnsᵀ
                                                multiply(rows: layout.outputsPerGroup, columns: layout.columnRows, inner: width,
                                                         gg.baseAddress!, cc.baseAddress!, transposeB: true, into: dw.baseAddress! + weights, beta: 1)
                                                // dcolumns = W_gᵀ · dY_g, then col2im into dX.
                                                multiply(rows: layout.columnRows, columns: width, inner: layout.outputsPerGroup,
                                                         ww.baseAddress! + weights, transposeA: true, gg.baseAddress!, into: dc.baseAddress!)
                                                for image in 0..<count {
                                                    let target = dx.baseAddress! + ((first + image) * layout.inputChannels + group * layout.channelsPerGroup) * geometry.inputSpatial
                                                    columnsToImage(dc.baseAddress! + image * spatial, layout, into: target, rowStride: width)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        var result: [TrainingTensor?] = [TrainingTensor(shape: x.shape, values: gradientX), TrainingTensor(shape: w.shape, values: gradientW)]
        if inputs.count > 2, let bias = inputs[2] {
            var gradientBias = [Float](repeating: 0, count: bias.elementCount)
            for image in 0..<layout.batch {
                for channel in 0..<layout.outputChannels {
                    let base = (image * layout.outputChannels + channel) * geometry.outputSpatial
                    var sum: Float = 0
                    for position in 0..<geometry.outputSpatial { sum += upstream.values[base + position] }
                    gradientBias[channel] += sum
                }
            }
            result.append(TrainingTensor(shape: bias.shape, values: gradientBias))
        }
        return result
    }
}
