import NNPipeCore

/// Ops that change only shape or type, or make constants: Constant, ConstantOfShape, Identity,
/// Dropout, Flatten, Reshape, Squeeze, Unsqueeze, Shape, Size, Expand, Cast, CastLike.
enum ShapeKernels {
    static func constant(_ spec: inout NodeSpec) throws -> any Kernel {
        var value: RuntimeTensor?
        if let tensor = spec.attribute("value")?.tensorValue { value = try RuntimeTensor(tensor) }
        if let number = spec.attribute("value_float")?.floatValue { value = RuntimeTensor(shape: [], floats: [number]) }
        if let numbers = spec.floats("value_floats") { value = RuntimeTensor(shape: [numbers.count], floats: numbers) }
        if let number = spec.attribute("value_int")?.intValue { value = RuntimeTensor(shape: [], values: [number]) }
        if let numbers = spec.attribute("value_ints")?.intsValue { value = RuntimeTensor(shape: [numbers.count], values: numbers) }
        for name in ["value_string", "value_strings", "sparse_value"] where spec.node.attribute(name) != nil {
            throw spec.unsupported("attribute '\(name)' is not supported")
        }
        guard let value else { throw spec.invalid("Constant has no value") }
        return ClosureKernel { _, _ in [value] }
    }

    static func constantOfShape(_ spec: inout NodeSpec) throws -> any Kernel {
        let value = try spec.attribute("value")?.tensorValue.map { try RuntimeTensor($0) } ?? RuntimeTensor(shape: [1], floats: [0])
        return ClosureKernel { inputs, _ in
            let shape = try inputs.required(0).integers.map { Int($0) }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw KernelError("negative dimension in \(shape)") }
            try TensorSize.check(shape, value.dataType)
            let result = RuntimeTensor(dataType: value.dataType, shape: shape)
            for index in 0..<result.elementCount { copyElements(from: value, at: 0, to: result, at: index, count: 1) }
            return [result]
        }
    }

    static func identity(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in [try inputs.required(0)] }
    }

    static func dropout(_ spec: inout NodeSpec) throws -> any Kernel {
        spec.ignore("seed", "ratio", "is_test")
        let wantsMask = spec.hasOutput(1)
        let opset = spec.opset
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            // Training with ratio 0 drops nothing, so it is still deterministic.
            let ratio = inputs.optional(1)?.scalarValue ?? 0.5
            if let training = inputs.optional(2), training.integers.first == 1, ratio != 0 {
                throw KernelError("training-mode Dropout is random and not supported", code: .unsupported)
            }
            guard wantsMask else { return [input] }
            // Inference keeps everything: the mask is all true (of the input's type before opset 10).
            if opset < 10 {
                guard input.dataType == .float else {
                    return [input, try makeTensor(input.dataType, shape: input.shape, doubles: .init(repeating: 1, count: input.elementCount))]
                }
                let mask = RuntimeTensor(dataType: .float, shape: input.shape)
                mask.withUnsafeMutableBuffer(of: Float.self) { $0.update(repeating: 1) }
                return [input, mask]
            }
            // Written straight into storage (a Bool is one byte, true is 1): no array and copy per run.
            let mask = RuntimeTensor(dataType: .bool, shape: input.shape)
            mask.storage.bytes.initializeMemory(as: UInt8.self, repeating: 1)
            return [input, mask]
        }
    }

    static func flatten(_ spec: inout NodeSpec) throws -> any Kernel {
        let axis = spec.int("axis", 1)
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let split = axis < 0 ? axis + input.rank : axis
            guard split >= 0, split <= input.rank else { throw KernelError("axis \(axis) is out of range for rank \(input.rank)") }
            let outer = input.shape[..<split].reduce(1, *)
            return [input.reshaped([outer, input.shape[split...].reduce(1, *)])]
        }
    }

    static func reshape(_ spec: inout NodeSpec) throws -> any Kernel {
        let allowZero = spec.int("allowzero", 0) == 1
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let requested = try inputs.required(1).integers.map { Int($0) }
            var shape = requested
            for (axis, size) in requested.enumerated() where size == 0 && !allowZero {
                guard axis < input.rank else { throw KernelError("shape \(requested) copies axis \(axis), which the input lacks") }
                shape[axis] = input.shape[axis]
            }
            if let inferred = shape.firstIndex(of: -1) {
                let known = TensorSize.elements(shape.enumerated().filter { $0.offset != inferred }.map(\.element)) ?? 0
                guard known > 0, input.elementCount % known == 0 else { throw KernelError("cannot reshape \(input.shape) to \(requested)") }
                shape[inferred] = input.elementCount / known
            }
            guard TensorSize.elements(shape) == input.elementCount else {
                throw KernelError("cannot reshape \(input.shape) to \(requested)")
            }
            return [input.reshaped(shape)]
        }
    }

    /// Axes from the attribute (before `inputOpset`) or from input 1.
    static func axes(_ spec: inout NodeSpec, inputOpset: Int) -> (attribute: [Int]?, fromInput: Bool) {
        spec.opset < inputOpset ? (spec.ints("axes"), false) : (nil, true)
    }

    static func squeeze(_ spec: inout NodeSpec) throws -> any Kernel {
        let (attributeAxes, fromInput) = axes(&spec, inputOpset: 13)
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let requested = fromInput ? inputs.optional(1)?.integers.map { Int($0) } : attributeAxes
            var remove = Set<Int>()
            if let requested {
                for axis in requested {
                    let normalized = try normalizedAxis(axis, rank: input.rank)
                    guard input.shape[normalized] == 1 else { throw KernelError("axis \(axis) has size \(input.shape[normalized]), not 1") }
                    remove.insert(normalized)
                }
            } else {
                remove = Set(input.shape.indices.filter { input.shape[$0] == 1 })
            }
            return [input.reshaped(input.shape.indices.filter { !remove.contains($0) }.map { input.shape[$0] })]
        }
    }

    static func unsqueeze(_ spec: inout NodeSpec) throws -> any Kernel {
        let (attributeAxes, fromInput) = axes(&spec, inputOpset: 13)
        return ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            guard let requested = fromInput ? try inputs.required(1).integers.map({ Int($0) }) : attributeAxes else {
                throw KernelError("Unsqueeze needs axes")
            }
            let rank = input.rank + requested.count
            let inserted = Set(try requested.map { try normalizedAxis($0, rank: rank) })
            guard inserted.count == requested.count else { throw KernelError("repeated axes \(requested)") }
            var source = input.shape.makeIterator()
            return [input.reshaped((0..<rank).map { inserted.contains($0) ? 1 : source.next()! })]
        }
    }

    static func shape(_ spec: inout NodeSpec) throws -> any Kernel {
        let start = spec.int("start", 0)
        let end = spec.attribute("end")?.intValue.map { Int($0) }
        return ClosureKernel { inputs, _ in
            let shape = try inputs.required(0).shape
            func clamp(_ value: Int) -> Int { min(max(value < 0 ? value + shape.count : value, 0), shape.count) }
            let from = clamp(start)
            let to = clamp(end ?? shape.count)
            let slice = from < to ? Array(shape[from..<to]).map { Int64($0) } : []
            return [RuntimeTensor(shape: [slice.count], values: slice)]
        }
    }

    static func size(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in [RuntimeTensor(shape: [], values: [Int64(try inputs.required(0).elementCount)])] }
    }

    static func expand(_ spec: inout NodeSpec) throws -> any Kernel {
        ClosureKernel { inputs, _ in
            let input = try inputs.required(0)
            let requested = try inputs.required(1).integers.map { Int($0) }
            let shape = try BroadcastPlan.shape([input.shape, requested])
            return [try broadcastTo(input, shape)]
        }
    }

    /// `input` repeated along broadcast axes to `shape`.
    static func broadcastTo(_ input: RuntimeTensor, _ shape: [Int]) throws -> RuntimeTensor {
        let padded = [Int](repeating: 1, count: shape.count - input.rank) + input.shape
        let strides = contiguousStrides(padded)
        let offsets = shape.indices.map { axis in
            (0..<shape[axis]).map { index -> Int? in padded[axis] == 1 ? 0 : index * strides[axis] }
        }
        return try AxisGather.run(input, outputShape: shape, offsets: offsets)
    }

    static func cast(_ spec: inout NodeSpec) throws -> any Kernel {
        guard let target = spec.attribute("to")?.intValue.flatMap({ DataType(rawValue: Int32($0)) }) else {
            throw spec.invalid("Cast needs 'to'")
        }
        spec.ignore("saturate", "round_mode")
        guard RuntimeTensor.isSupported(target) else { throw spec.unsupported("element type \(target) as a Cast target") }
        return ClosureKernel { inputs, _ in [try convert(try inputs.required(0), to: target)] }
    }

    static func castLike(_ spec: inout NodeSpec) throws -> any Kernel {
        spec.ignore("saturate", "round_mode")
        return ClosureKernel { inputs, _ in [try convert(try inputs.required(0), to: try inputs.required(1).dataType)] }
    }

    /// Element type conversion as numpy's `astype`: integers wrap, floats truncate toward zero.
    static func convert(_ input: RuntimeTensor, to target: DataType) throws -> RuntimeTensor {
        if input.dataType == target { return input }
        guard RuntimeTensor.isSupported(input.dataType) else { throw unsupportedType(input.dataType) }
        let isFloatSource = input.dataType.isFloatingPoint
        if target == .float16 || target == .bfloat16 {
            let floats = input.floats
            let values = target == .float16 ? floats.map(HalfPrecision.bits(from:)) : floats.map(BrainFloat.bits(from:))
            return RuntimeTensor(dataType: target, shape: input.shape, storage: RuntimeTensor(shape: input.shape, values: values).storage)
        }
        if target == .bool {
            let values = isFloatSource ? try doubleValues(input).map { $0 != 0 } : input.integers.map { $0 != 0 }
            return RuntimeTensor(shape: input.shape, values: values)
        }
        if target.isFloatingPoint || isFloatSource {
            let values = input.dataType == .uint64 ? input.values(as: UInt64.self)!.map(Double.init) : try doubleValues(input)
            if target == .uint64 { return RuntimeTensor(shape: input.shape, values: values.map { $0 < 0 ? UInt64(bitPattern: Int64($0)) : UInt64($0.rounded(.towardZero)) }) }
            if target.isInteger {
                // Through Int64 so out-of-range values wrap like C casts do on this platform.
                return try wrapIntegers(values.map { $0.isFinite ? Int64(max(min($0, 9.2e18), -9.2e18)) : Int64.min }, shape: input.shape, to: target)
            }
            return try makeTensor(target, shape: input.shape, doubles: values)
        }
        if input.dataType == .uint64 && target == .int64 || input.dataType == .int64 && target == .uint64 {
            let result = RuntimeTensor(dataType: target, shape: input.shape)
            copyElements(from: input, at: 0, to: result, at: 0, count: input.elementCount)
            return result
        }
        return try wrapIntegers(input.integers, shape: input.shape, to: target)
    }

    static func wrapIntegers(_ values: [Int64], shape: [Int], to target: DataType) throws -> RuntimeTensor {
        switch target {
        case .int8: RuntimeTensor(shape: shape, values: values.map { Int8(truncatingIfNeeded: $0) })
        case .uint8: RuntimeTensor(shape: shape, values: values.map { UInt8(truncatingIfNeeded: $0) })
        case .int16: RuntimeTensor(shape: shape, values: values.map { Int16(truncatingIfNeeded: $0) })
        case .uint16: RuntimeTensor(shape: shape, values: values.map { UInt16(truncatingIfNeeded: $0) })
        case .int32: RuntimeTensor(shape: shape, values: values.map { Int32(truncatingIfNeeded: $0) })
        case .uint32: RuntimeTensor(shape: shape, values: values.map { UInt32(truncatingIfNeeded: $0) })
        case .int64: RuntimeTensor(shape: shape, values: values)
        case .uint64: RuntimeTensor(shape: shape, values: values.map { UInt64(bitPattern: $0) })
        default: throw unsupportedType(target)
        }
    }
}
