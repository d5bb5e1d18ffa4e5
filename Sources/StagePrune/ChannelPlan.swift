import NNPipeCore

/// How channels are ranked within a dependency group.
public enum ChannelCriterion: String, Sendable {
    case l1, l2
    case batchNormScale = "bn_scale"
    /// First-order Taylor on a dataset (`TaylorContributions`).
    case taylor
}

/// Which channels structured pruning removes: for every value, the indices along its channel axis.
public struct ChannelPlan: Sendable {
    public struct Layer: Sendable, Equatable {
        public var nodeName: String
        public var channelsBefore: Int
        public var channelsAfter: Int
    }

    /// Removed channel indices per value name (only values that lose channels).
    public var removed: [String: [Int]]
    /// Source layers (Conv/Gemm/MatMul) with their output channels before and after, in graph order.
    public var layers: [Layer]
    /// Number of dependency groups (layers whose channels must go together) and of removable units.
    public var groupCount: Int
    public var unitCount: Int
    public var removedUnitCount: Int
    /// Why some channels could not be pruned (graph inputs/outputs, unsupported ops), first few.
    public var frozenReasons: [String]
}

/// A set of atoms that go together, and the filters (source layer, channel) among them.
private struct ChannelUnit {
    var atoms: [(space: String, index: Int)] = []
    var sources: [(source: Int, channel: Int)] = []
}

enum ChannelPlanner {
    /// Removes `ratio` of the units in every dependency group, lowest `criterion` score first
    /// (ties: the unit whose first filter comes earlier in graph and channel order goes first).
    /// - Throws: `.stageFailed` naming the node when a value would lose every channel, or when
    ///   bn_scale finds a group without BatchNormalization.
    /// `taylor` holds the measured contributions when `criterion` is `.taylor`.
    static func plan(
        _ graph: Graph, dependencies: ChannelDependencies, ratio: Double, criterion: ChannelCriterion,
        taylor: TaylorContributions? = nil, path: String
    ) throws -> ChannelPlan {
        var dependencies = dependencies
        var units: [Int: ChannelUnit] = [:]
        for space in dependencies.spaces.values {
            for index in 0..<space.count {
                let atom = space.base + index
                guard !dependencies.isFrozen(atom) else { continue }
                units[dependencies.root(atom), default: ChannelUnit()].atoms.append((space.value, index))
            }
        }
        for (position, source) in dependencies.sources.enumerated() {
            guard let space = dependencies.spaces[source.space] else { continue }
            for channel in 0..<space.count {
                let atom = space.base + channel
                guard !dependencies.isFrozen(atom) else { continue }
                units[dependencies.root(atom)]?.sources.append((position, channel))
            }
        }
        // Units without a filter cannot be removed by removing filters; drop them.
        let candidates = units.values.filter { !$0.sources.isEmpty }
            .map { unit -> ChannelUnit in
                var sorted = unit
                sorted.sources.sort { ($0.source, $0.channel) < ($1.source, $1.channel) }
                return sorted
            }
            .sorted { ($0.sources[0].source, $0.sources[0].channel) < ($1.sources[0].source, $1.sources[0].channel) }

        // Dependency groups: source layers that share any unit.
        var groupParent = Array(dependencies.sources.indices)
        func groupRoot(_ value: Int) -> Int {
            var value = value
            while groupParent[value] != value { value = groupParent[value] }
            return value
        }
        for unit in candidates {
            let first = groupRoot(unit.sources[0].source)
            for member in unit.sources.dropFirst() {
                let other = groupRoot(member.source)
                if other != first { groupParent[max(first, other)] = min(first, other) }
            }
        }
        var groups: [Int: [Int]] = [:]
        for (position, unit) in candidates.enumerated() { groups[groupRoot(unit.sources[0].source), default: []].append(position) }

        let scores = try unitScores(candidates, graph: graph, dependencies: dependencies, criterion: criterion, taylor: taylor)
        var removed: [String: Set<Int>] = [:]
        var removedUnits = 0
        for key in groups.keys.sorted() {
            let members = groups[key]!
            let count = MagnitudeRanking.prunedCount(fraction: ratio, of: members.count)
            for position in MagnitudeRanking.lowest(members.map { scores[$0] }, count: count) {
                for atom in candidates[members[position]].atoms { removed[atom.space, default: []].insert(atom.index) }
                removedUnits += 1
            }
        }

        for (value, indices) in removed where indices.count == dependencies.spaces[value]!.count {
            let producer = graph.nodes.first { $0.outputs.contains(value) }?.displayName ?? value
            throw NNPipeError(.stageFailed, "removing \(PruneReport.percent(ratio)) of the channels would leave \(producer) with no channel in '\(value)' (it has \(indices.count)); lower channel_ratio or exclude it", path: path)
        }
        let layers = dependencies.sources.map { source -> ChannelPlan.Layer in
            let count = dependencies.spaces[source.space]?.count ?? 0
            return ChannelPlan.Layer(nodeName: source.nodeName, channelsBefore: count, channelsAfter: count - (removed[source.space]?.count ?? 0))
        }
        return ChannelPlan(
            removed: removed.mapValues { $0.sorted() }, layers: layers, groupCount: groups.count,
            unitCount: candidates.count, removedUnitCount: removedUnits, frozenReasons: dependencies.frozenReasons)
    }

