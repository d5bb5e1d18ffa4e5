import NNPipeCore

/// Converts array elements from a data file's type to a model input's type.
///
/// Floating targets take any numeric source (float64 rounds to float32 as numpy's `astype`).
/// Integer and bool targets take integer sources that fit, and float sources only when every
/// value is a whole number in range: silently truncating 0.7 to 0 would corrupt the data set.
enum ElementConversion {
    /// Types a data file may hold and a model input may take.
    static let supportedTypes: Set<DataType> = [
        .float, .double, .float16, .bfloat16, .int8, .int16, .int32, .int64, .uint8, .uint16,
        .uint32, .uint64, .bool,
    ]

    /// A value that does not fit the target type; the reader turns the element into a sample number.
    struct ConversionFailure: Error {
        var elementIndex: Int
        var reason: String
    }

    /// Writes `count` elements of `sourceType` from `source` into `destination` as `targetType`.
    /// Throws `ConversionFailure` for a value that does not fit.
    static func convert(
        _ source: UnsafeRawBufferPointer, from sourceType: DataType, to targetType: DataType,
        count: Int, into destination: UnsafeMutableRawBufferPointer
    ) throws {
        precondition(source.count >= sourceType.byteCount(elements: count))
        precondition(destination.count >= targetType.byteCount(elements: count))
        if sourceType == targetType {
            destination.copyMemory(
                from: UnsafeRawBufferPointer(rebasing: source[0..<sourceType.byteCount(elements: count)]))
            return
        }
        if targetType.isFloatingPoint {
            let values = try doubles(source, sourceType, count)
            store(values, as: targetType, into: destination)
        } else {
            let values = try integers(source, sourceType, count)
            try store(values, as: targetType, into: destination)
        }
    }

    /// - Complexity: O(count), one unaligned load per element.
    private static func doubles(_ raw: UnsafeRawBufferPointer, _ type: DataType, _ count: Int) throws
        -> [Double]
    {
        func load<Scalar>(_: Scalar.Type, _ widen: (Scalar) -> Double) -> [Double] {
            let stride = MemoryLayout<Scalar>.stride
            return (0..<count).map { widen(raw.loadUnaligned(fromByteOffset: $0 * stride, as: Scalar.self)) }
        }
        switch type {
        case .float: return load(Float.self) { Double($0) }
        case .double: return load(Double.self) { $0 }
        case .float16: return load(UInt16.self) { Double(HalfPrecision.float(fromBits: $0)) }
        case .bfloat16: return load(UInt16.self) { Double(Float(bitPattern: UInt32($0) << 16)) }
        case .int8: return load(Int8.self) { Double($0) }
        case .int16: return load(Int16.self) { Double($0) }
        case .int32: return load(Int32.self) { Double($0) }
        case .int64: return load(Int64.self) { Double($0) }
        case .uint8: return load(UInt8.self) { Double($0) }
        case .uint16: return load(UInt16.self) { Double($0) }
        case .uint32: return load(UInt32.self) { Double($0) }
        case .uint64: return load(UInt64.self) { Double($0) }
        case .bool: return load(UInt8.self) { $0 != 0 ? 1 : 0 }
        default: throw NNPipeError(.unsupported, "\(type) data cannot be converted")
        }
    }

    /// Integer view of the source; floats must be whole numbers.
    private static func integers(_ raw: UnsafeRawBufferPointer, _ type: DataType, _ count: Int) throws
        -> [Int64]
    {
        func load<Scalar>(_: Scalar.Type, _ widen: (Scalar) -> Int64) -> [Int64] {
            let stride = MemoryLayout<Scalar>.stride
            return (0..<count).map { widen(raw.loadUnaligned(fromByteOffset: $0 * stride, as: Scalar.self)) }
        }
        switch type {
        case .int8: return load(Int8.self) { Int64($0) }
        case .int16: return load(Int16.self) { Int64($0) }
        case .int32: return load(Int32.self) { Int64($0) }
        case .int64: return load(Int64.self) { $0 }
        case .uint8: return load(UInt8.self) { Int64($0) }
        case .uint16: return load(UInt16.self) { Int64($0) }
        case .uint32: return load(UInt32.self) { Int64($0) }
        case .bool: return load(UInt8.self) { $0 != 0 ? 1 : 0 }
        case .uint64:
            let values = load(UInt64.self) { Int64(bitPattern: $0) }
            if let index = values.firstIndex(where: { $0 < 0 }) {
                throw ConversionFailure(elementIndex: index, reason: "value \(UInt64(bitPattern: values[index])) is too large")
            }
            return values
        default:
            let values = try doubles(raw, type, count)
            var result = [Int64](repeating: 0, count: count)
            for (index, value) in values.enumerated() {
                guard value.rounded(.towardZero) == value, abs(value) < 9.2e18 else {
                    throw ConversionFailure(
                        elementIndex: index,
                        reason: "value \(value) is not a whole number, so \(type) data cannot feed an integer input")
                }
                result[index] = Int64(value)
            }
            return result
        }
    }

    private static func store(_ values: [Double], as type: DataType, into destination: UnsafeMutableRawBufferPointer) {
        func write<Scalar>(_ narrow: (Double) -> Scalar) {
            let stride = MemoryLayout<Scalar>.stride
            for (index, value) in values.enumerated() {
                destination.storeBytes(of: narrow(value), toByteOffset: index * stride, as: Scalar.self)
            }
        }
        switch type {
        case .float: write { Float($0) }
        case .double: write { $0 }
        case .float16: write { HalfPrecision.bits(from: Float($0)) }
        default: write { bfloat16Bits(Float($0)) }
        }
    }

    private static func store(_ values: [Int64], as type: DataType, into destination: UnsafeMutableRawBufferPointer)
        throws
    {
        func write<Scalar: FixedWidthInteger>(_: Scalar.Type) throws {
            let stride = MemoryLayout<Scalar>.stride
            for (index, value) in values.enumerated() {
                guard let narrowed = Scalar(exactly: value) else {
                    throw ConversionFailure(elementIndex: index, reason: "value \(value) does not fit \(type)")
                }
                destination.storeBytes(of: narrowed, toByteOffset: index * stride, as: Scalar.self)
            }
        }
        switch type {
        case .int8: try write(Int8.self)
        case .int16: try write(Int16.self)
        case .int32: try write(Int32.self)
        case .int64: try write(Int64.self)
        case .uint8: try write(UInt8.self)
        case .uint16: try write(UInt16.self)
        case .uint32: try write(UInt32.self)
        case .uint64: try write(UInt64.self)
        case .bool:
            for (index, value) in values.enumerated() {
                destination.storeBytes(of: UInt8(value != 0 ? 1 : 0), toByteOffset: index, as: UInt8.self)
            }
        default: throw NNPipeError(.unsupported, "model inputs of type \(type) cannot be fed from data files")
        }
    }

    /// Round-to-nearest-even truncation of a float32 to its top 16 bits, as numpy/ml_dtypes do.
    static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x0040 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
