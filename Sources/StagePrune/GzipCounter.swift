import CZlib
import NNPipeCore

/// The size of data after `gzip -9`, from zlib's deflate (the one place nnpipe calls zlib).
/// The compressed bytes are counted and dropped, so memory stays at one small output buffer.
final class GzipCounter {
    private var stream = z_stream()
    private var output = [UInt8](repeating: 0, count: 1 << 16)
    private(set) var compressedCount = 0
    private var finished = false

    init(level: Int32 = 9) throws {
        try Self.check(nnpipe_deflate_init_gzip(&stream, level), "deflateInit2")
    }

    deinit { deflateEnd(&stream) }

    /// Feeds `bytes`; `last` flushes the stream and writes the gzip trailer.
    func compress(_ bytes: UnsafeRawBufferPointer, last: Bool) throws {
        precondition(!finished, "gzip stream already finished")
        // zlib takes at most UInt32.max bytes per call.
        var offset = 0
        repeat {
            let length = min(bytes.count - offset, Int(UInt32.max))
            let isLast = last && offset + length == bytes.count
            let chunk = length == 0 ? nil : bytes.baseAddress.map { UnsafeMutablePointer(mutating: $0.advanced(by: offset).assumingMemoryBound(to: Bytef.self)) }
            stream.next_in = chunk
            stream.avail_in = UInt32(length)
            try drain(flush: isLast ? Z_FINISH : Z_NO_FLUSH)
            offset += length
        } while offset < bytes.count
        if last { finished = true }
    }

    /// Runs deflate until it has taken all input (and, finishing, written the end of the stream).
    private func drain(flush: Int32) throws {
        while true {
            let (status, produced, full) = output.withUnsafeMutableBufferPointer { buffer -> (Int32, Int, Bool) in
                stream.next_out = buffer.baseAddress
                stream.avail_out = UInt32(buffer.count)
                let status = deflate(&stream, flush)
                return (status, buffer.count - Int(stream.avail_out), stream.avail_out == 0)
            }
            compressedCount += produced
            if status == Z_STREAM_END { return }
            // Z_BUF_ERROR only says no progress was possible; the next round has fresh output space.
            if status != Z_BUF_ERROR { try Self.check(status, "deflate") }
            // Output space left over means deflate took all the input it could use.
            if flush != Z_FINISH && !full { return }
        }
    }

    /// Every zlib return code goes through here.
    static func check(_ status: Int32, _ call: String) throws {
        guard status >= Z_OK else {
            throw NNPipeError(.internalError, "zlib \(call) failed with status \(status)")
        }
    }

    /// `gzip -9` size of `bytes`.
    static func size(of bytes: [UInt8]) throws -> Int {
        let counter = try GzipCounter()
        try bytes.withUnsafeBytes { try counter.compress($0, last: true) }
        return counter.compressedCount
    }
}
