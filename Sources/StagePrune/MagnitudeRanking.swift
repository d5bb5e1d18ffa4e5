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

    /// The positions of the `count` lowest scores, ascending by position; among equal scores the
    /// lower positions are taken.
    /// - Complexity: O(n log n) on a plain Float sort (no index closures), then O(n).
    static func lowest(_ scores: [Float], count: Int) -> [Int] {
        guard count > 0 else { return [] }
        guard count < scores.count else { return Array(scores.indices) }
        let threshold = kthSmallest(scores, count)
        return scores.withUnsafeBufferPointer { scores in
            var below = 0
            for score in scores where score < threshold { below += 1 }
            var ties = count - below
            var chosen: [Int] = []
            chosen.reserveCapacity(count)
            for index in 0..<scores.count {
                if scores[index] < threshold {
                    chosen.append(index)
                } else if scores[index] == threshold && ties > 0 {
                    chosen.append(index)
                    ties -= 1
                }
            }
            return chosen
        }
    }

    /// The `count`-th smallest value (1-based) by two-pass radix selection on order-preserving
    /// bit patterns: no sort, so a 25M-weight model ranks in linear time.
    /// - Complexity: O(n).
    static func kthSmallest(_ scores: [Float], _ count: Int) -> Float {
        precondition(count >= 1 && count <= scores.count, "rank out of range")
        @inline(__always) func key(_ value: Float) -> UInt32 {
            let bits = value.bitPattern
            return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        }
        return scores.withUnsafeBufferPointer { scores in
            var histogram = [Int](repeating: 0, count: 1 << 16)
            histogram.withUnsafeMutableBufferPointer { histogram in
                for value in scores { histogram[Int(key(value) >> 16)] += 1 }
            }
            var remaining = count
            var high = 0
            while remaining > histogram[high] {
                remaining -= histogram[high]
                high += 1
            }
            var low = [Int](repeating: 0, count: 1 << 16)
            low.withUnsafeMutableBufferPointer { low in
                for value in scores {
                    let bits = key(value)
                    if Int(bits >> 16) == high { low[Int(bits & 0xFFFF)] += 1 }
                }
            }
            var position = 0
            while remaining > low[position] {
                remaining -= low[position]
                position += 1
            }
            let bits = UInt32(high) << 16 | UInt32(position)
            return Float(bitPattern: bits & 0x8000_0000 != 0 ? bits & 0x7FFF_FFFF : ~bits)
        }
    }

    /// A keep mask with the `count` lowest of `scores` pruned.
    static func keepMask(_ scores: [Float], pruning count: Int) -> [Bool] {
        var keep = [Bool](repeating: true, count: scores.count)
        for index in lowest(scores, count: count) { keep[index] = false }
        return keep
    }

    /// Global selection: the `count` lowest candidates over all layers, skipping a layer once it
    /// reaches `capacity[layer]`. Returns pruned indices per layer (may fall short when caps bind).
    /// - Complexity: O(N) per round; a round closes at least one layer.
    static func lowestGlobally(_ scores: [[Float]], count: Int, capacity: [Int]) -> [[Int]] {
        if zip(scores, capacity).allSatisfy({ $0.count <= $1 }) {
            // No cap can bind: one threshold over everything, ties by (layer, index).
            let all = scores.flatMap { $0 }
            guard count > 0, !all.isEmpty else { return scores.map { _ in [] } }
            let threshold = kthSmallest(all, min(count, all.count))
            var ties = min(count, all.count) - all.reduce(0) { $0 + ($1 < threshold ? 1 : 0) }
            return scores.map { values in
                var chosen: [Int] = []
                for (index, score) in values.enumerated() {
                    if score < threshold {
                        chosen.append(index)
                    } else if score == threshold && ties > 0 {
                        chosen.append(index)
                        ties -= 1
                    }
                }
                return chosen
            }
        }
        // Caps can bind: fix every layer the uncapped ranking would push past its cap at the cap
        // (its own lowest weights), then rank the rest again for what is left. This equals walking
        // the global order and skipping full layers, without sorting every weight.
        var selected = [[Int]](repeating: [], count: scores.count)
        var open = Array(scores.indices)
        var remaining = count
        while remaining > 0, !open.isEmpty {
            let round = lowestGlobally(open.map { scores[$0] }, count: remaining, capacity: open.map { scores[$0].count })
            let saturated = open.indices.filter { round[$0].count > capacity[open[$0]] }
            if saturated.isEmpty {
                for (position, layer) in open.enumerated() { selected[layer] = round[position] }
                break
            }
            for position in saturated {
                let layer = open[position]
                selected[layer] = lowest(scores[layer], count: capacity[layer])
                remaining -= capacity[layer]
            }
            let closed = Set(saturated.map { open[$0] })
            open.removeAll { closed.contains($0) }
        }
        return selected
    }
}
