import NNPipeCore

/// Applies a `ChannelPlan` to a model: physically, or as the masked model (same channels zeroed,
/// shapes unchanged) that the physically pruned model must match before any fine-tuning.
public enum ChannelSurgery {
    public enum Mode: Sendable { case remove, mask }

    static func apply(_ plan: ChannelPlan, dependencies: ChannelDependencies, to model: inout Model, mode: Mode) throws {
        guard !plan.removed.isEmpty else { return }
        var graph = model.graph
        var index = graph.initializerIndex()
        func removed(_ space: String) -> [Int] { plan.removed[space] ?? [] }
        func kept(_ space: String) -> [Int] {
            let gone = Set(removed(space))
            return (0..<(dependencies.spaces[space]?.count ?? 0)).filter { !gone.contains($0) }
        }
        func keptCount(_ space: String) -> Int { (dependencies.spaces[space]?.count ?? 0) - removed(space).count }
        func replaceInitializer(_ name: String, _ transform: (Tensor) -> Tensor) {
            guard let position = index[name] else { return }
            graph.initializers[position] = transform(graph.initializers[position])
        }
        /// Writes integer `values` into the initializer `name`, keeping its element type.
        func writeIntegers(_ name: String, _ values: [Int64]) {
            replaceInitializer(name) { tensor in
                tensor.dataType == .int32
                    ? Tensor(name: tensor.name, shape: tensor.shape, values: values.map { Int32(clamping: $0) })
                    : Tensor(name: tensor.name, shape: tensor.shape, values: values)
            }
        }

        for edit in dependencies.edits {
            switch edit {
            case .tensorAxis(let tensor, let axis, let space, let zeroInMask):
                guard !removed(space).isEmpty else { continue }
                switch mode {
                case .remove:
                    replaceInitializer(tensor) { TensorEditing.keeping($0, axis: axis, indices: kept(space)) }
                    // An earlier unstructured mask shrinks with its weight, so fine-tuning still honours it.
                    if let mask = model.annotations.pruningMasks[tensor] {
                        model.annotations.pruningMasks[tensor] = TensorEditing.keeping(mask, axis: axis, indices: kept(space))
                    }
                case .mask where zeroInMask:
                    replaceInitializer(tensor) { TensorEditing.zeroing($0, axis: axis, indices: Set(removed(space))) }
                case .mask:
                    continue
                }
            case .depthwiseGroup(let node, let input):
                guard mode == .remove, !removed(input).isEmpty else { continue }
                setAttribute(&graph.nodes[node], .int("group", Int64(keptCount(input))))
            case .splitSizes(let node):
                guard mode == .remove else { continue }
                let sizes = graph.nodes[node].outputs.map { Int64(keptCount($0)) }
                if graph.nodes[node].inputs.count > 1, !graph.nodes[node].inputs[1].isEmpty {
                    writeIntegers(graph.nodes[node].inputs[1], sizes)
                } else if graph.nodes[node].attribute("split") != nil || (model.opsetVersion() ?? 21) < 13 {
                    setAttribute(&graph.nodes[node], .ints("split", sizes))
                } else {
                    // Opset 13+ takes sizes as an input; an even split may no longer be even.
                    let name = uniqueName("\(graph.nodes[node].displayName)_split_sizes", in: graph)
                    graph.initializers.append(Tensor(name: name, shape: [sizes.count], values: sizes))
                    graph.nodes[node].inputs = [graph.nodes[node].inputs[0], name]
                    graph.nodes[node].attributes.removeAll { $0.name == "num_outputs" }
                }
            case .slice(let node, let entry, let input, let output):
                guard mode == .remove, !removed(input).isEmpty else { continue }
                let current = graph.nodes[node]
                let rank = dependencies.shapes[input]?.count ?? 0
                guard let parameters = SliceParameters(current, constants: constantsOf(graph, index), rank: rank) else { continue }
                let slice = parameters.entries[entry]
                let total = dependencies.spaces[input]?.count ?? 0
                let start = parameters.resolvedStart(dimension: total, start: slice.start, step: 1)
                let newStart = Int64(kept(input).filter { $0 < start }.count)
                let newEnd = newStart + Int64(keptCount(output))
                if current.inputs.count > 1 {
                    for (position, value) in [(1, newStart), (2, newEnd)] {
                        guard let tensor = index[current.inputs[position]].map({ graph.initializers[$0] }),
                            var values = tensor.integerValues()
                        else { continue }
                        values[entry] = value
                        writeIntegers(tensor.name, values)
                    }
                } else {
                    for (name, value) in [("starts", newStart), ("ends", newEnd)] {
                        guard var values = current.attribute(name)?.intsValue else { continue }
                        values[entry] = value
                        setAttribute(&graph.nodes[node], .ints(name, values))
                    }
                }
            case .reshapeFeatures(let node, let output, let position):
                guard mode == .remove, !removed(output).isEmpty else { continue }
                let name = graph.nodes[node].inputs[1]
                guard let tensor = index[name].map({ graph.initializers[$0] }), var values = tensor.integerValues() else { continue }
                values[position] = Int64(keptCount(output))
                writeIntegers(name, values)
            }
            index = graph.initializerIndex()
        }

        if mode == .remove {
            // IR <= 3 lists initializers as graph inputs too; their declared shapes follow the data.
            let shrunk = graph.initializerIndex()
            for (position, input) in graph.inputs.enumerated() {
                guard let tensorPosition = shrunk[input.name], case .tensor(let type, _) = input.type else { continue }
                graph.inputs[position].type = .tensor(elementType: type, shape: graph.initializers[tensorPosition].shape.map { .fixed($0) })
            }
            // Declared shapes of intermediate values follow their new channel counts.
            for (position, info) in graph.valueInfo.enumerated() {
                guard let space = dependencies.spaces[info.name], !removed(info.name).isEmpty,
                    case .tensor(let type, var shape?) = info.type, space.axis < shape.count
                else { continue }
                shape[space.axis] = .fixed(keptCount(info.name))
                graph.valueInfo[position].type = .tensor(elementType: type, shape: shape)
            }
        }
        model.graph = graph
    }

