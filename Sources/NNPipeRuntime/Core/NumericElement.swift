import Foundation
import NNPipeCore

/// Element types arithmetic kernels are generic over. Integer arithmetic wraps (as numpy's does);
/// integer division by zero gives 0 instead of trapping.
protocol NumericElement: TensorScalar, Comparable {
    static func plus(_ a: Self, _ b: Self) -> Self
    static func minus(_ a: Self, _ b: Self) -> Self
    static func times(_ a: Self, _ b: Self) -> Self
    static func divided(_ a: Self, _ b: Self) -> Self
    /// Conversion as numpy's `astype` does it: floats truncate toward zero into integers.
    init(converting value: Double)
    var doubleValue: Double { get }
    static var zeroValue: Self { get }
    static var lowest: Self { get }
    static var highest: Self { get }
}

extension NumericElement where Self: FixedWidthInteger {
    static func plus(_ a: Self, _ b: Self) -> Self { a &+ b }
    static func minus(_ a: Self, _ b: Self) -> Self { a &- b }
    static func times(_ a: Self, _ b: Self) -> Self { a &* b }
    static func divided(_ a: Self, _ b: Self) -> Self {
        if b == 0 { return 0 }
        if Self.isSigned && b == -1 { return 0 &- a }
        return a / b
    }
    init(converting value: Double) {
        if value.isNaN { self = 0; return }
        if value >= Double(Self.max) { self = Self.max; return }
        if value <= Double(Self.min) { self = Self.min; return }
        self = Self(value.rounded(.towardZero))
    }
    var doubleValue: Double { Double(self) }
    static var zeroValue: Self { 0 }
    static var lowest: Self { Self.min }
    static var highest: Self { Self.max }
}

extension NumericElement where Self: BinaryFloatingPoint {
    static func plus(_ a: Self, _ b: Self) -> Self { a + b }
    static func minus(_ a: Self, _ b: Self) -> Self { a - b }
    static func times(_ a: Self, _ b: Self) -> Self { a * b }
    static func divided(_ a: Self, _ b: Self) -> Self { a / b }
    init(converting value: Double) { self = Self(value) }
    static var zeroValue: Self { 0 }
    static var lowest: Self { -Self.infinity }
    static var highest: Self { Self.infinity }
}

extension Float: NumericElement { var doubleValue: Double { Double(self) } }
extension Double: NumericElement { var doubleValue: Double { self } }
extension Int8: NumericElement {}
extension UInt8: NumericElement {}
extension Int16: NumericElement {}
extension UInt16: NumericElement {}
extension Int32: NumericElement {}
extension UInt32: NumericElement {}
extension Int64: NumericElement {}
extension UInt64: NumericElement {}

/// Calls the generic `Visitor` with the Swift type of a numeric element type; the switch
/// lets the compiler specialise each arm.
protocol NumericVisitor {
    associatedtype Result
    func visit<Element: NumericElement>(_ type: Element.Type) throws -> Result
}

func visitNumeric<Visitor: NumericVisitor>(_ type: DataType, _ visitor: Visitor) throws -> Visitor.Result {
    switch type {
    case .float: return try visitor.visit(Float.self)
    case .double: return try visitor.visit(Double.self)
    case .int8: return try visitor.visit(Int8.self)
    case .uint8: return try visitor.visit(UInt8.self)
    case .int16: return try visitor.visit(Int16.self)
    case .uint16: return try visitor.visit(UInt16.self)
    case .int32: return try visitor.visit(Int32.self)
    case .uint32: return try visitor.visit(UInt32.self)
    case .int64: return try visitor.visit(Int64.self)
    case .uint64: return try visitor.visit(UInt64.self)
    default: throw unsupportedType(type)
    }
}

/// A tensor of `type` holding `values` converted from Double (for small computed tensors).
func makeTensor(_ type: DataType, shape: [Int], doubles: [Double]) throws -> RuntimeTensor {
    struct Maker: NumericVisitor {
        let shape: [Int]
        let doubles: [Double]
        func visit<Element: NumericElement>(_ type: Element.Type) throws -> RuntimeTensor {
            RuntimeTensor(shape: shape, values: doubles.map { Element(converting: $0) })
        }
    }
    if type == .bool { return RuntimeTensor(shape: shape, values: doubles.map { $0 != 0 }) }
    // 4-bit values live one per byte (see RuntimeTensor), so build them as 8-bit and relabel.
    if type == .int4 || type == .uint4 {
        let bytes = type == .int4 ? RuntimeTensor(shape: shape, values: doubles.map { Int8(converting: $0) })
            : RuntimeTensor(shape: shape, values: doubles.map { UInt8(converting: $0) })
        return RuntimeTensor(dataType: type, shape: shape, storage: bytes.storage)
    }
    return try visitNumeric(type, Maker(shape: shape, doubles: doubles))
}

/// Elements of any numeric tensor as Double.
func doubleValues(_ tensor: RuntimeTensor) throws -> [Double] {
    struct Reader: NumericVisitor {
        let tensor: RuntimeTensor
        func visit<Element: NumericElement>(_ type: Element.Type) throws -> [Double] {
            tensor.withUnsafeBuffer(of: Element.self) { $0.map(\.doubleValue) }
        }
    }
    if tensor.dataType == .bool { return tensor.integers.map(Double.init) }
    if tensor.dataType == .float16 || tensor.dataType == .bfloat16 { return tensor.floats.map(Double.init) }
    return try visitNumeric(tensor.dataType, Reader(tensor: tensor))
}
