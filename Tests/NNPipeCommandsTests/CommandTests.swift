import Foundation
import NNPipeCommands
import NNPipeCore
import NNPipeData
import NNPipeTestKit
import Testing

/// Runs `nnpipe` in-process and captures what it prints.
struct CapturedRun {
    var status: Int32
    var output: String
    var error: String

    init(_ arguments: [String], toolkit: Toolkit = .standard) {
        let outputBuffer = TextBuffer()
        let errorBuffer = TextBuffer()
        let console = Console(writeOutput: outputBuffer.append, writeError: errorBuffer.append, errorIsTerminal: false)
        status = NNPipeCommand.execute(arguments, toolkit: toolkit, console: console)
        output = outputBuffer.text
        error = errorBuffer.text
    }
}

final class TextBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var storage = ""
    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
    @Sendable func append(_ text: String) {
        lock.lock()
        storage += text
        lock.unlock()
    }
}

enum Example {
    static let folder = TestEnvironment.repositoryRoot.appendingPathComponent("Examples/digits")
    static let model = folder.appendingPathComponent("mlp.onnx")
    static let data = folder.appendingPathComponent("digits.h5")

    /// A scratch folder with a manifest pointing at the bundled example model and data.
    static func manifest(_ body: String) throws -> (folder: URL, file: URL) {
        let scratch = try TestEnvironment.temporaryFolder("nnpipe-cli")
        let file = scratch.appendingPathComponent("pipeline.json")
        let text = body
            .replacingOccurrences(of: "$MODEL", with: model.path)
            .replacingOccurrences(of: "$DATA", with: data.path)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return (scratch, file)
    }
}

@Suite("Command line")
struct CommandTests {
    @Test func helpAndVersionExitZero() {
        let help = CapturedRun(["--help"])
        #expect(help.status == 0)
        #expect(help.output.contains("SUBCOMMANDS"))
        let version = CapturedRun(["--version"])
        #expect(version.status == 0)
        #expect(version.output.contains(NNPipeVersion.current))
    }

    @Test(arguments: [["frobnicate"], ["run"], ["inspect"], ["convert", "only-one"], ["run", "--bogus", "x.json"],
                        ["bench", "--batch", "0", "x.onnx"], ["bench", "--warmup-seconds=-1", "x.onnx"]])
    func badUsageExitsTwoWithOneLine(arguments: [String]) {
        let run = CapturedRun(arguments)
        #expect(run.status == 2)
        #expect(run.error.hasPrefix("error: "))
        #expect(!run.error.contains("Fatal error"))
    }

    @Test func stagesListsBuiltInsAsTableAndJSON() throws {
        let table = CapturedRun(["stages"])
        #expect(table.status == 0)
        #expect(table.output.contains("export"))
        let json = CapturedRun(["stages", "--json"])
        #expect(json.status == 0)
        let parsed = try JSONParser.parse(json.output)
        let kinds = try #require(parsed.arrayValue).compactMap { $0["kind"]?.stringValue }
        #expect(kinds.contains("export"))
        let export = try #require(parsed.arrayValue?.first { $0["kind"]?.stringValue == "export" })
        #expect(export["options"]?.arrayValue?.first?["name"]?.stringValue == "path")
    }

    @Test func schemaIsJSONSchemaWithEveryStage() throws {
        let run = CapturedRun(["schema"])
        #expect(run.status == 0)
        let schema = try JSONParser.parse(run.output)
        #expect(schema["$schema"]?.stringValue?.contains("json-schema.org") == true)
        let stages = try #require(schema["properties"]?["stages"]?["items"]?["oneOf"]?.arrayValue)
        #expect(stages.count == Toolkit.standard.stages.descriptors.count)
    }

