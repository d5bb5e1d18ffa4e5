import Foundation
import NNPipeCore
import NNPipeData
import NNPipeTraining

/// One epoch's line of the loss/metric history.
public struct EpochRecord: Sendable, Equatable {
    public var epoch: Int
    public var steps: Int
    public var trainingLoss: Double
    public var trainingAccuracy: Double?
    public var validationLoss: Double?
    public var validationAccuracy: Double?
    public var learningRate: Double
    public var sparsity: Double?
    public var samplesPerSecond: Double
}

/// What a training run did.
public struct FineTuneOutcome: Sendable {
    public var history: [EpochRecord]
    public var steps: Int
    public var bestEpoch: Int?
    public var stoppedEarly: Bool
    public var trainableParameters: Int
    public var trainableTensors: Int
    public var samplesPerSecond: Double
    public var sparsity: Double?
    public var quantizedRanges: Int
    public var output: String
    /// Set when Ctrl-C stopped training: where, and what was kept.
    public var interruption: InterruptionRecord?
}

/// Where Ctrl-C stopped a run and which weights it kept.
public struct InterruptionRecord: Sendable, Equatable {
    /// 1-based epoch that was running.
    public var epoch: Int
    /// Optimiser steps taken in all.
    public var step: Int
    /// The validated epoch whose weights were kept; nil keeps the latest weights.
    public var keptEpoch: Int?
    public var keptValidationAccuracy: Double?
    public var keptValidationLoss: Double?

    /// The one line the stage prints and the report keeps.
    public var message: String {
        var kept = "keeping the latest weights (no validated epoch yet)"
        if let keptEpoch {
            if let accuracy = keptValidationAccuracy {
                kept = String(format: "keeping best checkpoint (epoch %d, val acc %.2f%%)", keptEpoch, accuracy * 100)
            } else {
                kept = String(format: "keeping best checkpoint (epoch %d, val loss %.4f)", keptEpoch, keptValidationLoss ?? .nan)
            }
        }
        return "interrupted after epoch \(epoch) step \(step); \(kept)"
    }
}

/// The training loop: seeded shuffled batches, forward, loss, backward, optimiser step, masks,
/// per-epoch validation with early stopping, then the best weights written back into the model.
struct FineTuneTrainer {
    let configuration: FineTuneConfiguration
    let context: StageContext

