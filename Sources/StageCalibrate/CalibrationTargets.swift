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

    /// Ops whose output holds exactly their first input's values in the same order.
    static let valuePreservingOperators: Set<String> = ["Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity"]

    /// Targets whose values are another target's, batch for batch (the Flatten before a Gemm holds
    /// the last Relu's values): they get that target's range without being counted a second time.
    /// Maps each such target to the target it copies.
    public static func aliases(in graph: Graph, targets: [String]) -> [String: String] {
        let targetSet = Set(targets)
        var producer: [String: Node] = [:]
        for node in graph.nodes { for output in node.outputs where !output.isEmpty { producer[output] = node } }
        var aliases: [String: String] = [:]
        for name in targets {
            var current = name
            while let node = producer[current], node.domain.isEmpty, valuePreservingOperators.contains(node.opType),
                  let source = node.inputs.first, !source.isEmpty {
                current = source
                if targetSet.contains(current) {
                    aliases[name] = current
                    break
                }
            }
        }
        return aliases
    }
}
