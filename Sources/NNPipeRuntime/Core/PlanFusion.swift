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
///   precedes it (DenseNet normalises each concatenation): one pass instead of one per node.
///
/// A value inside a chain must be read only by the next step of the chain and not be a graph
/// output; whether it is requested or observed in a given run is the plan's check at run time.
enum PlanFusion {
    static func chains(steps: [ExecutionPlan.Step], constants: inout [String: RuntimeTensor], producer: [String: Int],
                       graphOutputs: Set<String>, opset: Int) throws -> [Int: FusedChain] {
        var readers: [String: [Int]] = [:]
        for (index, step) in steps.enumerated() {
            for name in step.node.inputs where !name.isEmpty { readers[name, default: []].append(index) }
        }
        var claimed = Set<Int>()
        var chains: [Int: FusedChain] = [:]
        for (head, step) in steps.enumerated() where !claimed.contains(head) && step.node.domain.isEmpty {
            let isConvolution = step.node.opType == "Conv"
            guard isConvolution || step.node.opType == "BatchNormalization",
                  step.node.outputs.count == 1, let input = step.node.inputs.first, !input.isEmpty
            else { continue }
            var affine: ChannelAffine
            var rank: Int? = nil
            if isConvolution {
                let weights = constants[step.node.inputs[1]]
                rank = weights?.rank
                affine = ChannelAffine(channels: weights?.shape.first ?? 0)
            } else {
                guard let normalization = ChannelAffine(batchNormalization: step.node, constants: constants) else { continue }
                affine = normalization
            }
            // A Conv can absorb affine nodes only into constant weights and bias.
            let biasName = step.node.inputs.count > 2 ? step.node.inputs[2] : ""
            let canFold = !isConvolution || (rank != nil && (biasName.isEmpty || constants[biasName]?.dataType == .float))
            var members = [head]
            var value = step.node.outputs[0]
            var residual: String? = nil
            var relu = false
            while !relu, !graphOutputs.contains(value), let reading = readers[value], reading.count == 1, !claimed.contains(reading[0]) {
                let next = steps[reading[0]].node
                guard next.domain.isEmpty, next.outputs.count == 1 else { break }
                let foldable = residual == nil && canFold
                if next.opType == "Relu" {
                    relu = true
                } else if foldable, next.opType == "BatchNormalization",
                          let normalization = ChannelAffine(batchNormalization: next, constants: constants),
                          normalization.channels == affine.channels {
                    affine.then(normalization)
                } else if foldable, next.opType == "Mul" || next.opType == "Add",
                          let constant = ChannelConstant(next, data: value, constants: constants, channels: affine.channels),
                          constant.fits(rank: rank) {
                    affine.then(constant, multiplies: next.opType == "Mul")
                    rank = rank ?? constant.requiredRank
                    affine.minimumRank = max(affine.minimumRank, constant.rank)
                } else if isConvolution, residual == nil, next.opType == "Add" || next.opType == "Sum", next.inputs.count == 2,
                          let other = next.inputs.first(where: { $0 != value }), !other.isEmpty, constants[other] == nil,
                          next.inputs.contains(value), (producer[other] ?? -1) < head {
                    residual = other
                } else {
                    break
                }
                members.append(reading[0])
                value = next.outputs[0]
            }
            guard members.count > 1 else { continue }
            claimed.formUnion(members)
            let intermediates = members.dropLast().map { steps[$0].node.outputs[0] }
            var node = step.node
            node.outputs = [value]
            let kernel: any Kernel
            if isConvolution {
                if !affine.isIdentity {
                    let (weightsName, biasName) = try fold(affine, into: step.node, constants: &constants)
                    node.inputs = [input, weightsName, biasName]
                } else {
                    node.inputs = Array(step.node.inputs.prefix(3)) + [String](repeating: "", count: max(0, 3 - step.node.inputs.count))
                }
                if let residual { node.inputs.append(residual) }
                var spec = NodeSpec(node: node, opset: opset)
                kernel = try ConvolutionKernels.convolution(&spec, residual: residual != nil, relu: relu)
            } else {
                node.inputs = [input]
                kernel = NormalizationKernels.fusedChannelAffine(affine, requiredRank: rank, relu: relu)
            }
            chains[head] = FusedChain(steps: members, intermediates: intermediates, node: node, kernel: kernel)
        }
        return chains
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
