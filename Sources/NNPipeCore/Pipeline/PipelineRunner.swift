import Foundation
import Logging

/// Measures a model on a dataset (accuracy, mse, fidelity). Provided by the command-line
/// layer from the runtime and data modules, which Core does not import.
public protocol ModelEvaluator: Sendable {
    func evaluate(
        _ model: Model, specification: EvaluationSpecification, dataset: DatasetSpecification,
        reference: Model?, progress: ProgressReporter
    ) throws -> [(key: String, value: JSONValue)]
}

/// Runs a validated manifest: import, stages in order (timed, checked, measured), report.
public struct PipelineRunner: Sendable {
    public var registry: StageRegistry
    public var formats: FormatRegistry
    public var logger: Logger
    public var progress: ProgressReporter
    public var evaluator: (any ModelEvaluator)?
    /// False for in-memory pipelines such as `nnpipe convert`, which leave no report.json.
    public var writesReport = true
    /// Ctrl-C: stages see it in their context; the runner starts no stage after it is raised.
    public var interruption = Interruption()

    public init(
        registry: StageRegistry, formats: FormatRegistry, logger: Logger = Logger(label: "nnpipe"),
        progress: ProgressReporter = .silent, evaluator: (any ModelEvaluator)? = nil
    ) {
        self.registry = registry
        self.formats = formats
        self.logger = logger
        self.progress = progress
        self.evaluator = evaluator
    }

    /// Checks that everything the manifest names exists, without doing any work.
    /// Problems are reported at their JSON paths (`model`, `datasets.calib.path`).
    public func preflight(_ manifest: Manifest) throws {
        var problems: [NNPipeError] = []
        let manager = FileManager.default
        let file = manifest.file?.path
        var isDirectory: ObjCBool = false
        let modelKind = FileKind(manifest.model.path)
        if modelKind == .missing {
            problems.append(NNPipeError(.invalidManifest, "model: file not found: \(manifest.model.path.path)", path: file))
        } else if modelKind == .folder {
            problems.append(NNPipeError(.invalidManifest, "model: is a folder, expected a model file: \(manifest.model.path.path)", path: file))
        } else if modelKind == .special {
            problems.append(NNPipeError(.invalidManifest, "model: \(FileKind.specialMessage): \(manifest.model.path.path)", path: file))
        } else if manifest.model.format == nil {
            do { _ = try formats.format(forInput: manifest.model.path) } catch let error as NNPipeError {
                problems.append(NNPipeError(.invalidManifest, "model: \(error.message): \(manifest.model.path.path)", path: file))
            }
        }
        for name in manifest.datasetOrder {
            guard let dataset = manifest.datasets[name] else { continue }
            switch FileKind(dataset.path) {
            case .missing: problems.append(NNPipeError(.invalidManifest, "datasets.\(name).path: file not found: \(dataset.path.path)", path: file))
            case .special: problems.append(NNPipeError(.invalidManifest, "datasets.\(name).path: \(FileKind.specialMessage): \(dataset.path.path)", path: file))
            case .folder, .regular: break
            }
        }
        if manager.fileExists(atPath: manifest.outputDirectory.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            problems.append(NNPipeError(.invalidManifest, "output_dir: exists and is not a folder: \(manifest.outputDirectory.path)", path: file))
        }
        for invocation in manifest.stages where invocation.kind == ExportStage.kind {
            do {
                let export = try ExportStage(options: invocation.options)
                _ = try export.writer(formats: formats, destination: manifest.outputDirectory.appendingPathComponent(export.path))
            } catch let error as NNPipeError {
                problems.append(NNPipeError(.invalidManifest, "\(invocation.path).path: \(error.message)", path: file))
            }
        }
        if manifest.evaluation != nil, evaluator == nil {
            problems.append(NNPipeError(.invalidManifest, "evaluate: this nnpipe has no runtime to evaluate models", path: file))
        }
        if !problems.isEmpty { throw ManifestProblems(problems: problems) }
    }

    /// The plan `--dry-run` prints: one line per step with resolved paths.
    public func plan(_ manifest: Manifest) -> [String] {
        var lines = ["import \(manifest.model.path.path)" + (manifest.model.format.map { " as \($0)" } ?? "")]
        if let evaluation = manifest.evaluation {
            lines.append("evaluate \(evaluation.metrics.joined(separator: ", ")) on '\(evaluation.dataset)' (\(manifest.datasets[evaluation.dataset]?.path.path ?? "?")) after import and after every stage")
        }
        for invocation in manifest.stages {
            let options = invocation.options.values.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            var line = "\(invocation.path) \(invocation.kind)" + (options.isEmpty ? "" : " " + options)
            if invocation.kind == ExportStage.kind, let path = invocation.options.string("path") {
                line += " -> \(manifest.outputDirectory.appendingPathComponent(path).standardizedFileURL.path)"
            }
            lines.append(line)
        }
        lines.append("report -> \(manifest.outputDirectory.appendingPathComponent("report.json").path)")
        return lines
    }

