import Foundation
import Logging
import NNPipeCore
import NNPipeTestKit
import Testing
@testable import StagePrune

/// The report's ONNX and gzip sizes and latency before and after.
struct FootprintTests {
    struct GzipCase: CustomTestStringConvertible, Sendable {
        var name: String
        var bytes: [UInt8]
        var testDescription: String { name }
    }

    static let gzipCases: [GzipCase] = {
        var generator = SeededGenerator(seed: 9)
        let noise = (0..<300_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let floats = (0..<100_000).flatMap { index -> [UInt8] in
            let value: Float = index % 10 == 0 ? generator.nextFloat() : 0
            return withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
        }
        return [
            GzipCase(name: "empty", bytes: []),
            GzipCase(name: "text", bytes: Array(String(repeating: "nnpipe prunes weights. ", count: 500).utf8)),
            GzipCase(name: "random bytes", bytes: noise),
            GzipCase(name: "90% zero floats", bytes: floats),
        ]
    }()

    /// Sizes must be what `gzip -9` gives, checked against Python's gzip module (zlib level 9).
    @Test(arguments: gzipCases)
    func gzipSizeIsGzipNine(_ example: GzipCase) throws {
        let ours = try GzipCounter.size(of: example.bytes)
        if example.bytes.isEmpty { #expect(ours == 20) }  // 10-byte header, empty block, 8-byte trailer
        guard TestEnvironment.python != nil else { return }
        let folder = try TestEnvironment.temporaryFolder("prune-gzip")
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("data.bin")
        try Data(example.bytes).write(to: file)
        let run = try ProcessRunner.python("import gzip, sys; print(len(gzip.compress(open(sys.argv[1], 'rb').read(), 9)))", [file.path])
        try #require(run.status == 0, "\(run.standardError)")
        #expect(ours == Int(run.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)))
        // Reading in pieces gives the same stream as one call.
        #expect(try ModelFootprint.gzipSize(of: file) == (example.bytes.count, ours))
    }

    @Test func weightPruningReportsSizesAndLatency() throws {
        let dense = InteropTests.wideModel()
        var model = dense
        let result = try runStage(["sparsity": .number(0.9), "scope": .string("global")], on: &model)
        let before = try #require(try ModelFootprint.measure(dense, formats: testContext.formats))
        let after = try #require(try ModelFootprint.measure(model, formats: testContext.formats))
        #expect(result.detail("onnx_bytes_before")?.numberValue == Double(before.bytes))
        #expect(result.detail("onnx_bytes_after")?.numberValue == Double(after.bytes))
        #expect(result.detail("gzip_bytes_before")?.numberValue == Double(before.gzipBytes))
        #expect(result.detail("gzip_bytes_after")?.numberValue == Double(after.gzipBytes))
        // Zeros cost the same uncompressed and almost nothing gzipped.
        #expect(abs(after.bytes - before.bytes) < 64)
        #expect(Double(after.gzipBytes) <= 0.25 * Double(before.gzipBytes))
        #expect((result.detail("latency_ms_before")?.numberValue ?? 0) > 0)
        #expect((result.detail("latency_ms_after")?.numberValue ?? 0) > 0)
        #expect(result.summary.contains("gzip \(PruneReport.bytes(before.gzipBytes)) -> \(PruneReport.bytes(after.gzipBytes))"), "\(result.summary)")
        #expect(result.summary.contains("latency"), "\(result.summary)")
        #expect(result.warnings.isEmpty, "\(result.warnings)")
    }

    @Test func channelPruningShrinksTheFile() throws {
        var model = InteropTests.wideModel()
        let result = try runStage(["granularity": .string("channel"), "channel_ratio": .number(0.5)], on: &model)
        let before = try #require(result.detail("onnx_bytes_before")?.numberValue)
        let after = try #require(result.detail("onnx_bytes_after")?.numberValue)
        #expect(after < 0.5 * before)
        #expect(result.summary.contains("ONNX"), "\(result.summary)")
    }

    @Test func measurementsCanBeTurnedOff() throws {
        var model = InteropTests.wideModel()
        let result = try runStage(
            ["sparsity": .number(0.5), "measure_size": .bool(false), "measure_latency": .bool(false)], on: &model)
        for key in ["onnx_bytes_before", "onnx_bytes_after", "gzip_bytes_before", "gzip_bytes_after", "latency_ms_before", "latency_ms_after"] {
            #expect(result.detail(key)?.isNull == true, "\(key)")
        }
        #expect(!result.summary.contains("gzip"))
        #expect(result.warnings.isEmpty, "\(result.warnings)")
    }

    @Test func withoutAnONNXFormatTheReportSaysSo() throws {
        var model = InteropTests.wideModel()
        var context = testContext
        context.formats = FormatRegistry([])
        let result = try makeStage(["sparsity": .number(0.5), "measure_latency": .bool(false)]).run(&model, context: context)
        #expect(result.detail("gzip_bytes_after")?.isNull == true)
        #expect(result.warnings.contains { $0.contains("no ONNX format") }, "\(result.warnings)")
    }
}
