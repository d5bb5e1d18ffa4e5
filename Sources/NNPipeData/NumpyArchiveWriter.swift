import Foundation
import NNPipeCore

/// Writes a `.npz` (a stored zip of `.npy` files) batch by batch, for `--save-outputs`.
///
/// Each named array grows along its first axis with every `append`; rows wait in a hidden
/// scratch file beside the destination, so the outputs of a whole data set never sit in memory.
/// `finish` writes the archive atomically (temporary file, then rename); numpy's `np.load`
/// reads it. Archives and members over 4 GiB get zip64 records.
public final class NumpyArchiveWriter {
    public let url: URL

    private struct PendingArray {
        var name: String
        var dataType: DataType
        var sampleShape: [Int]
        var rowCount: Int
        var scratchURL: URL
        var scratch: FileHandle
    }

    private var arrays: [PendingArray] = []
    private var isFinished = false

    public init(url: URL) {
        self.url = url
    }

    /// Throws unless `url` can become the archive: its folder exists and it is not itself a folder.
    /// Checked before a data set is run, not after, where the failure would waste the whole run.
    public static func checkDestination(_ url: URL) throws {
        if FileKind(url) == .folder { throw NNPipeError(.io, "is a folder, expected an .npz file to write", path: url.path) }
        let folder = url.deletingLastPathComponent()
        guard FileKind(folder) == .folder else {
            throw NNPipeError(.io, "cannot write here: the folder \(folder.path) does not exist", path: url.path)
        }
        guard FileManager.default.isWritableFile(atPath: folder.path) else {
            throw NNPipeError(.io, "cannot write here: the folder \(folder.path) is not writable", path: url.path)
        }
    }

    deinit { removeScratchFiles() }

    /// Appends the rows of `tensor` (sample axis first) to the array `name`, creating it on first use.
    /// Later appends must have the same element type and the same shape after the first axis.
    public func append(_ tensor: Tensor, as name: String) throws {
        precondition(!isFinished, "append after finish")
        guard NumpyHeader.descr(for: tensor.dataType) != nil, let buffer = tensor.buffer else {
            throw NNPipeError(.unsupported, "cannot save \(tensor.dataType) output '\(name)' to .npz", path: url.path)
        }
        guard !tensor.shape.isEmpty else {
            throw NNPipeError(.unsupported, "cannot append scalar output '\(name)' along a batch axis", path: url.path)
        }
        let sampleShape = Array(tensor.shape.dropFirst())
        let index: Int
        if let existing = arrays.firstIndex(where: { $0.name == name }) {
            index = existing
            guard arrays[index].dataType == tensor.dataType, arrays[index].sampleShape == sampleShape else {
                throw NNPipeError(
                    .invalidData,
                    "output '\(name)' changed from \(arrays[index].dataType) [N,\(arrays[index].sampleShape.map(String.init).joined(separator: ","))] to \(tensor.dataType) \(tensor.shape) between batches",
                    path: url.path)
            }
        } else {
            let scratchURL = url.deletingLastPathComponent().appendingPathComponent(
                ".\(url.lastPathComponent).\(arrays.count).\(UUID().uuidString).rows")
            guard FileManager.default.createFile(atPath: scratchURL.path, contents: nil),
                let handle = try? FileHandle(forWritingTo: scratchURL)
            else {
                throw NNPipeError(.io, "cannot create a scratch file in its folder (\(scratchURL.lastPathComponent))", path: url.path)
            }
            arrays.append(
                PendingArray(
                    name: name, dataType: tensor.dataType, sampleShape: sampleShape, rowCount: 0,
                    scratchURL: scratchURL, scratch: handle))
            index = arrays.count - 1
        }
        do {
            try arrays[index].scratch.write(contentsOf: Data(buffer.bytes))
        } catch {
            throw NNPipeError(.io, "cannot write scratch file: \(error.localizedDescription)", path: arrays[index].scratchURL.path)
        }
        arrays[index].rowCount += tensor.shape[0]
    }