    /// Runs the pipeline. Always writes report.json (also for a failed run) and returns it;
    /// the caller maps `report.succeeded` to the exit status.
    public func run(_ manifest: Manifest) throws -> PipelineReport {
        try preflight(manifest)
        let started = Date()
        progress.update("importing \(manifest.model.path.lastPathComponent)")
        var model = try formats.read(manifest.model.path, declared: manifest.model.format)
        try GraphCheck.validate(model, path: manifest.model.path.path)
        let formatName = (try? formats.format(forInput: manifest.model.path, declared: manifest.model.format).name) ?? "?"
        var report = PipelineReport(
            name: manifest.name, manifestPath: manifest.file?.path, modelPath: manifest.model.path.path,
            modelFormat: formatName, input: ModelStatistics(model))
        let original = model

        do {
            report.inputEvaluation = try evaluate(model, manifest: manifest, reference: nil)
        } catch {
            report.error = "evaluate (input model): \(error)"
            try finish(&report, manifest: manifest, started: started)
            return report
        }

        for invocation in manifest.stages {
            if interruption.isRequested {
                stopInterrupted(&report, before: invocation)
                break
            }
            guard let descriptor = registry.descriptor(for: invocation.kind) else {
                throw NNPipeError(.internalError, "stage kind '\(invocation.kind)' vanished from the registry", path: invocation.path)
            }
            let before = ModelStatistics(model)
            var entry = PipelineReport.StageEntry(
                index: invocation.index, kind: invocation.kind, succeeded: false, seconds: 0, summary: "",
                before: before, after: nil, details: [], warnings: [], files: [], evaluation: nil, error: nil)
            let stageStart = Date()
            let context = StageContext(
                manifestDirectory: manifest.directory, outputDirectory: manifest.outputDirectory,
                datasets: manifest.datasets, formats: formats,
                logger: logger, progress: ProgressReporter { [progress] event in
                    progress.update("\(invocation.path) \(invocation.kind): \(event.message)", fraction: event.fraction)
                },
                stagePath: invocation.path, originalModel: original, interruption: interruption)
            progress.update("\(invocation.path) \(invocation.kind)", fraction: nil)
            do {
                let stage = try descriptor.make(invocation.options)
                // The stage works on a copy: a failure leaves the pipeline's model untouched.
                var working = model
                let result = try stage.run(&working, context: context)
                try GraphCheck.validate(working, path: "model after \(invocation.path) \(invocation.kind)")
                model = working
                entry.succeeded = true
                entry.summary = result.summary
                entry.details = result.details
                entry.warnings = result.warnings
                entry.files = result.files
                entry.seconds = Date().timeIntervalSince(stageStart)
                entry.after = ModelStatistics(model)
                for warning in result.warnings { logger.warning("\(invocation.path) \(invocation.kind): \(warning)") }
                // Interrupted: stop promptly, without scoring a model the user chose not to wait for.
                if interruption.isRequested {
                    report.stages.append(entry)
                    stopInterrupted(&report, after: invocation)
                    break
                }
                if invocation.kind != ExportStage.kind && invocation.kind != "evaluate" {
                    entry.evaluation = try evaluate(model, manifest: manifest, reference: original)
                }
                report.stages.append(entry)
            } catch {
                entry.seconds = Date().timeIntervalSince(stageStart)
                entry.error = "\(error)"
                report.stages.append(entry)
                report.error = "\(invocation.path) \(invocation.kind) failed: \(error)"
                break
            }
        }
        try finish(&report, manifest: manifest, started: started)
        return report
    }

    /// Ctrl-C ends the run as a failure so no later stage or export writes a result the manifest did not ask for.
    private func stopInterrupted(_ report: inout PipelineReport, before invocation: StageInvocation? = nil, after finished: StageInvocation? = nil) {
        report.interrupted = true
        if let finished {
            report.error = "interrupted during \(finished.path) \(finished.kind); the stages after it did not run"
        } else if let invocation {
            report.error = "interrupted before \(invocation.path) \(invocation.kind); it and the stages after it did not run"
        }
    }

    private func evaluate(_ model: Model, manifest: Manifest, reference: Model?) throws -> [(key: String, value: JSONValue)]? {
        guard let specification = manifest.evaluation, let evaluator else { return nil }
        guard let dataset = manifest.datasets[specification.dataset] else { return nil }
        return try evaluator.evaluate(model, specification: specification, dataset: dataset, reference: reference, progress: progress)
    }

    private func finish(_ report: inout PipelineReport, manifest: Manifest, started: Date) throws {
        report.totalSeconds = Date().timeIntervalSince(started)
        guard writesReport else { return }
        let destination = manifest.outputDirectory.appendingPathComponent("report.json")
        let text = JSONWriter.write(report.json) + "\n"
        try AtomicFile.write(Data(text.utf8), to: destination)
    }
}
