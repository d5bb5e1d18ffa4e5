import NNPipeCore

/// Turns one float weight into what a DequantizeLinear (or Cast) node needs, with the figures the report shows.
struct WeightQuantizer {
    let configuration: QuantizeConfiguration

    struct Result {
        /// Initializers to add (quantised values, scale, zero point).
        var tensors: [Tensor]
        /// The node that rebuilds the float weight; its first output replaces the weight.
        var node: Node
        var layout: QuantizationLayout?
        var parameters: [QuantizationParameters]
        var signalToNoise: Double
        var bytesBefore: Int
        var bytesAfter: Int
        var scheme: String
    }

    func layout(for node: Node, weight: Tensor) -> QuantizationLayout {
        let rank = weight.shape.count
        if let blockSize = configuration.blockSize, rank >= 2 {
            return .blocked(axis: QuantizableOperator.reductionAxis(of: node, weightRank: rank), blockSize: blockSize)
        }
        if configuration.perChannel, rank >= 2 {
            return .perAxis(axis: QuantizableOperator.channelAxis(of: node, weightRank: rank))
        }
        return .perTensor
    }

    func quantize(_ weight: Tensor, for node: Node) throws -> Result {
        guard let values = weight.values(as: Float.self) else {
            throw NNPipeError(.unsupported, "weight '\(weight.name)' of \(node.displayName) is \(weight.dataType), nnpipe quantises float32 weights")
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw NNPipeError(.invalidModel, "weight '\(weight.name)' of \(node.displayName) holds \(values[bad]) at element \(bad); cannot quantise non-finite weights")
        }
        switch configuration.weights {
        case .integer(let type):
            return integer(weight, values: values, type: type, node: node)
        case .float16, .bfloat16:
            return float(weight, values: values)
        }
    }

    private func integer(_ weight: Tensor, values: [Float], type: QuantizedType, node: Node) -> Result {
        let layout = layout(for: node, weight: weight)
        let range = type.range(symmetric: configuration.weightsSymmetric, reduceRange: configuration.reduceRange)
        let parameters = LinearQuantizer.parameters(for: values, shape: weight.shape, layout: layout, range: range, symmetric: configuration.weightsSymmetric)
        let quantized = LinearQuantizer.quantize(values, shape: weight.shape, layout: layout, parameters: parameters, range: range)
        let restored = LinearQuantizer.dequantize(quantized, shape: weight.shape, layout: layout, parameters: parameters)
        let parameterShape = layout.parameterShape(for: weight.shape)
        // onnxruntime's names, so tools that look for them (and diffs against its output) line up.
        let quantizedTensor = PackedIntegers.tensor(name: weight.name + "_quantized", shape: weight.shape, values: quantized, as: type)
        let scale = Tensor(name: weight.name + "_scale", shape: parameterShape, values: parameters.map(\.scale))
        let zeroPoint = PackedIntegers.tensor(name: weight.name + "_zero_point", shape: parameterShape, values: parameters.map(\.zeroPoint), as: type)
        var attributes: [Attribute] = []
        if let axis = layout.axis { attributes.append(.int("axis", Int64(axis))) }
        if case .blocked(_, let blockSize) = layout { attributes.append(.int("block_size", Int64(blockSize))) }
        let dequantize = Node(
            name: weight.name + "_DequantizeLinear", opType: "DequantizeLinear",
            inputs: [quantizedTensor.name, scale.name, zeroPoint.name], outputs: [weight.name + "_DequantizeLinear_Output"],
            attributes: attributes)
        return Result(
            tensors: [quantizedTensor, scale, zeroPoint], node: dequantize, layout: layout, parameters: parameters,
            signalToNoise: SignalToNoise.decibels(original: values, reconstructed: restored),
            bytesBefore: weight.byteCount, bytesAfter: quantizedTensor.byteCount + scale.byteCount + zeroPoint.byteCount,
            scheme: "\(type) \(configuration.weightsSymmetric ? "symmetric" : "asymmetric") \(layout)\(configuration.reduceRange ? " reduced-range" : "")")
    }

    /// fp16/bf16: a half-width initializer and a Cast back to float32 in front of the op.
    private func float(_ weight: Tensor, values: [Float]) -> Result {
        let isHalf = configuration.weights == .float16
        let bits: [UInt16] = values.map { isHalf ? HalfPrecision.bits(from: $0) : BrainFloat.bits(from: $0) }
        let restored: [Float] = bits.map { isHalf ? HalfPrecision.float(fromBits: $0) : Float(bitPattern: UInt32($0) << 16) }
        let buffer = bits.withUnsafeBytes { TensorBuffer(copying: $0) }
        let suffix = isHalf ? "_fp16" : "_bf16"
        let converted = Tensor(name: weight.name + suffix, dataType: isHalf ? .float16 : .bfloat16, shape: weight.shape, storage: .bytes(buffer))
        let cast = Node(
            name: weight.name + "_Cast", opType: "Cast", inputs: [converted.name], outputs: [weight.name + "_Cast_Output"],
            attributes: [.int("to", Int64(DataType.float.rawValue))])
        return Result(
            tensors: [converted], node: cast, layout: nil, parameters: [],
            signalToNoise: SignalToNoise.decibels(original: values, reconstructed: restored),
            bytesBefore: weight.byteCount, bytesAfter: converted.byteCount, scheme: isHalf ? "float16" : "bfloat16")
    }

}
