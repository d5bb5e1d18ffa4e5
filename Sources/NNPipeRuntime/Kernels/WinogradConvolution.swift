/// 3x3 stride-1 convs by Winograd's F(2x2, 3x3) (CNNPipeKernels' Winograd.c): 2.25 times fewer
/// multiplies than im2col + product, and no im2col matrix. Two ways to share the work:
/// - segments of tile rows (large maps, or many images): each task transforms its tiles' input,
///   runs the 16 products and the output transform on one core, with its data still in cache (the
///   16 products of a whole 55x55 map with 64 outputs are 3.2 MB);
/// - per image, three parallel steps (small maps, few images): the input transform by input
///   channels, the 16 products (one task each), the output transform by output channels.
extension ConvolutionKernels {
    /// Floats between the 16 slots of a scratch buffer for `rows` x `tiles` values each: one
    /// cache line more than they need, as slots a multiple of 4 KiB apart (64 outputs x 112 tiles)
    /// fall into one L1 set, and the output transform reads all 16 at once.
    static func winogradSlotStride(rows: Int, tiles: Int) -> Int { rows * tiles + 16 }

    /// Scratch (transformed input and products) a segment aims at: about what a core's L2 holds
    /// besides the packed weights.
    static let winogradSegmentBytes = 384 << 10

    /// The per-image steps' scratch, at most this many bytes; larger maps always go by segments.
    static let winogradScratchLimit = 64 << 20

    /// Whether a conv takes the Winograd path: group 1, a 2-D 3x3 kernel, stride and dilation 1,
    /// and at least 16 input and output channels (fewer make the 16 products too thin to beat the
    /// direct product, and a network's first layer has 3).
    static func usesWinograd(geometry: SpatialGeometry, group: Int, channels: Int, outputChannels: Int) -> Bool {
        WinogradFilter.isAvailable && group == 1 && channels >= 16 && outputChannels >= 16 && geometry.spatialRank == 2
            && geometry.input[0] == 1 && geometry.kernel == [1, 3, 3] && geometry.strides.allSatisfy { $0 == 1 }
            && geometry.dilations.allSatisfy { $0 == 1 } && geometry.output[1] > 0 && geometry.output[2] > 0
    }

    /// Tile rows per segment: within `winogradSegmentBytes`, but at least 32 tiles (two column
    /// strips of the product) and one row.
    static func winogradSegmentRows(channels: Int, outputChannels: Int, tileRows: Int, tileColumns: Int) -> Int {
        let perTile = 16 * (channels + outputChannels) * MemoryLayout<Float>.stride
        let rows = max(winogradSegmentBytes / perTile / tileColumns, (32 + tileColumns - 1) / tileColumns, 1)
        return min(rows, tileRows)
    }

    /// The conv of `batch` images (channels x height x width each) into `output` (images
    /// `imageStride` apart, channel planes `outputSize` apart), with the epilogue's residual in the
    /// conv's own layout.
    static func convolveWinograd(_ source: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                                 geometry: SpatialGeometry, epilogue: ConvolutionEpilogue<Float>, imageStride: Int, filter: WinogradFilter,
                                 threads: Int) {
        let outputChannels = filter.outputs
        precondition(filter.channels == channels, "Winograd filter for \(filter.channels) channels, input has \(channels)")
        let (tileRows, tileColumns) = ((geometry.output[1] + 1) / 2, (geometry.output[2] + 1) / 2)
        let segmentRows = winogradSegmentRows(channels: channels, outputChannels: outputChannels, tileRows: tileRows, tileColumns: tileColumns)
        let segments = (tileRows + segmentRows - 1) / segmentRows
        let wholeImageBytes = 16 * (channels + outputChannels) * tileRows * tileColumns * MemoryLayout<Float>.stride
        let image = WinogradImage(source: source, output: output, channels: channels, geometry: geometry, epilogue: epilogue,
                                  imageStride: imageStride, filter: filter)
        if batch * segments >= 2 * threads || wholeImageBytes > winogradScratchLimit {
            // Segments of every image are the tasks, each on one core start to finish.
            let tiles = segmentRows * tileColumns
            let workers = min(threads, batch * segments)
            let scratch = (0..<workers).map { _ in
                (input: RuntimeStorage(byteCount: 16 * winogradSlotStride(rows: channels, tiles: tiles) * MemoryLayout<Float>.stride),
                 products: RuntimeStorage(byteCount: 16 * winogradSlotStride(rows: outputChannels, tiles: tiles) * MemoryLayout<Float>.stride))
            }
            let pointers = scratch.map { buffers in
                UncheckedSendable(value: (input: buffers.input.bytes.baseAddress!.assumingMemoryBound(to: Float.self),
                                          products: buffers.products.bytes.baseAddress!.assumingMemoryBound(to: Float.self)))
            }
            defer { withExtendedLifetime(scratch) {} }
            parallelTasks(batch * segments, threads: threads) { worker, task in
                let first = task % segments * segmentRows
                let rows = first..<min(tileRows, first + segmentRows)
                let buffers = pointers[worker].value
                image.transformInput(task / segments, tileRows: rows, channels: 0..<channels, into: buffers.input)
                for position in 0..<16 {
                    image.multiply(position: position, outputChannels: 0..<outputChannels, tiles: rows.count * tileColumns,
                                   input: buffers.input, products: buffers.products)
                }
                image.transformOutput(task / segments, tileRows: rows, outputChannels: 0..<outputChannels, from: buffers.products)
            }
            return
        }
        // Few images of small maps: every thread shares each image, in three steps.
        let tiles = tileRows * tileColumns
        let input = RuntimeStorage(byteCount: 16 * winogradSlotStride(rows: channels, tiles: tiles) * MemoryLayout<Float>.stride)
        let products = RuntimeStorage(byteCount: 16 * winogradSlotStride(rows: outputChannels, tiles: tiles) * MemoryLayout<Float>.stride)
        defer { withExtendedLifetime((input, products)) {} }
        let inputs = UncheckedSendable(value: input.bytes.baseAddress!.assumingMemoryBound(to: Float.self))
        let results = UncheckedSendable(value: products.bytes.baseAddress!.assumingMemoryBound(to: Float.self))
        // Channel blocks for the products when 16 tasks would leave threads idle.
        let blocks = max(1, (threads * blocksPerThread + 15) / 16)
        let unit = PackedFilter.panelRows
        let blockRows = (max(unit, (outputChannels + blocks - 1) / blocks) + unit - 1) / unit * unit
        let blockCount = (outputChannels + blockRows - 1) / blockRows
        for index in 0..<batch {
            parallelChunks(channels, threads: threads) { range in
                image.transformInput(index, tileRows: 0..<tileRows, channels: range, into: inputs.value)
            }
            parallelTasks(16 * blockCount, threads: threads) { _, task in
                let first = task / 16 * blockRows
                image.multiply(position: task % 16, outputChannels: first..<min(outputChannels, first + blockRows), tiles: tiles,
                               input: inputs.value, products: results.value)
            }
            parallelChunks(outputChannels, threads: threads) { range in
                image.transformOutput(index, tileRows: 0..<tileRows, outputChannels: range, from: results.value)
            }
        }
    }
}

