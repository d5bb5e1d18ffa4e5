import Foundation
import NNPipeCore
import NNPipeData
import NNPipeTestKit
import StageCalibrate
import Testing

/// Time of each calibration method against minmax, and resident memory as the sample count grows.
/// Off by default (it is a benchmark, not a test): `Benchmarks/calibration/run.sh` sets
/// NNPIPE_BENCHMARK=1 and builds in release mode.
@Suite struct CalibrationBenchmark {
    static var enabled: Bool { ProcessInfo.processInfo.environment["NNPIPE_BENCHMARK"] == "1" }

    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    /// Each method runs `rounds` times, interleaved with minmax, on the same file; a cell is the
    /// median over rounds of (method time / minmax time in the same round), so a burst of load
    /// from elsewhere moves one round, not the figure.
    @Test(.enabled(if: enabled)) func calibrationMethodsTimeAndMemory() throws {
        let folder = try TestEnvironment.temporaryFolder("calibration-benchmark")
        defer { try? FileManager.default.removeItem(at: folder) }
        let rounds = Int(ProcessInfo.processInfo.environment["NNPIPE_BENCHMARK_ROUNDS"] ?? "") ?? 5
        let methods = ["minmax", "percentile", "entropy", "mse"]
        var source = SampleSource(state: 11)
        var lines = ["| samples | method | median seconds | x minmax (median of \(rounds) rounds) | range of ratios | RSS after (MB) |",
                     "|---:|---|---:|---:|---:|---:|"]
        for samples in [2_048, 8_192, 32_768] {
            let data = folder.appendingPathComponent("inputs-\(samples).npz")
            try NumpyArchiveWriter.write([("x", Tensor(name: "x", shape: [samples, 1, 8, 8], values: source.normal(count: samples * 64)))], to: data)
            var seconds: [String: [Double]] = [:]
            var ratios: [String: [Double]] = [:]
            for _ in 0..<rounds {
                var minmaxSeconds = 0.0
                for method in methods {
                    let elapsed = try Self.calibrate(method: method, data: data)
                    if method == "minmax" { minmaxSeconds = elapsed }
                    seconds[method, default: []].append(elapsed)
                    ratios[method, default: []].append(elapsed / minmaxSeconds)
                }
            }
            let resident = String(format: "%.1f", Double(Self.residentBytes()) / 1e6)
            for method in methods {
                let sorted = ratios[method]!.sorted()
                lines.append("| \(samples) | \(method) | \(String(format: "%.3f", Self.median(seconds[method]!))) | "
                    + "\(String(format: "%.2f", Self.median(sorted))) | \(String(format: "%.2f-%.2f", sorted.first!, sorted.last!)) | \(resident) |")
            }
        }
        let table = lines.joined(separator: "\n")
        print(table)
        if let output = ProcessInfo.processInfo.environment["NNPIPE_BENCHMARK_OUTPUT"] {
            try table.write(toFile: output, atomically: true, encoding: .utf8)
        }
    }

    static func calibrate(method: String, data: URL) throws -> Double {
        var model = try QuantizeFixtures.model("cnn")
        var context = QuantizeFixtures.context(datasetFor: "cnn")
        context.datasets["calib"] = DatasetSpecification(name: "calib", path: data, batchSize: 256)
        let stage = try CalibrateStage(options: QuantizeFixtures.options(["dataset": .string("calib"), "method": .string(method)]))
        let clock = ContinuousClock()
        let started = clock.now
        _ = try stage.run(&model, context: context)
        let elapsed = clock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
