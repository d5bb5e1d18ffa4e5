import NNPipeCore

/// What pruning did to one weight, for the report and for tests.
public struct LayerPruningResult: Sendable, Equatable {
    public var nodeName: String
    public var weightName: String
    public var opType: String
    /// The sparsity asked of this layer (nil in global scope, where only the total is asked).
    public var targetSparsity: Double?
    /// Pruned (masked) elements over all elements.
    public var achievedSparsity: Double
    public var parameterCount: Int
    public var prunedCount: Int
    public var nonZerosBefore: Int
    public var nonZerosAfter: Int
}

/// How weight-granularity pruning is asked to behave.
public struct WeightPruningRequest: Sendable {
    public enum Scope: String, Sendable { case layer, global }
    public var sparsity: Double
    public var scope: Scope
    public var pattern: SparsityPattern?
    /// Cap on any one layer's sparsity (global scope).
    public var maxSparsity: Double?

    public init(sparsity: Double, scope: Scope = .layer, pattern: SparsityPattern? = nil, maxSparsity: Double? = nil) {
        self.sparsity = sparsity
        self.scope = scope
        self.pattern = pattern
        self.maxSparsity = maxSparsity
    }
}

/// Unstructured, block and N:M magnitude pruning: zeroes weights in place and records keep masks.
public enum WeightPruning {
    /// Prunes `layers` of `model` as `request` asks. Masks are ANDed with masks an earlier prune left.
    /// - Parameter optionsPath: the stage's JSON path (`stages[0]`) for error messages.
    /// - Throws: `.invalidManifest` at `<path>.pattern` when a pattern does not tile a weight,
    ///   `.invalidModel` for NaN weights.
    @discardableResult
    public static func prune(
        _ model: inout Model, layers: [PrunableWeight], request: WeightPruningRequest, optionsPath: String = "stages[?]"
    ) throws -> [LayerPruningResult] {
        let index = model.graph.initializerIndex()
        var magnitudes: [[Float]] = []
        var layouts: [PatternLayout?] = []
        for layer in layers {
            guard let position = index[layer.weightName],
                let values = TensorEditing.magnitudes(of: model.graph.initializers[position])
            else {
                throw NNPipeError(.internalError, "weight '\(layer.weightName)' of \(layer.nodeName) vanished or is not floating point")
            }
            if values.contains(where: { $0.isNaN }) {
                throw NNPipeError(.invalidModel, "weight '\(layer.weightName)' of \(layer.nodeName) contains NaN; magnitudes cannot be ranked")
            }
            magnitudes.append(values)
            if let pattern = request.pattern {
                switch PatternLayout.make(shape: layer.shape, pattern: pattern, inputAxis: layer.inputAxis) {
                case .success(let layout): layouts.append(layout)
                case .failure(let mismatch):
                    throw NNPipeError(.invalidManifest, "\(layer.opType) \(layer.nodeName), weight '\(layer.weightName)': \(mismatch.message)", path: "\(optionsPath).pattern")
                }
            } else {
                layouts.append(nil)
            }
        }

        // Per layer: the scores being ranked (elements or blocks), and how they map back to elements.
        var keepMasks: [[Bool]] = []
        var targets: [Double?] = []
        switch (request.pattern, request.scope) {
        case (.nOfM(let kept, _)?, _):
            for (position, layout) in layouts.enumerated() {
                keepMasks.append(layout!.nOfMKeepMask(magnitudes[position], kept: kept))
                targets.append(request.pattern?.impliedSparsity)
            }
        case (_, .layer):
            for (position, values) in magnitudes.enumerated() {
                let scores = layouts[position]?.groupScores(values) ?? values
                let count = MagnitudeRanking.prunedCount(fraction: request.sparsity, of: scores.count)
                let pruned = MagnitudeRanking.lowest(scores, count: count)
                keepMasks.append(expand(pruned, layout: layouts[position], count: values.count))
                targets.append(request.sparsity)
            }
        case (_, .global):
            let scores = magnitudes.enumerated().map { layouts[$0.offset]?.groupScores($0.element) ?? $0.element }
            let total = scores.reduce(0) { $0 + $1.count }
            let count = MagnitudeRanking.prunedCount(fraction: request.sparsity, of: total)
            // The cap rounds down so no layer ever exceeds max_sparsity.
            let capacity = scores.map { values in
                request.maxSparsity.map { Int((Double(values.count) * $0 + 1e-9).rounded(.down)) } ?? values.count
            }
            let pruned = MagnitudeRanking.lowestGlobally(scores, count: count, capacity: capacity)
            for (position, indices) in pruned.enumerated() {
                keepMasks.append(expand(indices, layout: layouts[position], count: magnitudes[position].count))
                targets.append(nil)
            }
        }

        var results: [LayerPruningResult] = []
        for (position, layer) in layers.enumerated() {
            let tensorPosition = index[layer.weightName]!
            let tensor = model.graph.initializers[tensorPosition]
            var keep = keepMasks[position]
            if let earlier = model.annotations.pruningMasks[layer.weightName]?.values(as: UInt8.self), earlier.count == keep.count {
                for element in keep.indices where earlier[element] == 0 { keep[element] = false }
            }
            let pruned = keep.reduce(0) { $0 + ($1 ? 0 : 1) }
            let nonZerosBefore = magnitudes[position].reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
            let updated = TensorEditing.zeroing(tensor, keep: keep)
            model.graph.initializers[tensorPosition] = updated
            model.annotations.pruningMasks[layer.weightName] = TensorEditing.maskTensor(name: layer.weightName, shape: tensor.shape, keep: keep)
            results.append(LayerPruningResult(
                nodeName: layer.nodeName, weightName: layer.weightName, opType: layer.opType,
                targetSparsity: targets[position],
                achievedSparsity: keep.isEmpty ? 0 : Double(pruned) / Double(keep.count),
                parameterCount: keep.count, prunedCount: pruned, nonZerosBefore: nonZerosBefore,
                nonZerosAfter: TensorEditing.nonZeroCount(updated)))
        }
        return results
    }

    /// The largest shortfall rounding may cause: half a group per layer (layer scope) or overall (global).
    static func roundingTolerance(layers: [PrunableWeight], request: WeightPruningRequest) -> Double {
        let total = layers.reduce(0) { $0 + $1.elementCount }
        guard total > 0 else { return 0 }
        let groupSize = Double(request.pattern.map { $0.extent.rows * $0.extent.columns } ?? 1)
        let roundings = request.scope == .layer ? Double(layers.count) : 1
        return 0.5 * groupSize * roundings / Double(total) + 1e-12
    }

    private static func expand(_ pruned: [Int], layout: PatternLayout?, count: Int) -> [Bool] {
        if let layout { return layout.keepMask(prunedGroups: pruned) }
        var keep = [Bool](repeating: true, count: count)
        for element in pruned { keep[element] = false }
        return keep
    }
}
