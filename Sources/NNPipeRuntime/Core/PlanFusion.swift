import NNPipeCore

/// A chain of steps the plan runs as one kernel when nobody watches the values between them.
struct FusedChain {
    /// Step indices, head first. The chain runs where its head would; every value it reads from
    /// outside is made before the head.
    let steps: [Int]
    /// The values between the steps, which the fused kernel never makes.
    let intermediates: [String]
    /// What the fused kernel is run as: inputs (possibly folded constants) and the last step's outputs.
    let node: Node
    let kernel: any Kernel
}

/// Finds the chains of CNN inference that cost a full pass over memory per node when run one by one:
/// - Conv -> BatchNormalization / Mul / Add by per-channel constants ... -> Add or Sum with a
///   tensor made earlier (a residual) -> Relu. The per-channel affine nodes are folded into the
///   Conv's weights and bias here, once; the residual and Relu run in the Conv's bias pass.
/// - BatchNormalization -> per-channel BatchNormalization / Mul / Add ... -> Relu where no Conv
///   precedes it (DenseNet normalises each concatenation): one pass instead of one per node; and
///   when a pointwise Conv is the Relu's only reader, no pass at all: the Conv applies it to its
///   input as its product packs it (then the Conv's own chain follows as above).
///
/// A value inside a chain must be read only by the next step of the chain and not be a graph
/// output; whether it is requested or observed in a given run is the plan's check at run time.
enum PlanFusion {
    /// What follows a chain's head: the steps taken in, the value the last one makes, and what
    /// the fused kernel does after the head (folded affine, residual, Relu).
    struct Tail {
        var members: [Int]
        var value: String
        var affine: ChannelAffine
        var rank: Int?
        var residual: String? = nil
        var relu = false
    }

