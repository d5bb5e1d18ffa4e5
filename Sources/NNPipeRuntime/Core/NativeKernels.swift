import CNNPipeKernels
import Foundation

// The one place that calls the runtime's own C kernels (CNNPipeKernels, AVX2 + FMA): every
// argument is checked here first.

/// Whether this CPU runs the C kernels (x86-64 with AVX2 and FMA), asked once.
enum NativeKernels {
    static let cpuSupported = nnpipe_native_kernels_available() != 0
}

/// The process's pool of worker threads (CNNPipeKernels' WorkerPool.c, plain C for any CPU), which
/// `parallelTasks` runs its steps on: its helpers spin for 0.2 ms after a job before they sleep,
/// so the next step of a batch-1 inference starts them at once, where `concurrentPerform` cost
/// 13-30 us a step. `NNPIPE_WORKER_POOL=0` turns it off (back to `concurrentPerform`).
enum WorkerPool {
    static let isEnabled = ProcessInfo.processInfo.environment["NNPIPE_WORKER_POOL"] != "0"

    /// Runs `body(worker, task)` for every task in `0..<count` on this thread and up to
    /// `workers - 1` pool threads; false (nothing run) when the pool is off or busy with another
    /// job, for fewer than two tasks or workers, or from inside one of its tasks.
    static func run(_ count: Int, workers: Int, _ body: (_ worker: Int, _ task: Int) -> Void) -> Bool {
        guard isEnabled, count >= 2, workers >= 2 else { return false }
        return withoutActuallyEscaping(body) { escapable in
            var closure = escapable
            // The C side calls back through this pointer only until nnpipe_pool_run returns.
            return withUnsafeMutablePointer(to: &closure) { pointer in
                nnpipe_pool_run(count, workers, { context, worker, task in
                    context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(worker, task)
                }, pointer) != 0
            }
        }
    }
}

/// `count` floats, 64-byte aligned (the kernels' aligned vector loads), filled by `pack`; the
/// caller deallocates them.
private func packedFloats(_ count: Int, _ pack: (UnsafeMutablePointer<Float>) -> Void) -> UnsafeMutablePointer<Float> {
    let values = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        .bindMemory(to: Float.self, capacity: count)
    pack(values)
    return values
}

/// Convolution weights packed once for the runtime's own float product.
///
/// Why not OpenBLAS for these products: at batch 1 a conv's GEMM is small and is called per block
/// of output, and OpenBLAS packs the weights again on every call (5% of SqueezeNet's time), while
/// the bias has to be written before it and the Relu after it, two more passes over every output
/// (10%). The packed product takes the weights packed once (on the conv's first run) and stores each output once
/// with bias, residual and Relu applied. Its inner kernel runs at OpenBLAS's speed on the conv
/// shapes measured (Benchmarks/runtime/README.md). Other CPUs, and `NNPIPE_PACKED_PRODUCT=0`,
/// keep OpenBLAS.
final class PackedFilter: @unchecked Sendable {
    /// True on CPUs with AVX2 and FMA unless `NNPIPE_PACKED_PRODUCT=0`.
    static let isAvailable: Bool = NativeKernels.cpuSupported
        && ProcessInfo.processInfo.environment["NNPIPE_PACKED_PRODUCT"] != "0"
    /// A block of output channels must start at a multiple of this.
    static let panelRows = Int(nnpipe_packed_panel_rows())

    let rows: Int
    let depth: Int
    private let values: UnsafeMutablePointer<Float>

    /// Packs the row-major `rows` x `depth` matrix `filter` (a conv's weights, one row per output
    /// channel).
    init(_ filter: UnsafePointer<Float>, rows: Int, depth: Int) {
        precondition(rows > 0 && depth > 0, "empty filter \(rows) x \(depth)")
        self.rows = rows
        self.depth = depth
        values = packedFloats(Int(nnpipe_packed_filter_count(rows, depth))) { nnpipe_pack_filter(filter, rows, depth, $0) }
    }

