import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

/// The issue's bar for distillation: at 95% sparsity, with the same steps and seeds, distilling
/// from the input model closes more of the accuracy gap than plain fine-tuning. Shown where a
/// user would need it: a small fine-tuning set (100 labelled samples, a seeded random subset of
/// the training split), on the skl2onnx digits MLP, run end to end through the built `nnpipe`
/// and scored on the 450 held-out test samples. `Benchmarks/finetune/distill_vs_plain.sh` runs
/// the same pipelines on five seeds and on the Keras CNN too.
@Suite("Distillation against plain fine-tuning at 95% sparsity", .serialized)
struct DistillationVersusPlainTests {
    static let data = TestEnvironment.repositoryRoot.appendingPathComponent("Examples/digits")

    /// nnpipe's test accuracy after the prune stage and after the fine-tune.
    static func run(in folder: URL, seed: Int, distill: String) throws -> (pruned: Double, tuned: Double) {
        let name = "seed\(seed)-\(distill.isEmpty ? "plain" : "distill")"
        let text = """
            {"version": 1, "name": "\(name)", "model": "\(data.path)/mlp.onnx", "output_dir": "out-\(name)",
             "datasets": {"train": {"path": "\(data.path)/digits.h5", "inputs": "train/x", "labels": "train/y",
                                    "limit": 100, "shuffle": true, "seed": \(seed)},
                          "test": {"path": "\(data.path)/digits.h5", "inputs": "test/x", "labels": "test/y"}},
             "evaluate": {"dataset": "test", "metrics": ["accuracy"]},
             "stages": [{"stage": "prune", "sparsity": 0.95, "scope": "global", "include_first_last": true},
                        {"stage": "finetune", "dataset": "train", "epochs": 100, "lr": 0.01, "seed": \(seed)\(distill)}]}
            """
        let manifest = folder.appendingPathComponent("\(name).json")
        try Data(text.utf8).write(to: manifest)
        let result = try ProcessRunner.run(InterruptTests.executable, ["run", "--quiet", manifest.path], currentDirectory: folder)
        try #require(result.status == 0, "\(result.standardError)")
        let report = try JSONParser.parse(String(
            decoding: Data(contentsOf: folder.appendingPathComponent("out-\(name)/report.json")), as: UTF8.self))
        func accuracy(_ stage: String) throws -> Double {
            let entry = try #require(report["stages"]?.arrayValue?.first { $0["stage"]?.stringValue == stage })
            return try #require(entry["evaluation"]?["accuracy"]?.numberValue)
        }
        return (try accuracy("prune"), try accuracy("finetune"))
    }

    @Test("on 100 training samples, distillation beats plain fine-tuning by over 2 points on every seed")
    func distillationClosesMoreOfTheGap() throws {
        try #require(FileManager.default.isExecutableFile(atPath: InterruptTests.executable.path), "build it with swift build --build-tests")
        let folder = try TestEnvironment.temporaryFolder("nnpipe-distill")
        defer { try? FileManager.default.removeItem(at: folder) }
        var margins: [Double] = []
        for seed in [0, 1, 2] {
            let plain = try Self.run(in: folder, seed: seed, distill: "")
            let distilled = try Self.run(in: folder, seed: seed, distill: #", "distill": {"temperature": 4, "alpha": 0.9}"#)
            print("digits MLP, 95% pruned, 100 samples, seed \(seed): pruned \(plain.pruned), plain \(plain.tuned), distill \(distilled.tuned)")
            #expect(plain.pruned < 0.3, "95% pruning leaves a damaged model to recover")
            #expect(plain.tuned > plain.pruned + 0.3, "plain fine-tuning is a working baseline")
            #expect(distilled.tuned > plain.tuned + 0.02)
            margins.append(distilled.tuned - plain.tuned)
        }
        #expect(margins.reduce(0, +) / Double(margins.count) > 0.03)
    }
}
