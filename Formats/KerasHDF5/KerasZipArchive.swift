import Foundation
import NNPipeCore

/// A minimal reader for `.keras` archives: zip files whose entries are stored (not compressed),
/// which is how Keras 3 writes them. Compressed entries are refused with a clear error.
struct KerasZipArchive {
    struct Entry {
        var name: String
        var method: UInt16
        var compressedSize: Int
        var size: Int
        var localHeaderOffset: Int
    }

    let data: Data
    let path: String
    let entries: [String: Entry]

    static let localSignature: [UInt8] = [0x50, 0x4B, 0x03, 0x04]

    static func looksLikeZip(_ header: [UInt8]) -> Bool {
        header.count >= 4 && Array(header[0..<4]) == localSignature
    }

    init(url: URL) throws {
        path = url.path
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw NNPipeError(.io, "cannot read file", path: url.path)
        }
        entries = try Self.centralDirectory(data, path: url.path)
    }

    private static func failure(_ message: String, _ path: String) -> NNPipeError {
        NNPipeError(.invalidModel, "not a readable .keras archive: \(message)", path: path)
    }

    private static func centralDirectory(_ data: Data, path: String) throws -> [String: Entry] {
        let bytes = [UInt8](data)
        func u16(_ offset: Int) -> Int { Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 }
        func u32(_ offset: Int) -> Int { u16(offset) | u16(offset + 2) << 16 }
        // End of central directory: the last "PK\u{5}\u{6}" within the final 64 KiB + 22 bytes.
        guard bytes.count >= 22 else { throw failure("file too short", path) }
        var end = -1
        var offset = bytes.count - 22
        while offset >= max(0, bytes.count - 65_557) {
            if bytes[offset] == 0x50, bytes[offset + 1] == 0x4B, bytes[offset + 2] == 5, bytes[offset + 3] == 6 { end = offset; break }
            offset -= 1
        }
        guard end >= 0 else { throw failure("no zip end-of-directory record (truncated?)", path) }
        let count = u16(end + 10)
        var cursor = u32(end + 16)
        var entries: [String: Entry] = [:]
        for _ in 0..<count {
            guard cursor + 46 <= bytes.count, u32(cursor) == 0x0201_4B50 else { throw failure("corrupt central directory", path) }
            let nameLength = u16(cursor + 28), extraLength = u16(cursor + 30), commentLength = u16(cursor + 32)
            guard cursor + 46 + nameLength <= bytes.count else { throw failure("corrupt central directory", path) }
            let name = String(decoding: bytes[(cursor + 46)..<(cursor + 46 + nameLength)], as: UTF8.self)
            let compressed = u32(cursor + 20), size = u32(cursor + 24), local = u32(cursor + 42)
            if compressed == 0xFFFF_FFFF || size == 0xFFFF_FFFF || local == 0xFFFF_FFFF {
                throw failure("entry '\(name)' uses zip64, which is not supported", path)
            }
            entries[name] = Entry(name: name, method: UInt16(u16(cursor + 10)), compressedSize: compressed, size: size, localHeaderOffset: local)
            cursor += 46 + nameLength + extraLength + commentLength
        }
        return entries
    }

    /// The bytes of a stored entry.
    func contents(of name: String) throws -> Data {
        guard let entry = entries[name] else { throw Self.failure("it has no '\(name)'", path) }
        guard entry.method == 0 else {
            throw Self.failure("entry '\(name)' is compressed (method \(entry.method)); nnpipe reads stored entries only, as Keras writes them", path)
        }
        let header = entry.localHeaderOffset
        guard header + 30 <= data.count else { throw Self.failure("entry '\(name)' points past the end", path) }
        let nameLength = Int(data[data.startIndex + header + 26]) | Int(data[data.startIndex + header + 27]) << 8
        let extraLength = Int(data[data.startIndex + header + 28]) | Int(data[data.startIndex + header + 29]) << 8
        let start = header + 30 + nameLength + extraLength
        guard start + entry.size <= data.count else { throw Self.failure("entry '\(name)' is truncated", path) }
        return data.subdata(in: (data.startIndex + start)..<(data.startIndex + start + entry.size))
    }
}