    deinit { values.deallocate() }

    /// output[c][j] = relu?(bias[c] + Σₖ filter[c][k] · columns[k][j] + residual[c][j]) for the
    /// channels `channels` (row c of `output` and `residual` is channel `channels.lowerBound + c`)
    /// and columns 0..<width. `bias` points at channel 0's value. With `inputAffine`, columns[k][j]
    /// is first mapped through it (row k by its value k). Single-threaded.
    func multiply(channels: Range<Int>, columns: UnsafePointer<Float>, columnStride: Int, width: Int,
                  into output: UnsafeMutablePointer<Float>, outputStride: Int, bias: UnsafePointer<Float>?,
                  residual: UnsafePointer<Float>?, residualStride: Int, relu: Bool, inputAffine: InputAffine? = nil,
                  avx2Only: Bool = false) {
        precondition(channels.lowerBound >= 0 && channels.upperBound <= rows && channels.lowerBound % Self.panelRows == 0,
                     "channels \(channels) of \(rows) must start at a multiple of \(Self.panelRows)")
        precondition(width >= 0 && columnStride >= width && outputStride >= width && (residual == nil || residualStride >= width),
                     "strides must cover the \(width) columns")
        guard !channels.isEmpty, width > 0 else { return }
        let product = avx2Only ? nnpipe_packed_product_avx2 : nnpipe_packed_product
        product(values, rows, channels.lowerBound, channels.count, depth, columns, columnStride, width,
                output, outputStride, bias.map { $0 + channels.lowerBound }, residual, residualStride, relu ? 1 : 0,
                inputAffine?.scale, inputAffine?.shift, inputAffine?.relu == true ? 1 : 0)
    }

    /// Floats `packColumns` needs for a depth x width column matrix.
    static func packedColumnsCount(depth: Int, width: Int) -> Int { Int(nnpipe_packed_columns_count(depth, width)) }

    /// Packs rows `rows` (starting on a multiple of 256) of the depth x width matrix `columns` into
    /// `prepacked` (`packedColumnsCount` floats, 64-byte aligned) as `multiply` would pack them, so
    /// that several blocks of channels multiplying one matrix pack it once between them.
    static func packColumns(_ columns: UnsafePointer<Float>, columnStride: Int, rows: Range<Int>, depth: Int, width: Int,
                            inputAffine: InputAffine?, into prepacked: UnsafeMutablePointer<Float>) {
        precondition(isAvailable && rows.lowerBound >= 0 && rows.lowerBound % 256 == 0 && rows.upperBound <= depth && width > 0
                     && columnStride >= width && Int(bitPattern: prepacked) % 64 == 0, "column packing arguments")
        nnpipe_pack_columns(columns, columnStride, rows.lowerBound, rows.count, depth, width, inputAffine?.scale, inputAffine?.shift,
                            inputAffine?.relu == true ? 1 : 0, prepacked)
    }

    /// `multiply` on columns `packColumns` packed (every row of the depth).
    func multiply(channels: Range<Int>, prepacked: UnsafePointer<Float>, width: Int, into output: UnsafeMutablePointer<Float>,
                  outputStride: Int, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, residualStride: Int, relu: Bool) {
        precondition(channels.lowerBound >= 0 && channels.upperBound <= rows && channels.lowerBound % Self.panelRows == 0,
                     "channels \(channels) of \(rows) must start at a multiple of \(Self.panelRows)")
        precondition(width > 0 && outputStride >= width && (residual == nil || residualStride >= width), "strides must cover the \(width) columns")
        guard !channels.isEmpty else { return }
        nnpipe_packed_product_prepacked(values, rows, channels.lowerBound, channels.count, depth, prepacked, width, output, outputStride,
                                        bias.map { $0 + channels.lowerBound }, residual, residualStride, relu ? 1 : 0)
    }

