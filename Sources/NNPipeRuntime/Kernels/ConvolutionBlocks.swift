/// Convolution cut into blocks of output that one core makes start to finish (im2col of its
/// columns, a single-threaded GEMM, the epilogue), so each block's data is still in cache for the
/// next step and a conv is one parallel step rather than three.
extension ConvolutionKernels {
    /// Elements of one segment's im2col matrix (1 MiB of floats): small enough to be read back
    /// from cache by the GEMM right after it is written.
    static let segmentElements = 1 << 18

    /// Blocks per thread when one image is shared by every thread: enough that a worker the OS
    /// pauses is covered by the others.
    static let blocksPerThread = 4

    /// One block: output channels `channels` (absolute indices, so grouped convs work) × `width`
    /// columns. The bias is written first and the GEMM adds onto it (beta 1): with beta 0 OpenBLAS
    /// clears C in a pass of its own, which measured slower than writing the bias. The residual and
    /// Relu follow in one pass over the block while it is in cache.
    /// - Parameters:
    ///   - destination: the block's first element; rows `leadingC` apart.
    ///   - outputOffset: that element's index in the conv's output, where the residual is read;
    ///     residual rows are `planeSize` apart.
    static func multiplyBlock<Element: BLASElement>(_ filter: UnsafePointer<Element>, depth: Int, channels: Range<Int>,
                                                    columns matrix: UnsafePointer<Element>, leadingB: Int, width: Int,
                                                    into destination: UnsafeMutablePointer<Element>, leadingC: Int,
                                                    outputOffset: Int, planeSize: Int, epilogue: ConvolutionEpilogue<Element>,
                                                    packed: PackedFilter?, inputAffine: InputAffine? = nil) {
        guard !channels.isEmpty, width > 0 else { return }
        if multiplyPacked(packed, channels: channels, columns: matrix, leadingB: leadingB, width: width, into: destination, leadingC: leadingC,
                          epilogue: epilogue.shifted(by: outputOffset), residualStride: planeSize, inputAffine: inputAffine) {
            return
        }
        precondition(inputAffine == nil, "an input affine needs the packed product")
        if let bias = epilogue.bias {
            for (row, channel) in channels.enumerated() {
                (destination + row * leadingC).update(repeating: bias[channel], count: width)
            }
        }
        Element.multiply(rows: channels.count, columns: width, inner: depth, filter + channels.lowerBound * depth, leadingA: depth,
                         transposeA: false, matrix, leadingB: leadingB, transposeB: false, into: destination, leadingC: leadingC,
                         beta: epilogue.bias == nil ? 0 : 1, threads: 1)
        let rest = ConvolutionEpilogue(bias: nil, residual: epilogue.residual, relu: epilogue.relu)
        guard !rest.isEmpty else { return }
        for (row, channel) in channels.enumerated() {
            let block = destination + row * leadingC
            rest.apply(at: outputOffset + row * planeSize, channel: channel, from: block, to: block, count: width)
        }
    }

    /// The product of `multiplyBlock` (or, without an epilogue, a bare GEMM) through the packed
    /// weights when there are some, the element type is Float and `channels` starts on a panel;
    /// false when it leaves the product to OpenBLAS. The epilogue's residual is read from its
    /// first element, rows `residualStride` apart.
    static func multiplyPacked<Element: BLASElement>(_ packed: PackedFilter?, channels: Range<Int>, columns matrix: UnsafePointer<Element>,
                                                     leadingB: Int, width: Int, into destination: UnsafeMutablePointer<Element>, leadingC: Int,
                                                     epilogue: ConvolutionEpilogue<Element> = .init(bias: nil, residual: nil, relu: false),
                                                     residualStride: Int = 0, inputAffine: InputAffine? = nil) -> Bool {
        guard let packed, Element.self == Float.self, channels.lowerBound % PackedFilter.panelRows == 0 else { return false }
        func floats(_ pointer: UnsafePointer<Element>) -> UnsafePointer<Float> {
            UnsafeRawPointer(pointer).assumingMemoryBound(to: Float.self)
        }
        packed.multiply(channels: channels, columns: floats(matrix), columnStride: leadingB, width: width,
                        into: UnsafeMutableRawPointer(destination).assumingMemoryBound(to: Float.self), outputStride: leadingC,
                        bias: epilogue.bias.map(floats), residual: epilogue.residual.map(floats), residualStride: residualStride,
                        relu: epilogue.relu, inputAffine: inputAffine)
        return true
    }

