import Foundation
import NNPipeCore

/// Bytes readable at any offset: a whole file, a region of one (a stored zip entry), or memory.
///
/// Readers go through this so that a `.npy` inside a `.npz` streams exactly like a bare `.npy`.
protocol ByteSource: AnyObject {
    /// Number of readable bytes.
    var count: Int { get }
    /// Where errors point: the file path, plus the entry name for archive members.
    var location: String { get }
    /// Fills `destination` with the bytes at `offset ..< offset + destination.count`.
    func read(at offset: Int, into destination: UnsafeMutableRawBufferPointer) throws
}

extension ByteSource {
    /// Reads `count` bytes at `offset` into a new array.
    func bytes(at offset: Int, count: Int) throws -> [UInt8] {
        guard count >= 0, offset >= 0, offset + count <= self.count else {
            throw NNPipeError(
                .invalidData, "truncated: needs bytes \(offset)..<\(offset + count) of \(self.count)",
                path: location)
        }
        return try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            try read(at: offset, into: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }
}

/// A whole file read with `pread`, so concurrent readers share no seek position.
final class FileByteSource: ByteSource {
    private(set) var count: Int
    let location: String
    private let descriptor: Int32

    init(url: URL) throws {
        let path = url.path
        descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw NNPipeError(.io, "cannot open: \(String(cString: strerror(errno)))", path: path)
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            close(descriptor)
            throw NNPipeError(.io, "cannot read file size", path: path)
        }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            close(descriptor)
            throw NNPipeError(.invalidData, "is a folder, not a file", path: path)
        }
        count = Int(status.st_size)
        location = path
    }

    private init(descriptor: Int32, count: Int, location: String) {
        self.descriptor = descriptor
        self.count = count
        self.location = location
    }

    /// An empty scratch file, already unlinked so it disappears when closed, even after a crash.
    static func temporary(location: String) throws -> FileByteSource {
        var template = Array((FileManager.default.temporaryDirectory.path + "/nnpipe-inflate-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw NNPipeError(.io, "cannot create a scratch file: \(String(cString: strerror(errno)))", path: location)
        }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return FileByteSource(descriptor: descriptor, count: 0, location: location)
    }

    /// Appends to a scratch file made by `temporary`.
    func append(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let result = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(count + done))
            if result < 0 {
                if errno == EINTR { continue }
                throw NNPipeError(.io, "cannot write scratch file: \(String(cString: strerror(errno)))", path: location)
            }
            done += result
        }
        count += bytes.count
    }

    deinit {
        close(descriptor)
    }

    func read(at offset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        guard offset >= 0, offset + destination.count <= count else {
            throw NNPipeError(
                .invalidData,
                "truncated: needs bytes \(offset)..<\(offset + destination.count) of \(count)",
                path: location)
        }
        var done = 0
        while done < destination.count {
            let result = pread(
                descriptor, destination.baseAddress! + done, destination.count - done,
                off_t(offset + done))
            if result < 0 {
                if errno == EINTR { continue }
                throw NNPipeError(.io, "read failed: \(String(cString: strerror(errno)))", path: location)
            }
            if result == 0 {
                throw NNPipeError(.invalidData, "file ended early (truncated?)", path: location)
            }
            done += result
        }
    }
}

/// Bytes already in memory (an inflated archive member, a decoded TensorProto).
final class MemoryByteSource: ByteSource {
    let storage: [UInt8]
    let location: String
    var count: Int { storage.count }

    init(_ storage: [UInt8], location: String) {
        self.storage = storage
        self.location = location
    }

    func read(at offset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        guard offset >= 0, offset + destination.count <= storage.count else {
            throw NNPipeError(
                .invalidData,
                "truncated: needs bytes \(offset)..<\(offset + destination.count) of \(storage.count)",
                path: location)
        }
        guard destination.count > 0 else { return }
        storage.withUnsafeBytes { source in
            destination.copyMemory(
                from: UnsafeRawBufferPointer(rebasing: source[offset..<(offset + destination.count)]))
        }
    }
}

/// `range` of another source (a stored archive member); keeps that source alive.
final class SliceByteSource: ByteSource {
    let count: Int
    let location: String
    private let parent: ByteSource
    private let start: Int

    init(_ range: Range<Int>, of parent: ByteSource, location: String) {
        self.parent = parent
        start = range.lowerBound
        count = range.count
        self.location = location
    }

    func read(at offset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        guard offset >= 0, offset + destination.count <= count else {
            throw NNPipeError(
                .invalidData,
                "truncated: needs bytes \(offset)..<\(offset + destination.count) of \(count)",
                path: location)
        }
        try parent.read(at: start + offset, into: destination)
    }
}
