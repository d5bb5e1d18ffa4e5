/// Immutable bytes of a tensor in ONNX raw layout (little-endian, sub-byte types packed low bits first).
///
/// A buffer either owns its memory or views memory kept alive by `owner` (for example a
/// memory-mapped model file), so importing a large model does not copy its weights.
/// Buffers are never mutated after creation; a stage that changes weights makes a new buffer.
public final class TensorBuffer: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject?
    private let ownsMemory: Bool

    /// Copies `source` into freshly allocated memory.
    public init(copying source: UnsafeRawBufferPointer) {
        let memory = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(source.count, 1), alignment: 64)
        if source.count > 0, let base = source.baseAddress {
            memory.baseAddress!.copyMemory(from: base, byteCount: source.count)
        }
        bytes = UnsafeRawBufferPointer(start: memory.baseAddress, count: source.count)
        owner = nil
        ownsMemory = true
    }

    /// Allocates `byteCount` zeroed bytes and lets `fill` write them once.
    public init(byteCount: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let memory = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(byteCount, 1), alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        let used = UnsafeMutableRawBufferPointer(rebasing: memory[0..<byteCount])
        do { try fill(used) } catch {
            memory.deallocate()
            throw error
        }
        bytes = UnsafeRawBufferPointer(start: memory.baseAddress, count: byteCount)
        owner = nil
        ownsMemory = true
    }

    /// Views memory owned by `owner` (kept alive as long as this buffer lives).
    public init(viewing memory: UnsafeRawBufferPointer, owner: AnyObject) {
        bytes = memory
        self.owner = owner
        ownsMemory = false
    }

    deinit {
        if ownsMemory, let base = bytes.baseAddress { base.deallocate() }
    }

    public var count: Int { bytes.count }
    /// True when the bytes live in memory the buffer does not own (e.g. a mapped file).
    public var isView: Bool { !ownsMemory }
}
