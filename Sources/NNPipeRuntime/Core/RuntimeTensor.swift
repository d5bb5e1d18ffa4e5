import Foundation
import NNPipeCore

/// Memory behind a `RuntimeTensor`. Written once by the kernel that makes it, then only read,
/// so several tensors (a Reshape's input and output) can share one storage safely.
public final class RuntimeStorage: @unchecked Sendable {
    public let bytes: UnsafeMutableRawBufferPointer
    /// Set by the plan on its constants (weights), which no run writes: kernels may keep data
    /// derived from them, such as packed conv weights, for as long as they hold the storage.
    internal(set) public var isPlanConstant = false
    /// Bytes allocated at `bytes.baseAddress` (a pooled buffer may be larger than `bytes`).
    private let capacity: Int

    /// Allocates `byteCount` bytes, zeroed when `zeroed` (col2im and scatter kernels add into them).
    public init(byteCount: Int, zeroed: Bool = false) {
        if let pooled = StoragePool.shared.take(byteCount: byteCount) {
            bytes = UnsafeMutableRawBufferPointer(start: pooled.pointer, count: byteCount)
            capacity = pooled.capacity
        } else {
            bytes = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64),
                                                  count: byteCount)
            capacity = max(byteCount, 1)
        }
        if zeroed { bytes.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    deinit {
        if let base = bytes.baseAddress, !StoragePool.shared.give(base, capacity: capacity) { base.deallocate() }
    }
}

/// Freed tensor memory kept for the next tensors. Large allocations come straight from the kernel
/// as fresh pages, and faulting them in cost more than the Relu that filled them. A request takes
/// the most recently freed buffer that fits (at most four times its size): that one is likely
/// still in cache, as a layer's output is freed right after the next layers read it. With reuse
/// by exact size only, each layer got back its own buffer of the previous run, long evicted, and
/// wrote every output to memory: in SqueezeNet on one thread the first conv took 0.80 ms in the
/// network against 0.48 with this rule, the 1x1 expands 0.23 against 0.09. Fewer distinct
/// buffers also lowered peak memory at batch 16 (DenseNet-121 810 to 390 MB, VGG-19 2.15 to 1.81 GB).
final class StoragePool: @unchecked Sendable {
    static let shared = StoragePool()
    /// Only buffers this large are pooled (small ones are cheap for malloc).
    static let smallest = 1 << 16
    /// The pool never holds more than this much idle memory.
    static let capacity = 1 << 31

    private let lock = NSLock()
    /// Oldest first.
    private var free: [(pointer: UnsafeMutableRawPointer, capacity: Int)] = []
    private var heldBytes = 0

    func take(byteCount: Int) -> (pointer: UnsafeMutableRawPointer, capacity: Int)? {
        guard byteCount >= Self.smallest else { return nil }
        lock.lock()
        defer { lock.unlock() }
        guard let index = free.lastIndex(where: { $0.capacity >= byteCount && $0.capacity / 4 <= byteCount }) else { return nil }
        let buffer = free.remove(at: index)
        heldBytes -= buffer.capacity
        return buffer
    }

    /// Keeps `pointer` for reuse; false when the pool is full and the caller must free it.
    func give(_ pointer: UnsafeMutableRawPointer, capacity: Int) -> Bool {
        guard capacity >= Self.smallest else { return false }
        lock.lock()
        defer { lock.unlock() }
        guard heldBytes + capacity <= Self.capacity else { return false }
        free.append((pointer, capacity))
        heldBytes += capacity
        return true
    }

    /// Returns every idle buffer to the system (e.g. after a large batch job).
    func drain() {
        lock.lock()
        let buffers = free.map(\.pointer)
        free = []
        heldBytes = 0
        lock.unlock()
        for pointer in buffers { pointer.deallocate() }
    }
}

/// A dense tensor the runtime computes with: an element type, a shape and row-major storage.
public struct RuntimeTensor: @unchecked Sendable, CustomStringConvertible {
    public let dataType: DataType
    public let shape: [Int]
    public let storage: RuntimeStorage

    /// A tensor of `shape` whose storage the caller fills before anyone reads it.
    public init(dataType: DataType, shape: [Int], zeroed: Bool = false) {
        self.dataType = dataType
        self.shape = shape
        storage = RuntimeStorage(
            byteCount: shape.reduce(1, *) * RuntimeTensor.elementSize(of: dataType), zeroed: zeroed)
    }

