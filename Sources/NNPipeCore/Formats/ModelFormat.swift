import Foundation

/// A model file format (ONNX protobuf, Keras HDF5, ...).
///
/// Contract: `recognizes` never throws and looks at content, not only the extension;
/// `read` returns a model whose graph passes `GraphCheck` or throws an `NNPipeError`
/// naming the file; `write` either produces a complete file at `url` (written beside it
/// and renamed, see `AtomicFile`) or throws and leaves nothing behind. A format that cannot
/// hold a model throws `.unsupported` naming the node and why.
public protocol ModelFormat: Sendable {
    /// Manifest name: "onnx", "keras-h5", "keras".
    var name: String { get }
    /// Lower-case extensions without the dot, used for output files and as a sniffing hint.
    var fileExtensions: [String] { get }
    /// True when the file's content is this format. `header` holds the first bytes (up to 4 KiB).
    func recognizes(fileAt url: URL, header: [UInt8]) -> Bool
    func read(from url: URL) throws -> Model
    func write(_ model: Model, to url: URL) throws
}

/// The formats this build knows. Pass it explicitly (house rule 4); `standard` is filled by
/// the command-line layer from the format modules it links.
public struct FormatRegistry: Sendable {
    public private(set) var formats: [any ModelFormat]

    public init(_ formats: [any ModelFormat] = []) {
        self.formats = formats
    }

    public mutating func register(_ format: any ModelFormat) {
        formats.removeAll { $0.name == format.name }
        formats.append(format)
    }

    public func format(named name: String) -> (any ModelFormat)? {
        formats.first { $0.name == name }
    }

    public var names: [String] { formats.map(\.name) }

    /// The format for an output path, chosen by extension (`.onnx`, `.h5`, `.keras`).
    public func format(forOutput url: URL) throws -> any ModelFormat {
        let ext = url.pathExtension.lowercased()
        if let found = formats.first(where: { $0.fileExtensions.contains(ext) }) { return found }
        let known = formats.flatMap { $0.fileExtensions.map { "." + $0 } }.joined(separator: ", ")
        throw NNPipeError(
            .unsupported,
            "no model format writes '.\(ext)' files" + (known.isEmpty ? " (no formats are built in)" : "; known: \(known)"),
            path: url.path)
    }

    /// Sniffs the file's content; `declared` (a manifest `format`) wins when given.
    public func format(forInput url: URL, declared: String? = nil) throws -> any ModelFormat {
        if let declared {
            guard let format = format(named: declared) else {
                throw NNPipeError(
                    .unsupported, "unknown model format '\(declared)'; known: \(names.joined(separator: ", "))",
                    path: url.path)
            }
            return format
        }
        let header = try FileHeader.read(url, count: 4096)
        if let found = formats.first(where: { $0.recognizes(fileAt: url, header: header) }) {
            return found
        }
        throw NNPipeError(
            .unsupported,
            "not a model file nnpipe can read (looked for: \(names.joined(separator: ", ")))",
            path: url.path)
    }

    public func read(_ url: URL, declared: String? = nil) throws -> Model {
        let format = try format(forInput: url, declared: declared)
        do { return try format.read(from: url) } catch let error as NNPipeError {
            throw error.located(at: url.path)
        }
    }

    public func write(_ model: Model, to url: URL) throws {
        let format = try format(forOutput: url)
        do { try format.write(model, to: url) } catch let error as NNPipeError {
            throw error.located(at: url.path)
        }
    }
}

enum FileHeader {
    static func read(_ url: URL, count: Int) throws -> [UInt8] {
        switch FileKind(url) {
        case .missing: throw NNPipeError(.io, "no such file", path: url.path)
        case .folder: throw NNPipeError(.io, "is a folder, expected a model file", path: url.path)
        case .special: throw NNPipeError(.io, FileKind.specialMessage, path: url.path)
        case .regular: break
        }
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw NNPipeError(.io, "cannot open for reading", path: url.path)
        }
        defer { try? handle.close() }
        return Array((try? handle.read(upToCount: count)) ?? Data())
    }
}
