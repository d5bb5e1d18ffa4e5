/// Convs by direct convolution (CNNPipeKernels' DirectConvolution.c, AVX-512): the input is copied
/// once, zero-padded and split by stride phase (a pointwise conv reads its planes in place), and
/// each tile of 8 output channels x 48 positions runs every tap as one load and 8 fused
/// multiply-adds a vector, with no im2col matrix, no column packing and no depth blocks. It takes
/// the convs whose product is shallow, where those costs outweigh the multiplies: SqueezeNet's
/// first layer (27 taps) took 0.58 ms through im2col and the packed product.
extension ConvolutionKernels {
    /// Whether a conv takes the direct path: group 1, 1-D or 2-D, and a strided kernel wider than
    /// 1x1, or a shallow product (at most 576 channels x kernel taps), or a first layer's few
    /// channels. Strided convs go direct at any depth: their im2col matrix is written and then
    /// packed again, and on ResNet-50's stride-2 3x3 convs (1152-4608 taps, 28x28 to 7x7 maps)
    /// direct took 0.82-0.90 of the time, fastest runs of 60 on two threads. A 3x3 stride-1 conv
    /// of 32 channels or more goes to Winograd instead. In SqueezeNet on two threads, in ms, direct
    /// against Winograd: 16 channels on 55x55 0.29 / 0.30, 32 on 27x27 0.27 / 0.27, 48 and 64 on
    /// 13x13 0.16 / 0.13 and 0.26 / 0.20; the first layer (3 channels, stride 2) 0.46 against 0.55
    /// through im2col.
    ///
    /// Pointwise convs of one image go direct up to 512 channels: the packed product packs its
    /// input columns again for every block of outputs, and its 6 x 32 tile finishes a 16-channel
    /// product in 16 steps. In SqueezeNet on two threads, in ms, direct against packed: 16 to 64
    /// channels on 55x55 0.06 / 0.08, 32 to 128 on 27x27 0.05 / 0.09, 512 to 1000 on 13x13
    /// 0.85 / 1.02. Not in a batch: there the input comes from memory, and a tile's 48 positions
    /// from each of 128 planes are 128 short streams the prefetchers do not follow, where the
    /// packed product reads 256 at a time (SqueezeNet's 128-to-16 squeeze at batch 32: 8.5 ms
    /// direct, onnxruntime 3.7).
    static func usesDirect(geometry: SpatialGeometry, group: Int, channels: Int, outputChannels: Int, batch: Int = 1) -> Bool {
        guard DirectFilter.isAvailable, group == 1, geometry.input[0] == 1, geometry.output[0] == 1,
              geometry.output[1] > 0, geometry.output[2] > 0 else { return false }
        if isPointwise(geometry) { return channels <= 512 && batch == 1 }
        let strided = geometry.strides.contains { $0 > 1 }
        // A strided 1x1 conv only subsamples, which im2col does cheaply; the phase layout would
        // copy every phase to read one (ResNet's 1x1 stride-2 convs: 1.05-1.33 times slower).
        if strided { return geometry.kernelSize > 1 }
        if channels >= 32, usesWinograd(geometry: geometry, group: group, channels: channels, outputChannels: outputChannels) { return false }
        return channels <= 4 || channels * geometry.kernelSize <= directDepthLimit
    }

    /// Deepest product (channels x kernel taps) that goes direct: deeper ones read each tile's
    /// taps from L2 rather than L1 and keep im2col.
    static let directDepthLimit = 576

    /// The phase planes' size (see nnpipe_direct_layout) and the buffer offset of each kernel tap
    /// within one channel's phases. With stride 1 along the width, rows share their padding: row
    /// r's zeros after its data are row r + 1's before it, which only works when every read that
    /// runs past a row's end lands in the next row's leading zeros.
    static func directPhaseLayout(_ geometry: SpatialGeometry) -> (phaseHeight: Int, phaseWidth: Int, tapOffsets: [Int]) {
        let (strideHeight, strideWidth) = (geometry.strides[1], geometry.strides[2])
        let (dilationHeight, dilationWidth) = (geometry.dilations[1], geometry.dilations[2])
        let (kernelHeight, kernelWidth) = (geometry.kernel[1], geometry.kernel[2])
        let (outputHeight, outputWidth) = (geometry.output[1], geometry.output[2])
        let lastRow = (outputHeight - 1) * strideHeight + (kernelHeight - 1) * dilationHeight
        let lastColumn = (outputWidth - 1) * strideWidth + (kernelWidth - 1) * dilationWidth
        let phaseHeight = lastRow / strideHeight + 1
        let padLeft = geometry.padBegin[2]
        let phaseWidth = strideWidth == 1 ? max(padLeft + geometry.input[2], lastColumn + 1 - padLeft, outputWidth)
                                           : lastColumn / strideWidth + 1
        let plane = phaseHeight * phaseWidth
        var offsets: [Int] = []
        offsets.reserveCapacity(geometry.kernelSize)
        for row in 0..<kernelHeight {
            for column in 0..<kernelWidth {
                let (y, x) = (row * dilationHeight, column * dilationWidth)
                let phase = (y % strideHeight) * strideWidth + x % strideWidth
                offsets.append(phase * plane + (y / strideHeight) * phaseWidth + x / strideWidth)
            }
        }
        return (phaseHeight, phaseWidth, offsets)
    }

