import NNPipeCore

/// Which ops the training graph can differentiate, and how to make each.
public enum OperatorFactory {
    public static let supportedOps: Set<String> = [
        "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
        "Flatten", "Reshape", "Transpose", "Concat", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
        "BatchNormalization", "Dropout", "Split", "Pad", "Clip", "Identity", "Cast", "Constant",
        "QuantizeLinear", "DequantizeLinear",
    ]

    /// Input positions that carry shapes, statistics or quantisation parameters rather than
    /// values the loss is differentiated by; initializers there are never trained.
    public static func isDifferentiable(opType: String, inputIndex: Int) -> Bool {
        switch opType {
        case "Reshape", "Pad", "Clip", "Split", "Dropout", "QuantizeLinear", "DequantizeLinear": inputIndex == 0
        case "BatchNormalization": inputIndex < 3
        default: true
        }
    }

    /// The operator for `node`; `zeroPointType` is the element type of a Q/DQ node's zero point.
    static func make(node: Node, opset: Int, seed: UInt64, zeroPointType: DataType) throws -> any DifferentiableOperator {
        guard node.domain.isEmpty else {
            throw NNPipeError(.unsupported, "cannot train through '\(node.domain)' op \(node.opType) (node \(node.displayName))")
        }
        switch node.opType {
        case "Gemm": return GemmOperator(node: node)
        case "MatMul": return MatMulOperator()
        case "Add": return BinaryArithmeticOperator(.add)
        case "Sub": return BinaryArithmeticOperator(.subtract)
        case "Mul": return BinaryArithmeticOperator(.multiply)
        case "Div": return BinaryArithmeticOperator(.divide)
        case "Relu": return ActivationOperator(.relu)
        case "LeakyRelu": return ActivationOperator(.leakyRelu(alpha: node.float("alpha", default: 0.01)))
        case "Sigmoid": return ActivationOperator(.sigmoid)
        case "Tanh": return ActivationOperator(.tanh)
        case "Identity": return ActivationOperator(.identity)
        case "Cast":
            guard node.integer("to", default: 0) == Int(DataType.float.rawValue) else {
                throw NNPipeError(.unsupported, "cannot train through Cast to a non-float type (node \(node.displayName))")
            }
            return ActivationOperator(.identity)
        case "Softmax": return SoftmaxOperator(node: node, opset: opset, logarithmic: false)
        case "LogSoftmax": return SoftmaxOperator(node: node, opset: opset, logarithmic: true)
        case "Flatten": return ReshapeOperator(.flatten(axis: node.integer("axis", default: 1)))
        case "Reshape": return ReshapeOperator(.reshape(allowZero: node.integer("allowzero", default: 0) != 0))
        case "Transpose": return TransposeOperator(node: node)
        case "Concat": return ConcatOperator(node: node)
        case "Split": return SplitOperator(node: node)
        case "Pad": return PadOperator(node: node)
        case "Clip": return ClipOperator(node: node)
        case "Conv": return ConvolutionOperator(node: node)
        case "MaxPool":
            guard node.outputs.count == 1 else { throw NNPipeError(.unsupported, "MaxPool with an Indices output is not trainable (node \(node.displayName))") }
            return PoolingOperator(node: node, kind: .maximum)
        case "AveragePool": return PoolingOperator(node: node, kind: .average)
        case "GlobalAveragePool": return GlobalAveragePoolOperator()
        case "BatchNormalization": return BatchNormalizationOperator(node: node)
        case "Dropout": return DropoutOperator(node: node, seed: seed)
        case "QuantizeLinear": return QuantizeLinearOperator(node: node, dequantize: false, zeroPointType: zeroPointType)
        case "DequantizeLinear": return QuantizeLinearOperator(node: node, dequantize: true, zeroPointType: zeroPointType)
        case "Constant": return try ConstantOperator(node: node)
        default:
            throw NNPipeError(.unsupported, "cannot train through op \(node.opType) (node \(node.displayName)); trainable ops: \(supportedOps.sorted().joined(separator: ", "))")
        }
    }
}

/// A Constant node: its value, with no gradient.
final class ConstantOperator: DifferentiableOperator {
    let value: TrainingTensor

    init(node: Node) throws {
        if let tensor = node.attribute("value")?.tensorValue, let value = TrainingTensor(tensor) {
            self.value = value
        } else if let float = node.attribute("value_float")?.floatValue {
            value = TrainingTensor(shape: [], values: [float])
        } else if let floats = node.attribute("value_floats")?.floatsValue {
            value = TrainingTensor(shape: [floats.count], values: floats)
        } else if let integer = node.attribute("value_int")?.intValue {
            value = TrainingTensor(shape: [], values: [Float(integer)])
        } else if let integers = node.attribute("value_ints")?.intsValue {
            value = TrainingTensor(shape: [integers.count], values: integers.map { Float($0) })
        } else {
            throw NNPipeError(.unsupported, "Constant node \(node.displayName) has no numeric value the trainer can read")
        }
    }

    func forward(_ inputs: [TrainingTensor?], phase: TrainingPhase) throws -> [TrainingTensor] { [value] }
    func backward(_ outputGradients: [TrainingTensor?], inputs: [TrainingTensor?], outputs: [TrainingTensor]) throws
        -> [TrainingTensor?]
    { [] }
}
