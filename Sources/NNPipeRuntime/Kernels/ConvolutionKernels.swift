import NNPipeCore

/// Conv (im2col + SGEMM, direct loops for depthwise) and ConvTranspose (SGEMM + col2im).
enum ConvolutionKernels {
    static func convolution(_ spec: inout NodeSpec) throws -> any Kernel {
        let attributes = try SpatialGeometry.Attributes(&spec)
        let group = spec.int("group", 1)
        guard group >= 1 else { throw spec.invalid("group \(group)") }
        return ClosureKernel { inputs, context in
            let input = try inputs.required(0)
            let weights = try inputs.required(1)
            guard input.dataType == .float, weights.dataType == .float else { throw unsupportedType(input.dataType) }
            guard input.rank >= 3, weights.rank == input.rank else { throw KernelError("X and W ranks do not fit a convolution") }
            let batch = input.shape[0], channels = input.shape[1]
            let outputChannels = weights.shape[0]
            guard channels == weights.shape[1] * group, outputChannels % group == 0 else {
                throw KernelError("X has \(channels) channels, W \(weights.shape) with group \(group) expects \(weights.shape[1] * group)")
            }
            let kernelShape = attributes.kernelShape ?? Array(weights.shape[2...])
            guard kernelShape == Array(weights.shape[2...]) else { throw KernelError("kernel_shape \(kernelShape) differs from W \(weights.shape)") }
            let geometry = try SpatialGeometry(inputShape: Array(input.shape[2...]), kernelShape: kernelShape, attributes: attributes)
            let bias = try inputs.optional(2).map { tensor -> [Float] in
                guard tensor.elementCount == outputChannels else { throw KernelError("B needs \(outputChannels) values") }
                return tensor.floats
            }
            let result = RuntimeTensor(dataType: .float, shape: [batch, outputChannels] + geometry.outputSpatialShape)
            input.withUnsafeBuffer(of: Float.self) { source in
                weights.withUnsafeBuffer(of: Float.self) { filter in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        convolve(source.baseAddress!, filter.baseAddress!, output.baseAddress!, batch: batch, channels: channels,
                                 outputChannels: outputChannels, group: group, geometry: geometry, threads: context.threads)
                        if let bias { addBias(bias, to: output, planes: batch * outputChannels, channels: outputChannels, size: geometry.outputSize) }
                    }
                }
            }
            return [result]
        }
    }

    /// The convolution proper, for Float and (for the exact integer ops) Double.
    static func convolve<Element: BLASElement>(_ source: UnsafePointer<Element>, _ filter: UnsafePointer<Element>, _ output: UnsafeMutablePointer<Element>,
                                               batch: Int, channels: Int, outputChannels: Int, group: Int, geometry: SpatialGeometry, threads: Int) {
        let groupChannels = channels / group
        let groupOutputs = outputChannels / group
        let depth = groupChannels * geometry.kernelSize
        let positions = geometry.outputSize
        if groupChannels == 1 && groupOutputs == 1 && group > 1 {
            depthwise(source, filter, output, planes: batch * channels, channels: channels, geometry: geometry, threads: threads)
            return
        }
        let pointwise = geometry.kernel.allSatisfy { $0 == 1 } && geometry.strides.allSatisfy { $0 == 1 }
            && geometry.padBegin.allSatisfy { $0 == 0 } && geometry.padEnd.allSatisfy { $0 == 0 }
        let columns = pointwise ? nil : UnsafeMutablePointer<Element>.allocate(capacity: max(depth * positions, 1))
        defer { columns?.deallocate() }
        for image in 0..<batch {
            for part in 0..<group {
                let planes = source + (image * channels + part * groupChannels) * geometry.inputSize
                if let columns { geometry.imageToColumns(planes, channels: groupChannels, into: columns, threads: threads) }
                Element.multiply(rows: groupOutputs, columns: positions, inner: depth, filter + part * groupOutputs * depth, leadingA: depth,
                                 transposeA: false, UnsafePointer(columns) ?? planes, leadingB: positions, transposeB: false,
                                 into: output + (image * outputChannels + part * groupOutputs) * positions, leadingC: positions)
            }
        }
    }

    static func addBias(_ bias: [Float], to output: UnsafeMutableBufferPointer<Float>, planes: Int, channels: Int, size: Int) {
        for plane in 0..<planes {
            let value = bias[plane % channels]
            for index in (plane * size)..<((plane + 1) * size) { output[index] += value }
        }
    }

    /// One filter per channel: accumulate each tap's weighted, shifted input rows.
    static func depthwise<Element: BinaryFloatingPoint>(_ source: UnsafePointer<Element>, _ filter: UnsafePointer<Element>, _ output: UnsafeMutablePointer<Element>,
                          planes: Int, channels: Int, geometry g: SpatialGeometry, threads: Int) {
        let (kernelDepth, kernelHeight, kernelWidth) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let (inputDepth, inputHeight, inputWidth) = (g.input[0], g.input[1], g.input[2])
        let (outputDepth, outputHeight, outputWidth) = (g.output[0], g.output[1], g.output[2])
        let (strideD, strideH, strideW) = (g.strides[0], g.strides[1], g.strides[2])
        let (dilationD, dilationH, dilationW) = (g.dilations[0], g.dilations[1], g.dilations[2])
        let (padD, padH, padW) = (g.padBegin[0], g.padBegin[1], g.padBegin[2])
        parallelChunks(planes, threads: planes * g.outputSize >= parallelElementThreshold / 4 ? threads : 1) { range in
            for plane in range {
                let input = source + plane * g.inputSize
                let weights = filter + (plane % channels) * g.kernelSize
                let destination = output + plane * g.outputSize
                destination.update(repeating: 0, count: g.outputSize)
                for kd in 0..<kernelDepth {
                    for kh in 0..<kernelHeight {
                        for kw in 0..<kernelWidth {
                            let weight = weights[(kd * kernelHeight + kh) * kernelWidth + kw]
                            let offsetW = kw * dilationW - padW
                            // Output columns whose tap lands inside the row.
                            let first = max(0, (-offsetW + strideW - 1) / strideW)
                            let last = min(outputWidth, (inputWidth - offsetW + strideW - 1) / strideW)
                            guard first < last else { continue }
                            for od in 0..<outputDepth {
                                let id = od * strideD - padD + kd * dilationD
                                if id < 0 || id >= inputDepth { continue }
                                for oh in 0..<outputHeight {
                                    let ih = oh * strideH - padH + kh * dilationH
                                    if ih < 0 || ih >= inputHeight { continue }
                                    let row = input + (id * inputHeight + ih) * inputWidth + offsetW
                                    let outputRow = destination + (od * outputHeight + oh) * outputWidth
                                    if strideW == 1 {
                                        for ow in first..<last { outputRow[ow] += weight * row[ow] }
                                    } else {
                                        for ow in first..<last { outputRow[ow] += weight * row[ow * strideW] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    static func transposed(_ spec: inout NodeSpec) throws -> any Kernel {
        let attributes = try SpatialGeometry.Attributes(&spec)
        let group = spec.int("group", 1)
        let outputPadding = spec.ints("output_padding")
        let outputShape = spec.ints("output_shape")
        return ClosureKernel { inputs, context in
            let input = try inputs.required(0)
            let weights = try inputs.required(1)
            guard input.dataType == .float, weights.dataType == .float else { throw unsupportedType(input.dataType) }
            guard input.rank >= 3, weights.rank == input.rank else { throw KernelError("X and W ranks do not fit a convolution") }
            let batch = input.shape[0], channels = input.shape[1]
            guard weights.shape[0] == channels, channels % group == 0 else { throw KernelError("W \(weights.shape) does not fit \(channels) channels") }
            let groupChannels = channels / group
            let groupOutputs = weights.shape[1]
            let outputChannels = groupOutputs * group
            let kernelShape = attributes.kernelShape ?? Array(weights.shape[2...])
            let spatialOutput = outputShape.map { Array($0.suffix(input.rank - 2)) }
            let geometry = try SpatialGeometry(transposedInput: Array(input.shape[2...]), kernelShape: kernelShape, attributes: attributes,
                                               outputPadding: outputPadding, outputShape: spatialOutput)
            let result = RuntimeTensor(dataType: .float, shape: [batch, outputChannels] + geometry.outputSpatialShape, zeroed: true)
            let rows = groupOutputs * geometry.kernelSize
            let grid = geometry.inputSize
            let columns = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * grid, 1))
            defer { columns.deallocate() }
            input.withUnsafeBuffer(of: Float.self) { source in
                weights.withUnsafeBuffer(of: Float.self) { filter in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        for image in 0..<batch {
                            for part in 0..<group {
                                BLAS.multiply(rows: rows, columns: grid, inner: groupChannels,
                                              filter.baseAddress! + part * groupChannels * rows, leadingA: rows, transposeA: true,
                                              source.baseAddress! + (image * channels + part * groupChannels) * grid, leadingB: grid,
                                              into: columns, leadingC: grid)
                                geometry.columnsToImage(columns, channels: groupOutputs,
                                                        into: output.baseAddress! + (image * outputChannels + part * groupOutputs) * geometry.outputSize,
                                                        threads: context.threads)
                            }
                        }
                        if let bias = inputs.optional(2)?.floats {
                            addBias(bias, to: output, planes: batch * outputChannels, channels: outputChannels, size: geometry.outputSize)
                        }
                    }
                }
            }
            return [result]
        }
    }
}
