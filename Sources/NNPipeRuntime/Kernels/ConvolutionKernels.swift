import NNPipeCore

/// Conv (im2col + SGEMM, direct loops for depthwise) and ConvTranspose (SGEMM + col2im).
enum ConvolutionKernels {
    static func convolution(_ spec: inout NodeSpec) throws -> any Kernel {
        try convolution(&spec, residual: false, relu: false)
    }

    /// The Conv kernel, optionally with the plan's fusions: `residual` adds input 3 (a Conv -> Add or
    /// Sum whose other operand has the Conv's output shape), `relu` clamps at zero (-> Relu). Both
    /// happen in the bias pass, while each output plane is still in cache. `inputAffine` (a
    /// pointwise conv only) maps input 0 through a per-channel affine and Relu first
    /// (BatchNormalization -> Relu -> Conv): while the packed product packs it where it can, else
    /// in a pass of its own.
    static func convolution(_ spec: inout NodeSpec, residual: Bool, relu: Bool,
                            inputAffine: (affine: ChannelAffine, requiredRank: Int?, relu: Bool)? = nil) throws -> any Kernel {
        let attributes = try SpatialGeometry.Attributes(&spec)
        let group = spec.int("group", 1)
        guard group >= 1 else { throw spec.invalid("group \(group)") }
        let packing = PackedFilterCache()
        return ClosureKernel { inputs, context in
            var input = try inputs.required(0)
            let weights = try inputs.required(1)
            guard input.dataType == .float, weights.dataType == .float else { throw unsupportedType(input.dataType) }
            if let inputAffine {
                guard input.rank >= inputAffine.affine.minimumRank, input.rank >= 3, input.shape[1] == inputAffine.affine.channels,
                      inputAffine.requiredRank.map({ $0 == input.rank }) ?? true
                else { throw FusionDeclined() }
            }
            guard input.rank >= 3, weights.rank == input.rank else { throw KernelError("X and W ranks do not fit a convolution") }
            let batch = input.shape[0], channels = input.shape[1]
            let outputChannels = weights.shape[0]
            guard channels == weights.shape[1] * group, outputChannels % group == 0 else {
                throw KernelError("X has \(channels) channels, W \(weights.shape) with group \(group) expects \(weights.shape[1] * group)")
            }
            let kernelShape = attributes.kernelShape ?? Array(weights.shape[2...])
            guard kernelShape == Array(weights.shape[2...]) else { throw KernelError("kernel_shape \(kernelShape) differs from W \(weights.shape)") }
            let geometry = try SpatialGeometry(inputShape: Array(input.shape[2...]), kernelShape: kernelShape, attributes: attributes)
            let bias = inputs.optional(2)
            if let bias, bias.dataType != .float || bias.elementCount != outputChannels {
                throw KernelError("B needs \(outputChannels) float values")
            }
            let shape = [batch, outputChannels] + geometry.outputSpatialShape
            let addend = residual ? try inputs.required(3) : nil
            // A residual that would broadcast is left to the unfused Add.
            if let addend, addend.dataType != .float || addend.shape != shape { throw FusionDeclined() }
            // Straight into a Concat's output when the plan placed this conv there and the shapes fit.
            let placed = group == 1 ? context.destination.flatMap { destination in
                destination.target(for: shape).map { (tensor: $0, channelOffset: destination.channelOffset) }
            } : nil
            let result = placed?.tensor ?? RuntimeTensor(dataType: .float, shape: shape)
            let positions = geometry.outputSize
            // Depthwise convs run their own loops; other weights are one matrix row per output channel.
            let depthwise = group > 1 && group == channels && group == outputChannels
            let direct = inputAffine == nil
                && usesDirect(geometry: geometry, group: group, channels: channels, outputChannels: outputChannels, batch: batch)
                ? packing.directFilter(for: weights, outputs: outputChannels, taps: channels * geometry.kernelSize) : nil
            let winograd = direct == nil && inputAffine == nil
                && usesWinograd(geometry: geometry, group: group, channels: channels, outputChannels: outputChannels)
                ? packing.winogradFilter(for: weights, outputs: outputChannels, channels: channels) : nil
            let packed = depthwise || winograd != nil || direct != nil ? nil
                : packing.filter(for: weights, rows: outputChannels, depth: weights.elementCount / max(outputChannels, 1))
            // The affine rides on the packing only where the product reads the input planes as they lie.
            let affineWhilePacking = inputAffine != nil && packed != nil && group == 1 && isPointwise(geometry)
                && imagesPerTask(batch: batch, positions: geometry.outputSize, pointwise: true) == 1
            if let inputAffine, !affineWhilePacking {
                input = try NormalizationKernels.channelAffine(input, multiplier: inputAffine.affine.multiplier, shift: inputAffine.affine.shift,
                                                               relu: inputAffine.relu, threads: context.threads)
            }
            let biasValues = bias.map { UnsafePointer($0.storage.bytes.baseAddress!.assumingMemoryBound(to: Float.self)) }
            let addendValues = addend.map { UnsafePointer($0.storage.bytes.baseAddress!.assumingMemoryBound(to: Float.self)) }
            input.withUnsafeBuffer(of: Float.self) { source in
                weights.withUnsafeBuffer(of: Float.self) { filter in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        let epilogue = ConvolutionEpilogue(bias: biasValues, residual: addendValues, relu: relu)
                        if let direct {
                            return convolveDirect(source.baseAddress!, output.baseAddress! + (placed?.channelOffset ?? 0) * positions,
                                                  batch: batch, channels: channels, geometry: geometry, epilogue: epilogue,
                                                  imageStride: result.shape[1] * positions, filter: direct, threads: context.threads)
                        }
                        if let winograd {
                            return convolveWinograd(source.baseAddress!, output.baseAddress! + (placed?.channelOffset ?? 0) * positions,
                                                    batch: batch, channels: channels, geometry: geometry, epilogue: epilogue,
                                                    imageStride: result.shape[1] * positions, filter: winograd, threads: context.threads)
                        }
                        func run(_ affine: InputAffine?) {
                            convolve(source.baseAddress!, filter.baseAddress!, output.baseAddress! + (placed?.channelOffset ?? 0) * positions,
                                     batch: batch, channels: channels, outputChannels: outputChannels, group: group, geometry: geometry,
                                     epilogue: epilogue, imageStride: result.shape[1] * positions, packed: packed, inputAffine: affine,
                                     threads: context.threads)
                        }
                        guard affineWhilePacking, let inputAffine else { return run(nil) }
                        inputAffine.affine.multiplier.withUnsafeBufferPointer { scale in
                            inputAffine.affine.shift.withUnsafeBufferPointer { shift in
                                run(InputAffine(scale: scale.baseAddress!, shift: shift.baseAddress!, relu: inputAffine.relu))
                            }
                        }
                    }
                }
            }
            // Written in place: the value itself is never made, the Concat step returns the whole.
            return withExtendedLifetime((bias, addend)) { placed == nil ? [result] : [nil] }
        }
    }

    /// The convolution proper, for Float and (for the exact integer ops) Double.
    static func convolve<Element: BLASElement>(_ source: UnsafePointer<Element>, _ filter: UnsafePointer<Element>, _ output: UnsafeMutablePointer<Element>,
                                               batch: Int, channels: Int, outputChannels: Int, group: Int, geometry: SpatialGeometry, threads: Int) {
        convolve(source, filter, output, batch: batch, channels: channels, outputChannels: outputChannels, group: group,
                 geometry: geometry, epilogue: ConvolutionEpilogue(bias: nil, residual: nil, relu: false), threads: threads)
    }

    /// Smallest GEMM width (output positions) worth a call of its own; narrower feature maps
    /// (ResNet's and DenseNet's 7x7 and 14x14) put several images side by side in one product, as
    /// OpenBLAS repacks the whole weight matrix for every call. A pointwise conv pays a copy of its
    /// input for that (it needs no im2col otherwise), so it only batches the narrowest maps.
    static func preferredGEMMWidth(pointwise: Bool) -> Int { pointwise ? 128 : 256 }

    /// Images side by side in one product (see `preferredGEMMWidth`).
    static func imagesPerTask(batch: Int, positions: Int, pointwise: Bool) -> Int {
        min(batch, max(1, (preferredGEMMWidth(pointwise: pointwise) + positions - 1) / max(positions, 1)))
    }

    /// A 1x1 kernel, stride 1, no padding: the GEMM reads the input planes as they lie.
    static func isPointwise(_ geometry: SpatialGeometry) -> Bool {
        geometry.kernel.allSatisfy { $0 == 1 } && geometry.strides.allSatisfy { $0 == 1 }
            && geometry.padBegin.allSatisfy { $0 == 0 } && geometry.padEnd.allSatisfy { $0 == 0 }
    }

    /// im2col + GEMM per task of one or more images, then the epilogue per output plane.
    ///
    /// With at least as many tasks as threads, each worker takes whole tasks and calls a
    /// single-threaded GEMM: no synchronisation inside a task, and the im2col matrix is still in
    /// cache when the GEMM reads it. With fewer (batch 1), one task at a time uses every thread.
    ///
    /// `imageStride` (group 1 only): elements from one image's output to the next's, when the
    /// output is a channel range of a wider tensor (a Concat the conv writes into); the residual is
    /// still read at the conv's own layout. `packed`: `filter` packed for the runtime's own product,
    /// used for single-threaded products whose channel blocks start on its panels.
    static func convolve<Element: BLASElement>(_ source: UnsafePointer<Element>, _ filter: UnsafePointer<Element>, _ output: UnsafeMutablePointer<Element>,
                                               batch: Int, channels: Int, outputChannels: Int, group: Int, geometry: SpatialGeometry,
                                               epilogue: ConvolutionEpilogue<Element>, imageStride: Int? = nil, packed: PackedFilter? = nil,
                                               inputAffine: InputAffine? = nil, threads: Int) {
        let groupChannels = channels / group
        let groupOutputs = outputChannels / group
        let depth = groupChannels * geometry.kernelSize
        let positions = geometry.outputSize
        let inputSize = geometry.inputSize
        let imageStride = imageStride ?? outputChannels * positions
        precondition(group == 1 || imageStride == outputChannels * positions, "grouped convolutions write their own output")
        if groupChannels == 1 && groupOutputs == 1 && group > 1 {
            depthwise(source, filter, output, planes: batch * channels, channels: channels, geometry: geometry, threads: threads)
            if !epilogue.isEmpty {
                parallelChunks(batch * outputChannels, threads: threads, minimumChunk: max(1, parallelElementThreshold / max(positions, 1))) { planes in
                    for plane in planes {
                        epilogue.apply(at: plane * positions, channel: plane % outputChannels, from: output + plane * positions,
                                       to: output + plane * positions, count: positions)
                    }
                }
            }
            return
        }
        guard batch > 0, positions > 0 else { return }
        let pointwise = isPointwise(geometry)
        let imagesPerTask = imagesPerTask(batch: batch, positions: positions, pointwise: pointwise)
        precondition(inputAffine == nil || (pointwise && imagesPerTask == 1 && group == 1 && packed != nil),
                     "an input affine is applied only by the packed product of a pointwise conv")
        let tasks = (batch + imagesPerTask - 1) / imagesPerTask
        // A pointwise conv of one image multiplies the input planes as they lie; several images
        // must first sit side by side, which is what im2col of a 1x1 kernel does.
        let needsColumns = !pointwise || imagesPerTask > 1
        // Several images' results come out as [O, images x positions] and are scattered in the epilogue.
        let needsStaging = imagesPerTask > 1
        if needsColumns, !needsStaging, group == 1, geometry.output[0] == 1, depth * positions > 2 * segmentElements {
            convolveInSegments(source, filter, output, batch: batch, channels: channels, outputChannels: outputChannels, geometry: geometry,
                               segments: segmentCount(geometry: geometry, depth: depth, batch: batch, threads: threads),
                               epilogue: epilogue, imageStride: imageStride, packed: packed, threads: threads)
            return
        }
        let outerThreads = tasks >= 2 * threads || tasks % threads == 0 ? threads : 1
        if outerThreads == 1, threads > 1, group == 1, !needsStaging,
           convolveImages(source, filter, output, batch: batch, channels: channels, outputChannels: outputChannels, geometry: geometry,
                          pointwise: pointwise, epilogue: epilogue, imageStride: imageStride, packed: packed, inputAffine: inputAffine,
                          threads: threads) {
            return
        }
        let innerThreads = outerThreads > 1 ? 1 : threads
        let workers = min(outerThreads, tasks)
        let width = imagesPerTask * positions
        // Pooled storage: these are the largest temporaries and recur every batch.
        let scratch = (0..<workers).map { _ in
            (columns: needsColumns ? RuntimeStorage(byteCount: depth * width * MemoryLayout<Element>.stride) : nil,
             staging: needsStaging ? RuntimeStorage(byteCount: outputChannels * width * MemoryLayout<Element>.stride) : nil)
        }
        let pointers = scratch.map { buffers in
            UncheckedSendable(value: (columns: buffers.columns?.bytes.baseAddress?.assumingMemoryBound(to: Element.self),
                                      staging: buffers.staging?.bytes.baseAddress?.assumingMemoryBound(to: Element.self)))
        }
        defer { withExtendedLifetime(scratch) {} }
        parallelTasks(tasks, threads: outerThreads) { worker, task in
            let firstImage = task * imagesPerTask
            let count = min(imagesPerTask, batch - firstImage)
            let taskWidth = count * positions
            let (columns, staging) = pointers[worker].value
            for part in 0..<group {
                let planes = source + (firstImage * channels + part * groupChannels) * inputSize
                var matrix = planes
                var leadingB = positions
                if let columns {
                    for image in 0..<count {
                        geometry.imageToColumns(planes + image * channels * inputSize, channels: groupChannels, into: columns + image * positions,
                                                rowStride: taskWidth, threads: innerThreads)
                    }
                    matrix = UnsafePointer(columns)
                    leadingB = taskWidth
                }
                if staging == nil, innerThreads == 1 {
                    // One image on this worker: bias, GEMM and epilogue per group as one block.
                    let offset = (firstImage * outputChannels + part * groupOutputs) * positions
                    multiplyBlock(filter, depth: depth, channels: (part * groupOutputs)..<((part + 1) * groupOutputs), columns: matrix,
                                  leadingB: leadingB, width: taskWidth, into: output + firstImage * imageStride + part * groupOutputs * positions,
                                  leadingC: positions, outputOffset: offset, planeSize: positions, epilogue: epilogue, packed: packed,
                                  inputAffine: inputAffine)
                    continue
                }
                // Without staging a task holds one image.
                let destination = staging.map { $0 + part * groupOutputs * taskWidth }
                    ?? output + firstImage * imageStride + part * groupOutputs * positions
                let leadingC = staging == nil ? positions : taskWidth
                if innerThreads == 1, multiplyPacked(packed, channels: (part * groupOutputs)..<((part + 1) * groupOutputs), columns: matrix,
                                                     leadingB: leadingB, width: taskWidth, into: destination, leadingC: leadingC) {
                    continue
                }
                Element.multiply(rows: groupOutputs, columns: taskWidth, inner: depth, filter + part * groupOutputs * depth, leadingA: depth,
                                 transposeA: false, matrix, leadingB: leadingB, transposeB: false,
                                 into: destination, leadingC: leadingC, beta: 0, threads: innerThreads)
            }
            guard staging != nil || (innerThreads > 1 && !epilogue.isEmpty) else { return }
            let planeCount = count * outputChannels
            parallelChunks(planeCount, threads: innerThreads, minimumChunk: max(1, parallelElementThreshold / positions)) { range in
                for local in range {
                    let image = local / outputChannels, channel = local % outputChannels
                    let plane = (firstImage + image) * outputChannels + channel
                    let target = output + (firstImage + image) * imageStride + channel * positions
                    let from = staging.map { UnsafePointer($0 + channel * taskWidth + image * positions) } ?? UnsafePointer(target)
                    epilogue.apply(at: plane * positions, channel: channel, from: from, to: target, count: positions)
                }
            }
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
            let columnStorage = RuntimeStorage(byteCount: rows * grid * MemoryLayout<Float>.stride)
            let columns = columnStorage.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            defer { withExtendedLifetime(columnStorage) {} }
            input.withUnsafeBuffer(of: Float.self) { source in
                weights.withUnsafeBuffer(of: Float.self) { filter in
                    result.withUnsafeMutableBuffer(of: Float.self) { output in
                        for image in 0..<batch {
                            for part in 0..<group {
                                BLAS.multiply(rows: rows, columns: grid, inner: groupChannels,
                                              filter.baseAddress! + part * groupChannels * rows, leadingA: rows, transposeA: true,
                                              source.baseAddress! + (image * channels + part * groupChannels) * grid, leadingB: grid,
                                              into: columns, leadingC: grid, threads: context.threads)
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

extension ConvolutionKernels {
    static func addBias(_ bias: [Float], to output: UnsafeMutableBufferPointer<Float>, planes: Int, channels: Int, size: Int) {
        for plane in 0..<planes {
            let value = bias[plane % channels]
            for index in (plane * size)..<((plane + 1) * size) { output[index] += value }
        }
    }
}

/// What a Conv does to each output plane right after its GEMM, in one pass while the plane is in
/// cache: add the bias, add a residual (Conv -> Add fused by the plan), clamp at zero (-> Relu).
struct ConvolutionEpilogue<Element: BinaryFloatingPoint>: @unchecked Sendable {
    /// One value per output channel.
    let bias: UnsafePointer<Element>?
    /// Shaped like the output.
    let residual: UnsafePointer<Element>?
    let relu: Bool

    var isEmpty: Bool { bias == nil && residual == nil && !relu }

    /// The same epilogue for a part of the output starting at element `offset`.
    func shifted(by offset: Int) -> ConvolutionEpilogue {
        ConvolutionEpilogue(bias: bias, residual: residual.map { $0 + offset }, relu: relu)
    }

    /// destination[i] = f(source[i]) for `count` elements of output channel `channel` starting at
    /// element `offset` of the output; `source` may be `destination`.
    @inline(__always)
    func apply(at offset: Int, channel: Int, from source: UnsafePointer<Element>, to destination: UnsafeMutablePointer<Element>, count size: Int) {
        let shift = bias?[channel] ?? 0
        if Element.self == Float.self {
            // The scalar loop below does not vectorise (source may be destination), and this pass
            // touches every output once more after the GEMM.
            ConvolutionEpilogue<Float>.applyVectorized(shift: Float(shift), residual: residual.map { UnsafeRawPointer($0 + offset) }, relu: relu,
                                                       from: UnsafeRawPointer(source), to: UnsafeMutableRawPointer(destination), count: size)
            return
        }
        if let residual {
            let addend = residual + offset
            if relu {
                for index in 0..<size { destination[index] = max(source[index] + shift + addend[index], 0) }
            } else {
                for index in 0..<size { destination[index] = source[index] + shift + addend[index] }
            }
        } else if relu {
            for index in 0..<size { destination[index] = max(source[index] + shift, 0) }
        } else {
            for index in 0..<size { destination[index] = source[index] + shift }
        }
    }

    /// `apply` for Float, eight lanes at a time, with the same operations in the same order (so the
    /// same results, NaN included: a lane is zeroed only where it compares below 0).
    @inline(__always)
    static func applyVectorized(shift: Float, residual: UnsafeRawPointer?, relu: Bool, from source: UnsafeRawPointer,
                                to destination: UnsafeMutableRawPointer, count: Int) {
        typealias Lanes = SIMD8<Float>
        let width = Lanes.scalarCount, stride = MemoryLayout<Float>.stride
        let shifts = Lanes(repeating: shift)
        let vectorEnd = count - count % width
        var index = 0
        if let residual {
            while index < vectorEnd {
                var lanes = source.loadUnaligned(fromByteOffset: index * stride, as: Lanes.self) + shifts
                lanes += residual.loadUnaligned(fromByteOffset: index * stride, as: Lanes.self)
                if relu { lanes.replace(with: 0, where: lanes .< 0) }
                destination.storeBytes(of: lanes, toByteOffset: index * stride, as: Lanes.self)
                index += width
            }
        } else if relu {
            while index < vectorEnd {
                var lanes = source.loadUnaligned(fromByteOffset: index * stride, as: Lanes.self) + shifts
                lanes.replace(with: 0, where: lanes .< 0)
                destination.storeBytes(of: lanes, toByteOffset: index * stride, as: Lanes.self)
                index += width
            }
        } else {
            while index < vectorEnd {
                let lanes = source.loadUnaligned(fromByteOffset: index * stride, as: Lanes.self) + shifts
                destination.storeBytes(of: lanes, toByteOffset: index * stride, as: Lanes.self)
                index += width
            }
        }
        let input = source.assumingMemoryBound(to: Float.self), output = destination.assumingMemoryBound(to: Float.self)
        let addend = residual?.assumingMemoryBound(to: Float.self)
        while index < count {
            var value = input[index] + shift
            if let addend { value += addend[index] }
            output[index] = relu ? max(value, 0) : value
            index += 1
        }
    }
}