    @Test func validateAcceptsTheBundledExample() {
        let run = CapturedRun(["validate", Example.folder.appendingPathComponent("pipeline.json").path])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("valid"))
    }

    @Test func validateRejectsABadManifestWithItsPath() throws {
        let (folder, file) = try Example.manifest("""
            {"version": 1, "model": "$MODEL", "stages": [{"stage": "export", "pth": "x.onnx"}]}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["validate", file.path])
        #expect(run.status == 2)
        #expect(run.error.contains("stages[0].pth: unknown option 'pth'"))
    }

    @Test func validateReportsAMissingModelAtItsPath() throws {
        let (folder, file) = try Example.manifest("""
            {"version": 1, "model": "nowhere.onnx", "stages": []}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["validate", file.path])
        #expect(run.status == 2)
        #expect(run.error.contains("model: file not found"))
    }

    @Test func missingManifestIsAUsageError() {
        let run = CapturedRun(["run", "/nonexistent/pipeline.json"])
        #expect(run.status == 2)
        #expect(run.error.contains("/nonexistent/pipeline.json: manifest not found"))
    }

    @Test func dryRunPrintsThePlanAndWritesNothing() throws {
        let (folder, file) = try Example.manifest("""
            {"version": 1, "model": "$MODEL", "output_dir": "out", "stages": [{"stage": "export", "path": "copy.onnx"}]}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["run", "--dry-run", file.path])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("stages[0] export"))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }

    @Test func runWritesTheExportAndTheReport() throws {
        let (folder, file) = try Example.manifest("""
            {"version": 1, "model": "$MODEL", "output_dir": "out", "stages": [{"stage": "export", "path": "copy.onnx"}]}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["run", "--quiet", file.path])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("export"))
        let report = try JSONParser.parse(String(contentsOf: folder.appendingPathComponent("out/report.json"), encoding: .utf8))
        #expect(report["status"]?.stringValue == "ok")
        #expect(report["stages"]?.arrayValue?.first?["seconds"]?.numberValue != nil)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/copy.onnx").path))
    }

    @Test func inspectShowsTheModel() throws {
        let run = CapturedRun(["inspect", Example.model.path])
        #expect(run.status == 0, "\(run.error)")
        #expect(run.output.contains("format:      onnx"))
        #expect(run.output.contains("MatMul"))
        let json = CapturedRun(["inspect", "--json", Example.model.path])
        let facts = try JSONParser.parse(json.output)
        #expect(facts["inputs"]?.arrayValue?.first?["name"]?.stringValue == "X")
        #expect((facts["statistics"]?["parameters"]?.integerValue ?? 0) > 4000)
    }

    @Test func benchWarmsUpForItsRunsAndItsTimeThenTimes() throws {
        // The clock rules warm-up: a few milliseconds' model goes on well past its 3 runs.
        let timed = CapturedRun(["bench", Example.model.path, "--json", "--batch", "4", "--warmup-seconds", "0.2", "--iterations", "7"])
        #expect(timed.status == 0, "\(timed.error)")
        let facts = try JSONParser.parse(timed.output)
        #expect((facts["warmup_runs"]?.integerValue ?? 0) > 3)
        #expect(facts["iterations"]?.integerValue == 7)
        #expect(facts["batch"]?.integerValue == 4)
        let median = facts["median_ms"]?.numberValue ?? 0
        #expect(median > 0)
        #expect((facts["p90_ms"]?.numberValue ?? 0) >= median)
        #expect((facts["min_ms"]?.numberValue ?? .infinity) <= median)
        // With no time asked for, the run count alone rules.
        let counted = CapturedRun(["bench", Example.model.path, "--json", "--warmup", "2", "--warmup-seconds", "0", "--iterations", "1"])
        #expect(counted.status == 0, "\(counted.error)")
        #expect(try JSONParser.parse(counted.output)["warmup_runs"]?.integerValue == 2)
    }

    /// A pipe blocks the first read forever and a device never ends: both are refused before
    /// anything opens them, as a model, as data and in a manifest (the pipe case hung before).
    @Test func pipesAndDevicesAreRefusedInOneLine() throws {
        let folder = try TestEnvironment.temporaryFolder("special-files")
        defer { try? FileManager.default.removeItem(at: folder) }
        let pipe = folder.appendingPathComponent("model.onnx").path
        #expect(mkfifo(pipe, 0o600) == 0)
        let (manifestFolder, manifest) = try Example.manifest(#"{"version": 1, "model": "/dev/zero", "output_dir": "out", "stages": []}"#)
        defer { try? FileManager.default.removeItem(at: manifestFolder) }
        let runs = [
            (CapturedRun(["inspect", pipe]), pipe),
            (CapturedRun(["eval", Example.model.path, "--data", pipe, "--inputs", "x"]), pipe),
            (CapturedRun(["bench", "/dev/zero"]), "/dev/zero"),
            (CapturedRun(["validate", manifest.path]), "model: "),
        ]
        for (run, named) in runs {
            #expect(run.status == 1 || run.status == 2)
            #expect(run.error.contains("is a pipe, socket or device, expected a regular file"), "\(run.error)")
            #expect(run.error.contains(named))
            #expect(run.error.split(separator: "\n").count == 1)
        }
    }

    /// `--save-outputs` somewhere it cannot be written fails before the data set is run (it failed
    /// after, at the final rename, or named a hidden scratch file instead of the path given).
    @Test func saveOutputsToAnImpossiblePlaceFailsFirst() throws {
        let folder = try TestEnvironment.temporaryFolder("save-outputs")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cases = [
            (folder.appendingPathComponent("missing/outputs.npz").path, "does not exist"),
            (folder.path, "is a folder, expected an .npz file to write"),
        ]
        for (destination, message) in cases {
            let run = CapturedRun(["eval", "-q", Example.model.path, "--data", Example.data.path, "--inputs", "test/x", "--save-outputs", destination])
            #expect(run.status == 1)
            #expect(run.error.hasPrefix("error: \(destination): "), "\(run.error)")
            #expect(run.error.contains(message), "\(run.error)")
            #expect(run.output.isEmpty, "no metrics: nothing ran")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    /// A label that is no class of the model is the data's fault: the error names the data file
    /// and the labels key (it named neither).
    @Test func badLabelsAreNamedAtTheirFileAndKey() throws {
        let folder = try TestEnvironment.temporaryFolder("bad-labels")
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = folder.appendingPathComponent("data.npz")
        let writer = NumpyArchiveWriter(url: data)
        try writer.append(Tensor(name: "x", shape: [3, 64], values: [Float](repeating: 1, count: 192)), as: "x")
        try writer.append(Tensor(name: "y", shape: [3], values: [Int64(1), 99, 2]), as: "y")
        try writer.finish()
        let run = CapturedRun(["eval", "-q", Example.model.path, "--data", data.path, "--inputs", "x", "--labels", "y"])
        #expect(run.status == 1)
        #expect(run.error == "error: \(data.path): labels 'y': label 99 of sample 1 is not a class in 0..<10\n", "\(run.error)")
    }

    @Test func inspectOfGarbageExitsOneWithOneLine() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let garbage = folder.appendingPathComponent("garbage.onnx")
        try Data((0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: garbage)
        let run = CapturedRun(["inspect", garbage.path])
        #expect(run.status == 1 || run.status == 2)
        #expect(run.error.hasPrefix("error: \(garbage.path)"))
        #expect(run.error.split(separator: "\n").count == 1)
    }

    @Test func convertRoundTripsAnONNXModel() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("copy.onnx")
        let run = CapturedRun(["convert", "--quiet", Example.model.path, output.path])
        #expect(run.status == 0, "\(run.error)")
        #expect(FileManager.default.fileExists(atPath: output.path))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("report.json").path))
        let again = CapturedRun(["inspect", "--json", output.path])
        #expect(again.status == 0)
    }

    @Test func convertToAnUnknownExtensionFailsBeforeWriting() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["convert", Example.model.path, folder.appendingPathComponent("model.xyz").path])
        #expect(run.status == 2)
        #expect(run.error.contains("cannot tell the format"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }
}

