import NNPipeCore
import Testing
@testable import StagePrune

/// The prune stage's declared options through the real manifest validator.
struct ManifestTests {
    static func decode(_ stage: String) throws -> Manifest {
        let text = """
        {"version": 1, "model": "model.onnx",
         "datasets": {"train": {"path": "data.h5", "inputs": "x", "labels": "y"}},
         "stages": [\(stage)]}
        """
        var decoder = ManifestDecoder(registry: StageRegistry([PruneStage.descriptor]))
        return try decoder.decode(Array(text.utf8), file: nil)
    }

    @Test(arguments: [
        #"{"stage": "prune", "sparsity": 0.9, "scope": "global"}"#,
        #"{"stage": "prune", "granularity": "channel", "channel_ratio": 0.5, "criterion": "l1"}"#,
        #"{"stage": "prune", "granularity": "channel", "target_macs": 0.5, "criterion": "bn_scale", "exclude": ["head", "Gemm"]}"#,
        #"{"stage": "prune", "pattern": "2:4"}"#,
        #"{"stage": "prune", "pattern": "1x4", "sparsity": 0.75, "include_first_last": true, "prune_depthwise": true}"#,
        #"{"stage": "prune", "sparsity": 0.8, "scope": "global", "max_sparsity": 0.95}"#,
        #"{"stage": "prune", "granularity": "channel", "channel_ratio": 0.5, "criterion": "taylor", "dataset": "train", "batches": 4}"#,
        #"{"stage": "prune", "sparsity": 0.9, "measure_size": false, "measure_latency": true}"#,
        #"{"stage": "prune", "schedule": {"kind": "polynomial", "initial_sparsity": 0, "final_sparsity": 0.9, "begin_step": 0, "end_step": 1000, "frequency": 100, "power": 3}}"#,
    ])
    func acceptsTheDocumentedForms(_ stage: String) throws {
        let manifest = try Self.decode(stage)
        #expect(manifest.stages.first?.kind == "prune")
    }

    @Test(arguments: [
        (#"{"stage": "prune", "sparsity": 1.0}"#, "stages[0].sparsity: must be in [0, 1)"),
        (#"{"stage": "prune", "sparsity": 0.5, "pattern": "2:5"}"#, "stages[0].pattern"),
        (#"{"stage": "prune", "sparsity": 0.5, "scope": "globl"}"#, "did you mean"),
        (#"{"stage": "prune", "sparsity": 0.5, "schedule": {"kind": "linear"}}"#, "stages[0].schedule.kind"),
        (#"{"stage": "prune", "sparsity": 0.5, "sparsty": 0.5}"#, "did you mean 'sparsity'"),
        (#"{"stage": "prune", "granularity": "channel"}"#, "stages[0].channel_ratio"),
        (#"{"stage": "prune", "granularity": "channel", "channel_ratio": 0.5, "criterion": "taylor"}"#, "stages[0].criterion: taylor ranks"),
        (#"{"stage": "prune", "granularity": "channel", "channel_ratio": 0.5, "criterion": "taylor", "batches": 0, "dataset": "train"}"#, "stages[0].batches"),
        (#"{"stage": "prune", "sparsity": 0.5, "measure_size": "yes"}"#, "stages[0].measure_size"),
        (#"{"stage": "prune", "granularity": "channel", "channel_ratio": 0.5, "criterion": "taylor", "dataset": "missing"}"#, "stages[0].dataset"),
    ])
    func rejectsBadRequestsBeforeAnyWork(_ stage: String, _ fragment: String) throws {
        let problems = try #require(throws: ManifestProblems.self) { try Self.decode(stage) }
        #expect(problems.problems.contains { $0.description.contains(fragment) }, "\(problems)")
    }
}