    func run(_ model: inout Model) throws -> FineTuneOutcome {
        let target = try TrainingTarget(model: model, loss: configuration.loss)
        let graph = try TrainingGraph(model: model, target: target.value, seed: configuration.seed, frozen: frozenNames(model))
        guard !graph.trainableNames.isEmpty else {
            throw NNPipeError(.stageFailed, "nothing to train: every float weight on the path to '\(target.output)' is frozen or absent", path: context.stagePath)
        }
        var pruning = try PruningController(model: model, graph: graph, choice: configuration.pruneSchedule, path: context.stagePath)
        pruning.apply(to: graph)
        if configuration.quantizationAware { enableQuantizationAwareTraining(graph) }
        if configuration.distillation != nil, target.probabilities {
            throw NNPipeError(.unsupported, "distillation needs the model's logits, and its output '\(target.output)' holds a Softmax's probabilities behind a reshape", path: "\(context.stagePath).distill")
        }
        let teacher = try configuration.distillation.map { try teacherGraph($0, student: graph) }

        let trainingSpecification = try context.dataset(configuration.dataset)
        guard trainingSpecification.labels != nil else {
            throw NNPipeError(.invalidData, "dataset '\(configuration.dataset)' has no 'labels'; fine-tuning needs them", path: context.stagePath)
        }
        let expected = model.graph.runtimeInputs.compactMap(ExpectedInput.init).filter { graph.inputNames.contains($0.name) }
        let samples = try TrainingSamples(specification: trainingSpecification, expected: expected, seed: configuration.seed)
        let sampleCount = samples.sampleCount
        let batchesPerEpoch = (sampleCount + configuration.batchSize - 1) / configuration.batchSize
        let totalSteps = configuration.steps ?? configuration.epochs * batchesPerEpoch
        let epochs = (totalSteps + batchesPerEpoch - 1) / batchesPerEpoch
        let schedule = LearningRateSchedule(
            kind: configuration.schedule, baseRate: configuration.learningRate, warmupSteps: configuration.warmupSteps,
            stepSize: configuration.stepSize, gamma: configuration.gamma, totalSteps: totalSteps)
        var optimizer = configuration.optimizer
        let validation = try configuration.validation.map { try context.dataset($0) }

        var history: [EpochRecord] = []
        var step = 0
        var best: (score: Double, epoch: Int, accuracy: Double?, loss: Double, snapshot: Snapshot)?
        var interruptedInEpoch: Int?
        var epochsWithoutImprovement = 0
        var stoppedEarly = false
        var trainedSamples = 0
        let trainingStarted = Date()

        for epoch in 0..<epochs where step < totalSteps {
            let epochStarted = Date()
            let reader = try samples.epoch(epoch)
            var lossSum = 0.0
            var correct = 0
            var seen = 0
            var rate = schedule.rate(at: step)
            for start in stride(from: 0, to: reader.sampleCount, by: configuration.batchSize) where step < totalSteps {
                let batch = try reader.batch(start..<min(start + configuration.batchSize, reader.sampleCount))
                let inputs = try feeds(batch)
                let values = try graph.forward(inputs, phase: .training)
                guard let output = values[graph.target] else { throw NNPipeError(.internalError, "target '\(graph.target)' not computed") }
                var loss = try labelled(trainingSpecification) { try taskLoss(output, batch: batch, target: target) }
                if let distillation = configuration.distillation, let teacher {
                    let teacherOutput = try teacher.logits(teacher.graph.forward(teacher.feeds(inputs), phase: .inference)[teacher.graph.target]!)
                    // Checked here, on the first batch, so the one-line error names the option to fix.
                    guard teacherOutput.shape == output.shape else {
                        throw NNPipeError(.invalidModel, "the teacher's output \(teacherOutput.shape) differs from the model's \(output.shape) (distillation needs the same classes)", path: "\(context.stagePath).distill.teacher")
                    }
                    let soft = try Losses.distillation(student: output, teacher: teacherOutput, temperature: distillation.temperature, alpha: distillation.alpha)
                    loss.value = soft.value + Double(1 - distillation.alpha) * loss.value
                    for index in 0..<loss.gradient.elementCount {
                        loss.gradient.values[index] = soft.gradient.values[index] + (1 - distillation.alpha) * loss.gradient.values[index]
                    }
                }
                guard loss.value.isFinite else {
                    throw NNPipeError(.stageFailed, "the loss became \(loss.value) at step \(step + 1) (epoch \(epoch + 1)); lower 'lr'", path: context.stagePath)
                }
                let gradients = try graph.backward(values, targetGradient: loss.gradient)
                rate = schedule.rate(at: step)
                optimizer.beginStep()
                for name in graph.trainableNames {
                    guard let gradient = gradients[name], var parameter = graph.parameter(name) else { continue }
                    optimizer.update(name, parameter: &parameter.values, gradient: gradient.values, rate: Float(rate))
                    graph.setParameter(name, parameter)
                }
                pruning.update(step: step, graph: graph)
                pruning.apply(to: graph)
                step += 1
                if context.interruption.isRequested && step < totalSteps { interruptedInEpoch = epoch + 1 }

                lossSum += loss.value * Double(batch.sampleCount)
                correct += try labelled(trainingSpecification) { try correctCount(output, batch: batch, target: target) }
                seen += batch.sampleCount
                trainedSamples += batch.sampleCount
                let speed = Double(seen) / max(Date().timeIntervalSince(epochStarted), 1e-9)
                context.progress.update(
                    String(format: "epoch %d/%d step %d/%d loss %.4f %.0f samples/s", epoch + 1, epochs, step, totalSteps, lossSum / Double(seen), speed),
                    fraction: Double(step) / Double(totalSteps))
                if interruptedInEpoch != nil { break }
            }
            var record = EpochRecord(
                epoch: epoch + 1, steps: step, trainingLoss: lossSum / Double(max(seen, 1)),
                trainingAccuracy: configuration.loss == .crossEntropy ? Double(correct) / Double(max(seen, 1)) : nil,
                learningRate: rate, sparsity: pruning.isActive ? pruning.sparsity : nil,
                samplesPerSecond: Double(seen) / max(Date().timeIntervalSince(epochStarted), 1e-9))
            // A part-epoch is not validated: the user asked to stop, and best is judged on whole epochs.
            if let validation, interruptedInEpoch == nil {
                let (loss, accuracy) = try evaluate(graph, validation, expected: expected, target: target)
                record.validationLoss = loss
                record.validationAccuracy = accuracy
                // Higher is better: accuracy for classification, negative loss for regression.
                let score = accuracy ?? -loss
                if best == nil || score > best!.score {
                    best = (score, epoch + 1, accuracy, loss, Snapshot(graph))
                    epochsWithoutImprovement = 0
                } else {
                    epochsWithoutImprovement += 1
                }
            }
            history.append(record)
            if interruptedInEpoch != nil { break }
            if let patience = configuration.earlyStoppingPatience, epochsWithoutImprovement >= patience, step < totalSteps {
                stoppedEarly = true
                break
            }
        }
        var interruption: InterruptionRecord?
        if let epoch = interruptedInEpoch {
            // Keep what training reached: the best validated weights (or the latest), the masks as
            // they are; jumping to the schedule's final sparsity would be an untrained model.
            if let best { best.snapshot.restore(graph) }
            pruning.apply(to: graph)
            interruption = InterruptionRecord(
                epoch: epoch, step: step, keptEpoch: best?.epoch, keptValidationAccuracy: best?.accuracy, keptValidationLoss: best?.loss)
        } else {
            if let best, best.epoch != history.last?.epoch { best.snapshot.restore(graph) }
            // Restored or stopped early, the result still ends at the schedule's final sparsity with every mask held.
            pruning.finish(graph: graph)
            pruning.apply(to: graph)
        }
        let trainingSeconds = Date().timeIntervalSince(trainingStarted)

        graph.write(into: &model)
        if pruning.isActive {
            model.annotations.pruningMasks.merge(pruning.annotationMasks { graph.parameter($0)?.shape }) { _, new in new }
        }
        if let ranges = graph.activationRanges {
            for (name, range) in ranges { model.annotations.calibrationRanges[name] = range }
            for name in target.probabilityValues { model.annotations.calibrationRanges[name] = ValueRange(lower: 0, upper: 1) }
        }
        return FineTuneOutcome(
            history: history, steps: step, bestEpoch: best?.epoch, stoppedEarly: stoppedEarly,
            trainableParameters: graph.trainableNames.reduce(0) { $0 + (graph.parameter($1)?.elementCount ?? 0) },
            trainableTensors: graph.trainableNames.count,
            samplesPerSecond: Double(trainedSamples) / max(trainingSeconds, 1e-9),
            sparsity: pruning.isActive ? pruning.sparsity : nil, quantizedRanges: graph.activationRanges?.count ?? 0,
            output: target.output, interruption: interruption)
    }