    static func chains(steps: [ExecutionPlan.Step], constants: inout [String: RuntimeTensor], producer: [String: Int],
                       graphOutputs: Set<String>, opset: Int) throws -> [Int: FusedChain] {
        var readers: [String: [Int]] = [:]
        for (index, step) in steps.enumerated() {
            for name in step.node.inputs where !name.isEmpty { readers[name, default: []].append(index) }
        }
        var claimed = Set<Int>()
        var chains: [Int: FusedChain] = [:]

        /// The single reader of `value` when the chain may take it in.
        func onlyReader(of value: String) -> Int? {
            guard !graphOutputs.contains(value), let reading = readers[value], reading.count == 1, !claimed.contains(reading[0]) else { return nil }
            return reading[0]
        }

        /// Follows the single readers of `start`'s output while they fold into the chain: per-channel
        /// affine nodes (into a Conv's constants only), a residual Add/Sum (a Conv only, the other
        /// operand made before `head`), then Relu, which ends the chain.
        func follow(from start: Int, head: Int, affine: ChannelAffine, rank: Int?) -> Tail {
            let step = steps[start]
            let isConvolution = step.node.opType == "Conv"
            // A Conv can absorb affine nodes only into constant weights and bias.
            let biasName = step.node.inputs.count > 2 ? step.node.inputs[2] : ""
            let canFold = !isConvolution || (rank != nil && (biasName.isEmpty || constants[biasName]?.dataType == .float))
            var tail = Tail(members: [start], value: step.node.outputs[0], affine: affine, rank: rank)
            while !tail.relu, let reader = onlyReader(of: tail.value) {
                let next = steps[reader].node
                guard next.domain.isEmpty, next.outputs.count == 1 else { break }
                let foldable = tail.residual == nil && canFold
                if next.opType == "Relu" {
                    tail.relu = true
                } else if foldable, next.opType == "BatchNormalization",
                          let normalization = ChannelAffine(batchNormalization: next, constants: constants),
                          normalization.channels == tail.affine.channels {
                    tail.affine.then(normalization)
                } else if foldable, next.opType == "Mul" || next.opType == "Add",
                          let constant = ChannelConstant(next, data: tail.value, constants: constants, channels: tail.affine.channels),
                          constant.fits(rank: tail.rank) {
                    tail.affine.then(constant, multiplies: next.opType == "Mul")
                    tail.rank = tail.rank ?? constant.requiredRank
                    tail.affine.minimumRank = max(tail.affine.minimumRank, constant.rank)
                } else if isConvolution, tail.residual == nil, next.opType == "Add" || next.opType == "Sum", next.inputs.count == 2,
                          let other = next.inputs.first(where: { $0 != tail.value }), !other.isEmpty, constants[other] == nil,
                          next.inputs.contains(tail.value), (producer[other] ?? -1) < head {
                    tail.residual = other
                } else {
                    break
                }
                tail.members.append(reader)
                tail.value = next.outputs[0]
            }
            return tail
        }

        /// A Conv at `index` that starts a chain of its own: constant weights of known rank.
        func convolutionTail(at index: Int, head: Int) -> Tail {
            let weights = constants[steps[index].node.inputs[1]]
            return follow(from: index, head: head, affine: ChannelAffine(channels: weights?.shape.first ?? 0), rank: weights?.rank)
        }

        for (head, step) in steps.enumerated() where !claimed.contains(head) && step.node.domain.isEmpty {
            let isConvolution = step.node.opType == "Conv"
            guard isConvolution || step.node.opType == "BatchNormalization",
                  step.node.outputs.count == 1, let input = step.node.inputs.first, !input.isEmpty
            else { continue }
            var members: [Int]
            var convolution: (index: Int, tail: Tail)? = nil
            var inputAffine: (affine: ChannelAffine, requiredRank: Int?, relu: Bool)? = nil
            var normalizationTail: Tail? = nil
            if isConvolution {
                let tail = convolutionTail(at: head, head: head)
                convolution = (head, tail)
                members = tail.members
            } else {
                guard let normalization = ChannelAffine(batchNormalization: step.node, constants: constants) else { continue }
                let tail = follow(from: head, head: head, affine: normalization, rank: nil)
                members = tail.members
                normalizationTail = tail
                // BatchNormalization -> Relu -> pointwise Conv (DenseNet's pre-activation): the Conv
                // applies the affine and Relu to its input as it reads it.
                if tail.relu, let reader = onlyReader(of: tail.value), isPointwiseConvolution(steps[reader].node, input: tail.value, constants: constants) {
                    let convolutionTail = convolutionTail(at: reader, head: head)
                    convolution = (reader, convolutionTail)
                    inputAffine = (tail.affine, tail.rank, true)
                    members += convolutionTail.members
                }
            }
            guard members.count > 1 else { continue }
            claimed.formUnion(members)
            let intermediates = members.dropLast().map { steps[$0].node.outputs[0] }
            let kernel: any Kernel
            var node: Node
            if let (index, tail) = convolution {
                let convolutionNode = steps[index].node
                node = convolutionNode
                node.outputs = [tail.value]
                if !tail.affine.isIdentity {
                    let (weightsName, biasName) = try fold(tail.affine, into: convolutionNode, constants: &constants)
                    node.inputs = [input, weightsName, biasName]
                } else {
                    node.inputs = [input] + Array(convolutionNode.inputs.dropFirst().prefix(2))
                        + [String](repeating: "", count: max(0, 3 - convolutionNode.inputs.count))
                }
                if let residual = tail.residual { node.inputs.append(residual) }
                var spec = NodeSpec(node: node, opset: opset)
                kernel = try ConvolutionKernels.convolution(&spec, residual: tail.residual != nil, relu: tail.relu, inputAffine: inputAffine)
            } else {
                let tail = normalizationTail!
                node = step.node
                node.outputs = [tail.value]
                node.inputs = [input]
                kernel = NormalizationKernels.fusedChannelAffine(tail.affine, requiredRank: tail.rank, relu: tail.relu)
            }
            chains[head] = FusedChain(steps: members, intermediates: intermediates, node: node, kernel: kernel)
        }
        return chains
    }

    /// A Conv reading `input` as its data through a 1x1 kernel of constant 4-D weights, stride 1,
    /// no padding or dilation, group 1: its GEMM reads the input planes as they lie.
    private static func isPointwiseConvolution(_ node: Node, input: String, constants: [String: RuntimeTensor]) -> Bool {
        guard node.opType == "Conv", node.domain.isEmpty, node.outputs.count == 1, node.inputs.count >= 2, node.inputs[0] == input,
              node.inputs.dropFirst().allSatisfy({ $0 != input }),
              let weights = constants[node.inputs[1]], weights.dataType == .float, weights.rank == 4, weights.shape[2] == 1, weights.shape[3] == 1
        else { return false }
        func all(_ name: String, _ value: Int64) -> Bool { node.attribute(name)?.intsValue?.allSatisfy { $0 == value } ?? true }
        let autoPad = node.attribute("auto_pad")?.stringValue ?? "NOTSET"
        return (node.attribute("group")?.intValue ?? 1) == 1 && all("strides", 1) && all("pads", 0) && all("dilations", 1)
            && ["NOTSET", "VALID", ""].contains(autoPad)
    }

