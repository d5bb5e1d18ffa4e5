/// A named, typed, shaped constant: an initializer, a Constant's value, or a tensor attribute.
public struct Tensor: Sendable {
    public enum Storage: Sendable {
        /// Numeric data in ONNX raw layout.
        case bytes(TensorBuffer)
        /// One entry per element for `DataType.string`.
        case strings([[UInt8]])
    }

    public var name: String
    public var dataType: DataType
    public var shape: [Int]
    public var storage: Storage
    public var docString: String
    public var metadata: [MetadataEntry]

    public init(
        name: String, dataType: DataType, shape: [Int], storage: Storage, docString: String = "",
        metadata: [MetadataEntry] = []
    ) {
        self.name = name
        self.dataType = dataType
        self.shape = shape
        self.storage = storage
        self.docString = docString
        self.metadata = metadata
    }

    /// Number of elements (1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// Bytes this tensor's data occupies (UTF-8 length summed for strings).
    public var byteCount: Int {
        switch storage {
        case .bytes(let buffer): buffer.count
        case .strings(let values): values.reduce(0) { $0 + $1.count }
        }
    }

    /// The raw bytes, or nil for string tensors.
    public var buffer: TensorBuffer? {
        if case .bytes(let buffer) = storage { return buffer }
        return nil
    }

    /// Calls `body` with the raw bytes (empty for string tensors).
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows
        -> Result
    {
        switch storage {
        case .bytes(let buffer): return try body(buffer.bytes)
        case .strings: return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }
}

// MARK: Typed construction and access for the common numeric types.

/// Element types that map one-to-one onto a fixed-width Swift scalar.
public protocol TensorScalar: Sendable {
    static var dataType: DataType { get }
}
extension Float: TensorScalar { public static var dataType: DataType { .float } }
extension Double: TensorScalar { public static var dataType: DataType { .double } }
extension Int8: TensorScalar { public static var dataType: DataType { .int8 } }
extension UInt8: TensorScalar { public static var dataType: DataType { .uint8 } }
extension Int16: TensorScalar { public static var dataType: DataType { .int16 } }
extension UInt16: TensorScalar { public static var dataType: DataType { .uint16 } }
extension Int32: TensorScalar { public static var dataType: DataType { .int32 } }
extension UInt32: TensorScalar { public static var dataType: DataType { .uint32 } }
extension Int64: TensorScalar { public static var dataType: DataType { .int64 } }
extension UInt64: TensorScalar { public static var dataType: DataType { .uint64 } }
extension Bool: TensorScalar { public static var dataType: DataType { .bool } }

extension Tensor {
    /// A tensor holding a copy of `values` (little-endian hosts only, which is every Swift-on-Linux target).
    public init<Scalar: TensorScalar>(name: String, shape: [Int], values: [Scalar]) {
        precondition(values.count == shape.reduce(1, *), "element count does not match shape")
        let buffer = values.withUnsafeBytes { TensorBuffer(copying: $0) }
        self.init(name: name, dataType: Scalar.dataType, shape: shape, storage: .bytes(buffer))
    }

    /// Copies the elements out as `Scalar`; nil when the tensor's type is not exactly `Scalar`.
    public func values<Scalar: TensorScalar>(as type: Scalar.Type = Scalar.self) -> [Scalar]? {
        guard dataType == Scalar.dataType, let buffer else { return nil }
        let count = buffer.count / MemoryLayout<Scalar>.stride
        return [Scalar](unsafeUninitializedCapacity: count) { destination, initialized in
            if count > 0 {
                UnsafeMutableRawBufferPointer(destination).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<(count * MemoryLayout<Scalar>.stride)]))
            }
            initialized = count
        }
    }

    /// Integer values of an int32/int64/uint8/... tensor widened to Int64 (shape arguments, axes, indices).
    public func integerValues() -> [Int64]? {
        switch dataType {
        case .int64: return values(as: Int64.self)
        case .int32: return values(as: Int32.self)?.map(Int64.init)
        case .int16: return values(as: Int16.self)?.map(Int64.init)
        case .int8: return values(as: Int8.self)?.map(Int64.init)
        case .uint8: return values(as: UInt8.self)?.map(Int64.init)
        case .uint16: return values(as: UInt16.self)?.map(Int64.init)
        case .uint32: return values(as: UInt32.self)?.map(Int64.init)
        case .uint64: return values(as: UInt64.self)?.map { Int64(truncatingIfNeeded: $0) }
        case .bool: return values(as: Bool.self)?.map { $0 ? 1 : 0 }
        default: return nil
        }
    }

    /// Values converted to Float for float32/float64/float16/bfloat16 and the integer types.
    public func floatValues() -> [Float]? {
        switch dataType {
        case .float: return values(as: Float.self)
        case .double: return values(as: Double.self)?.map { Float($0) }
        case .float16:
            return rawHalfBits().map { $0.map(HalfPrecision.float(fromBits:)) }
        case .bfloat16:
            return rawHalfBits().map { $0.map { Float(bitPattern: UInt32($0) << 16) } }
        default: return integerValues()?.map { Float($0) }
        }
    }

    private func rawHalfBits() -> [UInt16]? {
        guard let buffer else { return nil }
        return buffer.bytes.withMemoryRebound(to: UInt16.self) { Array($0) }
    }
}

/// IEEE 754 binary16 conversion without relying on `Float16` (absent on some x86_64 toolchains).
public enum HalfPrecision {
    public static func float(fromBits bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x03FF)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal half: value = mantissa * 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign == 0 ? magnitude : -magnitude
        }
        if exponent == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    /// Round-to-nearest-even conversion, as numpy's `astype(float16)` does.
    public static func bits(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x007F_FFFF
        if exponent == 0xFF {
            return sign | 0x7C00 | (mantissa != 0 ? 0x0200 : 0)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 31 { return sign | 0x7C00 }
        if halfExponent <= 0 {
            if halfExponent < -10 { return sign }
            mantissa |= 0x0080_0000
            let shift = UInt32(14 - halfExponent)
            var halfMantissa = mantissa >> shift
            let remainder = mantissa & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if remainder > halfway || (remainder == halfway && (halfMantissa & 1) == 1) {
                halfMantissa += 1
            }
            return sign | UInt16(halfMantissa)
        }
        var result = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && (result & 1) == 1) { result += 1 }
        return sign | UInt16(result)
    }
}

/// bfloat16: the upper half of a float32's bits. Written by the quantize stage's bf16 weights
/// and read back by the runtime's Cast, so both convert the same way.
public enum BrainFloat {
    public static func float(fromBits bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Round-to-nearest-even float32 -> bfloat16, as onnx's and onnxruntime's conversions do (NaN kept quiet).
    public static func bits(from value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x0040 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
