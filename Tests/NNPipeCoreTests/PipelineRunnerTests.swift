import Foundation
import NNPipeCore
import NNPipeTestKit
import Testing

@Suite("Pipeline runner")
struct PipelineRunnerTests {
    /// Writes a toy model and a manifest with `stages` into a fresh folder.
    func setUp(_ stages: String) throws -> (folder: URL, manifest: Manifest) {
        let folder = try TestEnvironment.temporaryFolder()
        try "toy-model\nw 1 2 3\n".write(to: folder.appendingPathComponent("model.toy"), atomically: true, encoding: .utf8)
        let text = "{\"version\": 1, \"name\": \"toy\", \"model\": \"model.toy\", \"output_dir\": \"out\", \"stages\": [\(stages)]}"
        let file = folder.appendingPathComponent("pipeline.json")
        try text.write(to: file, atomically: true, encoding: .utf8)
        var decoder = ManifestDecoder(registry: ToyModels.registry)
        return (folder, try decoder.decode(fileAt: file))
    }

    var runner: PipelineRunner {
        PipelineRunner(registry: ToyModels.registry, formats: FormatRegistry([ToyFormat()]))
    }

    @Test func runsStagesInOrderAndWritesTheReport() throws {
        let (folder, manifest) = try setUp("""
            {"stage": "export", "path": "before.toy"}, {"stage": "scale", "factor": 3},
            {"stage": "scale", "factor": 2}, {"stage": "export", "path": "after.toy"}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try runner.run(manifest)
        #expect(report.succeeded)
        #expect(report.stages.map(\.kind) == ["export", "scale", "scale", "export"])
        #expect(report.stages.allSatisfy { $0.seconds >= 0 })
        #expect(report.stages[1].seconds >= 0.01)
        let before = try String(contentsOf: folder.appendingPathComponent("out/before.toy"), encoding: .utf8)
        let after = try String(contentsOf: folder.appendingPathComponent("out/after.toy"), encoding: .utf8)
        #expect(before.contains("w 1.0 2.0 3.0"))
        #expect(after.contains("w 6.0 12.0 18.0"))
        let reportText = try String(contentsOf: folder.appendingPathComponent("out/report.json"), encoding: .utf8)
        let json = try JSONParser.parse(reportText)
        #expect(json["status"]?.stringValue == "ok")
        let stages = try #require(json["stages"]?.arrayValue)
        #expect(stages.count == 4)
        #expect(stages[1]["seconds"]?.numberValue != nil)
        #expect(stages[1]["statistics_after"]?["parameters"]?.integerValue == 3)
    }

    @Test func aFailingStageLeavesNoPartialOutputAndReportsFailure() throws {
        let (folder, manifest) = try setUp("""
            {"stage": "scale"}, {"stage": "fail"}, {"stage": "export", "path": "never.toy"}
            """)
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try runner.run(manifest)
        #expect(!report.succeeded)
        #expect(report.stages.count == 2)
        #expect(report.stages[1].error?.contains("deliberate failure") == true)
        let outputs = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("out").path)
        #expect(outputs == ["report.json"], "only the report may be written: \(outputs)")
    }

    @Test func aStageThatBreaksTheGraphFails() throws {
        let (folder, manifest) = try setUp("{\"stage\": \"break\"}")
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try runner.run(manifest)
        #expect(report.error?.contains("graph output 'y' is not produced") == true)
    }

    @Test func dryRunPlansWithoutWriting() throws {
        let (folder, manifest) = try setUp("{\"stage\": \"scale\"}, {\"stage\": \"export\", \"path\": \"m.toy\"}")
        defer { try? FileManager.default.removeItem(at: folder) }
        try runner.preflight(manifest)
        let plan = runner.plan(manifest)
        #expect(plan.first?.hasPrefix("import ") == true)
        #expect(plan.contains { $0.contains("stages[1] export") && $0.hasSuffix("/out/m.toy") })
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out").path))
    }

    @Test func preflightRejectsAnExportNoFormatCanWrite() throws {
        let (folder, manifest) = try setUp("{\"stage\": \"export\", \"path\": \"model.xyz\"}")
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try #require(throws: ManifestProblems.self) { try runner.preflight(manifest) }
        #expect(error.problems.first?.message.hasPrefix("stages[0].path: cannot tell the format from 'model.xyz'") == true)
    }

    @Test func preflightNamesMissingFilesByJSONPath() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let text = "{\"version\": 1, \"model\": \"absent.toy\", \"datasets\": {\"calib\": {\"path\": \"absent.h5\"}}, \"stages\": []}"
        var decoder = ManifestDecoder(registry: ToyModels.registry)
        let manifest = try decoder.decode(Array(text.utf8), file: folder.appendingPathComponent("p.json"))
        let error = try #require(throws: ManifestProblems.self) { try runner.preflight(manifest) }
        #expect(error.problems.map(\.message).contains { $0.hasPrefix("model: file not found") })
        #expect(error.problems.map(\.message).contains { $0.hasPrefix("datasets.calib.path: file not found") })
    }
}

@Suite("Atomic files")
struct AtomicFileTests {
    @Test func failedWriteKeepsTheOldFileAndLeavesNoTemporary() throws {
        let folder = try TestEnvironment.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let target = folder.appendingPathComponent("model.onnx")
        try Data("old".utf8).write(to: target)
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try AtomicFile.write(to: target) { temporary in
                try Data("half".utf8).write(to: temporary)
                throw Boom()
            }
        }
        #expect(try String(contentsOf: target, encoding: .utf8) == "old")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.onnx"])
    }
}