    /// Whether `multiply` runs the AVX-512 tiles (the CPU has AVX-512F and NNPIPE_AVX512 is not 0).
    static var usesAVX512: Bool { nnpipe_packed_product_uses_avx512() != 0 }
}

/// Calibration's histogram count (StageCalibrate's `Histogram`), eight values a step where the CPU
/// has AVX2: about twice the Swift loop's speed at the baseline x86-64 instruction set, with the
/// same bins (tested against the scalar rule there).
public enum NativeHistogram {
    public static let isAvailable = NativeKernels.cpuSupported

    /// Counts `values` into `table` (2 × `bins` counters: even lanes, then odd lanes) at
    /// bin = ⌊(x − lower)·scale⌋ clamped to 0..<bins (NaN and negatives to 0), and returns the
    /// finite extremes and whether any value was NaN or infinite.
    public static func count(_ values: UnsafeBufferPointer<Float>, into table: UnsafeMutablePointer<UInt32>, bins: Int, lower: Float,
                             scale: Float) -> (minimum: Float, maximum: Float, hasNonFinite: Bool) {
        precondition(isAvailable && bins >= 1 && bins <= 1 << 24, "the native count needs AVX2 and 1...2^24 bins")
        guard let base = values.baseAddress, !values.isEmpty else { return (.infinity, -.infinity, false) }
        var minimum = Float.infinity, maximum = -Float.infinity
        let nonFinite = nnpipe_histogram_count(base, values.count, table, bins, lower, scale, &minimum, &maximum)
        return (minimum, maximum, nonFinite != 0)
    }
}

/// The inner loops of 2-D pooling, eight lanes at a time where the CPU has AVX2 (the Swift loops
/// they replace run four at a time at the baseline x86-64 instruction set).
enum NativePooling {
    static let isAvailable = NativeKernels.cpuSupported

    /// scratch[i] = max(scratch[i], row[i]) (NaN held stays, NaN arriving is skipped) or
    /// scratch[i] + row[i], for i in 0..<count.
    static func combine(_ scratch: UnsafeMutablePointer<Float>, with row: UnsafePointer<Float>, count: Int, maximum: Bool) {
        precondition(isAvailable && count >= 0, "combine needs AVX2 and a count")
        nnpipe_pool_combine_rows(scratch, row, count, maximum ? 1 : 0)
    }

    /// One plane of a 2-D MaxPool without dilation (see nnpipe_max_pool_plane); `scratch` holds
    /// `input.width + 8` floats.
    static func maximumPlane(_ input: UnsafePointer<Float>, size: (height: Int, width: Int), into output: UnsafeMutablePointer<Float>,
                             outputSize: (height: Int, width: Int), kernel: (height: Int, width: Int), stride: (height: Int, width: Int),
                             padBegin: (top: Int, left: Int), scratch: UnsafeMutablePointer<Float>) {
        precondition(isAvailable && size.height >= 0 && size.width >= 0 && kernel.height >= 1 && kernel.width >= 1
                     && stride.height >= 1 && stride.width >= 1 && padBegin.top >= 0 && padBegin.left >= 0,
                     "a max pool plane needs AVX2, a kernel and strides")
        // Every output row's window must start inside the padded rows the geometry made.
        precondition(outputSize.height == 0 || (outputSize.height - 1) * stride.height - padBegin.top < size.height + kernel.height,
                     "output rows past the input")
        nnpipe_max_pool_plane(input, size.height, size.width, output, outputSize.height, outputSize.width, kernel.height, kernel.width,
                              stride.height, stride.width, padBegin.top, padBegin.left, scratch)
    }

