import NNPipeCore

/// A weight initializer that magnitude pruning may zero: the weight input of a Conv, Gemm or MatMul.
public struct PrunableWeight: Sendable, Hashable {
    /// The node that consumes the weight (its display name) and its position in the graph.
    public var nodeName: String
    public var nodeIndex: Int
    public var opType: String
    public var weightName: String
    public var shape: [Int]
    /// The reduction axis (input channels / input features): patterns group along it.
    public var inputAxis: Int
    /// The axis of output channels / output features.
    public var outputAxis: Int
    /// A Conv with one input channel per group (group == input channels).
    public var isDepthwise: Bool

    public var elementCount: Int { shape.reduce(1, *) }
}

/// Which weights a prune stage works on, after the first/last, depthwise and `exclude` rules.
public struct PrunableSelection: Sendable {
    public var layers: [PrunableWeight]
    /// Layers left out, with the reason (reported, so users see why a layer stayed dense).
    public var skipped: [(layer: PrunableWeight, reason: String)]
}

public enum PrunableWeights {
    /// Every Conv/Gemm/MatMul whose weight is a floating-point initializer, in graph order;
    /// a weight shared by several nodes is listed once, at its first use.
    public static func all(in graph: Graph) -> [PrunableWeight] {
        let initializers = graph.initializerIndex()
        var seen = Set<String>()
        var found: [PrunableWeight] = []
        for (index, node) in graph.nodes.enumerated() where node.domain.isEmpty {
            guard ["Conv", "Gemm", "MatMul"].contains(node.opType), node.inputs.count >= 2,
                let position = initializers[node.inputs[1]]
            else { continue }
            let tensor = graph.initializers[position]
            guard tensor.dataType.isFloatingPoint, tensor.dataType.bitWidth >= 16,
                tensor.shape.count >= 2, seen.insert(tensor.name).inserted
            else { continue }
            let rank = tensor.shape.count
            var inputAxis = 0
            var outputAxis = 1
            var isDepthwise = false
            switch node.opType {
            case "Conv":
                inputAxis = 1
                outputAxis = 0
                let group = node.attribute("group")?.intValue ?? 1
                isDepthwise = group > 1 && tensor.shape[1] == 1
            case "Gemm":
                let transposed = (node.attribute("transB")?.intValue ?? 0) != 0
                inputAxis = transposed ? 1 : 0
                outputAxis = transposed ? 0 : 1
            default:
                inputAxis = rank - 2
                outputAxis = rank - 1
            }
            found.append(PrunableWeight(
                nodeName: node.displayName, nodeIndex: index, opType: node.opType,
                weightName: tensor.name, shape: tensor.shape, inputAxis: inputAxis,
                outputAxis: outputAxis, isDepthwise: isDepthwise))
        }
        return found
    }

    /// The layers to prune. First and last are by graph order (the stem and the classifier,
    /// which lose the most accuracy per weight removed).
    public static func select(
        in graph: Graph, exclude: [String], includeFirstLast: Bool, pruneDepthwise: Bool
    ) -> PrunableSelection {
        let layers = all(in: graph)
        var kept: [PrunableWeight] = []
        var skipped: [(layer: PrunableWeight, reason: String)] = []
        for (position, layer) in layers.enumerated() {
            if let pattern = exclude.first(where: { matches($0, layer) }) {
                skipped.append((layer, "excluded by '\(pattern)'"))
            } else if layer.isDepthwise && !pruneDepthwise {
                skipped.append((layer, "depthwise (set prune_depthwise to include it)"))
            } else if !includeFirstLast && (position == 0 || position == layers.count - 1) {
                skipped.append((layer, "\(position == 0 ? "first" : "last") layer (set include_first_last to include it)"))
            } else {
                kept.append(layer)
            }
        }
        return PrunableSelection(layers: kept, skipped: skipped)
    }

    /// An `exclude` entry names an op type exactly, or a node or weight name with `*` wildcards.
    static func matches(_ pattern: String, _ layer: PrunableWeight) -> Bool {
        pattern == layer.opType || WildcardPattern.matches(pattern, layer.nodeName)
            || WildcardPattern.matches(pattern, layer.weightName)
    }
}
