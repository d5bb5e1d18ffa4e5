import NNPipeCore

/// The formats, stages and evaluator a build of nnpipe offers. Users who add in-process
/// stages pass them to `NNPipeCommand.main(stages:)`, which extends the standard toolkit.
public struct Toolkit: Sendable {
    public var formats: FormatRegistry
    public var stages: StageRegistry
    public var evaluator: (any ModelEvaluator)?

    public init(formats: FormatRegistry, stages: StageRegistry, evaluator: (any ModelEvaluator)?) {
        self.formats = formats
        self.stages = stages
        self.evaluator = evaluator
    }

    @TaskLocal public static var current: Toolkit = .standard
}