    /// The conv of `batch` images into `output` (images `imageStride` apart, channel planes
    /// `geometry.outputSize` apart), with the epilogue's residual in the conv's own layout.
    static func convolveDirect(_ source: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                               geometry: SpatialGeometry, epilogue: ConvolutionEpilogue<Float>, imageStride: Int, filter: DirectFilter,
                               threads: Int) {
        if isPointwise(geometry) {
            return convolvePointwiseDirect(source, output, batch: batch, channels: channels, geometry: geometry, epilogue: epilogue,
                                           imageStride: imageStride, filter: filter, threads: threads)
        }
        let layout = directPhaseLayout(geometry)
        let (strideHeight, strideWidth) = (geometry.strides[1], geometry.strides[2])
        let outputSize = (height: geometry.output[1], width: geometry.output[2])
        let channelBlock = strideHeight * strideWidth * layout.phaseHeight * layout.phaseWidth
        precondition(filter.taps == channels * geometry.kernelSize, "direct filter for \(filter.taps) taps, conv has \(channels * geometry.kernelSize)")
        var offsets = [Int]()
        offsets.reserveCapacity(filter.taps)
        for channel in 0..<channels { offsets.append(contentsOf: layout.tapOffsets.map { $0 + channel * channelBlock }) }
        let largestOffset = offsets.max() ?? 0
        let tile = DirectFilter.tilePositions
        let gridPositions = outputSize.height * layout.phaseWidth
        let laidOut = channels * channelBlock
        // Tiles read whole vectors past the last position and each tap's offset; those floats are zero.
        let readable = max(laidOut, largestOffset + (gridPositions + tile - 1) / tile * tile)
        let positions = geometry.outputSize
        let outputChannels = filter.outputs
        let bias = epilogue.bias, relu = epilogue.relu
        func buffer() -> RuntimeStorage {
            let storage = RuntimeStorage(byteCount: readable * MemoryLayout<Float>.stride)
            storage.bytes.baseAddress!.assumingMemoryBound(to: Float.self).advanced(by: laidOut).update(repeating: 0, count: readable - laidOut)
            return storage
        }
        func lay(_ image: Int, channels part: Range<Int>, into values: UnsafeMutablePointer<Float>) {
            DirectFilter.layout(source + (image * channels + part.lowerBound) * geometry.inputSize, channels: part.count,
                                size: (geometry.input[1], geometry.input[2]), strides: (strideHeight, strideWidth),
                                padBegin: (geometry.padBegin[1], geometry.padBegin[2]), phase: (layout.phaseHeight, layout.phaseWidth),
                                into: values + part.lowerBound * channelBlock)
        }
        let parts = DirectParts(positions: gridPositions, outputs: outputChannels, taps: filter.taps, threads: threads)
        offsets.withUnsafeBufferPointer { offsetValues in
            let table = UncheckedSendable(value: offsetValues.baseAddress!)
            func run(_ image: Int, values: UnsafeMutablePointer<Float>, positions range: Range<Int>, channels part: Range<Int>) {
                filter.convolve(offsets: table.value, buffer: values, readable: readable, positions: range, phaseWidth: layout.phaseWidth,
                                outputSize: outputSize, channels: part, into: output + image * imageStride, outputPlane: positions,
                                bias: bias, residual: epilogue.residual.map { $0 + image * outputChannels * positions },
                                residualPlane: positions, relu: relu, largestOffset: largestOffset, blocksOuter: parts.blocksOuter)
            }
            if batch >= 2 * threads || (batch >= threads && batch % threads == 0) {
                // Whole images are the tasks, each on one core with a buffer of its own.
                let storages = (0..<min(threads, batch)).map { _ in buffer() }
                let pointers = storages.map { UncheckedSendable(value: $0.bytes.baseAddress!.assumingMemoryBound(to: Float.self)) }
                parallelTasks(batch, threads: threads) { worker, image in
                    lay(image, channels: 0..<channels, into: pointers[worker].value)
                    run(image, values: pointers[worker].value, positions: 0..<gridPositions, channels: 0..<outputChannels)
                }
                withExtendedLifetime(storages) {}
                return
            }
            // Few images: each shared by every thread, in blocks of positions and of channels.
            let storage = buffer()
            let values = UncheckedSendable(value: storage.bytes.baseAddress!.assumingMemoryBound(to: Float.self))
            for image in 0..<batch {
                parallelChunks(channels, threads: threads, minimumChunk: max(1, parallelElementThreshold / max(channelBlock, 1))) { part in
                    lay(image, channels: part, into: values.value)
                }
                parallelTasks(parts.positionCount * parts.channelCount, threads: threads) { _, task in
                    let (range, part) = parts.task(task, positions: gridPositions, outputs: outputChannels)
                    run(image, values: values.value, positions: range, channels: part)
                }
            }
            withExtendedLifetime(storage) {}
        }
    }

