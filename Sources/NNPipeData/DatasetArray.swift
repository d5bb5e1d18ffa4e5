import NNPipeCore

/// One array of a data set opened for reading: samples along the first axis.
///
/// Implementations read rows on demand (file offsets, HDF5 hyperslabs), never the whole array.
protocol DatasetArray: AnyObject {
    var elementType: DataType { get }
    /// Full shape, sample axis first; rank 0 is a single unbatched sample.
    var shape: [Int] { get }
    /// File the array lives in, for error paths.
    var file: String { get }
    /// The array's key inside the file (`train/x`, `x`, `input_0`), or nil for a bare `.npy`.
    var key: String? { get }
    /// Copies rows `start ..< start + count` (raw, in `elementType`) into `destination`.
    func readContiguousRows(start: Int, count: Int, into destination: UnsafeMutableRawBufferPointer) throws
}

/// Run merging limits for `readRows`: gaps up to 64 KiB are read through, runs stop at 8 MiB.
enum RowRuns {
    static let mergeGapBytes = 64 << 10
    static let maximumRunBytes = 8 << 20
}

extension DatasetArray {
    var sampleCount: Int { shape.first ?? 1 }
    var sampleShape: [Int] { Array(shape.dropFirst()) }
    var rowByteCount: Int {
        elementType.byteCount(elements: shape.isEmpty ? 1 : sampleShape.reduce(1, *))
    }
    /// `'train/x' in data.h5` style name for messages.
    var displayName: String { key.map { "array '\($0.printable())'" } ?? "array" }

    /// Reads rows `indices` (any order, repeats allowed) into `destination`, row `i` at `i * rowByteCount`.
    ///
    /// Rows are read in ascending runs, so sequential batches are a single read and a shuffled
    /// batch costs one read per run. Rows a short gap apart share a run (the gap is read and
    /// dropped): one larger read beats many small ones on disk and in HDF5's chunk decompression.
    func readRows(_ indices: [Int], into destination: UnsafeMutableRawBufferPointer) throws {
        let rowBytes = rowByteCount
        precondition(destination.count >= indices.count * rowBytes)
        guard !indices.isEmpty else { return }
        if zip(indices, indices.dropFirst()).allSatisfy({ $1 == $0 + 1 }) {
            try readContiguousRows(
                start: indices[0], count: indices.count,
                into: UnsafeMutableRawBufferPointer(rebasing: destination[0..<(indices.count * rowBytes)]))
            return
        }
        let order = indices.indices.sorted { indices[$0] < indices[$1] }
        let gapRows = RowRuns.mergeGapBytes / max(1, rowBytes)
        let spanRows = max(1, RowRuns.maximumRunBytes / max(1, rowBytes))
        var runStart = 0
        while runStart < order.count {
            var runEnd = runStart + 1
            let first = indices[order[runStart]]
            while runEnd < order.count, indices[order[runEnd]] <= indices[order[runEnd - 1]] + 1 + gapRows,
                indices[order[runEnd]] - first < spanRows
            {
                runEnd += 1
            }
            let rowCount = indices[order[runEnd - 1]] - first + 1
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: rowCount * rowBytes, alignment: 16)
            defer { scratch.deallocate() }
            try readContiguousRows(start: first, count: rowCount, into: scratch)
            for position in order[runStart..<runEnd] {
                let offset = (indices[position] - first) * rowBytes
                (destination.baseAddress! + position * rowBytes).copyMemory(
                    from: scratch.baseAddress! + offset, byteCount: rowBytes)
            }
            runStart = runEnd
        }
    }
}

/// An array stored as contiguous C-order bytes in a byte source: `.npy`, a `.npz` member, a `.pb`.
final class ContiguousDatasetArray: DatasetArray {
    let elementType: DataType
    let shape: [Int]
    let file: String
    let key: String?
    private let source: ByteSource
    private let dataOffset: Int

    init(source: ByteSource, dataOffset: Int, elementType: DataType, shape: [Int], file: String, key: String?) {
        self.source = source
        self.dataOffset = dataOffset
        self.elementType = elementType
        self.shape = shape
        self.file = file
        self.key = key
    }

    /// Opens a `.npy` held by `source` (a file or an archive member).
    convenience init(numpy source: ByteSource, file: String, key: String?) throws {
        let header = try NumpyHeader.read(from: source)
        self.init(
            source: source, dataOffset: header.dataOffset, elementType: header.dataType,
            shape: header.shape, file: file, key: key)
    }

    func readContiguousRows(start: Int, count: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        precondition(start >= 0 && start + count <= sampleCount)
        let rowBytes = rowByteCount
        try source.read(
            at: dataOffset + start * rowBytes,
            into: UnsafeMutableRawBufferPointer(rebasing: destination[0..<(count * rowBytes)]))
    }
}
