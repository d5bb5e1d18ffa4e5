import NNPipeCore
import NNPipeData
import NNPipeTraining

/// First-order Taylor importance (Molchanov et al. 2019): removing a channel changes the loss by
/// about −Σ w·∂L/∂w over the parameters that produce it. For a filter with bias that sum equals
/// Σ z·∂L/∂z over the channel's output z, so it is the change from zeroing the channel.
/// A channel followed by BatchNormalization is scored on the BN gate instead (γ·∂L/∂γ + β·∂L/∂β,
/// i.e. zeroing the normalised output), as the paper does for BN networks.
///
/// Contributions are kept per batch: a dependency unit's score is the mean over batches of
/// (sum of its members' contributions)², so coupled channels that cancel are judged together.
struct TaylorContributions {
    /// Per batch: source position in `ChannelDependencies.sources` → per output channel Σ w·g.
    var filters: [[Int: [Float]]] = []
    /// Per batch: channel space (value name) after a BatchNormalization → per channel γ·g_γ + β·g_β.
    var gates: [[String: [Float]]] = []
    var batchCount: Int { filters.count }
    /// Mean loss over the batches used (for the report).
    var meanLoss: Double = 0

    /// Score of a unit: mean over batches of (its gate contributions, else its filter contributions)².
    func score(atoms: [(space: String, index: Int)], sources: [(source: Int, channel: Int)]) -> Float {
        guard batchCount > 0 else { return 0 }
        var total: Double = 0
        for batch in 0..<batchCount {
            var sum: Double = 0
            var gated = false
            for atom in atoms {
                if let values = gates[batch][atom.space], atom.index < values.count {
                    sum += Double(values[atom.index])
                    gated = true
                }
            }
            if !gated {
                for member in sources {
                    if let values = filters[batch][member.source], member.channel < values.count {
                        sum += Double(values[member.channel])
                    }
                }
            }
            total += sum * sum
        }
        return Float(total / Double(batchCount))
    }
}

enum TaylorImportance {
    /// Runs `batches` batches of `dataset` forward and backward through the model (inference
    /// behaviour: BN running statistics, no dropout) and records every channel's contribution.
    /// - Throws: `.invalidData` at `path` when the dataset has no labels or they fit no loss,
    ///   `.unsupported` when the training graph cannot differentiate an op of the model.
    static func measure(
        _ model: Model, dependencies: ChannelDependencies, dataset: DatasetSpecification, batches: Int,
        path: String, progress: ProgressReporter
    ) throws -> TaylorContributions {
        guard let labelsKey = dataset.labels else {
            throw NNPipeError(.invalidData, "dataset '\(dataset.name)' has no 'labels'; criterion taylor needs a loss to differentiate", path: "\(path).dataset")
        }
        let target = try LossTarget(model: model, path: path)
        let graph: TrainingGraph
        do { graph = try TrainingGraph(model: model, target: target.value) } catch let error as NNPipeError {
            throw NNPipeError(error.code, "criterion taylor needs gradients: \(error.message)", path: "\(path).criterion")
        }
        let expected = model.graph.runtimeInputs.compactMap(ExpectedInput.init).filter { graph.inputNames.contains($0.name) }
        let inputs: DatasetSource.InputSelection
        switch dataset.inputs {
        case .single(let key): inputs = .single(key: key)
        case .named(let mapping): inputs = .named(mapping)
        }
        // Seeded shuffle: a few batches should sample the whole set, not its first classes.
        let source = DatasetSource(path: dataset.path, inputs: inputs, labels: labelsKey, limit: dataset.limit, shuffle: true, seed: dataset.seed)
        let reader = try DatasetReader(source: source, expectedInputs: expected)

        // Which parameters produce each source's channels (its weight and bias), and each BN gate.
        let producers = dependencies.sources.enumerated().map { position, source -> (Int, [(name: String, axis: Int)]) in
            let node = model.graph.nodes[source.nodeIndex]
            var tensors: [(name: String, axis: Int)] = []
            for edit in dependencies.edits {
                if case .tensorAxis(let tensor, let axis, let space, true) = edit, space == source.space, node.inputs.contains(tensor) {
                    tensors.append((tensor, axis))
                }
            }
            return (position, tensors)
        }
        let gates = dependencies.batchNormScales.compactMap { entry -> (space: String, scale: String, bias: String)? in
            guard let node = model.graph.nodes.first(where: { $0.opType == "BatchNormalization" && $0.inputs.count > 2 && $0.inputs[1] == entry.scale }) else { return nil }
            return (entry.space, entry.scale, node.inputs[2])
        }

        var contributions = TaylorContributions()
        var lossSum = 0.0
        let batchSize = max(dataset.batchSize, 1)
        let count = min(batches, (reader.sampleCount + batchSize - 1) / batchSize)
        for index in 0..<count {
            progress.update("taylor importance: batch \(index + 1) of \(count)", fraction: Double(index) / Double(count))
            let batch = try reader.batch((index * batchSize)..<min((index + 1) * batchSize, reader.sampleCount))
            var feeds: [String: TrainingTensor] = [:]
            for (name, tensor) in batch.inputs {
                guard let value = TrainingTensor(tensor) else {
                    throw NNPipeError(.invalidData, "input '\(name)' of type \(tensor.dataType) cannot be differentiated", path: "\(path).dataset")
                }
                feeds[name] = value
            }
            let values = try graph.forward(feeds, phase: .inference)
            guard let output = values[graph.target], let labels = batch.labels else {
                throw NNPipeError(.internalError, "no value for '\(graph.target)'", path: path)
            }
            let loss = try target.loss(output, labels: labels, samples: batch.sampleCount, path: path)
            lossSum += loss.value
            let gradients = try graph.backward(values, targetGradient: loss.gradient)

            var filters: [Int: [Float]] = [:]
            for (position, tensors) in producers {
                let channelCount = dependencies.spaces[dependencies.sources[position].space]?.count ?? 0
                var sums = [Float](repeating: 0, count: channelCount)
                for tensor in tensors {
                    guard let weight = graph.parameter(tensor.name), let gradient = gradients[tensor.name] else { continue }
                    accumulateProducts(weight, gradient, axis: tensor.axis, into: &sums)
                }
                filters[position] = sums
            }
            var gateSums: [String: [Float]] = [:]
            for gate in gates {
                guard let scale = graph.parameter(gate.scale), let bias = graph.parameter(gate.bias) else { continue }
                var sums = [Float](repeating: 0, count: scale.elementCount)
                if let gradient = gradients[gate.scale] { accumulateProducts(scale, gradient, axis: 0, into: &sums) }
                if let gradient = gradients[gate.bias] { accumulateProducts(bias, gradient, axis: 0, into: &sums) }
                gateSums[gate.space] = sums
            }
            contributions.filters.append(filters)
            contributions.gates.append(gateSums)
        }
        guard contributions.batchCount > 0 else {
            throw NNPipeError(.invalidData, "dataset '\(dataset.name)' gave no batch", path: "\(path).dataset")
        }
        contributions.meanLoss = lossSum / Double(contributions.batchCount)
        return contributions
    }