    private static func uniqueName(_ base: String, in graph: Graph) -> String {
        var taken = Set(graph.initializers.map(\.name))
        for node in graph.nodes { taken.formUnion(node.outputs) }
        taken.formUnion(graph.inputs.map(\.name))
        var name = base
        var suffix = 1
        while taken.contains(name) {
            name = "\(base)_\(suffix)"
            suffix += 1
        }
        return name
    }

    private static func constantsOf(_ graph: Graph, _ index: [String: Int]) -> [String: Tensor] {
        index.mapValues { graph.initializers[$0] }
    }

    private static func setAttribute(_ node: inout Node, _ attribute: Attribute) {
        if let position = node.attributes.firstIndex(where: { $0.name == attribute.name }) {
            node.attributes[position] = attribute
        } else {
            node.attributes.append(attribute)
        }
    }
}

/// The public entry points tests and other stages use.
public enum ChannelPruning {
    /// Plans removal of `ratio` of the channels in every dependency group. Criterion `.taylor`
    /// needs `dataset` (with labels), of which it uses `batches` batches.
    public static func plan(
        _ model: Model, ratio: Double, criterion: ChannelCriterion, exclude: [String] = [],
        dataset: DatasetSpecification? = nil, batches: Int = 8, path: String = "stages[?]"
    ) throws -> ChannelPlan {
        let dependencies = ChannelDependencies(graph: model.graph, exclude: exclude)
        var taylor: TaylorContributions?
        if criterion == .taylor {
            guard let dataset else {
                throw NNPipeError(.usage, "criterion taylor needs a dataset with labels", path: "\(path).criterion")
            }
            taylor = try TaylorImportance.measure(model, dependencies: dependencies, dataset: dataset, batches: batches, path: path, progress: .silent)
        }
        return try ChannelPlanner.plan(model.graph, dependencies: dependencies, ratio: ratio, criterion: criterion, taylor: taylor, path: path)
    }

    /// The model with the planned channels removed (`.remove`) or zeroed (`.mask`).
    public static func apply(_ plan: ChannelPlan, to model: Model, mode: ChannelSurgery.Mode, exclude: [String] = []) throws -> Model {
        var copy = model
        let dependencies = ChannelDependencies(graph: model.graph, exclude: exclude)
        try ChannelSurgery.apply(plan, dependencies: dependencies, to: &copy, mode: mode)
        return copy
    }
}
