import ArgumentParser
import Foundation
import NNPipeCore
import NNPipeRuntime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model on nnpipe's runtime with random inputs: median and p90 latency, throughput.")

    @Argument(help: "The model (.onnx, .h5, .keras).")
    var model: String

    @Option(help: "Batch size (sets symbolic and unknown leading dimensions).")
    var batch = 1

    @Option(help: "Threads (default: NNPIPE_THREADS or the number of cores).")
    var threads: Int?

    @Option(help: "Untimed runs first, at least this many.")
    var warmup = 3

    // A fresh process's worker threads can take 50-100 ms to be spread over the cores; a 5 ms
    // model's three warm-up runs and twenty timed runs fit inside that window and read 1.5-2x
    // slow (Benchmarks/runtime/README.md, fourth pass), so warm-up is also measured in time.
    @Option(name: .customLong("warmup-seconds"), help: "Untimed runs go on until this many seconds have passed as well.")
    var warmupSeconds = 0.5

    @Option(help: "Timed runs.")
    var iterations = 20

    @Flag(help: "Print the results as JSON.")
    var json = false

    func validate() throws {
        guard batch >= 1, warmup >= 0, iterations >= 1, warmupSeconds >= 0, warmupSeconds.isFinite else {
            throw ValidationError("--batch and --iterations must be at least 1, --warmup and --warmup-seconds at least 0")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let url = URL(fileURLWithPath: model).standardizedFileURL
        let loaded = try Toolkit.current.formats.read(url)
        try GraphCheck.validate(loaded, path: url.path)
        // Every input is made here, so a failure below is the model's: its errors name the file.
        do { try measure(loaded, url: url) } catch let error as NNPipeError { throw error.located(at: url.path) }
    }

    private func measure(_ loaded: Model, url: URL) throws {
        let plan = try ExecutionPlan(model: loaded, threads: threads, batchSize: batch)
        var generator = SeededGenerator(seed: 42)
        var feeds: [String: RuntimeTensor] = [:]
        for input in loaded.graph.runtimeInputs {
            guard case .tensor(let elementType, let shape) = input.type else {
                throw NNPipeError(.unsupported, "input '\(input.name)' is not a tensor", path: url.path)
            }
            let dimensions = try (shape ?? []).enumerated().map { index, dimension -> Int in
                switch dimension {
                case .fixed(let value): return value
                case .symbolic, .unknown:
                    if index == 0 { return batch }
                    throw NNPipeError(.unsupported, "input '\(input.name)' has an unknown dimension \(index) (\(dimension)); only the first may be left to --batch", path: url.path)
                }
            }
            guard let count = TensorSize.elements(dimensions), count <= TensorSize.byteLimit / 8 else {
                throw NNPipeError(.invalidModel, "input '\(input.name)' has shape \(dimensions), which is negative or larger than this machine's memory", path: url.path)
            }
            switch elementType {
            case .float: feeds[input.name] = RuntimeTensor(shape: dimensions, floats: (0..<count).map { _ in generator.nextUnit() })
            case .int64: feeds[input.name] = RuntimeTensor(shape: dimensions, values: (0..<count).map { _ in Int64(generator.next() % 10) })
            case .int32: feeds[input.name] = RuntimeTensor(shape: dimensions, values: (0..<count).map { _ in Int32(generator.next() % 10) })
            case .uint8: feeds[input.name] = RuntimeTensor(shape: dimensions, values: (0..<count).map { _ in UInt8(generator.next() % 256) })
            default:
                throw NNPipeError(.unsupported, "bench cannot make random \(elementType) data for input '\(input.name)'", path: url.path)
            }
        }
        let warmUpStart = DispatchTime.now().uptimeNanoseconds
        var warmUpRuns = 0
        while warmUpRuns < warmup || Double(DispatchTime.now().uptimeNanoseconds - warmUpStart) / 1e9 < warmupSeconds {
            _ = try plan.run(inputs: feeds)
            warmUpRuns += 1
        }
        var latencies: [Double] = []
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try plan.run(inputs: feeds)
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        latencies.sort()
        let median = latencies[latencies.count / 2]
        let p90 = latencies[min(latencies.count - 1, Int((Double(latencies.count) * 0.9).rounded(.up)) - 1)]
        let throughput = Double(batch) / (median / 1000)
        if json {
            Console.current.print(JSONWriter.write(.object([
                ("model", .string(url.path)), ("batch", .number(Double(batch))), ("threads", .number(Double(plan.threads))),
                ("warmup_runs", .number(Double(warmUpRuns))),
                ("iterations", .number(Double(iterations))), ("min_ms", .number((latencies[0] * 1000).rounded() / 1000)),
                ("median_ms", .number((median * 1000).rounded() / 1000)),
                ("p90_ms", .number((p90 * 1000).rounded() / 1000)), ("samples_per_second", .number(throughput.rounded())),
            ])))
        } else {
            Console.current.print(String(format: "%@: batch %d, %d threads, %d runs: min %.3f ms, median %.3f ms, p90 %.3f ms, %.0f samples/s",
                                         url.lastPathComponent, batch, plan.threads, iterations, latencies[0], median, p90, throughput))
        }
    }
}
