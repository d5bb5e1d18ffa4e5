import NNPipeCore

/// The QOperator and dynamic forms:
/// - qoperator (static): QuantizeLinear on inputs, QLinearConv with int32 bias, QLinearMatMul,
///   and Gemm as MatMulInteger + rescale + bias (its calibrated range is after the bias, which
///   QLinearMatMul cannot add); a DequantizeLinear hands each result to float consumers, and the
///   quantised tensor is reused when the next QLinear op reads it.
/// - dynamic: DynamicQuantizeLinear on inputs, ConvInteger / MatMulInteger, Cast, rescale by
///   input scale · weight scale, bias added in float (onnxruntime's quantize_dynamic shape).
struct IntegerOperatorEmitter {
    let configuration: QuantizeConfiguration
    let stagePath: String
    var notes: [String] = []

    /// A quantised activation: the integer tensor and its scale / zero-point tensor names.
    struct QuantizedValue {
        var values: String
        var scale: String
        var zeroPoint: String
    }

    mutating func emit(_ graph: inout Graph, selected: [QuantizationRewriter.Selected], ranges: [String: ValueRange], layers: inout [LayerQuantization]) throws {
        let isDynamic = configuration.mode == .dynamic
        let activationType = configuration.activations ?? .uint8
        let activationRange = activationType.range(symmetric: configuration.activationsSymmetric)
        let weightQuantizer = WeightQuantizer(configuration: configuration)
        var quantizedValues: [String: QuantizedValue] = [:]
        var replacements: [Int: [Node]] = [:]
        var removed = Set<Int>()
        var consumers: [String: [Int]] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(index) }
        }
        let graphOutputs = Set(graph.outputs.map(\.name))

        func staticParameters(_ tensor: String, for node: Node) throws -> QuantizationParameters {
            guard let range = ranges[tensor], range.lower.isFinite, range.upper.isFinite else {
                throw NNPipeError(.stageFailed, "no finite calibration range for '\(tensor)' (used by \(node.displayName)); the calibrate stage before this one did not record it", path: stagePath)
            }
            return QuantizationParameters(lower: range.lower, upper: range.upper, range: activationRange, symmetric: configuration.activationsSymmetric)
        }

        /// The integer form of activation `tensor`, emitting its QuantizeLinear / DynamicQuantizeLinear once.
        func quantizedInput(_ tensor: String, for node: Node, into nodes: inout [Node]) throws -> QuantizedValue {
            if let known = quantizedValues[tensor] { return known }
            let value = QuantizedValue(values: tensor + "_quantized", scale: tensor + "_scale", zeroPoint: tensor + "_zero_point")
            if isDynamic {
                nodes.append(Node(name: tensor + "_DynamicQuantizeLinear", opType: "DynamicQuantizeLinear", inputs: [tensor], outputs: [value.values, value.scale, value.zeroPoint]))
            } else {
                let parameters = try staticParameters(tensor, for: node)
                graph.initializers.append(Tensor(name: value.scale, shape: [], values: [parameters.scale]))
                graph.initializers.append(PackedIntegers.tensor(name: value.zeroPoint, shape: [], values: [parameters.zeroPoint], as: activationType))
                nodes.append(Node(name: tensor + "_QuantizeLinear", opType: "QuantizeLinear", inputs: [tensor, value.scale, value.zeroPoint], outputs: [value.values]))
            }
            quantizedValues[tensor] = value
            return value
        }

        for choice in selected {
            let node = graph.nodes[choice.nodeIndex]
            let weight = graph.initializer(named: node.inputs[choice.weightInput])!
            var nodes: [Node] = []
            switch node.opType {
            case "Conv":
                let input = try quantizedInput(node.inputs[0], for: node, into: &nodes)
                let quantized = try weightQuantizer.quantize(weight, for: node)
                let weightTensors = Self.scalarZeroPointIfUniform(quantized)
                graph.initializers += weightTensors.tensors
                let attributes = node.attributes
                if isDynamic {
                    let integer = node.outputs[0] + "_ConvInteger_Output"
                    nodes.append(Node(name: node.name + "_ConvInteger", opType: "ConvInteger", inputs: [input.values, weightTensors.values, input.zeroPoint, weightTensors.zeroPoint], outputs: [integer], attributes: attributes))
                    let channelShape = quantized.parameters.count == 1 ? [] : [quantized.parameters.count, 1, 1]
                    nodes += rescale(integer, inputScale: input.scale, weightScales: quantized.parameters.map(\.scale), scaleShape: channelShape, bias: QuantizableOperator.biasInput(of: node).map { node.inputs[$0] }, biasShape: [weight.shape[0], 1, 1], output: node.outputs[0], name: node.name, graph: &graph)
                } else {
                    // Fold a Relu that alone consumes the output into the output range, as in QDQ.
                    var output = node.outputs[0]
                    if !configuration.activationsSymmetric, !graphOutputs.contains(output), let users = consumers[output], users.count == 1,
                       graph.nodes[users[0]].opType == "Relu", ranges[graph.nodes[users[0]].outputs[0]] != nil {
                        removed.insert(users[0])
                        output = graph.nodes[users[0]].outputs[0]
                    }
                    let outputParameters = try staticParameters(output, for: node)
                    let inputScale = try staticParameters(node.inputs[0], for: node).scale
                    let outputValue = QuantizedValue(values: output + "_quantized", scale: output + "_scale", zeroPoint: output + "_zero_point")
                    graph.initializers.append(Tensor(name: outputValue.scale, shape: [], values: [outputParameters.scale]))
                    graph.initializers.append(PackedIntegers.tensor(name: outputValue.zeroPoint, shape: [], values: [outputParameters.zeroPoint], as: activationType))
                    var inputs = [input.values, input.scale, input.zeroPoint, weightTensors.values, weightTensors.scale, weightTensors.zeroPoint, outputValue.scale, outputValue.zeroPoint]
                    if let biasInput = QuantizableOperator.biasInput(of: node), let bias = graph.initializer(named: node.inputs[biasInput])?.values(as: Float.self) {
                        let biasValues = BiasQuantizer.quantize(bias, inputScale: inputScale, weightScales: quantized.parameters.map(\.scale)).values
                        let name = node.inputs[biasInput] + "_quantized"
                        graph.initializers.append(Tensor(name: name, shape: [biasValues.count], values: biasValues))
                        inputs.append(name)
                    }
                    nodes.append(Node(name: node.name + "_quant", opType: "QLinearConv", inputs: inputs, outputs: [outputValue.values], attributes: attributes))
                    nodes.append(Node(name: output + "_DequantizeLinear", opType: "DequantizeLinear", inputs: [outputValue.values, outputValue.scale, outputValue.zeroPoint], outputs: [output]))
                    quantizedValues[output] = outputValue
                }
            case "MatMul" where !isDynamic && weight.shape.count == 2:
                let input = try quantizedInput(node.inputs[0], for: node, into: &nodes)
                let quantized = try weightQuantizer.quantize(weight, for: node)
                let weightTensors = Self.scalarZeroPointIfUniform(quantized)
                graph.initializers += weightTensors.tensors
                let output = node.outputs[0]
                let outputParameters = try staticParameters(output, for: node)
                let outputValue = QuantizedValue(values: output + "_quantized", scale: output + "_scale", zeroPoint: output + "_zero_point")
                graph.initializers.append(Tensor(name: outputValue.scale, shape: [], values: [outputParameters.scale]))
                graph.initializers.append(PackedIntegers.tensor(name: outputValue.zeroPoint, shape: [], values: [outputParameters.zeroPoint], as: activationType))
                nodes.append(Node(name: node.name + "_quant", opType: "QLinearMatMul", inputs: [input.values, input.scale, input.zeroPoint, weightTensors.values, weightTensors.scale, weightTensors.zeroPoint, outputValue.scale, outputValue.zeroPoint], outputs: [outputValue.values]))
                nodes.append(Node(name: output + "_DequantizeLinear", opType: "DequantizeLinear", inputs: [outputValue.values, outputValue.scale, outputValue.zeroPoint], outputs: [output]))
                quantizedValues[output] = outputValue
            case "MatMul", "Gemm":
                let alpha = node.attribute("alpha")?.floatValue ?? 1
                let beta = node.attribute("beta")?.floatValue ?? 1
                guard weight.shape.count == 2, node.attribute("transA")?.intValue ?? 0 == 0, alpha == 1, beta == 1 else {
                    notes.append("\(node.displayName): transA, alpha or beta other than 1, or a weight that is not 2-D; left in float")
                    markFloat(node, in: &layers)
                    continue
                }
                let input = try quantizedInput(node.inputs[0], for: node, into: &nodes)
                // MatMulInteger wants B as [K, N]: transpose a transB weight before quantising it.
                let matrix = QuantizableOperator.isTransposedB(node) ? Self.transposed(weight) : weight
                let asMatMul = Node(name: node.name, opType: "MatMul", inputs: [node.inputs[0], matrix.name], outputs: node.outputs)
                let quantized = try weightQuantizer.quantize(matrix, for: asMatMul)
                let weightTensors = Self.scalarZeroPointIfUniform(quantized)
                graph.initializers += weightTensors.tensors
                let integer = node.outputs[0] + "_MatMulInteger_Output"
                nodes.append(Node(name: node.name + "_MatMulInteger", opType: "MatMulInteger", inputs: [input.values, weightTensors.values, input.zeroPoint, weightTensors.zeroPoint], outputs: [integer]))
                let columns = matrix.shape[1]
                nodes += rescale(integer, inputScale: input.scale, weightScales: quantized.parameters.map(\.scale), scaleShape: quantized.parameters.count == 1 ? [] : [columns], bias: QuantizableOperator.biasInput(of: node).map { node.inputs[$0] }, biasShape: nil, output: node.outputs[0], name: node.name.isEmpty ? node.outputs[0] : node.name, graph: &graph)
            default:
                notes.append("\(node.displayName): \(node.opType) has no \(configuration.mode == .dynamic ? "dynamic" : "QOperator") form in nnpipe; left in float")
                markFloat(node, in: &layers)
                continue
            }
            replacements[choice.nodeIndex] = nodes
        }
        guard !replacements.isEmpty else {
            throw NNPipeError(.stageFailed, "nothing to quantise in \(configuration.format.rawValue)/\(configuration.mode.rawValue) form", path: stagePath)
        }
        graph.nodes = graph.nodes.enumerated().flatMap { index, node -> [Node] in
            if removed.contains(index) { return [] }
            return replacements[index] ?? [node]
        }
        Self.removeDeadNodes(&graph)
    }

    /// Cast(int32 → float) · (input scale · weight scale) [+ bias]: the float result under the original name.
    private func rescale(_ integer: String, inputScale: String, weightScales: [Float], scaleShape: [Int], bias: String?, biasShape: [Int]?, output: String, name: String, graph: inout Graph) -> [Node] {
        let weightScale = Tensor(name: name + "_weight_scale", shape: scaleShape, values: weightScales)
        graph.initializers.append(weightScale)
        var nodes = [
            Node(name: name + "_Cast", opType: "Cast", inputs: [integer], outputs: [integer + "_float"], attributes: [.int("to", Int64(DataType.float.rawValue))]),
            Node(name: name + "_scale_Mul", opType: "Mul", inputs: [inputScale, weightScale.name], outputs: [name + "_combined_scale"]),
        ]
        let scaled = bias == nil ? output : output + "_unbiased"
        nodes.append(Node(name: name + "_Mul", opType: "Mul", inputs: [integer + "_float", name + "_combined_scale"], outputs: [scaled]))
        if let bias {
            var biasName = bias
            if let biasShape, let tensor = graph.initializer(named: bias), let values = tensor.values(as: Float.self), values.count == biasShape.reduce(1, *) {
                biasName = bias + "_reshaped"
                graph.initializers.append(Tensor(name: biasName, shape: biasShape, values: values))
            }
            nodes.append(Node(name: name + "_bias_Add", opType: "Add", inputs: [scaled, biasName], outputs: [output]))
        }
        return nodes
    }

    private func markFloat(_ node: Node, in layers: inout [LayerQuantization]) {
        guard let row = layers.firstIndex(where: { $0.node == node.displayName }) else { return }
        layers[row].keptFloat = true
        layers[row].scheme = "float (no \(configuration.format.rawValue)/\(configuration.mode.rawValue) form)"
        layers[row].bytesAfter = layers[row].bytesBefore
    }

    /// onnxruntime's ConvInteger/QLinearConv want one weight zero point; symmetric weights have
    /// all zeros, so one scalar says the same.
    static func scalarZeroPointIfUniform(_ result: WeightQuantizer.Result) -> (tensors: [Tensor], values: String, scale: String, zeroPoint: String) {
        var tensors = result.tensors
        let zeroPoints = result.parameters.map(\.zeroPoint)
        if let first = zeroPoints.first, zeroPoints.allSatisfy({ $0 == first }), zeroPoints.count > 1, let type = QuantizedType(tensors[2].dataType) {
            tensors[2] = PackedIntegers.tensor(name: tensors[2].name, shape: [], values: [first], as: type)
        }
        return (tensors, tensors[0].name, tensors[1].name, tensors[2].name)
    }

    static func transposed(_ weight: Tensor) -> Tensor {
        let values = weight.values(as: Float.self) ?? []
        let rows = weight.shape[0], columns = weight.shape[1]
        var result = [Float](repeating: 0, count: values.count)
        for row in 0..<rows { for column in 0..<columns { result[column * rows + row] = values[row * columns + column] } }
        return Tensor(name: weight.name + "_transposed", shape: [columns, rows], values: result)
    }

    /// Removes nodes whose outputs nothing reads (DequantizeLinear results only QLinear ops needed).
    static func removeDeadNodes(_ graph: inout Graph) {
        let outputs = Set(graph.outputs.map(\.name))
        while true {
            let used = Set(graph.nodes.flatMap(\.inputs)).union(outputs)
            let before = graph.nodes.count
            graph.nodes.removeAll { node in !node.outputs.contains { used.contains($0) } && node.attributes.allSatisfy { $0.subgraphs.isEmpty } }
            if graph.nodes.count == before { return }
        }
    }
}
