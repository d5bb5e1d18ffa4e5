import NNPipeCore

/// Converts quantised integers to and from ONNX raw storage (4-bit types two per byte, low nibble first).
public enum PackedIntegers {
    /// Raw little-endian bytes for `values` stored as `type`. Values must already lie in the type's range.
    /// - Complexity: O(n).
    public static func buffer(_ values: [Int32], as type: QuantizedType) -> TensorBuffer {
        let byteCount = type.dataType.byteCount(elements: values.count)
        return TensorBuffer(byteCount: byteCount) { raw in
            values.withUnsafeBufferPointer { values in
                switch type {
                case .int8, .uint8:
                    for index in values.indices { raw[index] = UInt8(truncatingIfNeeded: values[index]) }
                case .int16, .uint16:
                    let words = raw.bindMemory(to: UInt16.self)
                    for index in values.indices { words[index] = UInt16(truncatingIfNeeded: values[index]).littleEndian }
                case .int4, .uint4:
                    for index in values.indices {
                        let nibble = UInt8(truncatingIfNeeded: values[index]) & 0x0F
                        raw[index / 2] |= index % 2 == 0 ? nibble : nibble << 4
                    }
                }
            }
        }
    }

    /// A tensor of `type` holding `values`.
    public static func tensor(name: String, shape: [Int], values: [Int32], as type: QuantizedType) -> Tensor {
        Tensor(name: name, dataType: type.dataType, shape: shape, storage: .bytes(buffer(values, as: type)))
    }

    /// The integers in a tensor of a quantised type, sign-extended; nil for other types.
    public static func values(of tensor: Tensor) -> [Int32]? {
        guard let type = QuantizedType(tensor.dataType), let buffer = tensor.buffer else { return nil }
        let count = tensor.elementCount
        let bytes = buffer.bytes
        return (0..<count).map { index -> Int32 in
            switch type {
            case .int8: return Int32(Int8(bitPattern: bytes[index]))
            case .uint8: return Int32(bytes[index])
            case .int16: return Int32(Int16(bitPattern: UInt16(bytes[2 * index]) | UInt16(bytes[2 * index + 1]) << 8))
            case .uint16: return Int32(UInt16(bytes[2 * index]) | UInt16(bytes[2 * index + 1]) << 8)
            case .int4, .uint4:
                let nibble = index % 2 == 0 ? bytes[index / 2] & 0x0F : bytes[index / 2] >> 4
                if type == .uint4 { return Int32(nibble) }
                return Int32(Int8(bitPattern: nibble << 4) >> 4)
            }
        }
    }
}
