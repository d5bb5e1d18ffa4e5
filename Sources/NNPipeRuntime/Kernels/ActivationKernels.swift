import Foundation
import NNPipeCore

/// Elementwise activations and math functions on float tensors.
enum ActivationKernels {
    static func floatMap(_ make: @escaping @Sendable (inout NodeSpec) -> @Sendable (Float) -> Float)
        -> OperatorRegistry.Factory
    {
        { spec in
            if spec.opset < 6 { spec.ignore("consumed_inputs") }
            let operation = make(&spec)
            return ClosureKernel { inputs, context in
                [try mapFloats(try inputs.required(0), threads: context.threads, operation)]
            }
        }
    }

    /// Ops defined for integers too (Abs, Neg, Relu): floats take the fast path.
    static func numericMap(_ float: @escaping @Sendable (Float) -> Float, _ double: @escaping @Sendable (Double) -> Double)
        -> OperatorRegistry.Factory
    {
        { spec in
            if spec.opset < 6 { spec.ignore("consumed_inputs") }
            return ClosureKernel { inputs, context in
                [try mapNumeric(try inputs.required(0), double, float: float, threads: context.threads)]
            }
        }
    }

    /// Relu is on every CNN's hot path, so its float loop is written out where it can vectorise.
    static func relu(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, context in
            let input = try inputs.required(0)
            guard input.dataType == .float else {
                return [try mapNumeric(input, { $0 > 0 ? $0 : 0 }, threads: context.threads)]
            }
            return [try mapFloats(input, threads: context.threads) { $0 > 0 ? $0 : 0 }]
        }
    }

    static let table: [String: OperatorRegistry.Factory] = [
        "Relu": relu,
        "Abs": numericMap({ Swift.abs($0) }, { Swift.abs($0) }),
        "Neg": numericMap({ -$0 }, { -$0 }),
        "LeakyRelu": floatMap { spec in
            let alpha = spec.float("alpha", 0.01)
            return { $0 >= 0 ? $0 : $0 * alpha }
        },
        "Elu": floatMap { spec in
            let alpha = spec.float("alpha", 1)
            return { $0 >= 0 ? $0 : alpha * (expf($0) - 1) }
        },
        "Selu": floatMap { spec in
            let alpha = spec.float("alpha", 1.67326319217681884765625)
            let gamma = spec.float("gamma", 1.05070102214813232421875)
            return { $0 > 0 ? gamma * $0 : gamma * (alpha * expf($0) - alpha) }
        },
        "Sigmoid": floatMap { _ in { sigmoid($0) } },
        "HardSigmoid": floatMap { spec in
            let alpha = spec.float("alpha", 0.2)
            let beta = spec.float("beta", 0.5)
            return { Swift.max(0, Swift.min(1, alpha * $0 + beta)) }
        },
        "HardSwish": floatMap { _ in { $0 * Swift.max(0, Swift.min(1, $0 / 6 + 0.5)) } },
        "Tanh": floatMap { _ in { tanhf($0) } },
        "Softplus": floatMap { _ in { $0 > 20 ? $0 : log1pf(expf($0)) } },
        "Softsign": floatMap { _ in { $0 / (1 + Swift.abs($0)) } },
        "Gelu": floatMap { spec in
            if spec.string("approximate", "none") == "tanh" {
                let scale = Float(sqrt(2 / Double.pi))
                return { 0.5 * $0 * (1 + tanhf(scale * ($0 + 0.044715 * $0 * $0 * $0))) }
            }
            return { 0.5 * $0 * (1 + erff($0 * Float(0.5.squareRoot()))) }
        },
        "Erf": floatMap { _ in { erff($0) } },
        "Exp": floatMap { _ in { expf($0) } },
        "Log": floatMap { _ in { logf($0) } },
        "Sqrt": floatMap { _ in { sqrtf($0) } },
        "Reciprocal": floatMap { _ in { 1 / $0 } },
        "Floor": floatMap { _ in { floorf($0) } },
        "Ceil": floatMap { _ in { ceilf($0) } },
        "Sin": floatMap { _ in { sinf($0) } },
        "Cos": floatMap { _ in { cosf($0) } },
    ]

    @inline(__always)
    static func sigmoid(_ value: Float) -> Float {
        // Split by sign so exp never overflows.
        if value >= 0 { return 1 / (1 + expf(-value)) }
        let exponential = expf(value)
        return exponential / (1 + exponential)
    }
}
