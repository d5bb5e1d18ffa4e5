import Foundation
import NNPipeCore

/// Tensor bytes stored outside the model file (`data_location: EXTERNAL`).
///
/// `location` is resolved only inside the model's folder: absolute paths, `..` components and
/// symbolic links that lead elsewhere are rejected (the onnx CVE-2022-25882 class of bug).
final class ExternalDataFiles {
    let modelPath: String
    /// The model's folder with symbolic links resolved; nil when reading bytes with no file.
    private let folder: String?
    private var mapped: [String: MappedFile] = [:]

    init(modelPath: String, folder: String?) {
        self.modelPath = modelPath
        self.folder = folder
    }

    private func failure(_ tensorName: String, _ problem: String, code: NNPipeError.Code = .invalidModel) -> NNPipeError {
        NNPipeError(code, "tensor '\(tensorName)': \(problem)", path: modelPath)
    }

    /// The real path of `location`, checked to stay inside the model's folder.
    func resolve(_ location: String, tensorName: String) throws -> String {
        guard let folder else {
            throw failure(tensorName, "external data '\(location)' needs the model's folder, but the model was read from memory")
        }
        guard !location.isEmpty else { throw failure(tensorName, "external data has an empty location") }
        let driveLetter = location.count >= 2 && Array(location.utf8)[1] == UInt8(ascii: ":")
        guard !location.hasPrefix("/"), !location.hasPrefix("\\"), !driveLetter else {
            throw failure(tensorName, "external data location '\(location)' is an absolute path; only paths inside the model's folder are allowed")
        }
        let components = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        guard !components.contains("..") else {
            throw failure(tensorName, "external data location '\(location)' uses '..'; only paths inside the model's folder are allowed")
        }
        let candidate = folder + "/" + location
        guard let resolved = realpath(candidate, nil) else {
            let reason = errno == ENOENT ? "is missing" : "cannot be opened (\(String(cString: strerror(errno))))"
            throw failure(tensorName, "external data file '\(location)' \(reason)", code: .io)
        }
        defer { free(resolved) }
        let real = String(cString: resolved)
        guard real.hasPrefix(folder + "/") else {
            throw failure(tensorName, "external data location '\(location)' leads outside the model's folder (through a symbolic link)")
        }
        return real
    }

    /// The bytes of one external tensor, viewing a mapping of its data file where alignment allows.
    func bytes(tensorName: String, entries: [MetadataEntry], expectedCount: Int, alignment: Int) throws -> TensorBuffer {
        var location: String?
        var offset = 0
        var length: Int?
        for entry in entries {
            switch entry.key {
            case "location": location = entry.value
            case "offset":
                guard let value = Int(entry.value), value >= 0 else {
                    throw failure(tensorName, "external data offset '\(entry.value)' is not a non-negative integer")
                }
                offset = value
            case "length":
                guard let value = Int(entry.value), value >= 0 else {
                    throw failure(tensorName, "external data length '\(entry.value)' is not a non-negative integer")
                }
                length = value
            default: break  // checksum (SHA-1) and basepath are informational
            }
        }
        guard let location else { throw failure(tensorName, "external data has no 'location' entry") }
        let path = try resolve(location, tensorName: tensorName)
        let file: MappedFile
        if let known = mapped[path] {
            file = known
        } else {
            file = try MappedFile(path: path)
            mapped[path] = file
        }
        let byteCount = length ?? expectedCount
        guard byteCount == expectedCount else {
            throw failure(tensorName, "external data length \(byteCount) does not match the \(expectedCount) bytes its shape needs")
        }
        guard offset <= file.bytes.count, byteCount <= file.bytes.count - offset else {
            throw failure(tensorName, "external data '\(location)' is \(file.bytes.count) bytes, too short for offset \(offset) + length \(byteCount)")
        }
        return TensorBytes.buffer(from: file, range: offset..<(offset + byteCount), alignment: alignment)
    }
}

/// Makes tensor buffers over mapped bytes.
enum TensorBytes {
    /// Views `range` of `file` when it is aligned for the element type; copies it otherwise, since
    /// consumers may load elements with `load(as:)`, which requires natural alignment.
    static func buffer(from file: MappedFile, range: Range<Int>, alignment: Int) -> TensorBuffer {
        let slice = UnsafeRawBufferPointer(rebasing: file.bytes[range])
        if range.isEmpty { return TensorBuffer(copying: slice) }
        if Int(bitPattern: slice.baseAddress) % max(alignment, 1) == 0 {
            return TensorBuffer(viewing: slice, owner: file)
        }
        // Copy in slices and drop each copied slice of the mapping at once, so a 400 MB tensor
        // never sits in memory twice (peak RSS stays near the file size).
        let chunk = 8 << 20
        return TensorBuffer(byteCount: range.count) { destination in
            var done = 0
            while done < range.count {
                let length = min(chunk, range.count - done)
                destination.baseAddress!.advanced(by: done).copyMemory(from: slice.baseAddress!.advanced(by: done), byteCount: length)
                file.release((range.lowerBound + done)..<(range.lowerBound + done + length))
                done += length
            }
        }
    }
}
