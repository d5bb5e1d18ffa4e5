import NNPipeCore

/// Chains of Concats where each one's first input is the one before it: DenseNet's dense blocks
/// (c₁ = Concat(x, f₁), c₂ = Concat(c₁, f₂), ...). Copied whole, each layer copies everything the
/// block has made so far, O(layers²) per block. With one image, a Concat along channels puts its
/// first input at the start of its output unchanged, so the chain's Concats allocate with room to
/// grow and each appends only its new inputs after the previous one's channels, in that storage.
/// The earlier tensor still reads its own prefix; nothing is written inside it.
///
/// Found at plan time: a Concat (not written in place by its Convs) whose first input is made by
/// another such Concat, and is the first input of no other Concat; repeated inputs are left out.
/// Used at run time only for batch 1 (more precisely: nothing before the axis but ones), and in
/// runs that do not observe values.
struct ConcatGrowth: Sendable {
    /// The first input is the previous Concat of the chain's output: its storage may have room.
    let appendsToFirstInput: Bool

    static func find(steps: [ExecutionPlan.Step], producer: [String: Int], inPlace: Set<Int>) -> [Int: ConcatGrowth] {
        func isCandidate(_ index: Int) -> Bool {
            let node = steps[index].node
            return node.opType == "Concat" && node.domain.isEmpty && node.outputs.count == 1 && node.inputs.count >= 2
                && !node.inputs.contains("") && Set(node.inputs).count == node.inputs.count && !inPlace.contains(index)
        }
        var extenders: [String: [Int]] = [:]
        for index in steps.indices where isCandidate(index) { extenders[steps[index].node.inputs[0], default: []].append(index) }
        var growth: [Int: ConcatGrowth] = [:]
        for (first, concats) in extenders where concats.count == 1 {
            guard let made = producer[first], isCandidate(made) else { continue }
            growth[concats[0]] = ConcatGrowth(appendsToFirstInput: true)
            if growth[made] == nil { growth[made] = ConcatGrowth(appendsToFirstInput: false) }
        }
        return growth
    }

    /// The Concat of `parts` along `dimension` into `shape`, or nil when it cannot grow in place
    /// (something before the axis is not 1). Allocates twice the bytes needed when it must
    /// allocate, so the next Concats of the chain append without copying (amortised: a block's
    /// layers copy O(layers) channels in all).
    func concatenate(_ parts: [RuntimeTensor], dimension: Int, shape: [Int]) -> RuntimeTensor? {
        guard shape[..<dimension].allSatisfy({ $0 == 1 }), let first = parts.first else { return nil }
        let dataType = first.dataType
        let needed = shape.reduce(1, *) * RuntimeTensor.elementSize(of: dataType)
        var offset = 0
        var pending = parts[...]
        let result: RuntimeTensor
        if appendsToFirstInput, first.storage.bytes.count >= needed {
            result = RuntimeTensor(dataType: dataType, shape: shape, storage: first.storage)
            offset = first.elementCount
            pending = parts.dropFirst()
        } else {
            result = RuntimeTensor(dataType: dataType, shape: shape, storage: RuntimeStorage(byteCount: 2 * needed))
        }
        for part in pending {
            copyElements(from: part, at: 0, to: result, at: offset, count: part.elementCount)
            offset += part.elementCount
        }
        return result
    }
}