    // MARK: Pieces

    /// Initializers of nodes whose name matches a `freeze` pattern, and initializers matching one directly.
    private func frozenNames(_ model: Model) -> Set<String> {
        guard !configuration.freeze.isEmpty else { return [] }
        let matches = { (name: String) in configuration.freeze.contains { NamePattern.matches(name, pattern: $0) } }
        var frozen = Set(model.graph.initializers.map(\.name).filter(matches))
        for node in model.graph.nodes where matches(node.name) { frozen.formUnion(node.inputs) }
        return frozen
    }

    private func feeds(_ batch: Batch) throws -> [String: TrainingTensor] {
        var result: [String: TrainingTensor] = [:]
        for (name, tensor) in batch.inputs {
            guard let value = TrainingTensor(tensor) else {
                throw NNPipeError(.invalidData, "input '\(name)' of type \(tensor.dataType) cannot feed training")
            }
            result[name] = value
        }
        return result
    }

    /// Runs `body`, naming the data set's file and labels key in a label error it throws: a label
    /// that is no class is the data's fault, and the stage path alone does not say which file.
    private func labelled<Result>(_ specification: DatasetSpecification, _ body: () throws -> Result) throws -> Result {
        do { return try body() } catch let error as NNPipeError where error.path == nil {
            throw NNPipeError(error.code, "dataset '\(specification.name)', labels '\(specification.labels ?? "")': \(error.message)",
                              path: specification.path.path)
        }
    }

