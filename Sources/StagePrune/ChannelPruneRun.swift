import NNPipeCore

extension PruneStage {
    func runChannelPruning(_ model: inout Model, context: StageContext) throws -> StageResult {
        throw NNPipeError(.unsupported, "channel pruning is being written", path: path)
    }
}