    /// Writes the archive with one `<name>.npy` per array, in the order the arrays first appeared.
    public func finish() throws {
        precondition(!isFinished, "finish called twice")
        isFinished = true
        defer { removeScratchFiles() }
        for array in arrays { try? array.scratch.close() }
        try AtomicFile.write(to: url) { temporary in
            guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
                let output = try? FileHandle(forWritingTo: temporary)
            else {
                throw NNPipeError(.io, "cannot create file", path: url.path)
            }
            defer { try? output.close() }
            var zip = ZipWriter(output: output, path: url.path)
            for array in arrays {
                let header = NumpyHeader.encode(dataType: array.dataType, shape: [array.rowCount] + array.sampleShape)!
                guard let input = try? FileHandle(forReadingFrom: array.scratchURL) else {
                    throw NNPipeError(.io, "cannot reopen scratch file", path: array.scratchURL.path)
                }
                defer { try? input.close() }
                let dataCount = array.dataType.byteCount(elements: array.rowCount * array.sampleShape.reduce(1, *))
                try zip.addStoredEntry(name: array.name + ".npy", size: header.count + dataCount) { write in
                    try write(Data(header))
                    while true {
                        let chunk = try input.read(upToCount: 1 << 20) ?? Data()
                        if chunk.isEmpty { break }
                        try write(chunk)
                    }
                }
            }
            try zip.finish()
        }
    }

    /// Writes `tensors` (name, tensor) as a `.npz` in one call.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], to url: URL) throws {
        let writer = NumpyArchiveWriter(url: url)
        for (name, tensor) in tensors { try writer.append(tensor, as: name) }
        try writer.finish()
    }

    private func removeScratchFiles() {
        for array in arrays {
            try? array.scratch.close()
            try? FileManager.default.removeItem(at: array.scratchURL)
        }
        arrays.removeAll()
    }
}

/// Streams stored (uncompressed) zip members to a file, zip64 where sizes or offsets need it.
struct ZipWriter {
    private struct CentralRecord {
        var name: [UInt8]
        var checksum: UInt32
        var size: Int
        var offset: Int
    }

    private let output: FileHandle
    private let path: String
    private var records: [CentralRecord] = []
    private var position = 0

    init(output: FileHandle, path: String) {
        self.output = output
        self.path = path
    }

    private static let limit32 = 0xFFFF_FFFF

    /// Adds a member of exactly `size` bytes, produced by `body` through the `write` it is given.
    mutating func addStoredEntry(name: String, size: Int, _ body: ((Data) throws -> Void) throws -> Void) throws {
        let nameBytes = Array(name.utf8)
        let offset = position
        let needsZip64 = size >= Self.limit32
        var local = Bytes()
        local.u32(0x0403_4B50)
        local.u16(needsZip64 ? 45 : 20)
        local.u16(0x0800)  // UTF-8 names
        local.u16(0)  // stored
        local.u16(0)
        local.u16(0x21)  // 1980-01-01, so archives are reproducible
        local.u32(0)  // CRC-32, patched after the data
        local.u32(needsZip64 ? UInt32(Self.limit32) : UInt32(size))
        local.u32(needsZip64 ? UInt32(Self.limit32) : UInt32(size))
        local.u16(UInt16(nameBytes.count))
        local.u16(needsZip64 ? 20 : 0)
        local.bytes += nameBytes
        if needsZip64 {
            local.u16(0x0001)
            local.u16(16)
            local.u64(UInt64(size))
            local.u64(UInt64(size))
        }
        try write(Data(local.bytes))

        var crc = CRC32()
        var written = 0
        try body { data in
            data.withUnsafeBytes { crc.update($0) }
            written += data.count
            do { try output.write(contentsOf: data) } catch {
                throw NNPipeError(.io, "cannot write: \(error.localizedDescription)", path: path)
            }
        }
        position += written
        guard written == size else {
            throw NNPipeError(.internalError, "zip member '\(name)' wrote \(written) bytes, declared \(size)", path: path)
        }
        // Patch the CRC-32 into the local header now that the data has been seen.
        do {
            try output.seek(toOffset: UInt64(offset + 14))
            var checksum = Bytes()
            checksum.u32(crc.value)
            try output.write(contentsOf: Data(checksum.bytes))
            try output.seekToEnd()
        } catch {
            throw NNPipeError(.io, "cannot write: \(error.localizedDescription)", path: path)
        }
        records.append(CentralRecord(name: nameBytes, checksum: crc.value, size: size, offset: offset))
    }