    /// sums[c] += Σ value·gradient over the slice at index c of `axis`.
    static func accumulateProducts(_ value: TrainingTensor, _ gradient: TrainingTensor, axis: Int, into sums: inout [Float]) {
        guard value.shape == gradient.shape, axis < max(value.rank, 1) else { return }
        let shape = value.rank == 0 ? [1] : value.shape
        let outer = shape[..<axis].reduce(1, *)
        let length = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *)
        guard length == sums.count else { return }
        value.values.withUnsafeBufferPointer { values in
            gradient.values.withUnsafeBufferPointer { gradients in
                for block in 0..<outer {
                    for channel in 0..<length {
                        let start = (block * length + channel) * inner
                        var sum: Float = 0
                        for offset in start..<(start + inner) { sum += values[offset] * gradients[offset] }
                        sums[channel] += sum
                    }
                }
            }
        }
    }
}

/// The value the taylor loss reads and which loss: cross-entropy on logits (a trailing Softmax is
/// skipped so the loss runs through log-softmax) for class labels, mean squared error otherwise.
struct LossTarget {
    /// The first float output of rank 2, else the first float output.
    var output: String
    /// Where the training graph ends: the Softmax input when the output is a Softmax.
    var value: String

    init(model: Model, path: String) throws {
        let floats = model.graph.outputs.filter { $0.type.tensorElementType == .float }
        guard let scored = floats.first(where: { $0.type.tensorShape?.count == 2 }) ?? floats.first else {
            throw NNPipeError(.unsupported, "criterion taylor needs a float model output to compute a loss", path: "\(path).criterion")
        }
        output = scored.name
        value = scored.name
        var producer: [String: Node] = [:]
        for node in model.graph.nodes { for name in node.outputs { producer[name] = node } }
        var current = scored.name
        while let node = producer[current] {
            if node.opType == "Identity" { current = node.inputs[0]; continue }
            if node.opType == "Softmax", node.inputs.count == 1 { value = node.inputs[0] }
            break
        }
    }

    /// Class ids ([N], [N, 1]) or one-hot rows ([N, C]) give cross-entropy; other labels with the
    /// output's element count give mean squared error (a regression head).
    func loss(_ output: TrainingTensor, labels: Tensor, samples: Int, path: String) throws -> LossResult {
        let classCount = output.elementCount / max(samples, 1)
        if labels.shape.count == 2, labels.shape[1] == classCount, classCount > 1, let rows = labels.floatValues(),
           rows.allSatisfy({ $0 == 0 || $0 == 1 })
        {
            let classes = (0..<samples).map { row -> Int in
                let slice = rows[(row * classCount)..<((row + 1) * classCount)]
                return slice.firstIndex(of: slice.max()!)! - row * classCount
            }
            return try Losses.crossEntropy(logits: output, labels: classes)
        }
        if labels.elementCount == samples, classCount > 1 {
            let ids: [Int]
            if let integers = labels.integerValues() {
                ids = integers.map { Int(clamping: $0) }
            } else if let values = labels.floatValues(), values.allSatisfy({ $0.rounded() == $0 }) {
                ids = values.map { Int($0) }
            } else {
                throw NNPipeError(.invalidData, "labels of type \(labels.dataType) are not whole class ids", path: "\(path).dataset")
            }
            do { return try Losses.crossEntropy(logits: output, labels: ids) } catch let error as NNPipeError {
                throw NNPipeError(error.code, error.message, path: "\(path).dataset")
            }
        }
        guard let targets = labels.floatValues(), targets.count == output.elementCount else {
            throw NNPipeError(.invalidData, "labels of shape \(labels.shape) fit neither class ids, one-hot rows nor the output \(output.shape)", path: "\(path).dataset")
        }
        return try Losses.meanSquaredError(outputs: output, targets: targets)
    }
}