    private func taskLoss(_ output: TrainingTensor, batch: Batch, target: TrainingTarget) throws -> LossResult {
        guard let labels = batch.labels else { throw NNPipeError(.invalidData, "a batch came without labels") }
        switch configuration.loss {
        case .crossEntropy:
            let classes = try LabelReader.classes(labels, samples: batch.sampleCount, classCount: output.elementCount / max(batch.sampleCount, 1))
            return target.probabilities
                ? try Losses.crossEntropy(probabilities: output, labels: classes)
                : try Losses.crossEntropy(logits: output, labels: classes)
        case .meanSquaredError:
            return try Losses.meanSquaredError(outputs: output, targets: try LabelReader.targets(labels))
        }
    }

    private func correctCount(_ output: TrainingTensor, batch: Batch, target: TrainingTarget) throws -> Int {
        guard configuration.loss == .crossEntropy, let labels = batch.labels else { return 0 }
        let classCount = output.elementCount / max(batch.sampleCount, 1)
        let classes = try LabelReader.classes(labels, samples: batch.sampleCount, classCount: classCount)
        var correct = 0
        for (row, label) in classes.enumerated() {
            let slice = output.values[(row * classCount)..<((row + 1) * classCount)]
            if slice.firstIndex(of: slice.max()!)! - row * classCount == label { correct += 1 }
        }
        return correct
    }

    /// Mean loss and accuracy (classification) of the graph at inference on a data set.
    private func evaluate(_ graph: TrainingGraph, _ specification: DatasetSpecification, expected: [ExpectedInput], target: TrainingTarget) throws -> (Double, Double?) {
        guard specification.labels != nil else {
            throw NNPipeError(.invalidData, "validation dataset '\(specification.name)' has no 'labels'", path: context.stagePath)
        }
        let reader = try DatasetReader(source: datasetSource(specification), expectedInputs: expected)
        var lossSum = 0.0
        var correct = 0
        try reader.forEachBatch(size: configuration.batchSize) { batch in
            let output = try graph.forward(try feeds(batch), phase: .inference)[graph.target]!
            lossSum += try labelled(specification) { try taskLoss(output, batch: batch, target: target) }.value * Double(batch.sampleCount)
            correct += try labelled(specification) { try correctCount(output, batch: batch, target: target) }
        }
        let count = Double(reader.sampleCount)
        return (lossSum / count, configuration.loss == .crossEntropy ? Double(correct) / count : nil)
    }

