/// 3x3 stride-1 convs by Winograd's F(2x2, 3x3) (CNNPipeKernels' Winograd.c): 2.25 times fewer
/// multiplies than im2col + product, and no im2col matrix. Per image, three parallel steps: the
/// input transform (by input channels), 16 products of the transformed weights with the
/// transformed input (one task each, the packed product), and the output transform with the bias,
/// residual and Relu (by output channels).
extension ConvolutionKernels {
    /// The transformed input and the products of one image, at most this many bytes; larger maps
    /// (VGG's first 224x224 layers: 103 MB) stay with im2col, whose segments stay in cache.
    static let winogradScratchLimit = 64 << 20

    /// Whether a conv takes the Winograd path: group 1, a 2-D 3x3 kernel, stride and dilation 1,
    /// at least 16 input and output channels (fewer make products too thin to beat the direct
    /// product, and a network's first layer has 3), and scratch within `winogradScratchLimit`.
    static func usesWinograd(geometry: SpatialGeometry, group: Int, channels: Int, outputChannels: Int) -> Bool {
        guard WinogradFilter.isAvailable, group == 1, channels >= 16, outputChannels >= 16, geometry.spatialRank == 2,
              geometry.input[0] == 1, geometry.kernel == [1, 3, 3], geometry.strides.allSatisfy({ $0 == 1 }),
              geometry.dilations.allSatisfy({ $0 == 1 }), geometry.output[1] > 0, geometry.output[2] > 0 else { return false }
        let tiles = (geometry.output[1] + 1) / 2 * ((geometry.output[2] + 1) / 2)
        return 16 * (channels + outputChannels) * tiles * MemoryLayout<Float>.stride <= winogradScratchLimit
    }

    /// The conv of `batch` images (channels x height x width each) into `output` (images
    /// `imageStride` apart, channel planes `outputSize` apart), with the epilogue's residual in the
    /// conv's own layout.
    static func convolveWinograd(_ source: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                                 geometry: SpatialGeometry, epilogue: ConvolutionEpilogue<Float>, imageStride: Int, filter: WinogradFilter,
                                 threads: Int) {
        let outputChannels = filter.outputs
        precondition(filter.channels == channels, "Winograd filter for \(filter.channels) channels, input has \(channels)")
        let (height, width) = (geometry.input[1], geometry.input[2])
        let (outputHeight, outputWidth) = (geometry.output[1], geometry.output[2])
        let positions = outputHeight * outputWidth
        let (tileRows, tileColumns) = ((outputHeight + 1) / 2, (outputWidth + 1) / 2)
        let tiles = tileRows * tileColumns
        let transformed = RuntimeStorage(byteCount: 16 * channels * tiles * MemoryLayout<Float>.stride)
        let products = RuntimeStorage(byteCount: 16 * outputChannels * tiles * MemoryLayout<Float>.stride)
        defer { withExtendedLifetime((transformed, products)) {} }
        let inputs = UncheckedSendable(value: transformed.bytes.baseAddress!.assumingMemoryBound(to: Float.self))
        let results = UncheckedSendable(value: products.bytes.baseAddress!.assumingMemoryBound(to: Float.self))
        // Channel blocks for the products when 16 tasks would leave threads idle.
        let blocks = max(1, (threads * blocksPerThread + 15) / 16)
        let unit = PackedFilter.panelRows
        let blockRows = (max(unit, (outputChannels + blocks - 1) / blocks) + unit - 1) / unit * unit
        let blockCount = (outputChannels + blockRows - 1) / blockRows
        for image in 0..<batch {
            let planes = source + image * channels * height * width
            parallelChunks(channels, threads: threads) { range in
                NativeWinograd.input(planes + range.lowerBound * height * width, channels: range.count, height: height, width: width,
                                     padTop: geometry.padBegin[1], padLeft: geometry.padBegin[2], tileRows: tileRows, tileColumns: tileColumns,
                                     into: inputs.value + range.lowerBound * tiles, channelStride: tiles, positionStride: channels * tiles)
            }
            parallelTasks(16 * blockCount, threads: threads) { _, task in
                let position = task % 16, first = task / 16 * blockRows
                let rows = first..<min(outputChannels, first + blockRows)
                filter.products[position].multiply(channels: rows, columns: inputs.value + position * channels * tiles, columnStride: tiles,
                                                   width: tiles, into: results.value + (position * outputChannels + first) * tiles,
                                                   outputStride: tiles, bias: nil, residual: nil, residualStride: 0, relu: false)
            }
            let destination = output + image * imageStride
            let residual = epilogue.residual.map { $0 + image * outputChannels * positions }
            parallelChunks(outputChannels, threads: threads) { range in
                NativeWinograd.output(results.value + range.lowerBound * tiles, outputs: range.count, positionStride: outputChannels * tiles,
                                      channelStride: tiles, tileRows: tileRows, tileColumns: tileColumns,
                                      into: destination + range.lowerBound * positions, outputHeight: outputHeight, outputWidth: outputWidth,
                                      outputPlaneStride: positions, bias: epilogue.bias.map { $0 + range.lowerBound },
                                      residual: residual.map { $0 + range.lowerBound * positions }, residualPlaneStride: positions,
                                      relu: epilogue.relu)
            }
        }
    }
}
