import NNPipeCore

/// One field found by `WireReader`: its number, wire type and where its bytes sit.
struct WireField {
    enum WireType: Int { case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5 }
    var number: Int
    var wireType: WireType
    /// The whole field, tag included.
    var span: Range<Int>
    /// The value: the payload for length-delimited fields, the encoded number otherwise.
    var payload: Range<Int>
    /// The decoded number for varint fields.
    var varintValue: UInt64 = 0
}

/// A bounds-checked reader of protobuf wire fields, used where protobuf-c would copy too much:
/// sniffing, and finding tensor bytes in a mapped model without unpacking them.
struct WireReader {
    struct Malformed: Error { var reason: String }

    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil) {
        self.bytes = bytes
        position = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    mutating func readVarint() throws(Malformed) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else { throw Malformed(reason: "truncated varint") }
            let byte = bytes[position]
            position += 1
            if shift == 63 && byte > 1 { throw Malformed(reason: "varint overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw Malformed(reason: "varint longer than 10 bytes") }
        }
    }

    /// The next field, or nil at the end. Groups (wire types 3, 4) do not occur in ONNX: malformed.
    mutating func next() throws(Malformed) -> WireField? {
        guard position < end else { return nil }
        let start = position
        let tag = try readVarint()
        let number = tag >> 3
        guard number >= 1, number <= 536_870_911 else { throw Malformed(reason: "field number \(number) is invalid") }
        guard let wireType = WireField.WireType(rawValue: Int(tag & 7)) else {
            throw Malformed(reason: "field \(number) has unsupported wire type \(tag & 7)")
        }
        var field = WireField(number: Int(number), wireType: wireType, span: start..<start, payload: start..<start)
        switch wireType {
        case .varint:
            let valueStart = position
            field.varintValue = try readVarint()
            field.payload = valueStart..<position
        case .fixed64, .fixed32:
            let width = wireType == .fixed64 ? 8 : 4
            guard end - position >= width else { throw Malformed(reason: "truncated fixed-width field \(number)") }
            field.payload = position..<(position + width)
            position += width
        case .lengthDelimited:
            let length = try readVarint()
            guard length <= UInt64(end - position) else {
                throw Malformed(reason: "field \(number) claims \(length) bytes, only \(end - position) remain")
            }
            field.payload = position..<(position + Int(length))
            position += Int(length)
        }
        field.span = start..<position
        return field
    }
}

/// Appends protobuf wire encodings to a byte array (the parts of a file we write ourselves).
struct WireWriter {
    var bytes: [UInt8] = []

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest != 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    /// Size of a length-delimited field's tag and length prefix.
    static func lengthHeaderSize(field: Int, length: Int) -> Int {
        varintSize(UInt64(field << 3 | 2)) + varintSize(UInt64(length))
    }

    mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func appendLengthHeader(field: Int, length: Int) {
        appendVarint(UInt64(field << 3 | 2))
        appendVarint(UInt64(length))
    }

    mutating func appendLengthDelimited(field: Int, _ payload: UnsafeRawBufferPointer) {
        appendLengthHeader(field: field, length: payload.count)
        bytes.append(contentsOf: payload)
    }
}
