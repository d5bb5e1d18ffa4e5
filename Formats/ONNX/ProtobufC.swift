import CProtobufC
import NNPipeCore
import ONNXProto

/// The one door to libprotobuf-c: every unpack and pack goes through here and either returns an
/// owned result or throws an `NNPipeError`; unpacked messages are freed exactly once by their owner.
enum ProtobufC {
    /// Unpacks `bytes` with a generated `onnx__*__unpack`; `what` names the message for the error.
    static func unpack<Message>(
        _ what: String, _ bytes: UnsafeRawBufferPointer,
        unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<Message>?,
        free: @escaping (UnsafeMutablePointer<Message>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void
    ) throws -> Unpacked<Message> {
        // protobuf-c wants a non-null pointer even for zero bytes.
        var empty: UInt8 = 0
        let message: UnsafeMutablePointer<Message>? =
            if let base = bytes.baseAddress, bytes.count > 0 {
                unpack(nil, bytes.count, base.assumingMemoryBound(to: UInt8.self))
            } else {
                withUnsafePointer(to: &empty) { unpack(nil, 0, $0) }
            }
        guard let message else {
            throw NNPipeError(.invalidModel, "not a valid \(what) (protobuf parse failed: truncated or corrupt bytes)")
        }
        return Unpacked(message) { free($0, nil) }
    }

    /// Packs a message built by `CArena` into a byte array of exactly its packed size.
    static func pack(
        _ what: String, size: Int, pack: (UnsafeMutablePointer<UInt8>) -> Int
    ) throws -> [UInt8] {
        guard size < Int(Int32.max) else {
            throw NNPipeError(
                .unsupported, "\(what) would be \(size) bytes; protobuf messages must stay under 2 GiB")
        }
        var failed = false
        let bytes = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, initialized in
            let written = size == 0 ? 0 : pack(buffer.baseAddress!)
            failed = written != size
            initialized = size
        }
        if failed { throw NNPipeError(.internalError, "protobuf-c packed \(what) to an unexpected size") }
        return bytes
    }
}

/// Owns one message returned by protobuf-c's unpack and frees it in `deinit`.
final class Unpacked<Message> {
    let pointer: UnsafeMutablePointer<Message>
    private let release: (UnsafeMutablePointer<Message>) -> Void

    init(_ pointer: UnsafeMutablePointer<Message>, release: @escaping (UnsafeMutablePointer<Message>) -> Void) {
        self.pointer = pointer
        self.release = release
    }

    deinit { release(pointer) }

    var message: Message { pointer.pointee }
}

/// Typed unpack entry points, so call sites name a message kind rather than its four C functions.
enum ONNXMessages {
    static func model(_ bytes: UnsafeRawBufferPointer) throws -> Unpacked<Onnx__ModelProto> {
        try ProtobufC.unpack("ONNX ModelProto", bytes, unpack: onnx__model_proto__unpack, free: onnx__model_proto__free_unpacked)
    }

    static func tensor(_ bytes: UnsafeRawBufferPointer) throws -> Unpacked<Onnx__TensorProto> {
        try ProtobufC.unpack("ONNX TensorProto", bytes, unpack: onnx__tensor_proto__unpack, free: onnx__tensor_proto__free_unpacked)
    }
}
