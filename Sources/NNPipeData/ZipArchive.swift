import Foundation
import NNPipeCore

/// Reads a zip archive's central directory and its members (stored or deflated, zip64 aware).
///
/// Used for `.npz` data sets; public so that the Keras `.keras` reader can open its archive the
/// same way. Stored members are read in place through file offsets; deflated members are
/// inflated into memory when asked for.
public final class ZipArchive {
    /// One member of the archive, as its central directory describes it.
    public struct Entry: Sendable, Hashable {
        public var name: String
        /// 0 = stored, 8 = deflated; anything else is refused when read.
        public var method: UInt16
        public var compressedSize: Int
        public var uncompressedSize: Int
        public var checksum: UInt32
        var flags: UInt16
        var localHeaderOffset: Int

        public var isCompressed: Bool { method != 0 }
    }

    public let url: URL
    public let entries: [Entry]
    let source: ByteSource

    /// Opens the archive and reads its directory; throws `invalidData` naming the file when it is not one.
    public convenience init(url: URL) throws {
        try self.init(source: try FileByteSource(url: url), url: url)
    }

    init(source: ByteSource, url: URL) throws {
        self.url = url
        self.source = source
        entries = try Self.readDirectory(source)
    }

    /// The member called `name`, if any.
    public func entry(named name: String) -> Entry? {
        entries.first { $0.name == name }
    }

    /// Byte range of a stored member's data inside the archive file (for reading it in place).
    public func dataRange(of entry: Entry) throws -> Range<Int> {
        let location = "\(source.location)[\(entry.name.printable())]"
        let header = try source.bytes(at: entry.localHeaderOffset, count: 30)
        guard header.littleEndian32(at: 0) == 0x0403_4B50 else {
            throw NNPipeError(.invalidData, "zip member has no local header", path: location)
        }
        let start =
            entry.localHeaderOffset + 30 + Int(header.littleEndian16(at: 26))
            + Int(header.littleEndian16(at: 28))
        guard start + entry.compressedSize <= source.count else {
            throw NNPipeError(.invalidData, "zip member runs past the end of the file", path: location)
        }
        return start..<(start + entry.compressedSize)
    }

    /// The member's uncompressed bytes, checked against its CRC-32.
    public func contents(of entry: Entry) throws -> [UInt8] {
        let member = try byteSource(for: entry)
        let bytes = try member.bytes(at: 0, count: member.count)
        if !entry.isCompressed, CRC32.checksum(bytes) != entry.checksum {
            throw NNPipeError(.invalidData, "zip member fails its CRC-32 check", path: member.location)
        }
        return bytes
    }

    /// The member as a byte source: a view of the file when stored, inflated memory when deflated.
    /// - Parameter inMemoryLimit: larger deflated members go to a scratch file (tests lower it).
    func byteSource(for entry: Entry, inMemoryLimit: Int = ZipArchive.inMemoryLimit) throws -> ByteSource {
        let location = "\(source.location)[\(entry.name.printable())]"
        if entry.flags & 1 != 0 {
            throw NNPipeError(.unsupported, "encrypted zip members are not supported", path: location)
        }
        let range = try dataRange(of: entry)
        switch entry.method {
        case 0:
            guard entry.compressedSize == entry.uncompressedSize else {
                throw NNPipeError(.invalidData, "stored zip member sizes disagree", path: location)
            }
            return SliceByteSource(range, of: source, location: location)
        case 8:
            var crc = CRC32()
            do {
                if entry.uncompressedSize <= inMemoryLimit {
                    var inflated: [UInt8] = []
                    inflated.reserveCapacity(entry.uncompressedSize)
                    try inflate(entry, range) { piece in
                        crc.update(piece)
                        inflated.append(contentsOf: piece)
                    }
                    try verify(crc, entry, location)
                    return MemoryByteSource(inflated, location: location)
                }
                let scratch = try FileByteSource.temporary(location: location)
                try inflate(entry, range) { piece in
                    crc.update(piece)
                    try scratch.append(piece)
                }
                try verify(crc, entry, location)
                return scratch
            } catch let error as NNPipeError {
                throw error.located(at: location)
            }
        default:
            throw NNPipeError(
                .unsupported, "zip compression method \(entry.method) (supported: stored, deflate)",
                path: location)
        }
    }

    /// Deflated members up to this size are inflated into memory; larger ones into a deleted
    /// temporary file, so a compressed `.npz` bigger than memory still streams.
    static let inMemoryLimit = 64 << 20

    private func inflate(_ entry: Entry, _ range: Range<Int>, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        // Stop at the declared size: a hostile member must not fill memory or disk.
        var produced = 0
        let count = try Inflate.decompress(from: source, range: range) { piece in
            produced += piece.count
            guard produced <= entry.uncompressedSize else {
                throw Inflate.failure("inflates past the \(entry.uncompressedSize) bytes the archive declares")
            }
            try sink(piece)
        }
        guard count == entry.uncompressedSize else {
            throw Inflate.failure("inflated to \(count) bytes, archive says \(entry.uncompressedSize)")
        }
    }

