import NNPipeCore

/// The part of a model between its inputs and one float output, run forward with every
/// intermediate kept and differentiated in reverse.
///
/// Inference-only tails (ArgMax, label lookups) are never part of it: only the nodes the
/// `target` value depends on are planned, so a classifier's label output does not need gradients.
public final class TrainingGraph {
    struct Step {
        let node: Node
        let operation: any DifferentiableOperator
    }

    /// The value the loss reads.
    public let target: String
    /// Model inputs the target depends on.
    public let inputNames: [String]
    /// Float initializers the optimiser updates, in model order.
    public private(set) var trainableNames: [String]
    /// Every initializer the planned nodes read (trainable or not), by name.
    public private(set) var tensors: [String: TrainingTensor]
    /// Initializers changed by training besides the trainable ones (BatchNormalization running statistics).
    public private(set) var updatedStatistics: Set<String> = []
    /// Which parameters are fake-quantised per channel (the axis) when quantisation-aware training is on.
    public var weightQuantizationAxes: [String: Int] = [:]
    /// Moving-average ranges of fake-quantised activations (quantisation-aware training); nil: off.
    public var activationRanges: [String: ValueRange]?
    /// Weight of the old range in the moving average.
    public var rangeMomentum: Float = 0.99
    let steps: [Step]
    private var passMasks: [String: [Bool]] = [:]

