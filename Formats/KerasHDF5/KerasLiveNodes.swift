import NNPipeCore

/// Nodes that contribute to a graph output. Importing leaves no dead nodes behind, and
/// exporting skips them: a Keras layer nothing uses would break Keras's weight loading order.
enum KerasLiveNodes {
    /// Indices of nodes some graph output depends on. - Complexity: O(nodes + edges).
    static func indices(in graph: Graph) -> Set<Int> {
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
        }
        var live: Set<Int> = []
        var pending = graph.outputs.compactMap { producer[$0.name] }
        while let index = pending.popLast() {
            guard live.insert(index).inserted else { continue }
            pending += graph.nodes[index].inputs.compactMap { producer[$0] }
        }
        return live
    }

    /// `graph` without dead nodes and without initializers only they used.
    static func pruned(_ graph: Graph) -> Graph {
        let live = indices(in: graph)
        var result = graph
        result.nodes = graph.nodes.enumerated().filter { live.contains($0.offset) }.map(\.element)
        let used = Set(result.nodes.flatMap(\.inputs) + graph.outputs.map(\.name))
        result.initializers = graph.initializers.filter { used.contains($0.name) }
        return result
    }
}
