import NNPipeCore

/// Recognises activation patterns (single ops and the decompositions the importer writes for
/// swish and gelu) so they become Keras activations, fused into the preceding layer when possible.
extension KerasExporter {
    struct ActivationMatch {
        var name: String
        var nodes: [Int]
        var input: String
        var output: String
    }

    func scalar(_ name: String) -> Float? {
        guard let tensor = initializers[name], tensor.elementCount == 1 else { return nil }
        return tensor.floatValues()?.first
    }

    /// The activation starting at node `index`, if its ops form one Keras knows.
    func activation(at index: Int) -> ActivationMatch? {
        let node = graph.nodes[index]
        guard let input = node.inputs.first, let output = node.outputs.first, node.outputs.count == 1 else { return nil }
        func simple(_ name: String) -> ActivationMatch { ActivationMatch(name: name, nodes: [index], input: input, output: output) }
        switch node.opType {
        case "Relu": return simple("relu")
        case "Tanh": return simple("tanh")
        case "Softplus": return simple("softplus")
        case "Softsign": return simple("softsign")
        case "Exp": return simple("exponential")
        case "Elu": return (node.attribute("alpha")?.floatValue ?? 1) == 1 ? simple("elu") : nil
        case "Selu":
            let alpha = node.attribute("alpha")?.floatValue ?? 1.67326319217681884765625
            let gamma = node.attribute("gamma")?.floatValue ?? 1.05070102214813232421875
            return abs(alpha - 1.6732632) < 1e-5 && abs(gamma - 1.0507009) < 1e-5 ? simple("selu") : nil
        case "Clip":
            guard node.inputs.count >= 3, scalar(node.inputs[1]) == 0, scalar(node.inputs[2]) == 6 else { return nil }
            return simple("relu6")
        case "Sigmoid":
            // x * sigmoid(x) is swish.
            if let user = soleConsumer(of: output), graph.nodes[user].opType == "Mul",
               Set(graph.nodes[user].inputs) == Set([input, output]), let result = graph.nodes[user].outputs.first {
                return ActivationMatch(name: "swish", nodes: [index, user], input: input, output: result)
            }
            return simple("sigmoid")
        case "Div":
            // x * 0.5 * (1 + erf(x / sqrt 2)) is exact gelu, as the importer writes it.
            guard node.inputs.count == 2, let root = scalar(node.inputs[1]), abs(root - Float(2).squareRoot()) < 1e-6,
                  let erf = soleConsumer(of: output), graph.nodes[erf].opType == "Erf",
                  let add = soleConsumer(of: graph.nodes[erf].outputs[0]), graph.nodes[add].opType == "Add",
                  graph.nodes[add].inputs.contains(where: { scalar($0) == 1 }),
                  let product = soleConsumer(of: graph.nodes[add].outputs[0]), graph.nodes[product].opType == "Mul",
                  graph.nodes[product].inputs.contains(input),
                  let half = soleConsumer(of: graph.nodes[product].outputs[0]), graph.nodes[half].opType == "Mul",
                  graph.nodes[half].inputs.contains(where: { scalar($0) == 0.5 })
            else { return nil }
            return ActivationMatch(name: "gelu", nodes: [index, erf, add, product, half], input: input, output: graph.nodes[half].outputs[0])
        default:
            return nil
        }
    }

    /// An activation that can be folded into the layer producing `value`: every user of `value` is part of it.
    mutating func fusedActivation(after value: String) -> ActivationMatch? {
        guard !outputNames.contains(value), let users = consumers[value], let first = users.min(),
              let match = activation(at: first), match.input == value, Set(users).isSubset(of: match.nodes),
              match.nodes.allSatisfy({ !consumed.contains($0) })
        else { return nil }
        consumed.formUnion(match.nodes)
        return match
    }

    /// Exports a standalone activation pattern starting at `index` (already marked consumed).
    mutating func exportActivation(_ match: ActivationMatch, node: Node) throws {
        consumed.formUnion(match.nodes)
        let source = try input(node, 0)
        addLayer("Activation", name: match.output, config: [("activation", .string(match.name))], inputs: [source],
                 output: match.output, relation: source.relation, shape: source.shape)
    }
}