    /// A tensor sharing `storage` (no copy); the byte count must fit.
    public init(dataType: DataType, shape: [Int], storage: RuntimeStorage) {
        precondition(
            storage.bytes.count >= shape.reduce(1, *) * RuntimeTensor.elementSize(of: dataType),
            "storage too small for shape \(shape)")
        self.dataType = dataType
        self.shape = shape
        self.storage = storage
    }

    public init<Scalar: TensorScalar>(shape: [Int], values: [Scalar]) {
        precondition(values.count == shape.reduce(1, *), "element count \(values.count) does not match shape \(shape)")
        self.init(dataType: Scalar.dataType, shape: shape)
        values.withUnsafeBytes { source in
            if source.count > 0 { storage.bytes.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: source.count) }
        }
    }

    public init(shape: [Int], floats: [Float]) {
        self.init(shape: shape, values: floats)
    }

    /// Copies an IR tensor (initializer, Constant value, user data) into runtime storage.
    public init(_ tensor: Tensor) throws {
        guard RuntimeTensor.isSupported(tensor.dataType), let buffer = tensor.buffer else {
            throw NNPipeError(.unsupported, "tensor '\(tensor.name)' has element type \(tensor.dataType), which the runtime does not compute with")
        }
        if tensor.dataType == .int4 || tensor.dataType == .uint4 {
            self.init(unpacking: buffer, of: tensor)
            return
        }
        let expected = tensor.elementCount * RuntimeTensor.elementSize(of: tensor.dataType)
        guard buffer.count == expected else {
            throw NNPipeError(.invalidModel, "tensor '\(tensor.name)' holds \(buffer.count) bytes, its shape \(tensor.shape) of \(tensor.dataType) needs \(expected)")
        }
        self.init(dataType: tensor.dataType, shape: tensor.shape)
        if expected > 0 { storage.bytes.baseAddress!.copyMemory(from: buffer.bytes.baseAddress!, byteCount: expected) }
    }

    /// 4-bit tensors are held one element per byte (int4 sign-extended) so kernels index them like int8.
    private init(unpacking buffer: TensorBuffer, of tensor: Tensor) {
        self.init(dataType: tensor.dataType, shape: tensor.shape)
        let count = tensor.elementCount
        let signed = tensor.dataType == .int4
        let bytes = storage.bytes
        for index in 0..<count where index / 2 < buffer.count {
            let byte = buffer.bytes[index / 2]
            let nibble = index % 2 == 0 ? byte & 0x0F : byte >> 4
            bytes[index] = signed && nibble >= 8 ? nibble | 0xF0 : nibble
        }
    }

    /// The IR tensor with a copy of these bytes, e.g. to store a computed value as an initializer.
    public func tensor(named name: String) -> Tensor {
        if dataType == .int4 || dataType == .uint4 {
            let count = elementCount
            let packed = TensorBuffer(byteCount: (count + 1) / 2) { destination in
                for index in 0..<count {
                    let nibble = storage.bytes[index] & 0x0F
                    destination[index / 2] |= index % 2 == 0 ? nibble : nibble << 4
                }
            }
            return Tensor(name: name, dataType: dataType, shape: shape, storage: .bytes(packed))
        }
        let buffer = TensorBuffer(copying: UnsafeRawBufferPointer(start: storage.bytes.baseAddress, count: byteCount))
        return Tensor(name: name, dataType: dataType, shape: shape, storage: .bytes(buffer))
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    public var byteCount: Int { elementCount * RuntimeTensor.elementSize(of: dataType) }

    /// Copies the elements out; nil when the element type is not exactly `Scalar`.
    public func values<Scalar: TensorScalar>(as type: Scalar.Type = Scalar.self) -> [Scalar]? {
        guard dataType == Scalar.dataType else { return nil }
        return withUnsafeBuffer(of: Scalar.self) { Array($0) }
    }

    /// Elements converted to Float from any numeric element type.
    public var floats: [Float] {
        switch dataType {
        case .float: return values(as: Float.self)!
        case .double: return values(as: Double.self)!.map { Float($0) }
        case .float16: return values(as: UInt16.self, reinterpreting: true).map(HalfPrecision.float(fromBits:))
        case .bfloat16: return values(as: UInt16.self, reinterpreting: true).map(BrainFloat.float(fromBits:))
        default: return integers.map { Float($0) }
        }
    }

    /// Elements widened to Int64 (shape arguments, axes, indices); floats are truncated.
    public var integers: [Int64] {
        switch dataType {
        case .int64: return values(as: Int64.self)!
        case .int32: return values(as: Int32.self)!.map(Int64.init)
        case .int16: return values(as: Int16.self)!.map(Int64.init)
        case .int8: return values(as: Int8.self)!.map(Int64.init)
        case .uint8: return values(as: UInt8.self)!.map(Int64.init)
        case .int4: return values(as: Int8.self, reinterpreting: true).map(Int64.init)
        case .uint4: return values(as: UInt8.self, reinterpreting: true).map(Int64.init)
        case .uint16: return values(as: UInt16.self)!.map(Int64.init)
        case .uint32: return values(as: UInt32.self)!.map(Int64.init)
        case .uint64: return values(as: UInt64.self)!.map { Int64(truncatingIfNeeded: $0) }
        case .bool: return values(as: Bool.self)!.map { $0 ? 1 : 0 }
        case .float: return values(as: Float.self)!.map { Int64($0) }
        case .double: return values(as: Double.self)!.map { Int64($0) }
        default: return []
        }
    }

    private func values<Scalar>(as type: Scalar.Type, reinterpreting: Bool) -> [Scalar] {
        UnsafeRawBufferPointer(storage.bytes).withMemoryRebound(to: Scalar.self) { Array($0.prefix(elementCount)) }
    }

    /// Reads the elements as `Scalar`; the element size must match.
    @inlinable
    public func withUnsafeBuffer<Scalar, Result>(of type: Scalar.Type, _ body: (UnsafeBufferPointer<Scalar>) throws -> Result) rethrows -> Result {
        precondition(MemoryLayout<Scalar>.stride == RuntimeTensor.elementSize(of: dataType), "element size mismatch for \(dataType)")
        let start = UnsafeRawPointer(storage.bytes.baseAddress!).assumingMemoryBound(to: Scalar.self)
        return try body(UnsafeBufferPointer(start: start, count: elementCount))
    }

    /// Writes the elements of a tensor this kernel just made (never one it was given).
    @inlinable
    public func withUnsafeMutableBuffer<Scalar, Result>(of type: Scalar.Type, _ body: (UnsafeMutableBufferPointer<Scalar>) throws -> Result) rethrows -> Result {
        precondition(MemoryLayout<Scalar>.stride == RuntimeTensor.elementSize(of: dataType), "element size mismatch for \(dataType)")
        let start = storage.bytes.baseAddress!.assumingMemoryBound(to: Scalar.self)
        return try body(UnsafeMutableBufferPointer(start: start, count: elementCount))
    }

    /// The same elements under another shape (no copy).
    public func reshaped(_ newShape: [Int]) -> RuntimeTensor {
        RuntimeTensor(dataType: dataType, shape: newShape, storage: storage)
    }

    /// The first element as Double (scalar arguments such as Clip bounds or a zero point).
    public var scalarValue: Double {
        switch dataType {
        case .float: return Double(withUnsafeBuffer(of: Float.self) { $0[0] })
        case .double: return withUnsafeBuffer(of: Double.self) { $0[0] }
        case .float16: return Double(HalfPrecision.float(fromBits: withUnsafeBuffer(of: UInt16.self) { $0[0] }))
        case .bfloat16: return Double(BrainFloat.float(fromBits: withUnsafeBuffer(of: UInt16.self) { $0[0] }))
        case .uint64: return Double(withUnsafeBuffer(of: UInt64.self) { $0[0] })
        default: return Double(integers[0])
        }
    }

    public var description: String { "\(dataType)\(shape)" }

    /// Element types the kernels hold (float8 and string types are not among them). float16 and
    /// bfloat16 are held for Cast and copies; arithmetic kernels take float and refuse them.
    public static func isSupported(_ type: DataType) -> Bool {
        switch type {
        case .float, .double, .float16, .bfloat16, .int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64, .bool, .int4, .uint4: true
        default: false
        }
    }

    @inlinable
    public static func elementSize(of type: DataType) -> Int { max(type.bitWidth / 8, 1) }
}
