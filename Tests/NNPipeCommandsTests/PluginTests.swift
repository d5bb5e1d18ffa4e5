import Foundation
import NNPipeCommands
import NNPipeCore
import NNPipeTestKit
import Testing

@Suite("Out-of-process plugins")
struct PluginTests {
    static let mock = TestEnvironment.fixture("plugins/nnpipe-stage-mock")
    static let oldProtocol = TestEnvironment.fixture("plugins/nnpipe-stage-oldproto")

    /// A manifest using the mock plugin with `options` (JSON members after "stage").
    static func pipeline(_ options: String, plugin: URL = mock, kind: String = "mock") throws -> (folder: URL, file: URL) {
        try Example.manifest("""
            {"version": 1, "model": "$MODEL", "output_dir": "out", "plugins": ["\(plugin.path)"],
             "stages": [{"stage": "\(kind)"\(options.isEmpty ? "" : ", " + options)}, {"stage": "export", "path": "after.onnx"}]}
            """)
    }

    @Test func stagesListsAManifestsPlugins() throws {
        let (folder, file) = try Self.pipeline("")
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["stages", "--json", "--manifest", file.path])
        #expect(run.status == 0, "\(run.error)")
        let catalog = try JSONParser.parse(run.output)
        let mock = try #require(catalog.arrayValue?.first { $0["kind"]?.stringValue == "mock" })
        #expect(mock["origin"]?.stringValue == Self.mock.path)
        let names = mock["options"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(names == ["behaviour", "level", "timeout"])
    }

