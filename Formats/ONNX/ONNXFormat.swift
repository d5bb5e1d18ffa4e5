import Foundation
import NNPipeCore

/// ONNX protobuf models (`.onnx`) through libprotobuf-c.
///
/// Reading maps the file and lets initializer tensors view it; writing streams tensor bytes
/// from their buffers, and moves them to `<model>.onnx.data` when the model would pass
/// `externalDataThreshold` bytes (protobuf cannot hold messages over 2 GiB).
public struct ONNXFormat: ModelFormat {
    public let name = "onnx"
    public let fileExtensions = ["onnx"]
    /// Total model size above which initializers are written as external data.
    public var externalDataThreshold: Int
    /// Initializers smaller than this stay inline even when writing external data.
    public var externalTensorMinimumBytes: Int

    /// Just under 2 GiB, protobuf's limit for one message.
    public static let defaultExternalDataThreshold = Int(Int32.max) - (16 << 20)

    public init(externalDataThreshold: Int = ONNXFormat.defaultExternalDataThreshold, externalTensorMinimumBytes: Int = 1024) {
        self.externalDataThreshold = externalDataThreshold
        self.externalTensorMinimumBytes = externalTensorMinimumBytes
    }

    public func recognizes(fileAt url: URL, header: [UInt8]) -> Bool {
        // Cheap rejection from the header's first field before mapping the file.
        guard let first = header.first, first == 0x08 || first & 7 == 2 else { return false }
        guard let file = try? MappedFile(path: url.path) else { return false }
        return ModelLayout.looksLikeModel(file.bytes)
    }

    public func read(from url: URL) throws -> Model {
        let file = try MappedFile(path: url.path)
        let folder = url.deletingLastPathComponent().path
        let realFolder = realpath(folder, nil).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        }
        return try located(url.path) { try ModelReader.read(file, folder: realFolder) }
    }

    /// Reads a model from serialized bytes (no external data). Used by tests and the fuzz target.
    public func read(serialized bytes: UnsafeRawBufferPointer, path: String = "<memory>") throws -> Model {
        let copy = MappedFile(copying: bytes, path: path)
        return try located(path) { try ModelReader.read(copy, folder: nil) }
    }

    public func write(_ model: Model, to url: URL) throws {
        let writer = ModelWriter(externalDataThreshold: externalDataThreshold, externalTensorMinimumBytes: externalTensorMinimumBytes)
        try located(url.path) { try writer.write(model, to: url) }
    }

    private func located<Result>(_ path: String, _ body: () throws -> Result) throws -> Result {
        do { return try body() } catch let error as NNPipeError {
            // Names inside a hostile file may hold line breaks; the error must stay one line.
            var oneLine = error.located(at: path)
            oneLine.message = oneLine.message.replacingOccurrences(of: "\n", with: "\\n")
                .replacingOccurrences(of: "\r", with: "\\r")
            throw oneLine
        }
    }
}