    /// Windows of `kernel` taps `stride` apart along a combined row: output[i] reduces
    /// window[i·stride ..< i·stride + kernel]. Makes the first multiple of 8 of `count` outputs
    /// (none unless stride is 1 or 2) and returns how many; `readable` floats from `window` must be
    /// readable (stride 2 reads one float past the last window).
    static func row(_ window: UnsafePointer<Float>, readable: Int, into output: UnsafeMutablePointer<Float>, count: Int, kernel: Int,
                    stride: Int, maximum: Bool, divisor: Float) -> Int {
        precondition(isAvailable && count >= 0 && kernel >= 1, "row needs AVX2, a count and a kernel")
        let vectors = count / 8 * 8
        guard vectors > 0, stride == 1 || stride == 2 else { return 0 }
        precondition((vectors - 1) * stride + kernel + (stride == 2 ? 1 : 0) <= readable, "windows past the readable row")
        return Int(nnpipe_pool_row(window, output, count, Int32(kernel), Int32(stride), maximum ? 1 : 0, divisor))
    }
}

/// x · scale[k] + shift[k], then Relu if `relu`, for input channel k of a pointwise conv: the
/// BatchNormalization (+ Mul/Add) and Relu that DenseNet runs before each 1x1 conv, which the
/// packed product applies as it packs its input instead of in a pass over memory of its own.
/// The pointers hold one value per input channel.
struct InputAffine: @unchecked Sendable {
    let scale: UnsafePointer<Float>
    let shift: UnsafePointer<Float>
    let relu: Bool
}

/// A conv node's packed weights (direct product or Winograd), made on its first run and reused
/// while the weights are the same plan constant (the storage is kept alive here, so its identity
/// cannot be reused by another). Weights fed at run time are never packed: nothing stops a caller
/// rewriting them between runs.
final class PackedFilterCache: @unchecked Sendable {
    private struct Entry<Value> {
        let storage: RuntimeStorage
        let shape: [Int]
        let value: Value
    }

    private let lock = NSLock()
    private var packed: Entry<PackedFilter>?
    private var winograd: Entry<WinogradFilter>?
    private var direct: Entry<DirectFilter>?

    func filter(for weights: RuntimeTensor, rows: Int, depth: Int) -> PackedFilter? {
        guard PackedFilter.isAvailable, rows > 0, depth > 0, weights.elementCount == rows * depth else { return nil }
        return cached(weights, in: \.packed) { PackedFilter($0, rows: rows, depth: depth) }
    }

    func winogradFilter(for weights: RuntimeTensor, outputs: Int, channels: Int) -> WinogradFilter? {
        guard WinogradFilter.isAvailable, outputs > 0, channels > 0, weights.shape == [outputs, channels, 3, 3] else { return nil }
        return cached(weights, in: \.winograd) { WinogradFilter($0, outputs: outputs, channels: channels) }
    }

    func directFilter(for weights: RuntimeTensor, outputs: Int, taps: Int) -> DirectFilter? {
        guard DirectFilter.isAvailable, outputs > 0, taps > 0, weights.elementCount == outputs * taps else { return nil }
        return cached(weights, in: \.direct) { DirectFilter($0, outputs: outputs, taps: taps) }
    }

    private func cached<Value>(_ weights: RuntimeTensor, in slot: ReferenceWritableKeyPath<PackedFilterCache, Entry<Value>?>,
                               make: (UnsafePointer<Float>) -> Value) -> Value? {
        guard weights.storage.isPlanConstant, weights.dataType == .float else { return nil }
        return lock.withLock {
            if let entry = self[keyPath: slot], entry.storage === weights.storage, entry.shape == weights.shape { return entry.value }
            let value = weights.withUnsafeBuffer(of: Float.self) { make($0.baseAddress!) }
            self[keyPath: slot] = Entry(storage: weights.storage, shape: weights.shape, value: value)
            return value
        }
    }
}

/// A 3x3 conv's weights for Winograd F(2x2, 3x3) (CNNPipeKernels' Winograd.c): the 16 transformed
/// outputs x channels matrices, each packed for the packed product. 16/9 of the weights' size.
final class WinogradFilter: @unchecked Sendable {
    /// Where the packed product runs, unless `NNPIPE_WINOGRAD=0`.
    static let isAvailable = PackedFilter.isAvailable && ProcessInfo.processInfo.environment["NNPIPE_WINOGRAD"] != "0"