    /// Segments per image for `convolveInSegments`: enough that each one's im2col fits
    /// `segmentElements`, and when there are few images, enough that every thread gets several
    /// (but at least 64 columns each, below which the GEMM is mostly packing), rounded to a
    /// multiple of the thread count so the last round of tasks keeps every thread busy.
    static func segmentCount(geometry: SpatialGeometry, depth: Int, batch: Int, threads: Int) -> Int {
        let (outputHeight, outputWidth) = (max(geometry.output[1], 1), max(geometry.output[2], 1))
        let cacheRows = max(1, segmentElements / max(depth * outputWidth, 1))
        var count = (outputHeight + cacheRows - 1) / cacheRows
        guard batch < threads * blocksPerThread else { return count }
        let wanted = (threads * blocksPerThread + batch - 1) / max(batch, 1)
        let widest = max(1, outputHeight / ((64 + outputWidth - 1) / outputWidth))
        count = max(count, min(wanted, widest))
        if batch % threads != 0, count % threads != 0 {
            let rounded = (count + threads - 1) / threads * threads
            count = rounded <= outputHeight ? rounded : count
        }
        return min(count, outputHeight)
    }

    /// Rows of segment `index` of `count`: sizes differ by at most one row.
    static func segmentRows(_ index: Int, of count: Int, height: Int) -> Range<Int> {
        (index * height / count)..<((index + 1) * height / count)
    }

    /// 2-D maps (group 1): im2col and GEMM one segment of output rows at a time, the way
    /// onnxruntime's MLAS does. A whole image's im2col matrix (115 MB for VGG's second layer) is
    /// written to memory and read back; a segment's stays in cache. Segments of every image are
    /// the tasks, each with a single-threaded GEMM, and the epilogue runs on the segment too.
    static func convolveInSegments<Element: BLASElement>(_ source: UnsafePointer<Element>, _ filter: UnsafePointer<Element>,
                                                         _ output: UnsafeMutablePointer<Element>, batch: Int, channels: Int, outputChannels: Int,
                                                         geometry: SpatialGeometry, segments: Int, epilogue: ConvolutionEpilogue<Element>,
                                                         imageStride: Int, packed: PackedFilter?, threads: Int) {
        let depth = channels * geometry.kernelSize
        let positions = geometry.outputSize
        let (outputHeight, outputWidth) = (geometry.output[1], geometry.output[2])
        let rowsPerSegment = (outputHeight + segments - 1) / segments
        let workers = min(threads, batch * segments)
        let buffers = (0..<workers).map { _ in RuntimeStorage(byteCount: depth * rowsPerSegment * outputWidth * MemoryLayout<Element>.stride) }
        let pointers = buffers.map { UncheckedSendable(value: $0.bytes.baseAddress!.assumingMemoryBound(to: Element.self)) }
        defer { withExtendedLifetime(buffers) {} }
        parallelTasks(batch * segments, threads: threads) { worker, task in
            let image = task / segments, segment = task % segments
            let rows = segmentRows(segment, of: segments, height: outputHeight)
            let width = rows.count * outputWidth
            let columns = pointers[worker].value
            geometry.imageToColumns(source + image * channels * geometry.inputSize, channels: channels, into: columns, rowStride: width,
                                    outputRows: rows, threads: 1)
            let first = image * outputChannels * positions + rows.lowerBound * outputWidth
            multiplyBlock(filter, depth: depth, channels: 0..<outputChannels, columns: UnsafePointer(columns), leadingB: width, width: width,
                          into: output + image * imageStride + rows.lowerBound * outputWidth, leadingC: positions, outputOffset: first,
                          planeSize: positions, epilogue: epilogue, packed: packed)
        }
    }

