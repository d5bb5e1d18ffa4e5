import NNPipeCore

/// How an IR value's data is arranged relative to the Keras tensor it stands for.
enum KerasLayout: Equatable {
    /// Exactly the Keras tensor (channels last for spatial tensors).
    case keras
    /// The Keras tensor with its channel axis moved to position 1 (NCHW, NCW).
    case channelsFirst
    /// A Flatten of a channels-first tensor: features in (C, spatial...) order where Keras has (spatial..., C).
    case flattenedChannelsFirst(spatial: [Int], channels: Int)
}

/// An imported Keras tensor: the IR value holding it, its layout, and its Keras shape.
struct KerasValue {
    var name: String
    var layout: KerasLayout
    /// Keras shape, batch first; nil entries are unknown (the batch usually).
    var shape: [Int?]
    var dataType: DataType = .float
    var rank: Int { shape.count }
    /// Spatial extents of a channels-last shape (all but batch and channels).
    var spatial: [Int?] { rank >= 3 ? Array(shape[1..<(rank - 1)]) : [] }
    var channels: Int? { shape.last ?? nil }
}

/// Accumulates the IR graph of an import: nodes in order, initializers, unique names, and
/// layout conversions (each done once per value, however many layers consume it).
struct KerasGraphBuilder {
    var nodes: [Node] = []
    var initializers: [Tensor] = []
    private var usedNames: Set<String> = []
    private var conversions: [String: KerasValue] = [:]
    /// Flatten outputs kept channels-first -> the spatial value they flattened (to undo cheaply).
    var flattenedSources: [String: String] = [:]

    /// `base`, or `base_2`, `base_3`, ... if taken (IR value and node names share one space here).
    mutating func uniqueName(_ base: String) -> String {
        var candidate = base
        var counter = 2
        while usedNames.contains(candidate) {
            candidate = "\(base)_\(counter)"
            counter += 1
        }
        usedNames.insert(candidate)
        return candidate
    }

    mutating func reserve(_ name: String) { usedNames.insert(name) }

    /// Appends a node named `name` whose single output is a fresh value named after it.
    @discardableResult
    mutating func add(_ opType: String, name: String, inputs: [String], output: String? = nil,
                      attributes: [Attribute] = []) -> String {
        let outputName = output ?? uniqueName(name)
        nodes.append(Node(name: name, opType: opType, inputs: inputs, outputs: [outputName], attributes: attributes))
        return outputName
    }

    /// Adds a float32 constant and returns its name.
    mutating func constant(_ name: String, shape: [Int], values: [Float]) -> String {
        let unique = uniqueName(name)
        initializers.append(Tensor(name: unique, shape: shape, values: values))
        return unique
    }

    mutating func constant(_ name: String, shape: [Int], integers: [Int64]) -> String {
        let unique = uniqueName(name)
        initializers.append(Tensor(name: unique, shape: shape, values: integers))
        return unique
    }

    /// `value` rearranged to `layout` (.keras or .channelsFirst), inserting at most one conversion per value.
    mutating func value(_ value: KerasValue, in layout: KerasLayout) -> KerasValue {
        if value.layout == layout { return value }
        // Rank 1-2 tensors have no channel axis to move.
        if value.rank < 3, value.layout == .keras { return value }
        let key = "\(value.name)|\(layout)"
        if let done = conversions[key] { return done }
        var converted = value
        converted.layout = layout
        switch (value.layout, layout) {
        case (.keras, .channelsFirst):
            converted.name = add("Transpose", name: uniqueName("\(value.name)/to_channels_first"), inputs: [value.name],
                                 attributes: [.ints("perm", Self.toChannelsFirst(rank: value.rank))])
        case (.channelsFirst, .keras):
            converted.name = add("Transpose", name: uniqueName("\(value.name)/to_channels_last"), inputs: [value.name],
                                 attributes: [.ints("perm", Self.toChannelsLast(rank: value.rank))])
        case (.flattenedChannelsFirst(let spatial, let channels), .keras) where flattenedSources[value.name] != nil:
            // Flatten the channels-last version of the spatial value instead (one Transpose, often shared).
            let spatialValue = KerasValue(name: flattenedSources[value.name]!, layout: .channelsFirst,
                                          shape: [value.shape[0]] + spatial.map { $0 } + [channels], dataType: value.dataType)
            let moved = self.value(spatialValue, in: .keras)
            converted.name = add("Flatten", name: uniqueName("\(value.name)/channels_last"), inputs: [moved.name],
                                 attributes: [.int("axis", 1)])
        case (.flattenedChannelsFirst(let spatial, let channels), .keras):
            // Rare: a Flatten whose result feeds something other than Dense. Undo the order explicitly.
            let unflat = constant("\(value.name)/channels_first_shape", shape: [spatial.count + 2],
                                  integers: [0, Int64(channels)] + spatial.map(Int64.init))
            let base = value.name
            let shaped = add("Reshape", name: uniqueName("\(base)/unflatten"), inputs: [value.name, unflat])
            let moved = add("Transpose", name: uniqueName("\(base)/to_channels_last"), inputs: [shaped],
                            attributes: [.ints("perm", Self.toChannelsLast(rank: spatial.count + 2))])
            converted.name = add("Flatten", name: uniqueName("\(base)/flatten"), inputs: [moved],
                                 attributes: [.int("axis", 1)])
        default:
            preconditionFailure("no conversion from \(value.layout) to \(layout)")
        }
        conversions[key] = converted
        return converted
    }

    static func toChannelsFirst(rank: Int) -> [Int64] { [0, Int64(rank - 1)] + (1..<(rank - 1)).map(Int64.init) }
    static func toChannelsLast(rank: Int) -> [Int64] { [0] + (2..<rank).map(Int64.init) + [1] }

    /// The IR axis of Keras axis `axis` (negative allowed) of a rank-`rank` tensor held in `layout`.
    static func axis(_ axis: Int, rank: Int, layout: KerasLayout) -> Int {
        let positive = axis < 0 ? axis + rank : axis
        guard layout == .channelsFirst, rank >= 3 else { return positive }
        if positive == 0 { return 0 }
        return positive == rank - 1 ? 1 : positive + 1
    }

    /// Renames an IR value everywhere it is produced or used.
    mutating func rename(_ old: String, to new: String) {
        for index in nodes.indices {
            nodes[index].inputs = nodes[index].inputs.map { $0 == old ? new : $0 }
            nodes[index].outputs = nodes[index].outputs.map { $0 == old ? new : $0 }
        }
        usedNames.insert(new)
    }
}
