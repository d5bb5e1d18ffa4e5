import NNPipeCore

/// Raises the default-domain opset when quantisation ops need a newer one, converting or
/// refusing the ops whose signature changed on the way (never silently changing their meaning).
enum OpsetUpgrade {
    /// Ops whose `axes` attribute became an input at the given version.
    static let axesBecameInput: [String: Int64] = [
        "ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18,
        "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 18, "ReduceLogSumExp": 18, "ReduceSumSquare": 18,
        "Squeeze": 13, "Unsqueeze": 13,
    ]
    /// Ops changed in ways this upgrade does not convert (attributes that became inputs, removed ops).
    static let changedAt: [String: Int64] = [
        "Split": 13, "Pad": 11, "Clip": 11, "Slice": 10, "TopK": 10, "Upsample": 10, "Resize": 11,
        "Dropout": 12, "Scatter": 11, "Scan": 9,
    ]

    static func raise(_ model: inout Model, to needed: Int64, stagePath: String) throws {
        let current = model.opsetVersion() ?? 1
        guard current < needed else { return }
        var graph = model.graph
        var converted: [Node] = []
        for var node in graph.nodes {
            defer { converted.append(node) }
            guard node.domain.isEmpty else { continue }
            if let version = changedAt[node.opType], current < version, version <= needed {
                throw NNPipeError(.unsupported, "quantisation needs opset \(needed), but \(node.displayName) (\(node.opType)) changed meaning after the model's opset \(current); convert the model to opset \(needed) first", path: stagePath)
            }
            if let version = axesBecameInput[node.opType], current < version, version <= needed,
               let axes = node.attribute("axes")?.intsValue {
                let name = (node.name.isEmpty ? node.outputs[0] : node.name) + "_axes"
                graph.initializers.append(Tensor(name: name, shape: [axes.count], values: axes))
                node.attributes.removeAll { $0.name == "axes" }
                while node.inputs.count < 1 { node.inputs.append("") }
                node.inputs.insert(name, at: 1)
                node.inputs = Array(node.inputs.prefix(2))
            }
        }
        graph.nodes = converted
        model.graph = graph
        model.opsetImports.removeAll { $0.domain == "" || $0.domain == "ai.onnx" }
        model.opsetImports.insert(OperatorSetID(domain: "", version: needed), at: 0)
        // IR 10 is the oldest that knows opset 21 (int4/uint4 types).
        if needed >= 21 { model.irVersion = max(model.irVersion, 10) } else if needed >= 13 { model.irVersion = max(model.irVersion, 7) }
    }
}
