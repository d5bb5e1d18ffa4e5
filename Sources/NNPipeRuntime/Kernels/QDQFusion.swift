import NNPipeCore

/// Rewrites QDQ node groups into the integer ops onnxruntime's CPU provider turns them into
/// (its QDQSelectorActionTransformer, default optimisation level), so nnpipe's runtime computes what
/// onnxruntime computes for an exported QDQ file rather than the float graph the file spells out:
///
/// - DQ(x), DQ(w) → MatMul → Q            becomes QLinearMatMul
/// - DQ(x), DQ(w)[, DQ(int32 b)] → Conv → Q  becomes QLinearConv
/// - DQ(a), DQ(b)[, DQ(int32 c)] → Gemm[ → Q] becomes com.microsoft QGemm
///
/// A Relu between the op and its Q is dropped when the Q's zero point is its type's minimum (the Q
/// clamps negatives away anyway). Groups follow onnxruntime's selectors: 8-bit types only, the
/// activation type equal on both sides, int8 activations only on ARM (`QDQIsInt8Allowed`), the op's
/// output read by its Q alone and not a graph output. DQ nodes shared by several groups stay as they
/// are for other readers (onnxruntime duplicates them first: EnsureUniqueDQForNodeUnit).
public enum QDQFusion {
    public static let microsoftDomain = "com.microsoft"

    public static func fuse(_ model: Model) -> Model {
        var model = model
        let graph = model.graph
        var producer: [String: Int] = [:]
        var readers: [String: [Int]] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
            for input in node.inputs where !input.isEmpty { readers[input, default: []].append(index) }
        }
        let graphOutputs = Set(graph.outputs.map(\.name))
        let initializers = graph.initializerIndex()
        func type(of name: String) -> DataType? {
            if let index = initializers[name] { return graph.initializers[index].dataType }
            if let input = graph.inputs.first(where: { $0.name == name }), case .tensor(let type, _) = input.type { return type }
            guard let index = producer[name] else { return nil }
            let node = graph.nodes[index]
            guard node.opType == "QuantizeLinear", node.domain.isEmpty else { return nil }
            if node.inputs.count > 2, !node.inputs[2].isEmpty { return type(of: node.inputs[2]) }
            if let raw = node.attribute("output_dtype")?.intValue, raw != 0 { return DataType(rawValue: Int32(raw)) }
            return .uint8
        }
        func zeroPointIsMinimum(_ quantize: Node) -> Bool {
            guard quantize.inputs.count > 2, !quantize.inputs[2].isEmpty else { return true }  // default uint8 zero point 0
            guard let index = initializers[quantize.inputs[2]], let value = graph.initializers[index].values(as: Int64.self)?.first else { return false }
            switch graph.initializers[index].dataType {
            case .uint8: return value == 0
            case .int8: return value == -128
            default: return false
            }
        }
        #if arch(arm64)
        let int8ActivationsAllowed = true
        #else
        let int8ActivationsAllowed = false
        #endif

