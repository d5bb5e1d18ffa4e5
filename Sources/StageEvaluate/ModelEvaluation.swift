import Foundation
import NNPipeCore
import NNPipeData
import NNPipeRuntime

/// Runs a model over a data set on nnpipe's CPU runtime and scores one of its outputs:
/// shared by the `evaluate` stage, the manifest's `evaluate` block and `nnpipe eval`.
public enum ModelEvaluation {
    public struct Request: Sendable {
        public var source: DatasetSource
        public var batchSize: Int
        /// "accuracy", "top_k_accuracy", "mse", "fidelity".
        public var metrics: [String]
        public var topK: Int
        /// The scored output; nil picks the first float output of rank 2 (class scores), else the first float output.
        public var output: String?
        /// Fidelity compares against this model's outputs on the same batches.
        public var reference: Model?
        /// Writes every output for the whole data set to this `.npz`.
        public var saveOutputs: URL?
        /// Where the model and the reference were read from, if from files: a model that cannot
        /// run (a shape that does not fit, an op outside the set) is reported at its file.
        public var modelPath: String?
        public var referencePath: String?

        public init(
            source: DatasetSource, batchSize: Int = 32, metrics: [String] = ["accuracy"], topK: Int = 5,
            output: String? = nil, reference: Model? = nil, saveOutputs: URL? = nil
        ) {
            self.source = source
            self.batchSize = batchSize
            self.metrics = metrics
            self.topK = topK
            self.output = output
            self.reference = reference
            self.saveOutputs = saveOutputs
        }
    }

    public struct Outcome: Sendable {
        public var output: String
        public var sampleCount: Int
        public var seconds: Double
        public var accuracy: Double?
        public var topKAccuracy: Double?
        public var topK: Int
        public var meanSquaredError: Double?
        public var maximumAbsoluteDifference: Double?
        public var cosineSimilarity: Double?
        public var argmaxAgreement: Double?

        public var members: [(key: String, value: JSONValue)] {
            var members: [(key: String, value: JSONValue)] = [
                ("output", .string(output)), ("samples", .number(Double(sampleCount))),
            ]
            func add(_ key: String, _ value: Double?) {
                if let value { members.append((key, .number((value * 1e6).rounded() / 1e6))) }
            }
            add("accuracy", accuracy)
            add("top_\(topK)_accuracy", topKAccuracy)
            add("mse", meanSquaredError)
            add("max_abs_diff", maximumAbsoluteDifference)
            add("cosine_similarity", cosineSimilarity)
            add("argmax_agreement", argmaxAgreement)
            members.append(("seconds", .number((seconds * 1000).rounded() / 1000)))
            return members
        }
    }