    /// Plans the nodes `target` depends on. `frozen` names initializers left untrained.
    public init(model: Model, target: String, seed: UInt64 = 0, frozen: Set<String> = []) throws {
        let graph = model.graph
        self.target = target
        var producer: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() { for output in node.outputs where !output.isEmpty { producer[output] = index } }
        let initializers = Dictionary(graph.initializers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let runtimeInputs = Set(graph.runtimeInputs.map(\.name))

        // Walk back from the target to find the nodes and inputs it depends on.
        var needed = Set<Int>()
        var inputs = Set<String>()
        var pending = [target]
        var seen = Set<String>()
        while let name = pending.popLast() {
            guard !name.isEmpty, seen.insert(name).inserted else { continue }
            if let index = producer[name] {
                if needed.insert(index).inserted { pending.append(contentsOf: graph.nodes[index].inputs) }
            } else if runtimeInputs.contains(name) {
                inputs.insert(name)
            } else if initializers[name] == nil {
                throw NNPipeError(.invalidModel, "value '\(name)' has no producer, initializer or graph input")
            }
        }
        inputNames = graph.runtimeInputs.map(\.name).filter { inputs.contains($0) }

        let opset = Int(model.opsetVersion() ?? 13)
        var steps: [Step] = []
        var tensors: [String: TrainingTensor] = [:]
        var trainable = Set<String>()
        for index in needed.sorted() {
            let node = graph.nodes[index]
            let zeroPointType = node.inputs.count > 2 ? initializers[node.inputs[2]]?.dataType ?? .uint8 : .uint8
            let operation = try OperatorFactory.make(node: node, opset: opset, seed: seed &+ UInt64(index), zeroPointType: zeroPointType)
            steps.append(Step(node: node, operation: operation))
            for (position, name) in node.inputs.enumerated() where !name.isEmpty && producer[name] == nil {
                guard let initializer = initializers[name], tensors[name] == nil else { continue }
                guard let value = TrainingTensor(initializer) else {
                    throw NNPipeError(.unsupported, "initializer '\(name)' of type \(initializer.dataType) cannot be read for training")
                }
                tensors[name] = value
                if initializer.dataType == .float, OperatorFactory.isDifferentiable(opType: node.opType, inputIndex: position),
                   !frozen.contains(name)
                {
                    trainable.insert(name)
                }
            }
        }
        self.steps = steps
        self.tensors = tensors
        trainableNames = graph.initializers.map(\.name).filter { trainable.contains($0) }
    }

    /// Nodes in run order.
    public var nodes: [Node] { steps.map(\.node) }

    public func parameter(_ name: String) -> TrainingTensor? { tensors[name] }

    /// Replaces an initializer's values (an optimiser step, a mask, restoring the best weights).
    public func setParameter(_ name: String, _ value: TrainingTensor) {
        precondition(tensors[name]?.shape == value.shape, "parameter '\(name)' changes shape")
        tensors[name] = value
    }

    /// Runs the planned nodes on `inputs` (name → batch); returns every value computed.
    public func forward(_ inputs: [String: TrainingTensor], phase: TrainingPhase) throws -> [String: TrainingTensor] {
        var values: [String: TrainingTensor] = [:]
        passMasks = [:]
        for name in inputNames {
            guard let value = inputs[name] else { throw NNPipeError(.invalidData, "no data for model input '\(name)'") }
            values[name] = quantizedActivation(name, value, phase: phase)
        }
        for step in steps {
            let arguments: [TrainingTensor?] = step.node.inputs.map { name in
                guard !name.isEmpty else { return nil }
                if let value = values[name] { return value }
                guard let tensor = tensors[name] else { return nil }
                if let axis = weightQuantizationAxes[name] { return FakeQuantization.weights(tensor, axis: axis) }
                return tensor
            }
            let outputs: [TrainingTensor]
            do { outputs = try step.operation.forward(arguments, phase: phase) } catch let error as NNPipeError {
                throw NNPipeError(error.code, "\(step.node.displayName) (\(step.node.opType)): \(error.message)")
            }
            for (name, value) in zip(step.node.outputs, outputs) where !name.isEmpty {
                values[name] = quantizedActivation(name, value, phase: phase)
            }
            if phase == .training, let normalization = step.operation as? BatchNormalizationOperator,
               let update = normalization.runningUpdate
            {
                tensors[step.node.inputs[3]] = update.mean
                tensors[step.node.inputs[4]] = update.variance
                updatedStatistics.formUnion([step.node.inputs[3], step.node.inputs[4]])
            }
        }
        return values
    }

    /// Moves the value's range (training) and fake-quantises it when activation ranges are on.
    private func quantizedActivation(_ name: String, _ value: TrainingTensor, phase: TrainingPhase) -> TrainingTensor {
        guard var ranges = activationRanges, value.elementCount > 0 else { return value }
        if phase == .training {
            let batch = ValueRange(lower: value.values.min()!, upper: value.values.max()!)
            if let old = ranges[name] {
                ranges[name] = ValueRange(lower: old.lower * rangeMomentum + batch.lower * (1 - rangeMomentum),
                                          upper: old.upper * rangeMomentum + batch.upper * (1 - rangeMomentum))
            } else {
                ranges[name] = batch
            }
            activationRanges = ranges
        }
        guard let range = ranges[name] else { return value }
        let (quantized, passes) = FakeQuantization.activations(value, range: range)
        passMasks[name] = passes
        return quantized
    }

    /// Gradients of the loss for every trainable parameter, given the loss gradient at `target`
    /// and the values of the `forward` call of the same batch.
    public func backward(_ values: [String: TrainingTensor], targetGradient: TrainingTensor) throws -> [String: TrainingTensor] {
        var gradients: [String: TrainingTensor] = [target: targetGradient]
        let trainable = Set(trainableNames)
        for step in steps.reversed() {
            let outputGradients: [TrainingTensor?] = step.node.outputs.map { name in
                guard var gradient = gradients.removeValue(forKey: name) else { return nil }
                // The straight-through estimator: no gradient where the activation was clamped.
                if let passes = passMasks[name] {
                    for index in 0..<gradient.elementCount where !passes[index] { gradient.values[index] = 0 }
                }
                return gradient
            }
            guard outputGradients.contains(where: { $0 != nil }) else { continue }
            let arguments: [TrainingTensor?] = step.node.inputs.map { name in
                name.isEmpty ? nil : values[name] ?? tensors[name].map { tensor in
                    weightQuantizationAxes[name].map { FakeQuantization.weights(tensor, axis: $0) } ?? tensor
                }
            }
            let outputs = step.node.outputs.map { values[$0] ?? TrainingTensor(zeros: []) }
            let inputGradients: [TrainingTensor?]
            do { inputGradients = try step.operation.backward(outputGradients, inputs: arguments, outputs: outputs) } catch let error as NNPipeError {
                throw NNPipeError(error.code, "\(step.node.displayName) (\(step.node.opType)) backward: \(error.message)")
            }
            for (name, gradient) in zip(step.node.inputs, inputGradients) where !name.isEmpty {
                guard let gradient else { continue }
                let flowsOn = values[name] != nil && !inputNames.contains(name)
                guard flowsOn || trainable.contains(name) else { continue }
                if gradients[name] != nil { gradients[name]!.add(gradient) } else { gradients[name] = gradient }
            }
        }
        return gradients.filter { trainable.contains($0.key) }
    }

    /// The model with trained weights and updated statistics written into its initializers.
    public func write(into model: inout Model) {
        let changed = Set(trainableNames).union(updatedStatistics)
        for (index, initializer) in model.graph.initializers.enumerated() where changed.contains(initializer.name) {
            guard let value = tensors[initializer.name] else { continue }
            var updated = value.tensor(named: initializer.name)
            updated.docString = initializer.docString
            updated.metadata = initializer.metadata
            model.graph.initializers[index] = updated
        }
    }
}