    let outputs: Int
    let channels: Int
    /// Product i multiplies transformed input i.
    let products: [PackedFilter]

    /// `weights`: outputs x channels x 3 x 3, row-major.
    init(_ weights: UnsafePointer<Float>, outputs: Int, channels: Int) {
        precondition(outputs > 0 && channels > 0, "empty Winograd filter \(outputs) x \(channels)")
        self.outputs = outputs
        self.channels = channels
        let matrix = outputs * channels
        let transformed = UnsafeMutablePointer<Float>.allocate(capacity: 16 * matrix)
        defer { transformed.deallocate() }
        nnpipe_winograd_filter(weights, outputs, channels, transformed)
        products = (0..<16).map { PackedFilter(transformed + $0 * matrix, rows: outputs, depth: channels) }
    }
}

/// A conv's weights packed for the direct convolution (CNNPipeKernels' DirectConvolution.c,
/// AVX-512): blocks of `blockRows` output channels, tap by tap.
final class DirectFilter: @unchecked Sendable {
    /// Where the packed product runs its AVX-512 tiles, unless `NNPIPE_DIRECT=0`.
    static let isAvailable = PackedFilter.isAvailable && PackedFilter.usesAVX512
        && ProcessInfo.processInfo.environment["NNPIPE_DIRECT"] != "0"
    /// A call's first output channel must be a multiple of this.
    static let blockRows = Int(nnpipe_direct_block_rows())
    /// A call's first position must be a multiple of this.
    static let tilePositions = Int(nnpipe_direct_tile_positions())

    let outputs: Int
    let taps: Int
    private let values: UnsafeMutablePointer<Float>

    /// `weights`: outputs x taps, row-major (a conv's outputs x channels x kernel rows x kernel columns).
    init(_ weights: UnsafePointer<Float>, outputs: Int, taps: Int) {
        precondition(outputs > 0 && taps > 0, "empty direct filter \(outputs) x \(taps)")
        self.outputs = outputs
        self.taps = taps
        values = packedFloats(Int(nnpipe_direct_filter_count(outputs, taps))) { nnpipe_direct_pack_filter(weights, outputs, taps, $0) }
    }

    deinit { values.deallocate() }

    /// The phase-split padded input (see nnpipe_direct_layout): `channels` planes of
    /// `size` into `buffer`, which holds `channels` x strides x phase plane floats.
    static func layout(_ image: UnsafePointer<Float>, channels: Int, size: (height: Int, width: Int), strides: (height: Int, width: Int),
                       padBegin: (top: Int, left: Int), phase: (height: Int, width: Int), into buffer: UnsafeMutablePointer<Float>) {
        precondition(isAvailable && channels >= 0 && size.height > 0 && size.width > 0 && strides.height >= 1 && strides.width >= 1
                     && padBegin.top >= 0 && padBegin.left >= 0 && phase.height > 0 && phase.width > 0, "direct layout arguments")
        nnpipe_direct_layout(image, channels, size.height, size.width, strides.height, strides.width, padBegin.top, padBegin.left,
                             phase.height, phase.width, buffer)
    }

