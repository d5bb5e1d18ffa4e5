import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

@testable import StageFineTune

/// Epoch time of the finetune stage on the digits MLP and CNN, in-process (`NNPIPE_BENCHMARK=1`
/// in a release test build; skipped otherwise). Benchmarks/finetune/run.sh times the release
/// binary instead, which needs no release build of the tests.
@Suite("Fine-tune epoch benchmark", .enabled(if: ProcessInfo.processInfo.environment["NNPIPE_BENCHMARK"] != nil))
struct FineTuneBenchmarkTests {
    @Test("epoch seconds", arguments: ["mlp", "cnn"])
    func epoch(_ name: String) throws {
        let start = name == "mlp" ? try DigitsFixture.model() : try ONNXFormat().read(from: TestEnvironment.fixture("finetune/digits_cnn.onnx"))
        let stage = try DigitsFixture.stage(["dataset": .string("train"), "epochs": .number(1), "batch_size": .number(32), "optimizer": .string("adam")])
        var warmup = start
        _ = try stage.run(&warmup, context: DigitsFixture.context())
        var seconds: [Double] = []
        for _ in 0..<5 {
            var model = start
            let started = Date()
            _ = try stage.run(&model, context: DigitsFixture.context())
            seconds.append(Date().timeIntervalSince(started))
        }
        let best = seconds.min()!
        print("BENCHMARK {\"model\": \"\(name)\", \"epoch_seconds\": \(best), \"samples_per_second\": \(1347 / best)}")
    }
}