    /// Writes the central directory and end records.
    mutating func finish() throws {
        let directoryOffset = position
        var directory = Bytes()
        for record in records {
            let largeSize = record.size >= Self.limit32
            let largeOffset = record.offset >= Self.limit32
            var extra = Bytes()
            if largeSize || largeOffset {
                extra.u16(0x0001)
                extra.u16(UInt16((largeSize ? 16 : 0) + (largeOffset ? 8 : 0)))
                if largeSize {
                    extra.u64(UInt64(record.size))
                    extra.u64(UInt64(record.size))
                }
                if largeOffset { extra.u64(UInt64(record.offset)) }
            }
            directory.u32(0x0201_4B50)
            directory.u16(extra.bytes.isEmpty ? 20 : 45)  // made by
            directory.u16(extra.bytes.isEmpty ? 20 : 45)  // needed
            directory.u16(0x0800)
            directory.u16(0)
            directory.u16(0)
            directory.u16(0x21)
            directory.u32(record.checksum)
            directory.u32(largeSize ? UInt32(Self.limit32) : UInt32(record.size))
            directory.u32(largeSize ? UInt32(Self.limit32) : UInt32(record.size))
            directory.u16(UInt16(record.name.count))
            directory.u16(UInt16(extra.bytes.count))
            directory.u16(0)  // comment
            directory.u16(0)  // disk
            directory.u16(0)  // internal attributes
            directory.u32(0o100644 << 16)  // external attributes: a regular file, rw-r--r--
            directory.u32(largeOffset ? UInt32(Self.limit32) : UInt32(record.offset))
            directory.bytes += record.name + extra.bytes
        }
        let directorySize = directory.bytes.count
        var end = Bytes()
        let needsZip64 =
            records.count >= 0xFFFF || directoryOffset >= Self.limit32 || directorySize >= Self.limit32
        if needsZip64 {
            let recordOffset = directoryOffset + directorySize
            end.u32(0x0606_4B50)
            end.u64(44)
            end.u16(45)
            end.u16(45)
            end.u32(0)
            end.u32(0)
            end.u64(UInt64(records.count))
            end.u64(UInt64(records.count))
            end.u64(UInt64(directorySize))
            end.u64(UInt64(directoryOffset))
            end.u32(0x0706_4B50)
            end.u32(0)
            end.u64(UInt64(recordOffset))
            end.u32(1)
        }
        end.u32(0x0605_4B50)
        end.u16(0)
        end.u16(0)
        end.u16(UInt16(min(records.count, 0xFFFF)))
        end.u16(UInt16(min(records.count, 0xFFFF)))
        end.u32(UInt32(min(directorySize, Self.limit32)))
        end.u32(UInt32(min(directoryOffset, Self.limit32)))
        end.u16(0)
        try write(Data(directory.bytes + end.bytes))
    }

    private mutating func write(_ data: Data) throws {
        do { try output.write(contentsOf: data) } catch {
            throw NNPipeError(.io, "cannot write: \(error.localizedDescription)", path: path)
        }
        position += data.count
    }
}

/// Little-endian byte building for zip records.
private struct Bytes {
    var bytes: [UInt8] = []
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
}