    /// New constants W·multiplier[o] and bias·multiplier[o] + shift[o], named after the Conv's output.
    private static func fold(_ affine: ChannelAffine, into node: Node, constants: inout [String: RuntimeTensor]) throws -> (String, String) {
        guard let weights = constants[node.inputs[1]], weights.dataType == .float, weights.shape.first == affine.channels else {
            throw NNPipeError(.invalidModel, "Conv '\(node.displayName)' weights do not fit the following normalisation")
        }
        let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty ? constants[node.inputs[2]]?.floats : nil
        let perChannel = weights.elementCount / max(affine.channels, 1)
        var scaled = weights.floats
        for channel in 0..<affine.channels {
            for index in (channel * perChannel)..<((channel + 1) * perChannel) { scaled[index] *= affine.multiplier[channel] }
        }
        let shifted = (0..<affine.channels).map { (bias?[$0] ?? 0) * affine.multiplier[$0] + affine.shift[$0] }
        // The originals stay: a run that observes the Conv output uses them unfused.
        let weightsName = node.outputs[0] + "#folded_weights", biasName = node.outputs[0] + "#folded_bias"
        constants[weightsName] = RuntimeTensor(shape: weights.shape, floats: scaled)
        constants[biasName] = RuntimeTensor(shape: [affine.channels], floats: shifted)
        return (weightsName, biasName)
    }
}

/// y[c] = x[c] · multiplier[c] + shift[c] along axis 1: what BatchNormalization (inference) and
/// Mul/Add by a per-channel constant do, composed.
struct ChannelAffine: Sendable {
    var multiplier: [Float]
    var shift: [Float]
    /// The smallest input rank for which the composed constants broadcast as the nodes did.
    var minimumRank = 2
    var channels: Int { multiplier.count }
    var isIdentity: Bool { multiplier.allSatisfy { $0 == 1 } && shift.allSatisfy { $0 == 0 } }

    init(channels: Int) {
        multiplier = [Float](repeating: 1, count: channels)
        shift = [Float](repeating: 0, count: channels)
    }

    /// BatchNormalization's inference form when its parameters are float constants; nil otherwise.
    init?(batchNormalization node: Node, constants: [String: RuntimeTensor]) {
        guard node.opType == "BatchNormalization", node.domain.isEmpty, node.inputs.count == 5, node.outputs.count == 1,
              (node.attribute("training_mode")?.intValue ?? 0) == 0, (node.attribute("spatial")?.intValue ?? 1) == 1,
              let parameters = Optional(node.inputs[1...].compactMap({ constants[$0] })), parameters.count == 4,
              parameters.allSatisfy({ $0.dataType == .float && $0.elementCount == parameters[0].elementCount })
        else { return nil }
        let epsilon = node.attribute("epsilon")?.floatValue ?? 1e-5
        let (scale, bias, mean, variance) = (parameters[0].floats, parameters[1].floats, parameters[2].floats, parameters[3].floats)
        // As the BatchNormalization kernel computes it, so fused and unfused runs agree closely.
        let multiplier = scale.indices.map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
        self.multiplier = multiplier
        shift = scale.indices.map { bias[$0] - mean[$0] * multiplier[$0] }
    }

    mutating func then(_ next: ChannelAffine) {
        for channel in multiplier.indices {
            multiplier[channel] *= next.multiplier[channel]
            shift[channel] = shift[channel] * next.multiplier[channel] + next.shift[channel]
        }
    }

    mutating func then(_ constant: ChannelConstant, multiplies: Bool) {
        for channel in multiplier.indices {
            let value = constant.values.count == 1 ? constant.values[0] : constant.values[channel]
            if multiplies {
                multiplier[channel] *= value
                shift[channel] *= value
            } else {
                shift[channel] += value
            }
        }
    }
}

/// The constant operand of a Mul or Add that varies at most along the channel axis.
struct ChannelConstant {
    let values: [Float]
    /// The constant's rank: the input must have at least this many axes or the output grows.
    let rank: Int
    /// For a per-channel constant ([C, 1, 1] or [1, C, 1, 1]), the only input rank that puts C on axis 1.
    let requiredRank: Int?

    init?(_ node: Node, data: String, constants: [String: RuntimeTensor], channels: Int) {
        guard node.inputs.count == 2, node.inputs.contains(data), let name = node.inputs.first(where: { $0 != data }),
              let constant = constants[name], constant.dataType == .float
        else { return nil }
        let varying = constant.shape.indices.filter { constant.shape[$0] != 1 }
        if varying.isEmpty {
            requiredRank = nil
        } else if varying.count == 1, constant.shape[varying[0]] == channels {
            // Right-aligned broadcasting puts axis j of a rank-k constant on axis rank - k + j.
            requiredRank = constant.rank - varying[0] + 1
        } else {
            return nil
        }
        values = constant.floats
        rank = constant.rank
    }

    func fits(rank known: Int?) -> Bool {
        guard let known else { return true }
        return known >= rank && (requiredRank.map { $0 == known } ?? true)
    }
}