        var removed = Set<Int>()
        var replacement: [Int: Node] = [:]
        for (index, node) in graph.nodes.enumerated() where node.domain.isEmpty && ["MatMul", "Conv", "Gemm"].contains(node.opType) {
            let present = node.inputs.enumerated().filter { !$0.element.isEmpty }
            guard node.opType != "MatMul" || present.count == 2, present.count >= 2 else { continue }
            // Every input comes from a per-tensor or per-axis DequantizeLinear that is not a graph output.
            var dequantizers: [Int: Node] = [:]
            for (position, name) in present {
                guard let source = producer[name], !removed.contains(source), graph.nodes[source].opType == "DequantizeLinear",
                      graph.nodes[source].domain.isEmpty, !graphOutputs.contains(name),
                      (graph.nodes[source].attribute("block_size")?.intValue ?? 0) == 0 else { break }
                dequantizers[position] = graph.nodes[source]
            }
            guard dequantizers.count == present.count, let activation = dequantizers[0], let weight = dequantizers[1],
                  let activationType = type(of: activation.inputs[0]), let weightType = type(of: weight.inputs[0]) else { continue }
            guard [.uint8, .int8].contains(activationType), [.uint8, .int8].contains(weightType) else { continue }
            if activationType == .int8 && (weightType != .int8 || (node.opType != "Gemm" && !int8ActivationsAllowed)) { continue }
            if let bias = dequantizers[2], type(of: bias.inputs[0]) != .int32 { continue }
            if node.opType == "Gemm", dequantizers[2] != nil, (node.attribute("beta")?.floatValue ?? 1) != 1 { continue }

            // The output: read by exactly one Q (possibly through a Relu the Q makes redundant).
            guard let output = node.outputs.first, node.outputs.count == 1, !graphOutputs.contains(output) else { continue }
            var relu: Int?
            var quantizer: Int?
            let users = readers[output] ?? []
            if users.count == 1, graph.nodes[users[0]].opType == "Relu", graph.nodes[users[0]].domain.isEmpty,
               !graphOutputs.contains(graph.nodes[users[0]].outputs[0]) {
                let reluUsers = readers[graph.nodes[users[0]].outputs[0]] ?? []
                if reluUsers.count == 1, graph.nodes[reluUsers[0]].opType == "QuantizeLinear", zeroPointIsMinimum(graph.nodes[reluUsers[0]]) {
                    relu = users[0]
                    quantizer = reluUsers[0]
                } else { continue }  // a Relu the Q does not make redundant: onnxruntime leaves the group alone
            } else if users.count == 1, graph.nodes[users[0]].opType == "QuantizeLinear", graph.nodes[users[0]].domain.isEmpty {
                quantizer = users[0]
            } else if !users.isEmpty, users.contains(where: { graph.nodes[$0].opType == "QuantizeLinear" }) {
                continue  // several readers including a Q: onnxruntime leaves the group alone
            }
            if let quantizer {
                let quantize = graph.nodes[quantizer]
                guard (quantize.attribute("block_size")?.intValue ?? 0) == 0, type(of: quantize.outputs[0]) == activationType else { continue }
            } else if node.opType != "Gemm" {
                continue  // MatMul without Q would be MatMulIntegerToFloat, Conv has no float-output form
            }

            let zero = { (dequantize: Node) in dequantize.inputs.count > 2 ? dequantize.inputs[2] : "" }
            var fused: Node
            let name = node.name.isEmpty ? output : node.name
            switch node.opType {
            case "MatMul":
                let quantize = graph.nodes[quantizer!]
                fused = Node(name: name + "_quant", opType: "QLinearMatMul",
                             inputs: [activation.inputs[0], activation.inputs[1], zero(activation), weight.inputs[0], weight.inputs[1], zero(weight),
                                      quantize.inputs[1], quantize.inputs.count > 2 ? quantize.inputs[2] : ""],
                             outputs: [quantize.outputs[0]])
            case "Conv":
                let quantize = graph.nodes[quantizer!]
                fused = Node(name: name + "_quant", opType: "QLinearConv",
                             inputs: [activation.inputs[0], activation.inputs[1], zero(activation), weight.inputs[0], weight.inputs[1], zero(weight),
                                      quantize.inputs[1], quantize.inputs.count > 2 ? quantize.inputs[2] : ""] + (dequantizers[2].map { [$0.inputs[0]] } ?? []),
                             outputs: [quantize.outputs[0]], attributes: node.attributes)
            default:
                var inputs = [activation.inputs[0], activation.inputs[1], zero(activation), weight.inputs[0], weight.inputs[1], zero(weight),
                              dequantizers[2]?.inputs[0] ?? ""]
                var outputs = [output]
                if let quantizer {
                    let quantize = graph.nodes[quantizer]
                    inputs += [quantize.inputs[1], quantize.inputs.count > 2 ? quantize.inputs[2] : ""]
                    outputs = [quantize.outputs[0]]
                }
                fused = Node(name: name + "_quant", opType: "QGemm", domain: microsoftDomain, inputs: inputs, outputs: outputs,
                             attributes: node.attributes.filter { ["alpha", "transA", "transB"].contains($0.name) })
            }
            while fused.inputs.last == "" { fused.inputs.removeLast() }
            replacement[index] = fused
            if let relu { removed.insert(relu) }
            if let quantizer { removed.insert(quantizer) }
        }
        guard !replacement.isEmpty else { return model }

        var nodes: [Node] = []
        for (index, node) in graph.nodes.enumerated() where !removed.contains(index) {
            nodes.append(replacement[index] ?? node)
        }
        // DQ nodes nothing reads any more go too.
        var read = Set(graph.outputs.map(\.name))
        for node in nodes { read.formUnion(node.inputs) }
        nodes.removeAll { $0.opType == "DequantizeLinear" && $0.domain.isEmpty && !read.contains($0.outputs[0]) }
        model.graph.nodes = nodes
        if !model.opsetImports.contains(where: { $0.domain == microsoftDomain }) {
            model.opsetImports.append(OperatorSetID(domain: microsoftDomain, version: 1))
        }
        return model
    }
}
