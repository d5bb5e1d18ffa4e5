import Foundation
import NNPipeCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Sequential writes to a new file through a small buffer; large blocks (tensor bytes) go
/// straight to the kernel so no extra copy of the weights is made.
final class FileWriter {
    private let descriptor: Int32
    private let path: String
    private var buffer: [UInt8] = []
    private static let bufferLimit = 1 << 20
    private(set) var offset = 0

    init(path: String, reportedPath: String) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        self.path = reportedPath
        guard descriptor >= 0 else {
            throw NNPipeError(.io, "cannot create file: \(String(cString: strerror(errno)))", path: reportedPath)
        }
        buffer.reserveCapacity(Self.bufferLimit)
    }

    deinit { close(descriptor) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count <= Self.bufferLimit {
            buffer.append(contentsOf: bytes)
        } else {
            try flush()
            try writeAll(bytes)
        }
        offset += bytes.count
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    func writeZeros(_ count: Int) throws {
        try write([UInt8](repeating: 0, count: count))
    }

    /// Writes what is buffered and forces it to disk, so the rename that follows publishes a whole file.
    func finish() throws {
        try flush()
        guard fsync(descriptor) == 0 else {
            throw NNPipeError(.io, "cannot flush file to disk: \(String(cString: strerror(errno)))", path: path)
        }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if written < 0 {
                if errno == EINTR { continue }
                throw NNPipeError(.io, "cannot write: \(String(cString: strerror(errno)))", path: path)
            }
            done += written
        }
    }
}
