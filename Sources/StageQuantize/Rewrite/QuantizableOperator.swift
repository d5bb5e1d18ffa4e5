import NNPipeCore

/// Where the weight, bias and channels of each quantisable op sit, as onnxruntime's quantiser sees them.
enum QuantizableOperator {
    static let supported = ["Conv", "ConvTranspose", "Gemm", "MatMul"]

    /// The input holding a float32 initializer weight (MatMul may hold it on either side).
    static func weightInput(of node: Node, isInitializer: (String) -> Bool) -> Int? {
        switch node.opType {
        case "Conv", "ConvTranspose", "Gemm":
            return node.inputs.count > 1 && isInitializer(node.inputs[1]) ? 1 : nil
        case "MatMul":
            if node.inputs.count > 1 && isInitializer(node.inputs[1]) { return 1 }
            return nil
        default:
            return nil
        }
    }

    /// Inputs that are activations (quantised from calibrated ranges in static mode).
    static func activationInputs(of node: Node) -> [Int] {
        switch node.opType {
        case "Conv", "ConvTranspose", "Gemm": [0]
        case "MatMul": [0]
        default: []
        }
    }

    static func biasInput(of node: Node) -> Int? {
        switch node.opType {
        case "Conv", "ConvTranspose", "Gemm": node.inputs.count > 2 && !node.inputs[2].isEmpty ? 2 : nil
        default: nil
        }
    }

    static func isTransposedB(_ node: Node) -> Bool { node.attribute("transB")?.intValue == 1 }

    /// Output-channel axis: Conv 0, ConvTranspose 1, MatMul last, Gemm 0 if transB else 1.
    static func channelAxis(of node: Node, weightRank: Int) -> Int {
        switch node.opType {
        case "ConvTranspose": 1
        case "MatMul": max(weightRank - 1, 0)
        case "Gemm": isTransposedB(node) ? 0 : 1
        default: 0
        }
    }

    /// Input-channel (reduction) axis, along which blocks run.
    static func reductionAxis(of node: Node, weightRank: Int) -> Int {
        switch node.opType {
        case "Conv": 1
        case "ConvTranspose": 0
        case "MatMul": max(weightRank - 2, 0)
        case "Gemm": isTransposedB(node) ? 1 : 0
        default: 0
        }
    }
}