    /// The conv for output channels `channels` and grid positions `positions` (see
    /// nnpipe_direct_convolution). `offsets` holds one buffer offset per tap; `readable` is how
    /// many floats `buffer` holds. `output`, `bias` and `residual` start at output channel 0.
    func convolve(offsets: UnsafePointer<Int>, buffer: UnsafePointer<Float>, readable: Int, positions: Range<Int>, phaseWidth: Int,
                  outputSize: (height: Int, width: Int), channels: Range<Int>, into output: UnsafeMutablePointer<Float>, outputPlane: Int,
                  bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, residualPlane: Int, relu: Bool, largestOffset: Int,
                  maskedTail: Bool = false, blocksOuter: Bool = false) {
        let tile = Self.tilePositions
        precondition(channels.lowerBound >= 0 && channels.upperBound <= outputs && channels.lowerBound % Self.blockRows == 0,
                     "channels \(channels) of \(outputs) must start at a multiple of \(Self.blockRows)")
        precondition(positions.lowerBound >= 0 && positions.lowerBound % tile == 0 && phaseWidth >= outputSize.width && outputSize.width > 0
                     && outputPlane >= outputSize.height * outputSize.width
                     && (residual == nil || residualPlane >= outputSize.height * outputSize.width), "direct convolution positions")
        let end = min(positions.upperBound, outputSize.height * phaseWidth)
        guard !channels.isEmpty, positions.lowerBound < end else { return }
        // Every tap reads whole tiles, up to the largest offset plus the last tile's end; with a
        // masked tail, up to the last position.
        precondition(largestOffset + (maskedTail ? end : (end + tile - 1) / tile * tile) <= readable, "direct convolution reads past its buffer")
        nnpipe_direct_convolution(values, taps, offsets, buffer, positions.lowerBound, end, phaseWidth, outputSize.height, outputSize.width,
                                  channels.lowerBound, channels.count, output, outputPlane, bias, residual, residualPlane, relu ? 1 : 0,
                                  maskedTail ? 1 : 0, blocksOuter ? 1 : 0)
    }
}

/// Winograd's input and output transforms (AVX2), checked here.
enum NativeWinograd {
    /// Tiles and patches as nnpipe_winograd_input describes; `transformed` must hold
    /// 16 position slots `positionStride` apart, each `channels` rows `channelStride` apart of
    /// tileRows x tileColumns values.
    static func input(_ image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, padTop: Int, padLeft: Int,
                      tileRows: Range<Int>, tileColumns: Int, into transformed: UnsafeMutablePointer<Float>, channelStride: Int, positionStride: Int) {
        precondition(WinogradFilter.isAvailable && channels >= 0 && height > 0 && width > 0 && padTop >= 0 && padLeft >= 0
                     && tileRows.lowerBound >= 0 && !tileRows.isEmpty && tileColumns > 0 && channelStride >= tileRows.count * tileColumns
                     && positionStride >= channels * channelStride, "Winograd input transform arguments")
        nnpipe_winograd_input(image, channels, height, width, padTop, padLeft, tileRows.lowerBound, tileRows.count, tileColumns, transformed,
                              channelStride, positionStride)
    }

    /// The 2x2 outputs of the tiles in `tileRows` for `outputs` channels (see
    /// nnpipe_winograd_output); `output`, `bias` and `residual` start at the first of those channels.
    static func output(_ products: UnsafePointer<Float>, outputs: Int, positionStride: Int, channelStride: Int, tileRows: Range<Int>,
                       tileColumns: Int, into output: UnsafeMutablePointer<Float>, outputHeight: Int, outputWidth: Int, outputPlaneStride: Int,
                       bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, residualPlaneStride: Int, relu: Bool) {
        precondition(WinogradFilter.isAvailable && outputs >= 0 && tileRows.lowerBound >= 0 && !tileRows.isEmpty
                     && tileRows.upperBound <= (outputHeight + 1) / 2 && tileColumns == (outputWidth + 1) / 2
                     && outputHeight > 0 && outputWidth > 0 && channelStride >= tileRows.count * tileColumns
                     && positionStride >= outputs * channelStride && outputPlaneStride >= outputHeight * outputWidth
                     && (residual == nil || residualPlaneStride >= outputHeight * outputWidth), "Winograd output transform arguments")
        nnpipe_winograd_output(products, outputs, positionStride, channelStride, tileRows.lowerBound, tileRows.count, tileColumns, output,
                               outputHeight, outputWidth, outputPlaneStride, bias, residual, residualPlaneStride, relu ? 1 : 0)
    }
}
