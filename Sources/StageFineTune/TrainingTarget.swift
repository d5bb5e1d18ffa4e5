import NNPipeCore
import NNPipeData
import NNPipeTraining

/// Which value of a model the loss reads, found the way the evaluate stage scores a model: the
/// first float output of rank 2, else the first float output.
struct TrainingTarget: Equatable {
    /// The scored model output.
    var output: String
    /// The value the training graph ends at: the input of a trailing Softmax when training
    /// cross-entropy from probabilities, so the loss runs through log-softmax stably.
    var value: String
    /// `value` holds logits whose Softmax is `output`.
    var strippedSoftmax: Bool
    /// Values between `value` and `output` (the Softmax and Identity outputs) with range [0, 1].
    var probabilityValues: [String]
    /// `value` holds a Softmax's probabilities that could not be stripped, because a reshape
    /// (Reshape, Flatten, Squeeze, Unsqueeze) sits between it and `output`: the loss then reads
    /// them as probabilities, where reading them as logits would train against softmax(p).
    var probabilities: Bool

    /// Ops that change a value's shape and nothing else, so a Softmax behind them still makes
    /// the output probabilities.
    private static let reshapes: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze"]

    init(model: Model, loss: FineTuneConfiguration.LossKind) throws {
        let outputs = model.graph.outputs
        let floats = outputs.filter { $0.type.tensorElementType == .float }
        guard let scored = floats.first(where: { $0.type.tensorShape?.count == 2 }) ?? floats.first else {
            throw NNPipeError(.unsupported, "the model has no float output to train (outputs: \(outputs.map(\.name).joined(separator: ", ")))")
        }
        output = scored.name
        value = scored.name
        strippedSoftmax = false
        probabilityValues = []
        probabilities = false
        guard loss == .crossEntropy else { return }
        var producer: [String: Node] = [:]
        for node in model.graph.nodes { for name in node.outputs { producer[name] = node } }
        var current = scored.name
        var passed: [String] = []
        var reshaped = false
        while let node = producer[current], let first = node.inputs.first {
            if node.opType == "Identity" || Self.reshapes.contains(node.opType) {
                reshaped = reshaped || node.opType != "Identity"
                passed.append(current)
                current = first
                continue
            }
            if node.opType == "Softmax", node.inputs.count == 1 {
                if reshaped {
                    probabilities = true
                } else {
                    value = first
                    strippedSoftmax = true
                    probabilityValues = passed + [current]
                }
            }
            break
        }
    }
}

/// Class ids or regression targets of a batch's labels.
enum LabelReader {
    /// Class ids from ids `[N]`/`[N, 1]` of any numeric type or one-hot rows `[N, C]`.
    static func classes(_ labels: Tensor, samples: Int, classCount: Int) throws -> [Int] {
        if labels.shape.count == 2, labels.shape[1] == classCount, classCount > 1, let rows = labels.floatValues() {
            return (0..<samples).map { row in
                let slice = rows[(row * classCount)..<((row + 1) * classCount)]
                return slice.firstIndex(of: slice.max()!)! - row * classCount
            }
        }
        guard labels.elementCount == samples else {
            throw NNPipeError(.invalidData, "labels shape \(labels.shape) fits neither class ids [\(samples)] nor one-hot [\(samples), \(classCount)]")
        }
        if let integers = labels.integerValues() { return integers.map { Int(clamping: $0) } }
        guard let values = labels.floatValues(), values.allSatisfy({ $0.rounded() == $0 }) else {
            throw NNPipeError(.invalidData, "labels of type \(labels.dataType) are not whole class ids")
        }
        return values.map { Int($0) }
    }

    static func targets(_ labels: Tensor) throws -> [Float] {
        guard let values = labels.floatValues() else {
            throw NNPipeError(.invalidData, "labels of type \(labels.dataType) are not numeric")
        }
        return values
    }
}

/// The data-module view of a manifest dataset (as the evaluate stage maps it; stage modules do not share code).
func datasetSource(_ specification: DatasetSpecification) -> DatasetSource {
    let inputs: DatasetSource.InputSelection
    switch specification.inputs {
    case .single(let key): inputs = .single(key: key)
    case .named(let mapping): inputs = .named(mapping)
    }
    return DatasetSource(
        path: specification.path, inputs: inputs, labels: specification.labels, limit: specification.limit,
        shuffle: specification.shuffle, seed: specification.seed)
}
