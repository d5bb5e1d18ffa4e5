import Foundation
import NNPipeCore

/// Broadcasting arithmetic, comparison and selection: Add, Sub, Mul, Div, Pow, Max, Min, Sum,
/// Mean, Equal, Greater(OrEqual), Less(OrEqual), Where, Clip, PRelu.
enum ArithmeticKernels {
    enum Operation: Sendable { case add, subtract, multiply, divide, maximum, minimum }
    enum Comparison: Sendable { case equal, greater, greaterOrEqual, less, lessOrEqual }

    struct Arithmetic: NumericVisitor {
        let left: RuntimeTensor
        let right: RuntimeTensor
        let operation: Operation
        let threads: Int
        func visit<Element: NumericElement>(_ type: Element.Type) throws -> RuntimeTensor {
            let type = left.dataType
            switch operation {
            case .add: return try broadcastBinary(left, right, Element.self, Element.self, output: type, threads: threads) { Element.plus($0, $1) }
            case .subtract: return try broadcastBinary(left, right, Element.self, Element.self, output: type, threads: threads) { Element.minus($0, $1) }
            case .multiply: return try broadcastBinary(left, right, Element.self, Element.self, output: type, threads: threads) { Element.times($0, $1) }
            case .divide: return try broadcastBinary(left, right, Element.self, Element.self, output: type, threads: threads) { Element.divided($0, $1) }
            case .maximum: return try broadcastBinary(left, right, Element.self, Element.self, output: type, threads: threads) { $0 != $0 || $0 >= $1 ? $0 : $1 }
            case .minimum: return try broadcastBinary(left, right, Element.self, Element.self, output: type, threads: threads) { $0 != $0 || $0 <= $1 ? $0 : $1 }
            }
        }
    }

    static func apply(_ operation: Operation, _ left: RuntimeTensor, _ right: RuntimeTensor, threads: Int) throws -> RuntimeTensor {
        guard left.dataType == right.dataType else {
            throw KernelError("operand types differ: \(left.dataType) and \(right.dataType)")
        }
        return try visitNumeric(left.dataType, Arithmetic(left: left, right: right, operation: operation, threads: threads))
    }

    static func binary(_ operation: Operation) -> OperatorRegistry.Factory {
        { spec in
            if spec.opset < 7 { spec.ignore("broadcast", "axis", "consumed_inputs") }
            return ClosureKernel { inputs, context in
                [try apply(operation, try inputs.required(0), try inputs.required(1), threads: context.threads)]
            }
        }
    }

    /// Sum, Mean, Max, Min over any number of broadcast inputs.
    static func variadic(_ operation: Operation, mean: Bool = false) -> OperatorRegistry.Factory {
        { spec in
            ClosureKernel { inputs, context in
                let operands = inputs.compactMap { $0 }
                guard var total = operands.first else { throw KernelError("needs at least one input") }
                for operand in operands.dropFirst() { total = try apply(operation, total, operand, threads: context.threads) }
                if mean {
                    let count = try makeTensor(total.dataType, shape: [], doubles: [Double(operands.count)])
                    total = try apply(.divide, total, count, threads: context.threads)
                } else if operands.count == 1 {
                    total = try apply(.add, total, try makeTensor(total.dataType, shape: [], doubles: [0]), threads: context.threads)
                }
                return [total]
            }
        }
    }

    struct Comparer: NumericVisitor {
        let left: RuntimeTensor
        let right: RuntimeTensor
        let comparison: Comparison
        let threads: Int
        func visit<Element: NumericElement>(_ type: Element.Type) throws -> RuntimeTensor {
            switch comparison {
            case .equal: return try broadcastBinary(left, right, Element.self, Element.self, output: .bool, threads: threads) { $0 == $1 }
            case .greater: return try broadcastBinary(left, right, Element.self, Element.self, output: .bool, threads: threads) { $0 > $1 }
            case .greaterOrEqual: return try broadcastBinary(left, right, Element.self, Element.self, output: .bool, threads: threads) { $0 >= $1 }
            case .less: return try broadcastBinary(left, right, Element.self, Element.self, output: .bool, threads: threads) { $0 < $1 }
            case .lessOrEqual: return try broadcastBinary(left, right, Element.self, Element.self, output: .bool, threads: threads) { $0 <= $1 }
            }
        }
    }

    static func compare(_ comparison: Comparison) -> OperatorRegistry.Factory {
        { spec in
            if spec.opset < 7 { spec.ignore("broadcast", "axis") }
            return ClosureKernel { inputs, context in
                let left = try inputs.required(0)
                let right = try inputs.required(1)
                guard left.dataType == right.dataType else { throw KernelError("operand types differ: \(left.dataType) and \(right.dataType)") }
                if left.dataType == .bool {
                    return [try broadcastBinary(left, right, UInt8.self, UInt8.self, output: .bool, threads: context.threads) {
                        switch comparison {
                        case .equal: $0 == $1
                        case .greater: $0 > $1
                        case .greaterOrEqual: $0 >= $1
                        case .less: $0 < $1
                        case .lessOrEqual: $0 <= $1
                        }
                    }]
                }
                return [try visitNumeric(left.dataType, Comparer(left: left, right: right, comparison: comparison, threads: context.threads))]
            }
        }
    }