/// One Winograd conv's operands and the three stages over a part of them. Scratch layouts: the
/// transformed input is 16 slots of channels x tiles, the products 16 slots of outputs x tiles,
/// for the tiles of the tile rows being worked on.
private struct WinogradImage: @unchecked Sendable {
    let source: UnsafePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let channels: Int
    let geometry: SpatialGeometry
    let epilogue: ConvolutionEpilogue<Float>
    let imageStride: Int
    let filter: WinogradFilter

    var tileColumns: Int { (geometry.output[2] + 1) / 2 }

    func transformInput(_ image: Int, tileRows: Range<Int>, channels part: Range<Int>, into input: UnsafeMutablePointer<Float>) {
        let (height, width) = (geometry.input[1], geometry.input[2])
        let tiles = tileRows.count * tileColumns
        NativeWinograd.input(source + (image * channels + part.lowerBound) * height * width, channels: part.count, height: height, width: width,
                             padTop: geometry.padBegin[1], padLeft: geometry.padBegin[2], tileRows: tileRows, tileColumns: tileColumns,
                             into: input + part.lowerBound * tiles, channelStride: tiles,
                             positionStride: ConvolutionKernels.winogradSlotStride(rows: channels, tiles: tiles))
    }

    func multiply(position: Int, outputChannels rows: Range<Int>, tiles: Int, input: UnsafeMutablePointer<Float>,
                  products: UnsafeMutablePointer<Float>) {
        let (inputSlot, productSlot) = (ConvolutionKernels.winogradSlotStride(rows: channels, tiles: tiles),
                                        ConvolutionKernels.winogradSlotStride(rows: filter.outputs, tiles: tiles))
        filter.products[position].multiply(channels: rows, columns: input + position * inputSlot, columnStride: tiles, width: tiles,
                                           into: products + position * productSlot + rows.lowerBound * tiles, outputStride: tiles,
                                           bias: nil, residual: nil, residualStride: 0, relu: false)
    }

    func transformOutput(_ image: Int, tileRows: Range<Int>, outputChannels part: Range<Int>, from products: UnsafeMutablePointer<Float>) {
        let (outputHeight, outputWidth) = (geometry.output[1], geometry.output[2])
        let positions = outputHeight * outputWidth
        let tiles = tileRows.count * tileColumns
        let residual = epilogue.residual.map { $0 + (image * filter.outputs + part.lowerBound) * positions }
        NativeWinograd.output(products + part.lowerBound * tiles, outputs: part.count,
                              positionStride: ConvolutionKernels.winogradSlotStride(rows: filter.outputs, tiles: tiles),
                              channelStride: tiles, tileRows: tileRows, tileColumns: tileColumns,
                              into: output + image * imageStride + part.lowerBound * positions, outputHeight: outputHeight,
                              outputWidth: outputWidth, outputPlaneStride: positions, bias: epilogue.bias.map { $0 + part.lowerBound },
                              residual: residual, residualPlaneStride: positions, relu: epilogue.relu)
    }
}
