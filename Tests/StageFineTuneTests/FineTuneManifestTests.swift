import Foundation
import NNPipeCore
import Testing

@testable import StageFineTune

/// The option names are a contract: manifests written against them must validate, and mistakes
/// must be caught before any work with their JSON path.
@Suite("finetune in a manifest")
struct FineTuneManifestTests {
    static func decode(_ stage: String) throws -> Manifest {
        var registry = StageRegistry()
        registry.register(FineTuneStage.self)
        var decoder = ManifestDecoder(registry: registry)
        let text = """
            {"version": 1, "name": "t", "model": "m.onnx", "output_dir": "out",
             "datasets": {"train": {"path": "d.h5", "inputs": "train/x", "labels": "train/y"},
                          "test": {"path": "d.h5", "inputs": "test/x", "labels": "test/y"}},
             "stages": [\(stage)]}
            """
        return try decoder.decode(Array(text.utf8), file: URL(fileURLWithPath: "/tmp/pipeline.json"))
    }

    @Test("every contract option validates", arguments: [
        #"{"stage": "finetune", "dataset": "train", "epochs": 3, "optimizer": "adam", "lr": 0.001}"#,
        #"{"stage": "finetune", "dataset": "train", "validation": "test", "steps": 100, "batch_size": 16, "optimizer": "sgd", "momentum": 0.9, "nesterov": true, "weight_decay": 0.0001, "lr": 0.1, "schedule": "cosine", "warmup_steps": 10, "loss": "cross_entropy", "seed": 4, "freeze": ["conv1*"], "early_stopping": 2}"#,
        #"{"stage": "finetune", "dataset": "train", "optimizer": "adamw", "schedule": "step", "step_size": 50, "gamma": 0.5, "loss": "mse"}"#,
        #"{"stage": "finetune", "dataset": "train", "qat": true, "distill": {"temperature": 4, "alpha": 0.7}, "prune_schedule": false}"#,
        #"{"stage": "finetune", "dataset": "train", "prune_schedule": {"kind": "polynomial", "initial_sparsity": 0, "final_sparsity": 0.9, "begin_step": 0, "end_step": 1000, "frequency": 100, "power": 3}}"#,
    ])
    func accepts(_ stage: String) throws {
        let manifest = try Self.decode(stage)
        #expect(manifest.stages.first?.kind == "finetune")
    }

    @Test("mistakes are rejected with their path", arguments: [
        (#"{"stage": "finetune"}"#, "stages[0].dataset"),
        (#"{"stage": "finetune", "dataset": "trian"}"#, "did you mean 'train'?"),
        (#"{"stage": "finetune", "dataset": "train", "learning_rate": 0.1}"#, "stages[0].learning_rate"),
        (#"{"stage": "finetune", "dataset": "train", "optimizer": "adma"}"#, "did you mean 'adam'?"),
        (#"{"stage": "finetune", "dataset": "train", "lr": 0}"#, "stages[0].lr"),
        (#"{"stage": "finetune", "dataset": "train", "distill": {"alpha": 2}}"#, "stages[0].distill.alpha"),
        (#"{"stage": "finetune", "dataset": "train", "prune_schedule": {"initial_sparsity": 0.1}}"#, "stages[0].prune_schedule.final_sparsity"),
        (#"{"stage": "finetune", "dataset": "train", "early_stopping": 3}"#, "stages[0].early_stopping"),
    ])
    func rejects(stage: String, fragment: String) throws {
        let problems = try #require(throws: ManifestProblems.self) { try Self.decode(stage) }
        #expect(problems.description.contains(fragment), "\(problems.description)")
    }
}