    /// A pointwise conv through the direct kernel, reading its input planes in place (one row of
    /// `positions` per channel, the last tile's loads masked at the plane's end).
    static func convolvePointwiseDirect(_ source: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                                        geometry: SpatialGeometry, epilogue: ConvolutionEpilogue<Float>, imageStride: Int,
                                        filter: DirectFilter, threads: Int) {
        let positions = geometry.outputSize
        precondition(filter.taps == channels && geometry.inputSize == positions, "a pointwise conv's filter and planes")
        let offsets = (0..<channels).map { $0 * positions }
        let outputChannels = filter.outputs
        let parts = DirectParts(positions: positions, outputs: outputChannels, taps: channels, threads: threads)
        let perImage = parts.positionCount * parts.channelCount
        offsets.withUnsafeBufferPointer { offsetValues in
            let table = UncheckedSendable(value: offsetValues.baseAddress!)
            parallelTasks(batch * perImage, threads: threads) { _, task in
                let image = task / perImage
                let (range, part) = parts.task(task % perImage, positions: positions, outputs: outputChannels)
                filter.convolve(offsets: table.value, buffer: source + image * channels * positions, readable: channels * positions,
                                positions: range, phaseWidth: positions, outputSize: (1, positions), channels: part,
                                into: output + image * imageStride, outputPlane: positions, bias: epilogue.bias,
                                residual: epilogue.residual.map { $0 + image * outputChannels * positions }, residualPlane: positions,
                                relu: epilogue.relu, largestOffset: (channels - 1) * positions, maskedTail: true, blocksOuter: parts.blocksOuter)
            }
        }
    }

}

/// How one image's direct conv is cut into tasks (parts of its tiles of positions times parts of its
/// blocks of channels, about `blocksPerThread` tasks a thread) and in which order the kernel runs a
/// task. A map of at most 8 tiles whose tile input (taps x 48 floats) is past L1 goes by blocks of
/// channels, each block's weights kept in L1 across the tiles, and is cut along the channels:
/// SqueezeNet's last conv (512 taps, 4 tiles) read its 2 MB of weights once per tile otherwise,
/// 0.69 ms against 0.63 this way, ResNet-50's stride-2 convs on 14x14 and 7x7 maps 1.38 / 1.06 and
/// 1.30 / 1.12. Larger maps keep the tile's input across the blocks (on a 28x28 map with 1152 taps
/// the other order took 1.4 times as long).
struct DirectParts {
    let tilesPerPart: Int
    let blocksPerPart: Int
    let positionCount: Int
    let channelCount: Int
    let blocksOuter: Bool

    init(positions: Int, outputs: Int, taps: Int, threads: Int) {
        let tiles = (positions + DirectFilter.tilePositions - 1) / DirectFilter.tilePositions
        let blocks = (outputs + DirectFilter.blockRows - 1) / DirectFilter.blockRows
        let wanted = threads * ConvolutionKernels.blocksPerThread
        blocksOuter = tiles <= 8 && taps * DirectFilter.tilePositions * MemoryLayout<Float>.stride > 32 << 10
        let channelParts = blocksOuter ? min(blocks, wanted) : min(blocks, (wanted + min(tiles, wanted) - 1) / min(tiles, wanted))
        let positionParts = blocksOuter ? min(tiles, (wanted + channelParts - 1) / channelParts) : min(tiles, wanted)
        tilesPerPart = (tiles + positionParts - 1) / positionParts
        blocksPerPart = (blocks + channelParts - 1) / channelParts
        positionCount = (tiles + tilesPerPart - 1) / tilesPerPart
        channelCount = (blocks + blocksPerPart - 1) / blocksPerPart
    }

    /// Task `task` of one image (below positionCount x channelCount): its positions and channels.
    func task(_ task: Int, positions: Int, outputs: Int) -> (positions: Range<Int>, channels: Range<Int>) {
        let (tile, rows) = (DirectFilter.tilePositions, DirectFilter.blockRows)
        let firstTile = task / channelCount * tilesPerPart, firstBlock = task % channelCount * blocksPerPart
        return ((firstTile * tile)..<min(positions, (firstTile + tilesPerPart) * tile),
                (firstBlock * rows)..<min(outputs, (firstBlock + blocksPerPart) * rows))
    }
}
