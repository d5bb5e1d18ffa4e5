import NNPipeCore

/// And, Or, Xor, Not on bool tensors (helpers that expanded function bodies use), and
/// ai.onnx.ml ZipMap, which the runtime passes through as its probability tensor.
enum LogicKernels {
    static func binary(_ operation: @escaping @Sendable (Bool, Bool) -> Bool) -> OperatorRegistry.Factory {
        { spec in
            if spec.opset < 7 { spec.ignore("broadcast", "axis") }
            return ClosureKernel { inputs, context in
                let left = try inputs.required(0), right = try inputs.required(1)
                guard left.dataType == .bool, right.dataType == .bool else { throw unsupportedType(left.dataType) }
                return [try broadcastBinary(left, right, Bool.self, Bool.self, output: .bool, threads: context.threads, operation)]
            }
        }
    }

    static func not(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            guard input.dataType == .bool else { throw unsupportedType(input.dataType) }
            return [RuntimeTensor(shape: input.shape, values: input.values(as: Bool.self)!.map { !$0 })]
        }
    }

    /// ZipMap turns class probabilities into a sequence of {label: probability} maps. The runtime has
    /// no sequence or map values, so its output is the [N, classes] probability tensor it was given;
    /// label order is the `classlabels_*` attribute order, which callers read from the node.
    static func zipMap(_ spec: inout NodeSpec) throws -> any Kernel {
        spec.ignore("classlabels_strings", "classlabels_int64s")
        return ClosureKernel { inputs, _ in [try inputs.required(0)] }
    }
}
