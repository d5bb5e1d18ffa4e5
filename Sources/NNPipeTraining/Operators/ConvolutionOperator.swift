import NNPipeCore

/// Conv (groups, depthwise, strides, pads, dilations) as im2col + SGEMM per image and group;
/// backward is the same GEMMs transposed plus col2im.
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

    /// Fills `columns` [channelsPerGroup·kernel, outputSpatial] from one group of one image.
    private func imageToColumns(_ x: UnsafePointer<Float>, _ layout: Layout, into columns: UnsafeMutablePointer<Float>) {
        let geometry = layout.geometry
        columns.initialize(repeating: 0, count: layout.columnRows * geometry.outputSpatial)
        for channel in 0..<layout.channelsPerGroup {
            let image = x + channel * geometry.inputSpatial
            let block = columns + channel * geometry.kernelSpatial * geometry.outputSpatial
            geometry.forEachTap { kernel, output, input in block[kernel * geometry.outputSpatial + output] = image[input] }
        }
    }

    /// Adds `columns` back onto one group of one image's gradient (col2im).
    private func columnsToImage(_ columns: UnsafePointer<Float>, _ layout: Layout, into x: UnsafeMutablePointer<Float>) {
        let geometry = layout.geometry
        for channel in 0..<layout.channelsPerGroup {
            let image = x + channel * geometry.inputSpatial
            let block = columns + channel * geometry.kernelSpatial * geometry.outputSpatial
            geometry.forEachTap { kernel, output, input in image[input] += block[kernel * geometry.outputSpatial + output] }
        }
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] {
        let x = try required(inputs, 0, "X")
        let w = try required(inputs, 1, "W")
        let bias = inputs.count > 2 ? inputs[2] : nil
        let layout = try layout(x, w)
        let geometry = layout.geometry
        var output = [Float](repeating: 0, count: layout.outputShape.reduce(1, *))
        var columns = [Float](repeating: 0, count: layout.columnRows * geometry.outputSpatial)
        x.values.withUnsafeBufferPointer { xx in
            w.values.withUnsafeBufferPointer { ww in
                output.withUnsafeMutableBufferPointer { yy in
                    columns.withUnsafeMutableBufferPointer { cc in
                        for image in 0..<layout.batch {
                            for group in 0..<groups {
                                let source = xx.baseAddress! + (image * layout.inputChannels + group * layout.channelsPerGroup) * geometry.inputSpatial
                                imageToColumns(source, layout, into: cc.baseAddress!)
                                multiply(rows: layout.outputsPerGroup, columns: geometry.outputSpatial, inner: layout.columnRows,
                                         ww.baseAddress! + group * layout.outputsPerGroup * layout.columnRows, cc.baseAddress!,
                                         into: yy.baseAddress! + (image * layout.outputChannels + group * layout.outputsPerGroup) * geometry.outputSpatial)
                            }
                        }
                        if let bias {
                            for image in 0..<layout.batch {
                                for channel in 0..<layout.outputChannels {
                                    let base = (image * layout.outputChannels + channel) * geometry.outputSpatial
                                    for position in 0..<geometry.outputSpatial { yy[base + position] += bias.values[channel] }
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
        let upstream = gradient(outputGradients, 0, like: outputs[0])
        var gradientX = [Float](repeating: 0, count: x.elementCount)
        var gradientW = [Float](repeating: 0, count: w.elementCount)
        var columns = [Float](repeating: 0, count: layout.columnRows * geometry.outputSpatial)
        var columnGradient = columns
        x.values.withUnsafeBufferPointer { xx in
            w.values.withUnsafeBufferPointer { ww in
                upstream.values.withUnsafeBufferPointer { dy in
                    gradientX.withUnsafeMutableBufferPointer { dx in
                        gradientW.withUnsafeMutableBufferPointer { dw in
                            columns.withUnsafeMutableBufferPointer { cc in
                                columnGradient.withUnsafeMutableBufferPointer { dc in
                                    for image in 0..<layout.batch {
                                        for group in 0..<groups {
                                            let inputOffset = (image * layout.inputChannels + group * layout.channelsPerGroup) * geometry.inputSpatial
                                            let outputGradient = dy.baseAddress! + (image * layout.outputChannels + group * layout.outputsPerGroup) * geometry.outputSpatial
                                            let weights = group * layout.outputsPerGroup * layout.columnRows
                                            imageToColumns(xx.baseAddress! + inputOffset, layout, into: cc.baseAddress!)
                                            // dW_g += dY_g · colsᵀ
                                            multiply(rows: layout.outputsPerGroup, columns: layout.columnRows, inner: geometry.outputSpatial,
                                                     outputGradient, cc.baseAddress!, transposeB: true, into: dw.baseAddress! + weights, beta: 1)
                                            // dcols = W_gᵀ · dY_g, then col2im into dX.
                                            multiply(rows: layout.columnRows, columns: geometry.outputSpatial, inner: layout.outputsPerGroup,
                                                     ww.baseAddress! + weights, transposeA: true, outputGradient, into: dc.baseAddress!)
                                            columnsToImage(dc.baseAddress!, layout, into: dx.baseAddress! + inputOffset)
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
