import NNPipeCore

/// Multiply-accumulates of Conv, Gemm and MatMul with static shapes (batch 1 where symbolic).
public enum MACCounter {
    public struct Count: Sendable, Equatable {
        /// Total over the layers whose shapes are known.
        public var total: Int
        /// Per node display name.
        public var perNode: [String: Int]
        /// Layers whose shapes could not be derived (their MACs are not in `total`).
        public var unknownNodes: [String]
    }

    /// - Complexity: O(nodes) plus shape propagation.
    public static func count(_ graph: Graph, shapes: [String: [Int]]? = nil) -> Count {
        let shapes = shapes ?? StaticShapes.infer(graph)
        var total = 0
        var perNode: [String: Int] = [:]
        var unknown: [String] = []
        for node in graph.nodes where node.domain.isEmpty && ["Conv", "Gemm", "MatMul"].contains(node.opType) {
            guard let macs = macs(node, shapes: shapes) else {
                unknown.append(node.displayName)
                continue
            }
            perNode[node.displayName, default: 0] += macs
            total += macs
        }
        return Count(total: total, perNode: perNode, unknownNodes: unknown)
    }

    static func macs(_ node: Node, shapes: [String: [Int]]) -> Int? {
        guard node.inputs.count >= 2, let a = shapes[node.inputs[0]], let b = shapes[node.inputs[1]],
            let output = node.outputs.first.flatMap({ shapes[$0] })
        else { return nil }
        switch node.opType {
        case "Conv":
            // Each output element sums over (input channels / group) · kernel positions.
            return output.reduce(1, *) * b.dropFirst().reduce(1, *)
        case "Gemm":
            let inner = (node.attribute("transA")?.intValue ?? 0) != 0 ? a.first : a.last
            return inner.map { output.reduce(1, *) * $0 }
        default:
            return a.last.map { output.reduce(1, *) * $0 }
        }
    }
}
