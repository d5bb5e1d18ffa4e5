import NNPipeCore

/// A Concat along channels whose inputs Conv kernels make: each Conv writes straight into the
/// Concat's output at its channel offset and the Concat copies nothing (SqueezeNet's fire modules
/// concatenate two convs' outputs, eight times per image).
///
/// Found at plan time when every input is the only output of a Conv step, or of a fused chain
/// headed by one, with constant weights; the Concat is each input's only reader and none is a
/// graph output; the inputs are distinct and the axis is 1 at the Convs' rank. A run writes in
/// place only when it neither observes values nor asks for an input; an input whose Conv did not
/// write in place (a chain that declined, shapes that do not fit) is copied in by the Concat step.
struct ConcatInPlace {
    let concatStep: Int
    let inputs: [String]
    /// Output channels of each input's Conv (its weights' first dimension).
    let channels: [Int]

    var totalChannels: Int { channels.reduce(0, +) }
    func channelOffset(of input: Int) -> Int { channels[..<input].reduce(0, +) }

    /// Who writes where: by producer step (a chain's head), the Concat step and input position.
    struct Producer {
        let concatStep: Int
        let input: Int
    }

    static func find(steps: [ExecutionPlan.Step], chains: [Int: FusedChain], constants: [String: RuntimeTensor],
                     producer: [String: Int], graphOutputs: Set<String>) -> (concats: [Int: ConcatInPlace], producers: [Int: Producer]) {
        var readers: [String: Int] = [:]
        for step in steps {
            for name in Set(step.node.inputs) where !name.isEmpty { readers[name, default: 0] += 1 }
        }
        // The step that makes each value when chains are used: a chain's output comes from its head.
        var maker: [String: (step: Int, node: Node)] = [:]
        for (index, step) in steps.enumerated() where step.node.outputs.count == 1 {
            maker[step.node.outputs[0]] = (index, step.node)
        }
        for (head, chain) in chains where chain.node.outputs.count == 1 {
            maker[chain.node.outputs[0]] = (head, chain.node)
        }
        var concats: [Int: ConcatInPlace] = [:]
        var producers: [Int: Producer] = [:]
        for (index, step) in steps.enumerated() {
            let node = step.node
            guard node.opType == "Concat", node.domain.isEmpty, node.outputs.count == 1, node.inputs.count >= 2,
                  !node.inputs.contains(""), Set(node.inputs).count == node.inputs.count,
                  let axis = node.attribute("axis")?.intValue.map({ Int($0) })
            else { continue }
            var channels: [Int] = []
            var heads: [Int] = []
            var ranks = Set<Int>()
            for name in node.inputs {
                guard readers[name] == 1, !graphOutputs.contains(name), let (head, made) = maker[name],
                      made.opType == "Conv", made.domain.isEmpty, made.inputs.count >= 2, (made.attribute("group")?.intValue ?? 1) == 1,
                      let weights = constants[made.inputs[1]], weights.dataType == .float, weights.rank >= 3,
                      producer[name].map({ $0 >= head }) ?? false, producers[head] == nil
                else { break }
                channels.append(weights.shape[0])
                heads.append(head)
                ranks.insert(weights.rank)
            }
            guard channels.count == node.inputs.count, ranks.count == 1, let rank = ranks.first,
                  (axis < 0 ? axis + rank : axis) == 1
            else { continue }
            concats[index] = ConcatInPlace(concatStep: index, inputs: node.inputs, channels: channels)
            for (position, head) in heads.enumerated() { producers[head] = Producer(concatStep: index, input: position) }
        }
        return (concats, producers)
    }

    /// The Concat step of a run where some inputs were written in place: copies the others into
    /// the buffer (checking them as the Concat kernel would) and returns it.
    func finish(_ buffer: ChannelBuffer, placed: Set<String>, values: [String: RuntimeTensor]) throws -> RuntimeTensor {
        guard let whole = buffer.tensor else { throw KernelError("no input was written in place") }
        let positions = whole.shape[2...].reduce(1, *)
        for (index, name) in inputs.enumerated() where !placed.contains(name) {
            guard let part = values[name] else { throw KernelError("needs '\(name)', which was not made") }
            var expected = whole.shape
            expected[1] = channels[index]
            guard part.dataType == .float, part.shape == expected else {
                throw KernelError("input '\(name)' \(part.dataType)\(part.shape) does not concatenate on axis 1 with \(whole.shape)")
            }
            let block = channels[index] * positions
            for image in 0..<whole.shape[0] {
                copyElements(from: part, at: image * block, to: whole, at: image * totalChannels * positions + channelOffset(of: index) * positions,
                             count: block)
            }
        }
        return whole
    }
}

/// One run's output of an in-place Concat, made by whichever of its Convs runs first.
final class ChannelBuffer: @unchecked Sendable {
    let totalChannels: Int
    var tensor: RuntimeTensor?

    init(totalChannels: Int) {
        self.totalChannels = totalChannels
    }
}

/// Where one Conv writes: channels `channelOffset ..< channelOffset + channels` of the buffer.
struct ChannelDestination: Sendable {
    let buffer: ChannelBuffer
    let channelOffset: Int
    let channels: Int

    /// The whole Concat output for a Conv output of `shape`, made on first use; nil when the shape
    /// does not fit (the Conv then makes its own tensor and the Concat step copies it).
    func target(for shape: [Int]) -> RuntimeTensor? {
        guard shape.count >= 3, shape[1] == channels else { return nil }
        var whole = shape
        whole[1] = buffer.totalChannels
        if let tensor = buffer.tensor { return tensor.shape == whole ? tensor : nil }
        let tensor = RuntimeTensor(dataType: .float, shape: whole)
        buffer.tensor = tensor
        return tensor
    }
}
