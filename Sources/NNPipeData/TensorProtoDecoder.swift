import NNPipeCore

/// Decodes one serialized ONNX `TensorProto` (a `.pb` file of an onnx `test_data_set_N` folder).
///
/// Deliberately independent of the ONNX format module: it reads only the fields a data file uses
/// (dims 1, data_type 2, float_data 4, int32_data 5, string_data 6, int64_data 7, name 8,
/// raw_data 9, double_data 10, uint64_data 11, data_location 14) and skips the rest.
enum TensorProtoDecoder {
    static func decode(_ bytes: [UInt8], location: String) throws -> Tensor {
        var reader = WireReader(bytes: bytes, location: location)
        var dims: [Int64] = []
        var dataTypeValue: Int32 = 0
        var name = ""
        var rawData: [UInt8]?
        var floats: [UInt32] = []
        var doubles: [UInt64] = []
        var varints: [UInt64] = []  // int32_data, int64_data and uint64_data; only one is ever set
        var strings: [[UInt8]] = []
        var isExternal = false

        while !reader.isAtEnd {
            let key = try reader.varint()
            let field = key >> 3
            let wireType = Int(key & 7)
            switch (field, wireType) {
            case (1, 0): dims.append(Int64(bitPattern: try reader.varint()))
            case (1, 2): try reader.packed { dims.append(Int64(bitPattern: try $0.varint())) }
            case (2, 0): dataTypeValue = Int32(truncatingIfNeeded: try reader.varint())
            case (4, 5): floats.append(try reader.fixed32())
            case (4, 2): try reader.packed { floats.append(try $0.fixed32()) }
            case (5, 0), (7, 0), (11, 0): varints.append(try reader.varint())
            case (5, 2), (7, 2), (11, 2): try reader.packed { varints.append(try $0.varint()) }
            case (6, 2): strings.append(try reader.lengthDelimited())
            case (8, 2): name = String(decoding: try reader.lengthDelimited(), as: UTF8.self)
            case (9, 2): rawData = try reader.lengthDelimited()
            case (10, 1): doubles.append(try reader.fixed64())
            case (10, 2): try reader.packed { doubles.append(try $0.fixed64()) }
            case (14, 0): isExternal = try reader.varint() == 1
            default: try reader.skip(wireType: wireType)
            }
        }

        guard let dataType = DataType(rawValue: dataTypeValue), dataType != .undefined else {
            throw NNPipeError(
                .invalidData, "TensorProto has unknown data_type \(dataTypeValue)", path: location)
        }
        if isExternal {
            throw NNPipeError(
                .unsupported, "TensorProto '\(name.printable())' keeps its data in an external file", path: location)
        }
        guard dims.allSatisfy({ $0 >= 0 && $0 < Int64(Int32.max) }) else {
            throw NNPipeError(.invalidData, "TensorProto '\(name.printable())' has dims \(dims)", path: location)
        }
        let shape = dims.map { Int($0) }
        let (count, overflow) = shape.reduce((1, false)) {
            let product = $0.0.multipliedReportingOverflow(by: $1)
            return (product.partialValue, $0.1 || product.overflow)
        }
        guard !overflow, count <= Int.max >> 8 else {
            throw NNPipeError(.invalidData, "TensorProto '\(name.printable())' shape \(shape) is too large", path: location)
        }
        if dataType == .string {
            guard strings.count == count else {
                throw NNPipeError(
                    .invalidData, "TensorProto '\(name.printable())' has \(strings.count) strings for shape \(shape)",
                    path: location)
            }
            return Tensor(name: name, dataType: .string, shape: shape, storage: .strings(strings))
        }

        let byteCount = dataType.byteCount(elements: count)
        let raw: [UInt8]
        if let rawData {
            raw = rawData
        } else {
            raw = try typedFieldBytes(
                dataType: dataType, floats: floats, doubles: doubles, varints: varints, count: count,
                location: location, name: name)
        }
        guard raw.count == byteCount else {
            throw NNPipeError(
                .invalidData,
                "TensorProto '\(name.printable())' holds \(raw.count) bytes, shape \(shape) of \(dataType) needs \(byteCount)",
                path: location)
        }
        let buffer = raw.withUnsafeBytes { TensorBuffer(copying: $0) }
        return Tensor(name: name, dataType: dataType, shape: shape, storage: .bytes(buffer))
    }

    /// Packs the typed repeated fields into ONNX raw layout (little-endian).
    private static func typedFieldBytes(
        dataType: DataType, floats: [UInt32], doubles: [UInt64], varints: [UInt64], count: Int,
        location: String, name: String
    ) throws -> [UInt8] {
        var bytes: [UInt8] = []
        func append<Value: FixedWidthInteger>(_ value: Value) {
            withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
        }
        switch dataType {
        case .float: floats.forEach(append)
        case .double: doubles.forEach(append)
        case .int32: varints.forEach { append(Int32(truncatingIfNeeded: $0)) }
        case .int16, .uint16, .float16, .bfloat16: varints.forEach { append(UInt16(truncatingIfNeeded: $0)) }
        case .int8, .uint8, .bool: varints.forEach { append(UInt8(truncatingIfNeeded: $0)) }
        case .int64, .uint64: varints.forEach { append($0) }
        case .uint32: varints.forEach { append(UInt32(truncatingIfNeeded: $0)) }
        default:
            throw NNPipeError(
                .unsupported, "TensorProto '\(name.printable())' of \(dataType) without raw_data is not supported",
                path: location)
        }
        return bytes
    }
}

/// Protocol-buffer wire reading over a byte array, with bounds checks that throw.
struct WireReader {
    let bytes: [UInt8]
    let location: String
    var position = 0
    var end: Int

    init(bytes: [UInt8], location: String) {
        self.bytes = bytes
        self.location = location
        end = bytes.count
    }

    var isAtEnd: Bool { position >= end }

    private func truncated() -> NNPipeError {
        NNPipeError(.invalidData, "TensorProto is truncated or corrupt at byte \(position)", path: location)
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end, shift < 64 else { throw truncated() }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    mutating func fixed32() throws -> UInt32 {
        guard position + 4 <= end else { throw truncated() }
        defer { position += 4 }
        return bytes.littleEndian32(at: position)
    }

    mutating func fixed64() throws -> UInt64 {
        guard position + 8 <= end else { throw truncated() }
        defer { position += 8 }
        return bytes.littleEndian64(at: position)
    }

    mutating func length() throws -> Int {
        let length = try varint()
        guard length <= UInt64(end - position) else { throw truncated() }
        return Int(length)
    }

    mutating func lengthDelimited() throws -> [UInt8] {
        let length = try length()
        defer { position += length }
        return Array(bytes[position..<(position + length)])
    }

    /// Calls `element` until the packed field's bytes are used up.
    mutating func packed(_ element: (inout WireReader) throws -> Void) throws {
        let length = try length()
        let outerEnd = end
        end = position + length
        while position < end { try element(&self) }
        guard position == end else { throw truncated() }
        end = outerEnd
    }

    mutating func skip(wireType: Int) throws {
        switch wireType {
        case 0: _ = try varint()
        case 1: _ = try fixed64()
        case 2: position += try length()
        case 5: _ = try fixed32()
        default:
            throw NNPipeError(
                .invalidData, "not a TensorProto (wire type \(wireType) at byte \(position))", path: location)
        }
    }
}
