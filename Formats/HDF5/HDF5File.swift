import CHDF5
import Foundation
import NNPipeCore

/// An open HDF5 file. Groups, datasets and attributes opened from it keep it alive.
///
/// Errors name the file and use the `errorCode` given at open: `.invalidModel` for a model
/// reader, `.invalidData` for a dataset reader, `.io` for a writer.
public final class HDF5File {
    /// The 8-byte signature at the start of an HDF5 superblock.
    public static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// True when `header` (the file's first bytes) holds the HDF5 signature at one of the
    /// offsets the format allows a superblock (0, 512, 1024, 2048, ...).
    public static func hasSignature(_ header: [UInt8]) -> Bool {
        var offset = 0
        while offset + signature.count <= header.count {
            if Array(header[offset..<(offset + signature.count)]) == signature { return true }
            offset = offset == 0 ? 512 : offset * 2
        }
        return false
    }

    public let url: URL
    let handle: HDF5Handle
    private let storedCheck: HDF5Check
    var check: HDF5Check {
        HDF5Check.quietThread()
        return storedCheck
    }

    /// Opens an existing file for reading.
    public init(reading url: URL, errorCode: NNPipeError.Code = .invalidData) throws {
        self.url = url
        storedCheck = HDF5Check(path: url.path, errorCode: errorCode)
        let check = storedCheck
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw NNPipeError(.io, "no such file or not readable", path: url.path)
        }
        handle = try check.handle(
            H5Fopen(url.path, nnpipe_h5f_acc_rdonly(), nnpipe_h5p_default()), .file,
            "not a readable HDF5 file")
    }

    /// Opens an existing file for reading and writing (attributes and new datasets in place).
    public init(updating url: URL, errorCode: NNPipeError.Code = .io) throws {
        self.url = url
        storedCheck = HDF5Check(path: url.path, errorCode: errorCode)
        let check = storedCheck
        handle = try check.handle(
            H5Fopen(url.path, nnpipe_h5f_acc_rdwr(), nnpipe_h5p_default()), .file, "cannot open HDF5 file for writing")
    }

    /// Creates (or truncates) a file for writing. Callers write to a temporary path (`AtomicFile`).
    public init(creating url: URL, errorCode: NNPipeError.Code = .io) throws {
        self.url = url
        storedCheck = HDF5Check(path: url.path, errorCode: errorCode)
        let check = storedCheck
        handle = try check.handle(
            H5Fcreate(url.path, nnpipe_h5f_acc_trunc(), nnpipe_h5p_default(), nnpipe_h5p_default()), .file,
            "cannot create HDF5 file")
    }

    /// The root group "/".
    public func rootGroup() throws -> HDF5Group {
        try HDF5Group(opening: "/", in: self, at: handle.id)
    }

    /// Flushes written data to disk (closing happens when the last object is released).
    public func flush() throws {
        try check.check(H5Fflush(handle.id, H5F_SCOPE_GLOBAL), "cannot flush HDF5 file")
    }
}
