import NNPipeCore

/// QOperator (QLinearConv, QLinearMatMul) and dynamic (DynamicQuantizeLinear + ConvInteger /
/// MatMulInteger) forms.
struct IntegerOperatorEmitter {
    let configuration: QuantizeConfiguration
    let stagePath: String
    var notes: [String] = []

    mutating func emit(_ graph: inout Graph, selected: [QuantizationRewriter.Selected], ranges: [String: ValueRange], layers: inout [LayerQuantization]) throws {
        throw NNPipeError(.unsupported, "format '\(configuration.format.rawValue)' with mode '\(configuration.mode.rawValue)' is not implemented yet; use format 'qdq'", path: stagePath)
    }
}