    private func verify(_ crc: CRC32, _ entry: Entry, _ location: String) throws {
        guard crc.value == entry.checksum else {
            throw NNPipeError(.invalidData, "zip member fails its CRC-32 check", path: location)
        }
    }

    // MARK: Directory

    private static func readDirectory(_ source: ByteSource) throws -> [Entry] {
        let location = source.location
        // The end record is 22 bytes plus a comment of at most 65,535 bytes.
        let tailCount = min(source.count, 22 + 65_535)
        let tail = try source.bytes(at: source.count - tailCount, count: tailCount)
        guard tail.count >= 22,
            let endIndex = stride(from: tail.count - 22, through: 0, by: -1).first(where: {
                tail.littleEndian32(at: $0) == 0x0605_4B50
            })
        else {
            throw NNPipeError(.invalidData, "not a zip archive (no end of central directory)", path: location)
        }
        var entryCount = Int(tail.littleEndian16(at: endIndex + 10))
        var directorySize = Int(tail.littleEndian32(at: endIndex + 12))
        var directoryOffset = Int(tail.littleEndian32(at: endIndex + 16))
        let endOffset = source.count - tailCount + endIndex
        if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF,
            endOffset >= 20
        {
            let locator = try source.bytes(at: endOffset - 20, count: 20)
            if locator.littleEndian32(at: 0) == 0x0706_4B50 {
                let record = try source.bytes(at: Int(locator.littleEndian64(at: 8)), count: 56)
                guard record.littleEndian32(at: 0) == 0x0606_4B50 else {
                    throw NNPipeError(.invalidData, "zip64 end record is missing", path: location)
                }
                entryCount = Int(record.littleEndian64(at: 32))
                directorySize = Int(record.littleEndian64(at: 40))
                directoryOffset = Int(record.littleEndian64(at: 48))
            }
        }
        guard directoryOffset >= 0, directorySize >= 0, directoryOffset + directorySize <= source.count,
            entryCount <= directorySize / 46 + 1
        else {
            throw NNPipeError(.invalidData, "zip central directory lies outside the file", path: location)
        }
        let directory = try source.bytes(at: directoryOffset, count: directorySize)
        var entries: [Entry] = []
        var position = 0
        for _ in 0..<entryCount {
            guard position + 46 <= directory.count,
                directory.littleEndian32(at: position) == 0x0201_4B50
            else {
                throw NNPipeError(.invalidData, "zip central directory is corrupt", path: location)
            }
            let nameLength = Int(directory.littleEndian16(at: position + 28))
            let extraLength = Int(directory.littleEndian16(at: position + 30))
            let commentLength = Int(directory.littleEndian16(at: position + 32))
            let end = position + 46 + nameLength + extraLength + commentLength
            guard end <= directory.count else {
                throw NNPipeError(.invalidData, "zip central directory is corrupt", path: location)
            }
            var entry = Entry(
                name: String(decoding: directory[(position + 46)..<(position + 46 + nameLength)], as: UTF8.self),
                method: directory.littleEndian16(at: position + 10),
                compressedSize: Int(directory.littleEndian32(at: position + 20)),
                uncompressedSize: Int(directory.littleEndian32(at: position + 24)),
                checksum: directory.littleEndian32(at: position + 16),
                flags: directory.littleEndian16(at: position + 8),
                localHeaderOffset: Int(directory.littleEndian32(at: position + 42)))
            try applyZip64(
                extra: Array(directory[(position + 46 + nameLength)..<(position + 46 + nameLength + extraLength)]),
                to: &entry, location: location)
            guard entry.localHeaderOffset + 30 <= source.count else {
                throw NNPipeError(.invalidData, "zip member '\(entry.name)' lies outside the file", path: location)
            }
            entries.append(entry)
            position = end
        }
        return entries
    }

    /// Replaces 0xFFFFFFFF sizes and offsets with the 64-bit values of the zip64 extra field.
    private static func applyZip64(extra: [UInt8], to entry: inout Entry, location: String) throws {
        var position = 0
        while position + 4 <= extra.count {
            let identifier = extra.littleEndian16(at: position)
            let size = Int(extra.littleEndian16(at: position + 2))
            let body = position + 4
            guard body + size <= extra.count else { break }
            if identifier == 0x0001 {
                var field = body
                func next() throws -> Int {
                    guard field + 8 <= body + size else {
                        throw NNPipeError(.invalidData, "zip64 field is too short", path: location)
                    }
                    defer { field += 8 }
                    let value = extra.littleEndian64(at: field)
                    guard value < UInt64(Int.max / 2) else {
                        throw NNPipeError(.invalidData, "zip64 size is out of range", path: location)
                    }
                    return Int(value)
                }
                if entry.uncompressedSize == 0xFFFF_FFFF { entry.uncompressedSize = try next() }
                if entry.compressedSize == 0xFFFF_FFFF { entry.compressedSize = try next() }
                if entry.localHeaderOffset == 0xFFFF_FFFF { entry.localHeaderOffset = try next() }
            }
            position = body + size
        }
    }
}

extension Array where Element == UInt8 {
    func littleEndian16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }
    func littleEndian32(at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * $1) }
    }
    func littleEndian64(at offset: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(self[offset + $1]) << (8 * $1) }
    }
}
