/// Keras files hold float layers only. A weight-only quantised model (DequantizeLinear or Cast of a
/// constant in front of each op) can still be written as "fake quantisation": each such node is
/// replaced by the float32 values it produces, so the file predicts like the quantised model but
/// does not shrink. Graphs that quantise activations (static QDQ, QOperator, dynamic) cannot.
public enum FakeQuantization {
    /// Ops that compute on integers or quantise at run time: no Keras layer does either.
    static let integerOperators: Set<String> = [
        "QuantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
        "QGemm", "QLinearAdd", "QLinearMul", "MatMulNBits", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
    ]

    public struct Findings: Sendable {
        /// DequantizeLinear / Cast nodes that only turn a stored constant into float weights.
        public var weightNodes: [Node] = []
        /// Nodes that quantise or compute on activations.
        public var activationNodes: [Node] = []
        public var isQuantized: Bool { !weightNodes.isEmpty || !activationNodes.isEmpty }
    }

    public static func findings(in graph: Graph) -> Findings {
        let constants = Set(graph.initializers.map(\.name))
        let halfConstants = Set(graph.initializers.filter { $0.dataType == .float16 || $0.dataType == .bfloat16 }.map(\.name))
        var findings = Findings()
        for node in graph.nodes {
            if integerOperators.contains(node.opType) {
                findings.activationNodes.append(node)
            } else if node.opType == "DequantizeLinear" {
                if node.inputs.filter({ !$0.isEmpty }).allSatisfy(constants.contains) {
                    findings.weightNodes.append(node)
                } else {
                    findings.activationNodes.append(node)
                }
            } else if node.opType == "Cast", let input = node.inputs.first, halfConstants.contains(input),
                      node.attribute("to")?.intValue == Int64(DataType.float.rawValue) {
                findings.weightNodes.append(node)
            }
        }
        return findings
    }

    /// The model with every weight DequantizeLinear / half-precision Cast folded into a float32
    /// initializer of the same name as the node's output. Throws when activations are quantised.
    public static func dequantizingWeights(_ model: Model) throws -> (model: Model, folded: Int) {
        let findings = findings(in: model.graph)
        if let first = findings.activationNodes.first {
            throw NNPipeError(.unsupported, "the model quantises activations (\(findings.activationNodes.count) nodes such as '\(first.displayName)' (\(first.opType))); Keras has no integer layers, so only weight-only models can be written with dequantize_weights: export ONNX (.onnx) instead")
        }
        var model = model
        var graph = model.graph
        let index = graph.initializerIndex()
        var folded: [String: Tensor] = [:]
        for node in findings.weightNodes {
            let inputs = node.inputs.map { $0.isEmpty ? nil : index[$0].map { graph.initializers[$0] } }
            guard let source = inputs[0] else { continue }
            let output = node.outputs[0]
            if node.opType == "Cast" {
                guard let values = source.floatValues() else { throw notDecodable(source, node) }
                folded[output] = Tensor(name: output, shape: source.shape, values: values)
                continue
            }
            guard let scale = inputs.count > 1 ? inputs[1] : nil, let scales = scale.floatValues(),
                  let quantized = integers(source) else { throw notDecodable(source, node) }
            let zeros = (inputs.count > 2 ? inputs[2] : nil).map { integers($0) ?? [] } ?? [Int64](repeating: 0, count: scales.count)
            guard zeros.count == scales.count else { throw notDecodable(source, node) }
            let rank = source.shape.count
            let axis = Int(node.attribute("axis")?.intValue ?? 1)
            let dimension = axis < 0 ? axis + rank : axis
            let blockSize = Int(node.attribute("block_size")?.intValue ?? 0)
            let inner = dimension >= 0 && dimension < rank ? source.shape[(dimension + 1)...].reduce(1, *) : 1
            let length = dimension >= 0 && dimension < rank ? source.shape[dimension] : 1
            let blocks = blockSize > 0 ? (length + blockSize - 1) / blockSize : length
            let values = quantized.indices.map { element -> Float in
                let parameter: Int
                if scales.count == 1 {
                    parameter = 0
                } else if blockSize > 0 {
                    let position = (element / inner) % length
                    parameter = ((element / (length * inner)) * blocks + position / blockSize) * inner + element % inner
                } else {
                    parameter = (element / inner) % length
                }
                return Float(quantized[element] - zeros[parameter]) * scales[parameter]
            }
            folded[output] = Tensor(name: output, shape: source.shape, values: values)
        }
        let foldedNames = Set(findings.weightNodes.map(\.outputs[0])).intersection(folded.keys)
        let storedInputs = Set(findings.weightNodes.filter { foldedNames.contains($0.outputs[0]) }.flatMap(\.inputs))
        graph.nodes.removeAll { foldedNames.contains($0.outputs.first ?? "") && ($0.opType == "DequantizeLinear" || $0.opType == "Cast") }
        graph.initializers += foldedNames.sorted().compactMap { folded[$0] }
        // The stored integer weights, scales and zero points are no longer read.
        var read = Set(graph.outputs.map(\.name))
        for node in graph.nodes { read.formUnion(node.inputs) }
        graph.initializers.removeAll { storedInputs.contains($0.name) && !read.contains($0.name) }
        model.graph = graph
        return (model, foldedNames.count)
    }

    /// Integer elements widened to Int64, 4-bit types unpacked (low nibble first, as ONNX packs them).
    static func integers(_ tensor: Tensor) -> [Int64]? {
        guard tensor.dataType == .int4 || tensor.dataType == .uint4 else { return tensor.integerValues() }
        guard let bytes = tensor.buffer.map({ Array($0.bytes) }) else { return nil }
        let count = tensor.shape.reduce(1, *)
        return (0..<count).map { element in
            let byte = bytes[element / 2]
            let nibble = Int64(element % 2 == 0 ? byte & 0x0F : byte >> 4)
            return tensor.dataType == .int4 && nibble >= 8 ? nibble - 16 : nibble
        }
    }

    static func notDecodable(_ tensor: Tensor, _ node: Node) -> NNPipeError {
        NNPipeError(.unsupported, "cannot dequantise '\(tensor.name)' (\(tensor.dataType)) for node '\(node.displayName)'")
    }
}
