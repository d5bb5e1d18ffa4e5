import Foundation
import NNPipeCore
import NNPipeData

/// A `.keras` archive (a zip whose entries Keras 3 stores uncompressed), read through the
/// data module's zip reader. Compressed entries are refused with a clear error, as Keras never
/// writes them and the weights are read in place.
struct KerasZipArchive {
    let archive: ZipArchive
    let path: String
    let entries: [String: ZipArchive.Entry]

    static let localSignature: [UInt8] = [0x50, 0x4B, 0x03, 0x04]

    static func looksLikeZip(_ header: [UInt8]) -> Bool {
        header.count >= 4 && Array(header[0..<4]) == localSignature
    }

    init(url: URL) throws {
        path = url.path
        do {
            archive = try ZipArchive(url: url)
        } catch let error as NNPipeError {
            throw Self.failure(error.message, path)
        }
        entries = Dictionary(archive.entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    private static func failure(_ message: String, _ path: String) -> NNPipeError {
        NNPipeError(.invalidModel, "not a readable .keras archive: \(message)", path: path)
    }

    /// The bytes of a stored entry.
    func contents(of name: String) throws -> Data {
        guard let entry = entries[name] else { throw Self.failure("it has no '\(name)'", path) }
        guard !entry.isCompressed else {
            throw Self.failure("entry '\(name)' is compressed (method \(entry.method)); nnpipe reads stored entries only, as Keras writes them", path)
        }
        do {
            return Data(try archive.contents(of: entry))
        } catch let error as NNPipeError {
            throw Self.failure(error.message, path)
        }
    }
}