    static func power(_ spec: inout NodeSpec) throws -> any Kernel {
        if spec.opset < 7 { spec.ignore("broadcast", "axis") }
        return ClosureKernel { inputs, context in
            let base = try inputs.required(0)
            let exponent = try inputs.required(1)
            if base.dataType == .float {
                let floatExponent = exponent.dataType == .float ? exponent : RuntimeTensor(shape: exponent.shape, floats: exponent.floats)
                return [try broadcastBinary(base, floatExponent, Float.self, Float.self, output: .float, threads: context.threads) { Foundation.pow($0, $1) }]
            }
            let doubleBase = RuntimeTensor(shape: base.shape, values: try doubleValues(base))
            let doubleExponent = RuntimeTensor(shape: exponent.shape, values: try doubleValues(exponent))
            let result = try broadcastBinary(doubleBase, doubleExponent, Double.self, Double.self, output: .double, threads: context.threads) { Foundation.pow($0, $1) }
            return [try makeTensor(base.dataType, shape: result.shape, doubles: result.values(as: Double.self)!)]
        }
    }

    /// Where(condition, x, y), broadcast three ways; element bytes are copied, so any type works.
    static func select(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let condition = try inputs.required(0)
            let whenTrue = try inputs.required(1)
            let whenFalse = try inputs.required(2)
            guard condition.dataType == .bool, whenTrue.dataType == whenFalse.dataType else {
                throw KernelError("expects a bool condition and two values of one type")
            }
            let plan = try BroadcastPlan(inputs: [condition.shape, whenTrue.shape, whenFalse.shape])
            let result = RuntimeTensor(dataType: whenTrue.dataType, shape: plan.outputShape)
            func copy<Element>(_ type: Element.Type) {
                condition.withUnsafeBuffer(of: Bool.self) { flags in
                    whenTrue.withUnsafeBuffer(of: Element.self) { first in
                        whenFalse.withUnsafeBuffer(of: Element.self) { second in
                            result.withUnsafeMutableBuffer(of: Element.self) { output in
                                let inner = plan.innerCount
                                for row in 0..<plan.rowCount {
                                    let flagStart = plan.start(row: row, input: 0)
                                    let firstStart = plan.start(row: row, input: 1)
                                    let secondStart = plan.start(row: row, input: 2)
                                    for index in 0..<inner {
                                        output[row * inner + index] = flags[flagStart + index * plan.innerStrides[0]]
                                            ? first[firstStart + index * plan.innerStrides[1]]
                                            : second[secondStart + index * plan.innerStrides[2]]
                                    }
                                }
                            }
                        }
                    }
                }
            }
            switch RuntimeTensor.elementSize(of: whenTrue.dataType) {
            case 1: copy(UInt8.self)
            case 2: copy(UInt16.self)
            case 4: copy(UInt32.self)
            default: copy(UInt64.self)
            }
            return [result]
        }
    }

    static func clip(_ spec: inout NodeSpec) throws -> any Kernel {
        var attributeBounds: (Double, Double)? = nil
        if spec.opset < 11 {
            attributeBounds = (Double(spec.float("min", -Float.greatestFiniteMagnitude)), Double(spec.float("max", Float.greatestFiniteMagnitude)))
            spec.ignore("consumed_inputs")
        }
        return ClosureKernel { [attributeBounds] inputs, context in
            let input = try inputs.required(0)
            let lower = attributeBounds?.0 ?? inputs.optional(1).map { $0.scalarValue } ?? -Double.infinity
            let upper = attributeBounds?.1 ?? inputs.optional(2).map { $0.scalarValue } ?? Double.infinity
            if input.dataType == .float {
                let low = Float(lower)
                let high = Float(upper)
                return [try mapFloats(input, threads: context.threads) { Swift.min(Swift.max($0, low), high) }]
            }
            return [try mapNumeric(input, { Swift.min(Swift.max($0, lower), upper) }, threads: context.threads)]
        }
    }

    static func parametricRelu(_ spec: inout NodeSpec) throws -> any Kernel {
        if spec.opset < 7 { spec.ignore("consumed_inputs") }
        return ClosureKernel { inputs, context in
            let input = try inputs.required(0)
            let slope = try inputs.required(1)
            guard input.dataType == .float, slope.dataType == .float else { throw unsupportedType(input.dataType) }
            let plan = try BroadcastPlan(inputs: [input.shape, slope.shape])
            guard plan.outputShape == input.shape else { throw KernelError("slope \(slope.shape) does not broadcast to \(input.shape)") }
            return [try broadcastBinary(input, slope, Float.self, Float.self, output: .float, threads: context.threads) { $0 < 0 ? $0 * $1 : $0 }]
        }
    }
}
