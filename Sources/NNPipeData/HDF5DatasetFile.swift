import Foundation
import NNPipeCore
import NNPipeHDF5

/// An HDF5 file: arrays by dataset path (`train/x`), read as hyperslabs of rows.
final class HDF5DatasetFile: DatasetContainer {
    let url: URL
    private let file: HDF5File
    private let root: HDF5Group
    var path: String { url.path }

    init(url: URL) throws {
        self.url = url
        file = try HDF5File(reading: url, errorCode: .invalidData)
        root = try file.rootGroup()
    }

    /// Dataset paths in the file, depth first, at most 1,000 (they only feed messages and defaults).
    lazy var keys: [String] = {
        var found: [String] = []
        func visit(_ group: HDF5Group, prefix: String) {
            guard let names = try? group.memberNames() else { return }
            for name in names where found.count < 1000 {
                let path = prefix.isEmpty ? name : prefix + "/" + name
                switch group.memberKind(name) {
                case .dataset: found.append(path)
                case .group: if let child = try? group.group(name) { visit(child, prefix: path) }
                default: break
                }
            }
        }
        visit(root, prefix: "")
        return found
    }()

    func array(key: String) throws -> DatasetArray {
        let trimmed = key.hasPrefix("/") ? String(key.dropFirst()) : key
        guard !trimmed.isEmpty, root.memberKind(trimmed) == .dataset else {
            throw missing(key)
        }
        let dataset = try root.dataset(trimmed)
        guard let dataType = dataset.dataType else {
            throw NNPipeError(
                .unsupported, "array '\(trimmed)' has an element type that cannot feed a model (strings, compounds)",
                path: path)
        }
        return HDF5RowArray(dataset: dataset, elementType: dataType, file: path, key: trimmed)
    }

    func defaultKey(inputIndex: Int, inputName: String, inputCount: Int, labels: String?) -> String? {
        if root.memberKind(inputName) == .dataset { return inputName }
        let candidates = keys.filter { $0 != labels }
        return inputCount == 1 && candidates.count == 1 ? candidates[0] : nil
    }
}

/// An HDF5 dataset read a run of rows at a time through a hyperslab selection.
final class HDF5RowArray: DatasetArray {
    let elementType: DataType
    let shape: [Int]
    let file: String
    let key: String?
    private let dataset: HDF5Dataset

    init(dataset: HDF5Dataset, elementType: DataType, file: String, key: String) {
        self.dataset = dataset
        self.elementType = elementType
        shape = dataset.shape
        self.file = file
        self.key = key
    }

    func readContiguousRows(start: Int, count: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        let tensor = try dataset.readTensor(rows: shape.isEmpty ? nil : start..<(start + count))
        let byteCount = count * rowByteCount
        guard let buffer = tensor.buffer, buffer.count == byteCount else {
            throw NNPipeError(.internalError, "HDF5 read of array '\(key ?? "")' returned the wrong size", path: file)
        }
        destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<byteCount]))
    }
}
