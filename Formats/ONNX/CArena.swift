import CProtobufC
import Foundation

/// Owns every C allocation made while building protobuf-c messages for one write, and frees
/// them together in `deinit`. Tensor bytes are referenced, not copied: the model outlives the arena.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for allocation in allocations { free(allocation) }
    }

    /// `count` zeroed values of `T`.
    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        guard let raw = calloc(max(count, 1), MemoryLayout<T>.stride) else {
            fatalError("out of memory allocating \(count) \(T.self)")
        }
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A message initialised by its generated `onnx__*__init`.
    func message<T>(_ initialize: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let pointer = allocate(T.self, count: 1)
        initialize(pointer)
        return pointer
    }

    /// A C string that is always present (repeated string entries, where "" is meaningful).
    func string(_ value: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = Array(value.utf8)
        let pointer = allocate(CChar.self, count: utf8.count + 1)
        utf8.withUnsafeBufferPointer { source in
            UnsafeMutableRawPointer(pointer).copyMemory(from: source.baseAddress!, byteCount: utf8.count)
        }
        return pointer
    }

    /// A C string for an optional field: nil (absent) when empty, which is how the IR stores "absent".
    func optionalString(_ value: String) -> UnsafeMutablePointer<CChar>? {
        value.isEmpty ? nil : string(value)
    }

    func strings(_ values: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        guard !values.isEmpty else { return nil }
        let list = allocate(UnsafeMutablePointer<CChar>?.self, count: values.count)
        for (index, value) in values.enumerated() { list[index] = string(value) }
        return list
    }

    func copy<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let pointer = allocate(T.self, count: values.count)
        pointer.initialize(from: values, count: values.count)
        return pointer
    }

    func pointers<T>(_ values: [UnsafeMutablePointer<T>]) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
        copy(values.map { Optional($0) })
    }

    func binary(_ value: [UInt8]) -> ProtobufCBinaryData {
        guard !value.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        return ProtobufCBinaryData(len: value.count, data: copy(value))
    }

    /// References bytes owned elsewhere; protobuf-c only reads them while packing.
    func binary(referencing bytes: UnsafeRawBufferPointer) -> ProtobufCBinaryData {
        ProtobufCBinaryData(
            len: bytes.count,
            data: bytes.isEmpty ? nil : UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)))
    }
}
