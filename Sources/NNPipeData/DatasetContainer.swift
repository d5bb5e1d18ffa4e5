import Foundation
import NNPipeCore
import NNPipeHDF5

/// An opened data file or folder: lists its array keys and opens arrays by key.
protocol DatasetContainer: AnyObject {
    var path: String { get }
    /// Keys the container holds, for "did you mean" style messages.
    var keys: [String] { get }
    func array(key: String) throws -> DatasetArray
    /// The key that feeds input `inputIndex` (`inputName`) when the source names none; nil if no obvious one.
    func defaultKey(inputIndex: Int, inputName: String, inputCount: Int, labels: String?) -> String?
}

extension DatasetContainer {
    /// The first keys, printable, for "(has: ...)" in messages.
    var keyList: String {
        let known = keys.prefix(12).map { $0.printable(limit: 60) }.joined(separator: ", ")
        return known.isEmpty ? "none" : known + (keys.count > 12 ? ", ..." : "")
    }

    func missing(_ key: String) -> NNPipeError {
        NNPipeError(.invalidData, "no array '\(key.printable())' (has: \(keyList))", path: path)
    }
}

enum DatasetContainers {
    /// Opens `url` by its contents: HDF5 and zip magic bytes, `.npy` magic, or a folder of `.pb` files.
    static func open(_ url: URL) throws -> DatasetContainer {
        switch FileKind(url) {
        case .missing: throw NNPipeError(.io, "data set not found", path: url.path)
        case .folder: return try TensorProtoFolder(url: url)
        case .special: throw NNPipeError(.io, FileKind.specialMessage, path: url.path)
        case .regular: break
        }
        let file = try FileByteSource(url: url)
        let magic = try file.bytes(at: 0, count: min(8, file.count))
        // HDF5 allows a user block before the superblock: look at 0, 512, 1024, 2048.
        if try HDF5File.hasSignature(file.bytes(at: 0, count: min(2056, file.count))) {
            return try HDF5DatasetFile(url: url)
        }
        if magic.starts(with: NumpyHeader.magic) { return NumpyFile(url: url, source: file) }
        if magic.starts(with: [0x50, 0x4B, 0x03, 0x04]) || magic.starts(with: [0x50, 0x4B, 0x05, 0x06]) {
            return try NumpyArchive(archive: ZipArchive(source: file, url: url))
        }
        throw NNPipeError(
            .invalidData,
            "not a data set: expected HDF5 (.h5), NumPy (.npy, .npz) or a folder of TensorProto .pb files",
            path: url.path)
    }
}

/// A bare `.npy`: one array. Other keys name `.npy` files in the same folder (for labels).
final class NumpyFile: DatasetContainer {
    let url: URL
    let source: ByteSource
    var path: String { url.path }
    var keys: [String] { [url.lastPathComponent] }

    init(url: URL, source: ByteSource) {
        self.url = url
        self.source = source
    }

    func array(key: String) throws -> DatasetArray {
        if key == url.lastPathComponent || key == url.deletingPathExtension().lastPathComponent {
            return try ContiguousDatasetArray(numpy: source, file: path, key: nil)
        }
        var sibling = url.deletingLastPathComponent().appendingPathComponent(key)
        if sibling.pathExtension != "npy" { sibling.appendPathExtension("npy") }
        guard FileManager.default.fileExists(atPath: sibling.path) else {
            throw NNPipeError(
                .invalidData, "no .npy file '\(key)' beside \(url.lastPathComponent)", path: sibling.path)
        }
        return try ContiguousDatasetArray(numpy: FileByteSource(url: sibling), file: sibling.path, key: nil)
    }

    func defaultKey(inputIndex: Int, inputName: String, inputCount: Int, labels: String?) -> String? {
        inputCount == 1 ? url.lastPathComponent : nil
    }
}

/// A `.npz`: arrays by member name without `.npy`.
final class NumpyArchive: DatasetContainer {
    let archive: ZipArchive
    var path: String { archive.url.path }
    let keys: [String]

    init(archive: ZipArchive) {
        self.archive = archive
        keys = archive.entries.map {
            $0.name.hasSuffix(".npy") ? String($0.name.dropLast(4)) : $0.name
        }
    }

    func array(key: String) throws -> DatasetArray {
        guard let entry = archive.entry(named: key + ".npy") ?? archive.entry(named: key) else {
            throw missing(key)
        }
        return try ContiguousDatasetArray(numpy: archive.byteSource(for: entry), file: path, key: key)
    }

    func defaultKey(inputIndex: Int, inputName: String, inputCount: Int, labels: String?) -> String? {
        if keys.contains(inputName) { return inputName }
        let candidates = keys.filter { $0 != labels }
        return inputCount == 1 && candidates.count == 1 ? candidates[0] : nil
    }
}

/// A folder of serialized TensorProtos laid out as onnx's `test_data_set_N`: `input_0.pb`, ...,
/// `output_0.pb`. Keys are file names without `.pb`. Each file is small and read whole.
final class TensorProtoFolder: DatasetContainer {
    let url: URL
    var path: String { url.path }
    let keys: [String]

    init(url: URL) throws {
        self.url = url
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: url.path)
        } catch {
            throw NNPipeError(.io, "cannot list folder", path: url.path)
        }
        keys = names.filter { $0.hasSuffix(".pb") }.map { String($0.dropLast(3)) }
            .sorted { $0.localizedStandardCompare($1) == .orderedAscending }
        guard !keys.isEmpty else {
            throw NNPipeError(.invalidData, "folder has no TensorProto .pb files", path: url.path)
        }
    }

    func array(key: String) throws -> DatasetArray {
        let stem = key.hasSuffix(".pb") ? String(key.dropLast(3)) : key
        guard keys.contains(stem) else { throw missing(key) }
        let file = url.appendingPathComponent(stem + ".pb")
        let source = try FileByteSource(url: file)
        let tensor = try TensorProtoDecoder.decode(source.bytes(at: 0, count: source.count), location: file.path)
        guard let buffer = tensor.buffer else {
            throw NNPipeError(.unsupported, "string tensors cannot feed a model input", path: file.path)
        }
        let bytes = MemoryByteSource(Array(buffer.bytes), location: file.path)
        return ContiguousDatasetArray(
            source: bytes, dataOffset: 0, elementType: tensor.dataType, shape: tensor.shape,
            file: file.path, key: stem)
    }

    func defaultKey(inputIndex: Int, inputName: String, inputCount: Int, labels: String?) -> String? {
        keys.contains("input_\(inputIndex)") ? "input_\(inputIndex)" : nil
    }
}
