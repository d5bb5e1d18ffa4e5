import NNPipeCore

/// An integer type a tensor can be quantised to, with its value ranges as onnxruntime defines them.
public enum QuantizedType: String, Sendable, CaseIterable, CustomStringConvertible {
    case int8, uint8, int16, uint16, int4, uint4

    public var dataType: DataType {
        switch self {
        case .int8: .int8
        case .uint8: .uint8
        case .int16: .int16
        case .uint16: .uint16
        case .int4: .int4
        case .uint4: .uint4
        }
    }

    public init?(_ dataType: DataType) {
        guard let match = Self.allCases.first(where: { $0.dataType == dataType }) else { return nil }
        self = match
    }

    public var isSigned: Bool {
        switch self {
        case .int8, .int16, .int4: true
        case .uint8, .uint16, .uint4: false
        }
    }

    public var bitWidth: Int { dataType.bitWidth }

    /// The clamp range: onnxruntime's reduced table wins over its symmetric table, which only
    /// narrows int8 and int16 (dropping -128 / -32768 so the range is centred on zero).
    public func range(symmetric: Bool = false, reduceRange: Bool = false) -> QuantizedRange {
        if reduceRange {
            switch self {
            case .uint8: return QuantizedRange(minimum: 0, maximum: 127)
            case .int8: return QuantizedRange(minimum: -64, maximum: 64)
            case .uint16: return QuantizedRange(minimum: 0, maximum: 32767)
            case .int16: return QuantizedRange(minimum: -16384, maximum: 16384)
            case .uint4: return QuantizedRange(minimum: 0, maximum: 7)
            case .int4: return QuantizedRange(minimum: -4, maximum: 3)
            }
        }
        if symmetric {
            if self == .int8 { return QuantizedRange(minimum: -127, maximum: 127) }
            if self == .int16 { return QuantizedRange(minimum: -32767, maximum: 32767) }
        }
        return fullRange
    }

    /// Every value the type can hold (what QuantizeLinear saturates to).
    public var fullRange: QuantizedRange {
        switch self {
        case .uint8: QuantizedRange(minimum: 0, maximum: 255)
        case .int8: QuantizedRange(minimum: -128, maximum: 127)
        case .uint16: QuantizedRange(minimum: 0, maximum: 65535)
        case .int16: QuantizedRange(minimum: -32768, maximum: 32767)
        case .uint4: QuantizedRange(minimum: 0, maximum: 15)
        case .int4: QuantizedRange(minimum: -8, maximum: 7)
        }
    }

    /// Q/DQ on 4- and 16-bit types arrived in opset 21 (int16/uint16 in 21, int4/uint4 in 21).
    public var minimumOpset: Int64 {
        switch self {
        case .int8, .uint8: 13
        case .int16, .uint16, .int4, .uint4: 21
        }
    }

    public var description: String { rawValue }
}

/// Inclusive integer bounds of quantised values.
public struct QuantizedRange: Sendable, Hashable {
    public var minimum: Int32
    public var maximum: Int32

    public init(minimum: Int32, maximum: Int32) {
        precondition(minimum <= 0 && 0 <= maximum, "a quantised range must contain zero")
        self.minimum = minimum
        self.maximum = maximum
    }
}
