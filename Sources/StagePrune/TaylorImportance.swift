import NNPipeCore
import NNPipeData
import NNPipeTraining

/// First-order Taylor importance (Molchanov et al. 2019): zeroing parameters changes the loss by
/// about −Σ w·∂L/∂w over them. Removing a channel is the same as zeroing, in every layer that reads
/// it, the weights that multiply it (the masked model zeroes exactly those), so a channel's
/// contribution is Σ w·∂L/∂w over its input slices in the consuming Conv/Gemm/MatMul weights. That
/// equals Σ x·∂L/∂x over the channel where it is consumed: after BatchNormalization, activations,
/// residual sums and depthwise convs, so every coupled path is counted once.
///
/// Contributions are kept per batch: a dependency unit's score is the mean over batches of
/// (sum of its atoms' contributions)², so coupled channels are judged together, as the paper's
/// squared group estimate.
struct TaylorContributions {
    /// Per batch: channel space (value name) → per channel Σ w·∂L/∂w over the consumers' input slices.
    var consumed: [[String: [Float]]] = []
    var batchCount: Int { consumed.count }
    /// Mean loss over the batches used (for the report).
    var meanLoss: Double = 0

    /// Mean over batches of (Σ over the unit's atoms of their contributions)².
    func score(atoms: [(space: String, index: Int)]) -> Float {
        guard batchCount > 0 else { return 0 }
        var total: Double = 0
        for batch in consumed {
            var sum: Double = 0
            for atom in atoms {
                if let values = batch[atom.space], atom.index < values.count { sum += Double(values[atom.index]) }
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

        let slices = consumerSlices(model.graph, dependencies: dependencies)

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

            var consumed: [String: [Float]] = [:]
            for slice in slices {
                guard let weight = graph.parameter(slice.tensor), let gradient = gradients[slice.tensor],
                      let count = dependencies.spaces[slice.space]?.count
                else { continue }
                var sums = consumed[slice.space] ?? [Float](repeating: 0, count: count)
                accumulateProducts(weight, gradient, axis: slice.axis, into: &sums)
                consumed[slice.space] = sums
            }
            contributions.consumed.append(consumed)
        }
        guard contributions.batchCount > 0 else {
            throw NNPipeError(.invalidData, "dataset '\(dataset.name)' gave no batch", path: "\(path).dataset")
        }
        contributions.meanLoss = lossSum / Double(contributions.batchCount)
        return contributions
    }

    /// The consumers' input slices: weight edits on a channel space that is not the layer's own output.
    static func consumerSlices(_ graph: Graph, dependencies: ChannelDependencies) -> [(tensor: String, axis: Int, space: String)] {
        var outputsOfWeight: [String: Set<String>] = [:]
        for node in graph.nodes where ["Conv", "Gemm", "MatMul"].contains(node.opType) && node.inputs.count > 1 {
            outputsOfWeight[node.inputs[1], default: []].formUnion(node.outputs)
        }
        var slices: [(tensor: String, axis: Int, space: String)] = []
        for edit in dependencies.edits {
            guard case .tensorAxis(let tensor, let axis, let space, true) = edit, let outputs = outputsOfWeight[tensor],
                  !outputs.contains(space)
            else { continue }
            slices.append((tensor, axis, space))
        }
        return slices
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
