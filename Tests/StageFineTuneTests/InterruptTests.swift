import Foundation
import NNPipeCore
import NNPipeONNX
import NNPipeTestKit
import Testing

/// Ctrl-C sent as a real SIGINT to a running `nnpipe run`: the first stops training after the
/// current step, keeps the best checkpoint and ends the run with status 130 before any export;
/// the second ends the process at once.
@Suite("Ctrl-C during a fine-tune", .serialized)
struct InterruptTests {
    /// Built beside the test binary by `swift build --build-tests`.
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("nnpipe")
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var validation: Bool
        /// The part of the one-line message that says which weights were kept.
        var kept: String
        var testDescription: String { name }
    }

    @Test("one SIGINT keeps a checkpoint, runs no later stage and exits 130", arguments: [
        Case(name: "with validation: best epoch", validation: true, kept: "keeping best checkpoint (epoch "),
        Case(name: "without validation: latest weights", validation: false, kept: "keeping the latest weights"),
    ])
    func stopsAndKeepsCheckpoint(_ scenario: Case) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build it with swift build --build-tests")
        let folder = try TestEnvironment.temporaryFolder("nnpipe-interrupt")
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifest = try Self.manifest(in: folder, model: "Examples/digits/mlp.onnx", finetune: """
            {"stage": "finetune", "dataset": "train", \(scenario.validation ? "\"validation\": \"test\", " : "")"epochs": 500, "lr": 0.001}
            """)
        let run = try RunningPipeline(Self.executable, manifest: manifest)
        // Once epoch 2 runs, epoch 1 has been validated and is a checkpoint to keep.
        let training = run.waitForStandardError { text in text.matches(of: #/epoch ([0-9]+)\/500/#).contains { Int($0.1)! >= 2 } }
        try #require(training, "no progress: \(run.standardError)")
        run.interrupt()
        let (status, killed) = run.wait(seconds: 60)
        let standardError = run.standardError
        #expect(!killed && status == 130, "status \(status), stderr: \(standardError)")
        #expect(standardError.contains("stopping after the current step"))
        let line = try #require(standardError.split(separator: "\n").first { $0.contains("interrupted after epoch") }.map(String.init))
        #expect(line.contains(scenario.kept), "\(line)")
        #expect(standardError.contains("error: interrupted during stages[0] finetune"))

        let output = folder.appendingPathComponent("out")
        #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("final.onnx").path), "the export after the fine-tune did not run")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: output.path).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "no half-written files: \(leftovers)")
        let report = try JSONParser.parse(String(decoding: Data(contentsOf: output.appendingPathComponent("report.json")), as: UTF8.self))
        #expect(report["status"]?.stringValue == "interrupted")

        // The checkpoint is a complete model, and with validation it is the epoch the line names.
        let checkpoint = try ONNXFormat().read(from: output.appendingPathComponent("finetune-checkpoint.onnx"))
        let accuracy = try DigitsFixture.accuracy(checkpoint)
        if scenario.validation {
            let quoted = try #require(line.firstMatch(of: #/val acc ([0-9.]+)%/#))
            #expect(abs(accuracy * 100 - Double(quoted.1)!) < 0.006, "checkpoint scores \(accuracy), the line says \(quoted.1)%")
        }
        #expect(accuracy > 0.9)
    }

    @Test("a second SIGINT ends the process at once")
    func secondInterruptKills() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.executable.path), "build it with swift build --build-tests")
        let folder = try TestEnvironment.temporaryFolder("nnpipe-interrupt")
        defer { try? FileManager.default.removeItem(at: folder) }
        // One full-data step per epoch on the CNN: each step is long enough (hundreds of ms even in
        // release builds) that the second signal lands while the first is still being honoured.
        let manifest = try Self.manifest(in: folder, model: "Tests/Fixtures/finetune/digits_cnn.onnx", finetune: """
            {"stage": "finetune", "dataset": "train", "epochs": 200, "batch_size": 1347, "lr": 0.001}
            """)
        let run = try RunningPipeline(Self.executable, manifest: manifest)
        // Printed when step 1 ends, so step 2 has just begun.
        try #require(run.waitForStandardError { $0.contains("step 1/200") }, "no progress: \(run.standardError)")
        run.interrupt()
        try #require(run.waitForStandardError { $0.contains("stopping after the current step") })
        run.interrupt()
        let (status, killed) = run.wait(seconds: 60)
        #expect(killed && status == SIGINT, "status \(status) killed \(killed), stderr: \(run.standardError)")
        #expect(!run.standardError.contains("interrupted after epoch"))
    }

    static func manifest(in folder: URL, model: String, finetune: String) throws -> URL {
        let root = TestEnvironment.repositoryRoot.path
        let text = """
            {"version": 1, "name": "interrupt", "model": "\(root)/\(model)", "output_dir": "out",
             "datasets": {"train": {"path": "\(root)/Examples/digits/digits.h5", "inputs": "train/x", "labels": "train/y"},
                          "test": {"path": "\(root)/Examples/digits/digits.h5", "inputs": "test/x", "labels": "test/y"}},
             "stages": [\(finetune), {"stage": "export", "path": "final.onnx"}]}
            """
        let url = folder.appendingPathComponent("pipeline.json")
        try Data(text.utf8).write(to: url)
        return url
    }
}

/// `nnpipe run` as a child process whose standard error is read while it runs.
final class RunningPipeline: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var collected = Data()

    init(_ executable: URL, manifest: URL) throws {
        process.executableURL = executable
        process.arguments = ["run", manifest.path]
        process.currentDirectoryURL = manifest.deletingLastPathComponent()
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.collected.append(data)
            self.lock.unlock()
        }
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var standardError: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: collected, as: UTF8.self)
    }

    /// Waits up to two minutes (builds may run alongside) for standard error to satisfy `condition`.
    func waitForStandardError(_ condition: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && process.isRunning {
            if condition(standardError) { return true }
            usleep(5_000)
        }
        return false
    }

    func interrupt() { kill(process.processIdentifier, SIGINT) }

    /// Exit status, and whether a signal ended the process; kills it after `seconds`.
    func wait(seconds: Double) -> (status: Int32, killed: Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        // Let the reader drain what the process wrote last.
        usleep(100_000)
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }
}