@Suite("README")
struct ReadmeTests {
    @Test func stageReferenceMatchesTheDeclarations() throws {
        let readme = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let run = CapturedRun(["stages", "--markdown"])
        let start = try #require(readme.range(of: "<!-- stages:begin -->\n"))
        let end = try #require(readme.range(of: "\n<!-- stages:end -->"))
        let section = String(readme[start.upperBound..<end.lowerBound])
        #expect(section == run.output.trimmingCharacters(in: .newlines), "README is stale: run scripts/update-readme.sh")
    }
}

@Suite("Sparse export after pruning")
struct SparseExportTests {
    @Test func aPrunedModelExportsSparseAndRunsEverywhere() throws {
        let (folder, file) = try Example.manifest("""
            {"version": 1, "model": "$MODEL", "output_dir": "out",
             "stages": [{"stage": "prune", "sparsity": 0.9, "scope": "global", "include_first_last": true},
                        {"stage": "export", "path": "dense.onnx"},
                        {"stage": "export", "path": "sparse.onnx", "sparse_initializers": true}]}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = CapturedRun(["run", "--quiet", file.path])
        #expect(run.status == 0, "\(run.error)")
        let dense = folder.appendingPathComponent("out/dense.onnx")
        let sparse = folder.appendingPathComponent("out/sparse.onnx")
        let denseSize = try #require(try FileManager.default.attributesOfItem(atPath: dense.path)[.size] as? Int)
        let sparseSize = try #require(try FileManager.default.attributesOfItem(atPath: sparse.path)[.size] as? Int)
        #expect(Double(sparseSize) < 0.5 * Double(denseSize), "\(sparseSize) vs \(denseSize)")
        // nnpipe's runtime densifies sparse initializers: same accuracy from both files.
        let fromDense = CapturedRun(["eval", "-q", dense.path, "--data", Example.data.path, "--inputs", "test/x", "--labels", "test/y", "--json"])
        let fromSparse = CapturedRun(["eval", "-q", sparse.path, "--data", Example.data.path, "--inputs", "test/x", "--labels", "test/y", "--json"])
        #expect(fromSparse.status == 0, "\(fromSparse.error)")
        #expect(try JSONParser.parse(fromDense.output)["accuracy"] == JSONParser.parse(fromSparse.output)["accuracy"])
        guard TestEnvironment.python != nil else {
            if TestEnvironment.isCI { Issue.record("\(InteropUnavailable())") }
            return
        }
        // onnx's full_check runs shape inference, which does not support sparse initializers even
        // for models onnx.helper builds; the structural checker and onnxruntime do.
        let check = try ProcessRunner.python("""
            import sys, h5py, numpy as np, onnx, onnxruntime as ort
            x = h5py.File(sys.argv[3], "r")["test/x"][()]
            onnx.checker.check_model(onnx.load(sys.argv[2]))
            assert len(onnx.load(sys.argv[2]).graph.sparse_initializer) >= 2
            a = ort.InferenceSession(sys.argv[1]).run(None, {"X": x})[1]
            b = ort.InferenceSession(sys.argv[2]).run(None, {"X": x})[1]
            print("max diff", float(np.abs(a - b).max()))
            """, [dense.path, sparse.path, Example.data.path])
        #expect(check.status == 0, "\(check.standardError)")
        #expect(check.standardOutput.contains("max diff 0.0"))
    }
}
