/// Structural checks every model must pass after import and after every stage:
/// single assignment, topological order, no dangling references, every output produced.
public enum GraphCheck {
    public struct Problem: Sendable, CustomStringConvertible, Hashable {
        public var graphName: String
        public var message: String
        public var description: String {
            graphName.isEmpty ? message : "graph '\(graphName)': \(message)"
        }
    }

    /// All problems found in `graph` and its subgraphs. Names from `outerScope` count as defined,
    /// which is how If/Loop/Scan bodies see their parent's values.
    /// - Complexity: O(nodes + edges) over all nested graphs.
    public static func problems(in graph: Graph, outerScope: Set<String> = []) -> [Problem] {
        var problems: [Problem] = []
        func report(_ message: String) {
            problems.append(Problem(graphName: graph.name, message: message))
        }
        var defined = Set<String>()
        func define(_ name: String, by what: String) {
            guard !name.isEmpty else { return }
            if !defined.insert(name).inserted {
                report("'\(name)' is defined more than once (second time by \(what))")
            }
        }
        // Initializers may also be listed as inputs (IR <= 3 style): that is one definition.
        let initializerNames = Set(graph.initializers.map(\.name) + graph.sparseInitializers.map(\.name))
        for input in graph.inputs where !initializerNames.contains(input.name) {
            define(input.name, by: "graph input")
        }
        for tensor in graph.initializers { define(tensor.name, by: "initializer") }
        for sparse in graph.sparseInitializers { define(sparse.name, by: "sparse initializer") }

        // Names produced by some later node: used to tell "out of order" from "never produced".
        var producedLater = Set<String>()
        for node in graph.nodes { producedLater.formUnion(node.outputs.filter { !$0.isEmpty }) }

        for node in graph.nodes {
            for input in node.inputs where !input.isEmpty {
                if defined.contains(input) || outerScope.contains(input) { continue }
                if producedLater.contains(input) {
                    report("node \(node.displayName) uses '\(input)' before it is produced (nodes are not in topological order)")
                } else {
                    report("node \(node.displayName) uses '\(input)', which nothing produces")
                }
            }
            // Built only for nodes with bodies: doing it for every node made the check quadratic.
            let subgraphs = node.attributes.flatMap(\.subgraphs)
            if !subgraphs.isEmpty {
                let visible = outerScope.union(defined)
                for subgraph in subgraphs {
                    problems += Self.problems(in: subgraph, outerScope: visible)
                }
            }
            for output in node.outputs { define(output, by: "node \(node.displayName)") }
        }
        for output in graph.outputs where !defined.contains(output.name) && !outerScope.contains(output.name) {
            report("graph output '\(output.name)' is not produced by any node, input or initializer")
        }
        // A declared size is a count of elements; a negative one (ONNX stores int64 and does not
        // check) would pass through every stage into files no runtime loads.
        for value in graph.inputs + graph.outputs {
            guard case .tensor(_, let dimensions?) = value.type,
                  let negative = dimensions.compactMap(\.fixedValue).first(where: { $0 < 0 }) else { continue }
            report("'\(value.name)' declares dimension \(negative) in its shape [\(dimensions.map(\.description).joined(separator: ", "))]")
        }
        for tensor in graph.initializers {
            if case .bytes(let buffer) = tensor.storage {
                let expected = tensor.dataType.byteCount(elements: tensor.elementCount)
                if buffer.count != expected {
                    report("initializer '\(tensor.name)' holds \(buffer.count) bytes, its shape \(tensor.shape) of \(tensor.dataType) needs \(expected)")
                }
            }
            if tensor.shape.contains(where: { $0 < 0 }) {
                report("initializer '\(tensor.name)' has a negative dimension in \(tensor.shape)")
            }
        }
        return problems
    }

    /// Throws the first problem as an `.invalidModel` error (the message counts the rest).
    public static func validate(_ model: Model, path: String? = nil) throws {
        let found = problems(in: model.graph)
        guard let first = found.first else { return }
        let more = found.count > 1 ? " (and \(found.count - 1) more problems)" : ""
        throw NNPipeError(.invalidModel, first.description + more, path: path)
    }
}