    public static func run(_ model: Model, request: Request, progress: ProgressReporter = .silent) throws -> Outcome {
        let started = Date()
        func located<Result>(_ path: String?, _ body: () throws -> Result) throws -> Result {
            do { return try body() } catch let error as NNPipeError { throw path.map { error.located(at: $0) } ?? error }
        }
        let plan = try located(request.modelPath) { try ExecutionPlan(model: model) }
        let referencePlan = try located(request.referencePath) { try request.reference.map { try ExecutionPlan(model: $0) } }
        let scored = try scoredOutput(model, requested: request.output)
        let expected = model.graph.runtimeInputs.compactMap(ExpectedInput.init)
        let reader = try DatasetReader(source: request.source, expectedInputs: expected)
        // A shape problem inside the model (not only at its inputs) is reported before the first batch runs.
        let batchShapes = reader.inputShapes.compactMapValues { $0.isEmpty ? nil : [min(request.batchSize, max(reader.sampleCount, 1))] + $0.dropFirst() }
        _ = try located(request.modelPath) { try plan.inferShapes(inputShapes: batchShapes) }

        let wantsAccuracy = request.metrics.contains("accuracy") || request.metrics.contains("top_k_accuracy")
        let wantsError = request.metrics.contains("mse")
        let wantsFidelity = request.metrics.contains("fidelity")
        if (wantsAccuracy || wantsError) && request.source.labels == nil {
            throw NNPipeError(.invalidData, "\(wantsAccuracy ? "accuracy" : "mse") needs labels: name the labels key", path: request.source.path.path)
        }
        if wantsFidelity && referencePlan == nil {
            throw NNPipeError(.usage, "fidelity needs a reference model")
        }
        var metrics = MetricsAccumulator(topK: request.topK > 1 ? [1, request.topK] : [1])
        if let destination = request.saveOutputs { try NumpyArchiveWriter.checkDestination(destination) }
        let writer = request.saveOutputs.map { NumpyArchiveWriter(url: $0) }
        let outputNames = writer == nil ? [scored] : plan.outputNames

        var done = 0
        try reader.forEachBatch(size: request.batchSize) { batch in
            var feeds: [String: RuntimeTensor] = [:]
            for (name, tensor) in batch.inputs { feeds[name] = try RuntimeTensor(tensor) }
            let results = try plan.run(inputs: feeds, outputs: outputNames)
            guard let output = results[scored]?.tensor(named: scored) else {
                throw NNPipeError(.internalError, "output '\(scored)' missing from the run")
            }
            if let labels = batch.labels {
                // A label that is no class, or targets of the wrong size, are the data's fault: named at its file and key.
                do {
                    if wantsAccuracy { try metrics.addAccuracy(outputs: output, labels: labels) }
                    if wantsError { try metrics.addMeanSquaredError(outputs: output, targets: labels) }
                } catch let error as NNPipeError where error.path == nil {
                    throw NNPipeError(error.code, "labels '\(request.source.labels ?? "")': \(error.message)", path: request.source.path.path)
                }
            }
            if wantsFidelity, let referencePlan {
                let reference = try located(request.referencePath) { try referencePlan.run(inputs: feeds, outputs: [scored]) }
                if let referenceOutput = reference[scored]?.tensor(named: scored) {
                    try metrics.addFidelity(outputs: output, reference: referenceOutput)
                }
            }
            if let writer {
                for name in outputNames {
                    if let value = results[name] { try writer.append(value.tensor(named: name), as: name) }
                }
            }
            done += batch.range.count
            progress.update("evaluating on \(request.source.path.lastPathComponent)", fraction: Double(done) / Double(reader.sampleCount))
        }
        try writer?.finish()

        return Outcome(
            output: scored, sampleCount: reader.sampleCount, seconds: Date().timeIntervalSince(started),
            accuracy: wantsAccuracy ? metrics.accuracy.accuracy(topK: 1) : nil,
            topKAccuracy: request.metrics.contains("top_k_accuracy") ? metrics.accuracy.accuracy(topK: request.topK) : nil,
            topK: request.topK,
            meanSquaredError: wantsError ? metrics.meanSquaredError.value : nil,
            maximumAbsoluteDifference: wantsFidelity ? metrics.fidelity.maximumAbsoluteDifference : nil,
            cosineSimilarity: wantsFidelity ? metrics.fidelity.cosineSimilarity : nil,
            argmaxAgreement: wantsFidelity ? metrics.fidelity.argmaxAgreement : nil)
    }

    /// The output that metrics score.
    static func scoredOutput(_ model: Model, requested: String?) throws -> String {
        let outputs = model.graph.outputs
        if let requested {
            guard outputs.contains(where: { $0.name == requested }) else {
                throw NNPipeError(.usage, "the model has no output '\(requested)' (outputs: \(outputs.map(\.name).joined(separator: ", ")))")
            }
            return requested
        }
        let floats = outputs.filter { $0.type.tensorElementType == .float }
        if let scores = floats.first(where: { $0.type.tensorShape?.count == 2 }) { return scores.name }
        if let first = floats.first { return first.name }
        guard let first = outputs.first else { throw NNPipeError(.invalidModel, "the model has no outputs") }
        return first.name
    }
}

extension DatasetSource {
    /// The data-module view of a manifest dataset.
    public init(_ specification: DatasetSpecification) {
        let inputs: InputSelection
        switch specification.inputs {
        case .single(let key): inputs = .single(key: key)
        case .named(let mapping): inputs = .named(mapping)
        }
        self.init(
            path: specification.path, inputs: inputs, labels: specification.labels, limit: specification.limit,
            shuffle: specification.shuffle, seed: specification.seed)
    }
}

/// The manifest's `evaluate` block, measured after import and after every stage.
public struct RuntimeEvaluator: ModelEvaluator {
    public init() {}

    public func evaluate(
        _ model: Model, specification: EvaluationSpecification, dataset: DatasetSpecification,
        reference: Model?, progress: ProgressReporter
    ) throws -> [(key: String, value: JSONValue)] {
        var metrics = specification.metrics
        // Fidelity is meaningless on the input model itself; it starts after the first stage.
        if reference == nil { metrics.removeAll { $0 == "fidelity" } }
        let request = ModelEvaluation.Request(
            source: DatasetSource(dataset), batchSize: dataset.batchSize, metrics: metrics,
            topK: specification.topK, output: specification.output, reference: reference)
        return try ModelEvaluation.run(model, request: request, progress: progress).members
    }
}
