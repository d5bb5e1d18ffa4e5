import Foundation
import NNPipeCore

/// What the model costs on disk: its ONNX file (written with the registered "onnx" format, the
/// same bytes `export` writes without sparse_initializers) and that file after `gzip -9`. Zeros
/// from unstructured pruning only pay off after compression, so both numbers go in the report.
enum ModelFootprint {
    struct Sizes: Equatable {
        var bytes: Int
        var gzipBytes: Int
    }

    /// Models whose weights take more than this are not written twice unless `measure_size` says so.
    static let automaticSizeLimit = 256 << 20
    /// Models with more multiply-accumulates than this are not timed unless `measure_latency` says so.
    static let automaticLatencyLimit = 1_000_000_000

    /// Sizes of `model` as an ONNX file, or nil when this build has no ONNX format.
    /// - Complexity: one ONNX write to a temporary folder and one deflate pass over the file.
    static func measure(_ model: Model, formats: FormatRegistry) throws -> Sizes? {
        guard let onnx = formats.format(named: "onnx") else { return nil }
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("nnpipe-prune-size-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try onnx.write(model, to: folder.appendingPathComponent("model.onnx"))
        // Models over 2 GiB come with external data files; they count too.
        var sizes = Sizes(bytes: 0, gzipBytes: 0)
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() {
            let file = folder.appendingPathComponent(name)
            let (bytes, gzipBytes) = try gzipSize(of: file)
            sizes.bytes += bytes
            sizes.gzipBytes += gzipBytes
        }
        return sizes
    }

    /// Reads the file in 4 MiB pieces so a large model is never held twice in memory.
    static func gzipSize(of file: URL) throws -> (bytes: Int, gzipBytes: Int) {
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw NNPipeError(.io, "cannot read the model written for measuring", path: file.path)
        }
        defer { try? handle.close() }
        let counter = try GzipCounter()
        var total = 0
        while true {
            let piece = try handle.read(upToCount: 4 << 20) ?? Data()
            total += piece.count
            try piece.withUnsafeBytes { try counter.compress($0, last: piece.isEmpty) }
            if piece.isEmpty { break }
        }
        return (total, counter.compressedCount)
    }
}
