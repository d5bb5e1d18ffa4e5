import NNPipeCore
import NNPipeTraining

/// Keeps pruned weights at zero through training and, with a polynomial schedule, raises
/// sparsity at the schedule's steps by magnitude within each masked tensor.
struct PruningController {
    /// Initializer name → 0/1 mask.
    private(set) var masks: [String: [Float]]
    let schedule: SparsitySchedule?

    init(model: Model, graph: TrainingGraph, choice: FineTuneConfiguration.PruneScheduleChoice, path: String) throws {
        var masks: [String: [Float]] = [:]
        for (name, mask) in model.annotations.pruningMasks {
            guard let parameter = graph.parameter(name) else { continue }
            guard mask.shape == parameter.shape, let values = mask.floatValues() else {
                throw NNPipeError(.invalidModel, "pruning mask of '\(name)' has shape \(mask.shape), the weight \(parameter.shape)", path: path)
            }
            masks[name] = values.map { $0 != 0 ? 1 : 0 }
        }
        switch choice {
        case .off: schedule = nil
        case .given(let given): schedule = given
        case .followModel: schedule = try model.annotations.pruningSchedule.map { try SparsitySchedule(json: $0, path: "\(path) (model's pruning schedule)") }
        }
        if let schedule, schedule.kind == .polynomial, masks.isEmpty {
            // No prune stage chose the tensors: prune every trainable Conv/Gemm/MatMul weight.
            for node in graph.nodes where ["Conv", "Gemm", "MatMul"].contains(node.opType) && node.inputs.count > 1 {
                let name = node.inputs[1]
                if graph.trainableNames.contains(name), let weight = graph.parameter(name) {
                    masks[name] = Array(repeating: 1, count: weight.elementCount)
                }
            }
        }
        self.masks = masks
    }

    var isActive: Bool { !masks.isEmpty }

    /// Zeroes masked weights.
    func apply(to graph: TrainingGraph) {
        for (name, mask) in masks {
            guard var weight = graph.parameter(name) else { continue }
            for index in 0..<mask.count where mask[index] == 0 { weight.values[index] = 0 }
            graph.setParameter(name, weight)
        }
    }

    /// Recomputes masks when the schedule prunes at `step` (0-based optimiser step).
    mutating func update(step: Int, graph: TrainingGraph) {
        guard let schedule, schedule.prunes(at: step) else { return }
        recompute(sparsity: schedule.sparsity(at: step), graph: graph)
    }

    /// Makes sure training ends at the schedule's final sparsity even when it stopped before end_step.
    mutating func finish(graph: TrainingGraph) {
        guard let schedule, schedule.kind == .polynomial else { return }
        if sparsity < schedule.finalSparsity - 1e-9 { recompute(sparsity: schedule.finalSparsity, graph: graph) }
    }

    private mutating func recompute(sparsity: Double, graph: TrainingGraph) {
        for name in masks.keys.sorted() {
            guard let weight = graph.parameter(name) else { continue }
            // Weights already pruned are zero, so they stay pruned while the target grows.
            masks[name] = MagnitudeMask.mask(for: weight.values, sparsity: sparsity)
        }
        apply(to: graph)
    }

    /// Fraction of masked-tensor weights held at zero.
    var sparsity: Double {
        let total = masks.values.reduce(0) { $0 + $1.count }
        let zeros = masks.values.reduce(0) { $0 + $1.filter { $0 == 0 }.count }
        return total > 0 ? Double(zeros) / Double(total) : 0
    }

    /// Masks as the uint8 tensors the annotations carry.
    func annotationMasks(shapes: (String) -> [Int]?) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, mask) in masks {
            guard let shape = shapes(name) else { continue }
            result[name] = Tensor(name: name, shape: shape, values: mask.map { UInt8($0) })
        }
        return result
    }
}
