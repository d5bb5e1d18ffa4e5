import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

/// The bar for QAT: fine-tune with `qat: true`, then int8, scores at least as well as
/// post-training int8 of the same model on the same data. Run end to end through the built
/// `nnpipe` on the Keras digits CNN, scored by nnpipe's runtime and by onnxruntime on the
/// exported int8 ONNX. Seeds are fixed, so the figures repeat exactly.
@Suite("QAT against post-training int8 on the digits CNN", .serialized)
struct QuantizationAwareVersusPostTrainingTests {
    static let data = TestEnvironment.repositoryRoot.appendingPathComponent("Examples/digits")

    static func manifest(in folder: URL, name: String, finetune: String) throws -> URL {
        let text = """
            {"version": 1, "name": "\(name)", "model": "\(data.path)/cnn.h5", "output_dir": "out-\(name)",
             "datasets": {"calib": {"path": "\(data.path)/digits.h5", "inputs": "train/images", "limit": 256},
                          "train": {"path": "\(data.path)/digits.h5", "inputs": "train/images", "labels": "train/y"},
                          "test": {"path": "\(data.path)/digits.h5", "inputs": "test/images", "labels": "test/y"}},
             "evaluate": {"dataset": "test", "metrics": ["accuracy"]},
             "stages": [\(finetune)
               {"stage": "calibrate", "dataset": "calib", "method": "minmax"},
               {"stage": "quantize", "weights": "int8", "activations": "uint8", "per_channel": true},
               {"stage": "export", "path": "int8.onnx"}]}
            """
        let url = folder.appendingPathComponent("\(name).json")
        try Data(text.utf8).write(to: url)
        return url
    }

    /// nnpipe's accuracy after the quantize stage, and the exported file.
    static func run(_ manifest: URL) throws -> (accuracy: Double, exported: URL) {
        let result = try ProcessRunner.run(InterruptTests.executable, ["run", "--quiet", manifest.path],
                                           currentDirectory: manifest.deletingLastPathComponent())
        try #require(result.status == 0, "\(result.standardError)")
        let name = manifest.deletingPathExtension().lastPathComponent
        let output = manifest.deletingLastPathComponent().appendingPathComponent("out-\(name)")
        let report = try JSONParser.parse(String(decoding: Data(contentsOf: output.appendingPathComponent("report.json")), as: UTF8.self))
        let quantize = try #require(report["stages"]?.arrayValue?.first { $0["stage"]?.stringValue == "quantize" })
        let accuracy = try #require(quantize["evaluation"]?["accuracy"]?.numberValue)
        return (accuracy, output.appendingPathComponent("int8.onnx"))
    }

    @Test("one epoch of QAT, then int8, is at least as accurate as int8 straight away")
    func quantizationAwareIsAtLeastAsGood() throws {
        try #require(FileManager.default.isExecutableFile(atPath: InterruptTests.executable.path), "build it with swift build --build-tests")
        let folder = try TestEnvironment.temporaryFolder("nnpipe-qat")
        defer { try? FileManager.default.removeItem(at: folder) }
        let postTraining = try Self.run(try Self.manifest(in: folder, name: "ptq", finetune: ""))
        let quantizationAware = try Self.run(try Self.manifest(in: folder, name: "qat", finetune: """
            {"stage": "finetune", "dataset": "train", "epochs": 1, "lr": 0.0001, "qat": true, "seed": 0},
            """))
        print("digits CNN int8 (nnpipe runtime): post-training \(postTraining.accuracy), QAT \(quantizationAware.accuracy)")
        #expect(postTraining.accuracy > 0.9, "the post-training baseline is a working model")
        #expect(quantizationAware.accuracy >= postTraining.accuracy)

        guard let python = TestEnvironment.python else {
            #expect(!TestEnvironment.isCI, "CI needs NNPIPE_PYTHON with onnxruntime")
            return
        }
        func onnxruntime(_ model: URL) throws -> Double {
            let scored = try ProcessRunner.run(python, [
                TestEnvironment.repositoryRoot.appendingPathComponent("Benchmarks/finetune/score_onnx.py").path,
                model.path, Self.data.appendingPathComponent("digits.h5").path, "test/images", "test/y",
            ])
            try #require(scored.status == 0, "\(scored.standardError)")
            return try #require(Double(scored.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let postTrainingRuntime = try onnxruntime(postTraining.exported)
        let quantizationAwareRuntime = try onnxruntime(quantizationAware.exported)
        print("digits CNN int8 (onnxruntime): post-training \(postTrainingRuntime), QAT \(quantizationAwareRuntime)")
        #expect(quantizationAwareRuntime >= postTrainingRuntime)
    }
}