    @Test(arguments: [
        ("\"level\": 12", "stages[0].level: must be in [1, 9], got 12"),
        ("\"behavior\": \"copy\"", "stages[0].behavior: unknown option 'behavior' for stage 'mock' (did you mean 'behaviour'?)"),
        ("\"behaviour\": \"explode\"", "stages[0].behaviour: 'explode' is not one of"),
    ])
    func validateChecksPluginOptionsWithTheirPath(options: String, message: String) throws {
        let (folder, file) = try Self.pipeline(options)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["validate", file.path])
        #expect(run.status == 2)
        #expect(run.error.contains(message), "\(run.error)")
    }

    @Test func aWorkingPluginRunsInThePipeline() throws {
        let (folder, file) = try Self.pipeline("\"behaviour\": \"copy\"")
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["run", "--quiet", file.path])
        #expect(run.status == 0, "\(run.error)")
        let report = try JSONParser.parse(String(contentsOf: folder.appendingPathComponent("out/report.json"), encoding: .utf8))
        let stage = try #require(report["stages"]?.arrayValue?.first)
        #expect(stage["summary"]?.stringValue == "copied the model")
        #expect(stage["details"]?["metrics"]?["bytes"]?.integerValue == 1)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/after.onnx").path))
    }

    @Test(arguments: [
        ("crash", "crashed (signal"),
        ("fail", "exited with status 3: something went wrong inside the plugin"),
        ("garbage", "wrote an invalid model"),
        ("no-output", "wrote no model"),
        ("no-result", "wrote no result file"),
        ("invalid-graph", "uses 'missing', which nothing produces"),
        // 50 MB on each stream: collected with a bound, and the last line still shown.
        ("noisy", "exited with status 3: the last words"),
    ])
    func aFailingPluginFailsTheStageCleanly(behaviour: String, message: String) throws {
        let (folder, file) = try Self.pipeline("\"behaviour\": \"\(behaviour)\"")
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["run", "--quiet", file.path])
        #expect(run.status == 1)
        #expect(run.error.contains(message), "\(run.error)")
        let outputs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("out").path)
        #expect(outputs == ["report.json"], "no model may be exported after a failed plugin: \(outputs)")
    }

    @Test func aSlowPluginIsStoppedAtItsTimeout() throws {
        let (folder, file) = try Self.pipeline("\"behaviour\": \"sleep\", \"timeout\": 1")
        defer { try? FileManager.default.removeItem(at: folder) }
        let started = Date()
        let run = CapturedRun(["run", "--quiet", file.path])
        #expect(run.status == 1)
        #expect(run.error.contains("did not finish within 1 s"))
        #expect(Date().timeIntervalSince(started) < 20)
    }

    @Test func aProtocolMismatchIsReportedAtValidation() throws {
        let (folder, file) = try Self.pipeline("", plugin: Self.oldProtocol, kind: "oldproto")
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["validate", file.path])
        #expect(run.status == 2)
        #expect(run.error.contains("speaks protocol version 99"), "\(run.error)")
    }

    @Test func thePythonExamplePluginClipsWeights() throws {
        guard let python = TestEnvironment.python else {
            if TestEnvironment.isCI { Issue.record("\(InteropUnavailable())") }
            return
        }
        let plugin = TestEnvironment.repositoryRoot.appendingPathComponent("Plugins/python/nnpipe-stage-clip")
        let (folder, file) = try Example.manifest("""
            {"version": 1, "model": "$MODEL", "output_dir": "out", "plugins": ["\(plugin.path)"],
             "stages": [{"stage": "clip", "sigma": 2.5}, {"stage": "export", "path": "clipped.onnx"}]}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        // The plugin runs with the python3 first on PATH: put the interop venv there.
        let path = python.deletingLastPathComponent().path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "")
        setenv("PATH", path, 1)
        let run = CapturedRun(["run", "--quiet", file.path])
        #expect(run.status == 0, "\(run.error)")
        let report = try JSONParser.parse(String(contentsOf: folder.appendingPathComponent("out/report.json"), encoding: .utf8))
        let stage = try #require(report["stages"]?.arrayValue?.first)
        #expect((stage["details"]?["metrics"]?["clipped_values"]?.integerValue ?? 0) > 0, "\(stage)")
        let check = try ProcessRunner.python("""
            import sys, numpy as np, onnx
            from onnx import numpy_helper
            model = onnx.load(sys.argv[1]); onnx.checker.check_model(model, full_check=True)
            import onnxruntime as ort
            session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            out = session.run(None, {"X": np.random.rand(4, 64).astype(np.float32)})
            print("ok", out[1].shape)
            """, [folder.appendingPathComponent("out/clipped.onnx").path])
        #expect(check.status == 0, "\(check.standardError)")
        #expect(check.standardOutput.contains("ok (4, 10)"))
    }
}

@Suite("Swift plugin example")
struct SwiftPluginTests {
    /// Built beside the test binary by `swift build --build-tests`.
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("nnpipe-stage-cluster")
    }

    @Test func theClusterPluginSharesWeights() throws {
        let plugin = Self.executable
        try #require(FileManager.default.isExecutableFile(atPath: plugin.path), "build it with swift build --build-tests")
        let (folder, file) = try Example.manifest("""
            {"version": 1, "model": "$MODEL", "output_dir": "out", "plugins": ["\(plugin.path)"],
             "datasets": {"test": {"path": "$DATA", "inputs": "test/x", "labels": "test/y"}},
             "evaluate": {"dataset": "test", "metrics": ["accuracy", "fidelity"]},
             "stages": [{"stage": "cluster", "clusters": 32}, {"stage": "export", "path": "clustered.onnx"}]}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["run", "--quiet", file.path])
        #expect(run.status == 0, "\(run.error)")
        let report = try JSONParser.parse(String(contentsOf: folder.appendingPathComponent("out/report.json"), encoding: .utf8))
        let stage = try #require(report["stages"]?.arrayValue?.first)
        #expect(stage["details"]?["metrics"]?["layers"]?.integerValue == 3)
        // 32 shared values per layer keep the classifier's accuracy within two points.
        let before = try #require(report["input_evaluation"]?["accuracy"]?.numberValue)
        let after = try #require(stage["evaluation"]?["accuracy"]?.numberValue)
        #expect(after > before - 0.02, "accuracy \(before) -> \(after)")
        // Every clustered weight tensor holds at most 32 distinct values.
        let inspect = CapturedRun(["inspect", "--json", folder.appendingPathComponent("out/clustered.onnx").path])
        #expect(inspect.status == 0)
        let model = try Toolkit.standard.formats.read(folder.appendingPathComponent("out/clustered.onnx"))
        let weights = model.graph.nodes.filter { $0.opType == "MatMul" }.map { $0.inputs[1] }
        for name in weights {
            let values: [Float] = try #require(model.graph.initializer(named: name)?.values())
            #expect(Set(values).count <= 32, "\(name)")
        }
    }
}
