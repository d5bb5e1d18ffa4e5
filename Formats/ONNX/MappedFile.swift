import Foundation
import NNPipeCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A read-only memory mapping of a whole file; tensors view it and keep it alive, and it is
/// unmapped when the last of them goes (so import never copies weights it does not change).
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let path: String
    /// True for `init(copying:)`: the memory is ours to deallocate, not a mapping.
    private let isCopy: Bool

    /// Holds a private copy of bytes that were handed over in memory (tests, fuzzing).
    init(copying source: UnsafeRawBufferPointer, path: String) {
        self.path = path
        isCopy = true
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        if let base = source.baseAddress, source.count > 0 {
            memory.baseAddress!.copyMemory(from: base, byteCount: source.count)
        }
        bytes = UnsafeRawBufferPointer(start: memory.baseAddress, count: source.count)
    }

    init(path: String) throws {
        self.path = path
        isCopy = false
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw NNPipeError(.io, "cannot open: \(String(cString: strerror(errno)))", path: path)
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw NNPipeError(.io, "cannot read file size: \(String(cString: strerror(errno)))", path: path)
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw NNPipeError(.io, "is not a regular file", path: path)
        }
        let size = Int(status.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else {
            throw NNPipeError(.io, "cannot map file: \(String(cString: strerror(errno)))", path: path)
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if isCopy {
            base.deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }

    /// Tells the kernel a copied range will not be read again, so its pages leave our resident set.
    func release(_ range: Range<Int>) {
        guard !isCopy, let base = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
    }
}
