import NNPipeCore

/// The tensors a later quantize stage needs ranges for: activation inputs and outputs of the ops it
/// quantises, and the output of a Relu that directly follows one (folded into that op's range).
public enum CalibrationTargets {
    public static let quantizedOperators: Set<String> = ["Conv", "ConvTranspose", "Gemm", "MatMul"]

    public static func tensors(in graph: Graph) -> [String] {
        let constants = Set(graph.initializers.map(\.name))
        var consumers: [String: [Node]] = [:]
        for node in graph.nodes {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(node) }
        }
        var names: [String] = []
        var seen = Set<String>()
        func add(_ name: String) {
            if !name.isEmpty, !constants.contains(name), seen.insert(name).inserted { names.append(name) }
        }
        for node in graph.nodes where node.domain.isEmpty && quantizedOperators.contains(node.opType) {
            let activationInputs = node.opType == "MatMul" ? Array(node.inputs.prefix(2)) : Array(node.inputs.prefix(1))
            activationInputs.forEach(add)
            guard let output = node.outputs.first else { continue }
            add(output)
            for consumer in consumers[output] ?? [] where consumer.opType == "Relu" { add(consumer.outputs[0]) }
        }
        return names
    }
}