    /// Fewer images than threads (batch 1), group 1: each image shared by every thread in blocks.
    /// Blocks run along the output positions when there are at least as many of them as output
    /// channels (the weights, then the smaller operand, are what each block's GEMM packs again),
    /// else along the output channels after one im2col of the whole image. Returns false for the
    /// shapes it leaves to the general path (1-D, 3-D, and maps with fewer rows than threads).
    static func convolveImages<Element: BLASElement>(_ source: UnsafePointer<Element>, _ filter: UnsafePointer<Element>,
                                                     _ output: UnsafeMutablePointer<Element>, batch: Int, channels: Int, outputChannels: Int,
                                                     geometry: SpatialGeometry, pointwise: Bool, epilogue: ConvolutionEpilogue<Element>,
                                                     imageStride: Int, packed: PackedFilter?, inputAffine: InputAffine?, threads: Int) -> Bool {
        let depth = channels * geometry.kernelSize
        let positions = geometry.outputSize
        let blocks = threads * blocksPerThread
        let alongPositions = positions >= outputChannels
        if alongPositions, !pointwise, geometry.output[0] != 1 || geometry.output[1] < threads { return false }
        for image in 0..<batch {
            let offset = image * outputChannels * positions
            let destination = output + image * imageStride
            let planes = source + image * channels * geometry.inputSize
            if alongPositions, pointwise {
                // Multiples of 16 columns fill OpenBLAS's micro-tiles.
                let width = (max(64, (positions + blocks - 1) / blocks) + 15) / 16 * 16
                parallelTasks((positions + width - 1) / width, threads: threads) { _, block in
                    let start = block * width
                    multiplyBlock(filter, depth: depth, channels: 0..<outputChannels, columns: planes + start, leadingB: positions,
                                  width: min(width, positions - start), into: destination + start, leadingC: positions,
                                  outputOffset: offset + start, planeSize: positions, epilogue: epilogue, packed: packed, inputAffine: inputAffine)
                }
            } else if alongPositions {
                convolveInSegments(planes, filter, destination, batch: 1, channels: channels, outputChannels: outputChannels,
                                   geometry: geometry, segments: segmentCount(geometry: geometry, depth: depth, batch: 1, threads: threads),
                                   epilogue: epilogue.shifted(by: offset), imageStride: imageStride, packed: packed, threads: threads)
            } else {
                var matrix = planes
                let storage = pointwise ? nil : RuntimeStorage(byteCount: depth * positions * MemoryLayout<Element>.stride)
                if let columns = storage?.bytes.baseAddress?.assumingMemoryBound(to: Element.self) {
                    geometry.imageToColumns(planes, channels: channels, into: columns, threads: threads)
                    matrix = UnsafePointer(columns)
                }
                // Whole micro-tile rows: OpenBLAS's are 16 channels, the packed product's panels 6.
                let unit = packed == nil ? 16 : PackedFilter.panelRows
                if let packed, Element.self == Float.self {
                    // The column matrix packed once, by blocks of 256 rows, for every block of
                    // channels: packed by each, it cost ResNet's stride-2 convs on 7x7 and 14x14
                    // maps a copy of their 0.9-1.8 MB im2col matrix per block.
                    let prepacked = RuntimeStorage(byteCount: PackedFilter.packedColumnsCount(depth: depth, width: positions) * MemoryLayout<Float>.stride)
                    let strips = UncheckedSendable(value: prepacked.bytes.baseAddress!.assumingMemoryBound(to: Float.self))
                    let columns = UncheckedSendable(value: UnsafeRawPointer(matrix).assumingMemoryBound(to: Float.self))
                    parallelTasks((depth + 255) / 256, threads: threads) { _, block in
                        PackedFilter.packColumns(columns.value, columnStride: positions, rows: (block * 256)..<min(depth, (block + 1) * 256),
                                                 depth: depth, width: positions, inputAffine: inputAffine, into: strips.value)
                    }
                    let height = (max(unit, (outputChannels + blocks - 1) / blocks) + unit - 1) / unit * unit
                    let target = UncheckedSendable(value: UnsafeMutableRawPointer(destination).assumingMemoryBound(to: Float.self))
                    let shifts = epilogue.bias.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) }
                    let addend = epilogue.residual.map { UnsafeRawPointer($0 + offset).assumingMemoryBound(to: Float.self) }
                    parallelTasks((outputChannels + height - 1) / height, threads: threads) { _, block in
                        let first = block * height
                        packed.multiply(channels: first..<min(outputChannels, first + height), prepacked: strips.value, width: positions,
                                        into: target.value + first * positions, outputStride: positions, bias: shifts,
                                        residual: addend.map { $0 + first * positions }, residualStride: positions, relu: epilogue.relu)
                    }
                    withExtendedLifetime((storage, prepacked)) {}
                    continue
                }
                // Half as many blocks here: each one's GEMM packs the whole im2col matrix again
                // (17-22% over one call at 8 blocks on SqueezeNet's 13x13 layers, 3-7% at 4).
                let channelBlocks = max(1, blocks / 2)
                let height = (max(unit, (outputChannels + channelBlocks - 1) / channelBlocks) + unit - 1) / unit * unit
                parallelTasks((outputChannels + height - 1) / height, threads: threads) { _, block in
                    let first = block * height
                    multiplyBlock(filter, depth: depth, channels: first..<min(outputChannels, first + height), columns: matrix,
                                  leadingB: positions, width: positions, into: destination + first * positions, leadingC: positions,
                                  outputOffset: offset + first * positions, planeSize: positions, epilogue: epilogue, packed: packed,
                                  inputAffine: inputAffine)
                }
                withExtendedLifetime(storage) {}
            }
        }
        return true
    }
}