    /// The teacher for distillation, read at its logits: the model before the first stage, or the
    /// model file `distill.teacher` names (e.g. what an earlier export stage wrote, or a larger model).
    private func teacherGraph(_ distillation: FineTuneConfiguration.Distillation, student: TrainingGraph) throws -> Teacher {
        let path = "\(context.stagePath).distill.teacher"
        let model: Model
        if let file = distillation.teacher {
            let url = (file.hasPrefix("/") ? URL(fileURLWithPath: file) : context.manifestDirectory.appendingPathComponent(file)).standardizedFileURL
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw NNPipeError(.invalidManifest, "no teacher model at '\(url.path)' (a path relative to the manifest; an export stage writes under output_dir)", path: path)
            }
            do {
                model = try context.formats.read(url)
                try GraphCheck.validate(model, path: url.path)
            } catch {
                throw NNPipeError(.invalidModel, "teacher '\(file)': \(error)", path: path)
            }
        } else {
            guard let original = context.originalModel else {
                throw NNPipeError(.stageFailed, "distillation needs the pipeline's input model as teacher, and none was given", path: context.stagePath)
            }
            model = original
        }
        let target = try TrainingTarget(model: model, loss: .crossEntropy)
        let graph = try TrainingGraph(model: model, target: target.value, seed: configuration.seed)
        // Inputs pair up by name; a one-input teacher takes a one-input student's data whatever its name
        // (a Keras model's 'input_1' and a tf2onnx model's 'input' are the same images).
        var renamed: [String: String] = [:]
        if Set(graph.inputNames) != Set(student.inputNames) {
            guard graph.inputNames.count == 1, student.inputNames.count == 1 else {
                throw NNPipeError(.invalidModel, "teacher inputs \(graph.inputNames) do not match the model's \(student.inputNames)", path: path)
            }
            renamed[student.inputNames[0]] = graph.inputNames[0]
        }
        return Teacher(graph: graph, renamed: renamed, probabilities: target.probabilities)
    }

    struct Teacher {
        let graph: TrainingGraph
        /// Student input name -> teacher input name, where they differ.
        let renamed: [String: String]
        /// The teacher's target holds probabilities (a Softmax behind a reshape), not logits.
        let probabilities: Bool

        /// Logits for the distillation loss: log p differs from the logits that made p by one
        /// constant a row, which the loss's softmax cancels. p is floored where it underflowed to 0.
        func logits(_ output: TrainingTensor) -> TrainingTensor {
            guard probabilities else { return output }
            var logits = output
            for index in 0..<logits.elementCount { logits.values[index] = log(max(logits.values[index], 1e-30)) }
            return logits
        }

        func feeds(_ inputs: [String: TrainingTensor]) -> [String: TrainingTensor] {
            guard !renamed.isEmpty else { return inputs }
            return Dictionary(uniqueKeysWithValues: inputs.map { (renamed[$0.key] ?? $0.key, $0.value) })
        }
    }

    /// Fake quantisation on Conv/Gemm/MatMul weights (per-channel symmetric int8, on the axis the
    /// quantize stage uses) and on every activation (per-tensor, moving-average ranges).
    private func enableQuantizationAwareTraining(_ graph: TrainingGraph) {
        var axes: [String: Int] = [:]
        for node in graph.nodes where node.inputs.count > 1 {
            let name = node.inputs[1]
            guard let weight = graph.parameter(name), weight.rank >= 2 else { continue }
            switch node.opType {
            case "Conv": axes[name] = 0
            case "Gemm": axes[name] = (node.attribute("transB")?.intValue ?? 0) != 0 ? 0 : 1
            case "MatMul" where weight.rank == 2: axes[name] = 1
            default: break
            }
        }
        graph.weightQuantizationAxes = axes
        graph.activationRanges = [:]
    }
}

/// Trained weights, statistics and ranges at one moment, to restore the best epoch.
struct Snapshot {
    let tensors: [String: TrainingTensor]
    let ranges: [String: ValueRange]?

    init(_ graph: TrainingGraph) {
        var tensors: [String: TrainingTensor] = [:]
        for name in graph.trainableNames + graph.updatedStatistics.sorted() { tensors[name] = graph.parameter(name) }
        self.tensors = tensors
        ranges = graph.activationRanges
    }

    func restore(_ graph: TrainingGraph) {
        for (name, value) in tensors { graph.setParameter(name, value) }
        graph.activationRanges = ranges
    }
}
