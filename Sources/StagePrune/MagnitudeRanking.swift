/// Exact-count selection of the weights (or blocks) to prune.
///
/// Tie policy: among equal scores the lower flat index is pruned first (and, across layers in
/// global scope, the earlier layer in graph order). The count is exact, so ties never make the
/// stage undershoot the way a threshold rule (`|w| < t`) does.
enum MagnitudeRanking {
    /// round_half_even(fraction · count): the number of items a sparsity asks to prune.
    static func prunedCount(fraction: Double, of count: Int) -> Int {
        // Snap to the nearest half when within float noise: 0.35·10 is 3.4999999999999996 in
        // binary but the user asked for 3.5, which rounds half to even.
        let exact = fraction * Double(count)
        let nearest = (exact * 2).rounded() / 2
        let snapped = abs(exact - nearest) < 1e-9 * max(1, exact) ? nearest : exact
        return min(count, max(0, Int(snapped.rounded(.toNearestOrEven))))
    }

    /// The positions of the `count` lowest scores, lowest first, ties by lower position.
    /// - Complexity: O(n log n).
    static func lowest(_ scores: [Float], count: Int) -> [Int] {
        guard count > 0 else { return [] }
        let order = scores.withUnsafeBufferPointer { scores in
            (0..<scores.count).sorted { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        }
        return Array(order.prefix(count))
    }

    /// A keep mask with the `count` lowest of `scores` pruned.
    static func keepMask(_ scores: [Float], pruning count: Int) -> [Bool] {
        var keep = [Bool](repeating: true, count: scores.count)
        for index in lowest(scores, count: count) { keep[index] = false }
        return keep
    }

    /// One item of a global ranking: its score, layer position and index inside the layer.
    struct Candidate {
        var score: Float
        var layer: Int
        var index: Int
    }

    /// Global selection: the `count` lowest candidates over all layers, skipping a layer once it
    /// reaches `capacity[layer]`. Returns pruned indices per layer (may fall short when caps bind).
    /// - Complexity: O(N log N) over all candidates.
    static func lowestGlobally(_ scores: [[Float]], count: Int, capacity: [Int]) -> [[Int]] {
        var candidates: [Candidate] = []
        candidates.reserveCapacity(scores.reduce(0) { $0 + $1.count })
        for (layer, values) in scores.enumerated() {
            for (index, score) in values.enumerated() {
                candidates.append(Candidate(score: score, layer: layer, index: index))
            }
        }
        candidates.sort {
            if $0.score != $1.score { return $0.score < $1.score }
            if $0.layer != $1.layer { return $0.layer < $1.layer }
            return $0.index < $1.index
        }
        var selected = [[Int]](repeating: [], count: scores.count)
        var remaining = count
        for candidate in candidates where remaining > 0 {
            guard selected[candidate.layer].count < capacity[candidate.layer] else { continue }
            selected[candidate.layer].append(candidate.index)
            remaining -= 1
        }
        return selected
    }
}
