import Foundation
import Logging

/// A pipeline step: calibrate, quantize, prune, finetune, evaluate, export, or a user's own.
///
/// Contract (checked by the conformance tests every stage runs):
/// - `kind` is a unique lower-case name used in manifests (`{"stage": "prune"}`).
/// - `options` declares every option; the manifest validator rejects anything else, so
///   `init(options:)` only sees declared, type-checked values with defaults filled in. It may
///   still throw `NNPipeError(.invalidManifest)` for combinations the schema cannot express.
/// - `run` transforms `model` in place or throws. It never silently does less than asked
///   (a prune stage that reaches 0% sparsity throws). The runner discards a model a failed
///   stage was working on, and checks the graph after every stage.
public protocol Stage: Sendable {
    static var kind: String { get }
    /// One line for `nnpipe stages`.
    static var summary: String { get }
    static var options: [OptionSpec] { get }
    /// Cross-stage rules checked before any work starts (e.g. static quantisation needs a
    /// calibrate stage before it). Return the problems found; the default finds none.
    static func checkPlacement(_ invocation: StageInvocation, in pipeline: [StageInvocation]) -> [NNPipeError]

    init(options: StageOptions) throws
    func run(_ model: inout Model, context: StageContext) throws -> StageResult
}

extension Stage {
    public static func checkPlacement(_ invocation: StageInvocation, in pipeline: [StageInvocation]) -> [NNPipeError] {
        []
    }
}

/// A stage as written in the manifest: its kind, validated options and position.
public struct StageInvocation: Sendable {
    public var kind: String
    public var options: StageOptions
    public var index: Int
    public var path: String { "stages[\(index)]" }

    public init(kind: String, options: StageOptions, index: Int) {
        self.kind = kind
        self.options = options
        self.index = index
    }
}

/// What a stage reports about its work; goes into report.json under the stage's entry.
public struct StageResult: Sendable {
    /// One line for the summary table ("pruned 90.0% of 1.2M weights").
    public var summary: String
    /// Structured facts (per-layer tables, metrics, sizes), written as-is into the report.
    public var details: [(key: String, value: JSONValue)]
    public var warnings: [String]
    /// Files the stage wrote (absolute paths), listed in the report.
    public var files: [String]

    public init(summary: String, details: [(key: String, value: JSONValue)] = [], warnings: [String] = [], files: [String] = []) {
        self.summary = summary
        self.details = details
        self.warnings = warnings
        self.files = files
    }
}

/// Everything a stage may use besides the model.
public struct StageContext: Sendable {
    public var manifestDirectory: URL
    public var outputDirectory: URL
    public var datasets: [String: DatasetSpecification]
    public var formats: FormatRegistry
    public var logger: Logger
    public var progress: ProgressReporter
    /// JSON path of the stage (`stages[3]`) for error messages.
    public var stagePath: String
    /// The model as it was before the first stage (a teacher for distillation, a reference for fidelity).
    public var originalModel: Model?
    /// Raised by Ctrl-C. A stage that runs for long polls it between steps and returns early with
    /// a usable model (saying so in a warning); the runner stops after that stage either way.
    public var interruption: Interruption

    public init(
        manifestDirectory: URL, outputDirectory: URL, datasets: [String: DatasetSpecification],
        formats: FormatRegistry, logger: Logger, progress: ProgressReporter, stagePath: String,
        originalModel: Model? = nil, interruption: Interruption = Interruption()
    ) {
        self.manifestDirectory = manifestDirectory
        self.outputDirectory = outputDirectory
        self.datasets = datasets
        self.formats = formats
        self.logger = logger
        self.progress = progress
        self.stagePath = stagePath
        self.originalModel = originalModel
        self.interruption = interruption
    }

    /// The dataset a stage option names; the validator already checked it exists.
    public func dataset(_ name: String) throws -> DatasetSpecification {
        guard let dataset = datasets[name] else {
            throw NNPipeError(.invalidManifest, "dataset '\(name)' is not defined in 'datasets'", path: stagePath)
        }
        return dataset
    }
}

/// Receives progress from long-running stages. The command line draws a bar on a terminal
/// and plain lines otherwise; tests and `--quiet` use a silent reporter.
public struct ProgressReporter: Sendable {
    public struct Event: Sendable {
        /// 0...1 when the stage knows how far it is.
        public var fraction: Double?
        public var message: String
    }

    private let handler: @Sendable (Event) -> Void

    public init(_ handler: @escaping @Sendable (Event) -> Void) {
        self.handler = handler
    }

    public static let silent = ProgressReporter { _ in }

    public func update(_ message: String, fraction: Double? = nil) {
        handler(Event(fraction: fraction.map { min(max($0, 0), 1) }, message: message))
    }
}