    private static func unitScores(
        _ units: [ChannelUnit], graph: Graph, dependencies: ChannelDependencies, criterion: ChannelCriterion,
        taylor: TaylorContributions?
    ) throws -> [Float] {
        let index = graph.initializerIndex()
        switch criterion {
        case .taylor:
            guard let taylor else { throw NNPipeError(.internalError, "criterion taylor planned without measured contributions") }
            return units.map { taylor.score(atoms: $0.atoms) }
        case .l1, .l2:
            let norms = dependencies.sources.map { source -> [Float] in
                guard let position = index[source.weight] else { return [] }
                return filterNorms(graph.initializers[position], axis: source.outputAxis, squared: criterion == .l2)
            }
            return units.map { unit in
                unit.sources.reduce(Float(0)) { total, member in
                    let norm = norms[member.source].indices.contains(member.channel) ? norms[member.source][member.channel] : 0
                    return total + (criterion == .l2 ? norm.squareRoot() : norm)
                }
            }
        case .batchNormScale:
            var scales: [String: [Float]] = [:]
            for entry in dependencies.batchNormScales {
                if let position = index[entry.scale], let values = graph.initializers[position].floatValues() {
                    scales[entry.space] = values.map { abs($0) }
                }
            }
            return try units.map { unit in
                var total: Float = 0
                var found = false
                for atom in unit.atoms {
                    if let values = scales[atom.space], atom.index < values.count {
                        total += values[atom.index]
                        found = true
                    }
                }
                guard found else {
                    let layer = dependencies.sources[unit.sources[0].source].nodeName
                    throw NNPipeError(.stageFailed, "criterion bn_scale needs a BatchNormalization on the channels of \(layer), which has none; use l1 or l2")
                }
                return total
            }
        }
    }

    /// Per output channel: Σ|w| (L1) or Σw² (squared L2) over the rest of the weight.
    static func filterNorms(_ tensor: Tensor, axis: Int, squared: Bool) -> [Float] {
        guard let values = tensor.floatValues(), axis < tensor.shape.count else { return [] }
        let outer = tensor.shape[..<axis].reduce(1, *)
        let length = tensor.shape[axis]
        let inner = tensor.shape[(axis + 1)...].reduce(1, *)
        var norms = [Float](repeating: 0, count: length)
        values.withUnsafeBufferPointer { values in
            for block in 0..<outer {
                for channel in 0..<length {
                    let start = (block * length + channel) * inner
                    var sum: Float = 0
                    for offset in 0..<inner {
                        let value = values[start + offset]
                        sum += squared ? value * value : abs(value)
                    }
                    norms[channel] += sum
                }
            }
        }
        return norms
    }
}
