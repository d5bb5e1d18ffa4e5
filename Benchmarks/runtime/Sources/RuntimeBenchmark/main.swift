// Times NNPipeRuntime on the models `Benchmarks/runtime/make_models.py` prepared and checks its
// output against onnxruntime's on the same input.
//   RuntimeBenchmark <models folder> <name> <batch> [--threads N] [--runs R]
// Prints one JSON line: median milliseconds, max |difference| from onnxruntime.
import Foundation
import NNPipeCore
import NNPipeRuntime

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
}

/// Reads the graph JSON of `scripts/onnx_json.py` with initializer bytes in the side `.bin` file.
func loadModel(json: URL, weights: URL) throws -> Model {
    let root = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any] ?? [:]
    let blob = try Data(contentsOf: weights, options: .alwaysMapped)
    func tensor(_ object: [String: Any]) throws -> Tensor {
        let name = object["name"] as? String ?? ""
        let type = DataType(rawValue: Int32(object["dtype"] as? Int ?? 0)) ?? .undefined
        let shape = object["shape"] as? [Int] ?? []
        let bytes: Data
        if let offset = object["offset"] as? Int, let length = object["length"] as? Int {
            bytes = blob.subdata(in: offset..<(offset + length))
        } else if let text = object["data"] as? String, let decoded = Data(base64Encoded: text) {
            bytes = decoded
        } else {
            throw BenchmarkFailure(description: "tensor '\(name)' has no data")
        }
        return Tensor(name: name, dataType: type, shape: shape, storage: .bytes(bytes.withUnsafeBytes { TensorBuffer(copying: $0) }))
    }
    func attribute(_ object: [String: Any]) throws -> Attribute {
        let name = object["name"] as? String ?? ""
        let value = object["value"] as Any
        switch object["type"] as? String {
        case "int": return .int(name, (value as? NSNumber)?.int64Value ?? 0)
        case "float": return .float(name, (value as? NSNumber)?.floatValue ?? 0)
        case "string": return .string(name, value as? String ?? "")
        case "ints": return .ints(name, (value as? [NSNumber] ?? []).map(\.int64Value))
        case "floats": return .floats(name, (value as? [NSNumber] ?? []).map(\.floatValue))
        case "tensor": return .tensor(name, try tensor(value as? [String: Any] ?? [:]))
        default: throw BenchmarkFailure(description: "attribute '\(name)' of an unsupported kind")
        }
    }
    func valueInfo(_ object: [String: Any]) -> ValueInfo {
        let type = DataType(rawValue: Int32(object["dtype"] as? Int ?? 0)) ?? .undefined
        let shape = (object["shape"] as? [Any])?.map { ($0 as? Int).map { NNPipeCore.Dimension.fixed($0) } ?? .symbolic("\($0)") }
        return ValueInfo(name: object["name"] as? String ?? "", type: .tensor(elementType: type, shape: shape))
    }
    let nodes = try (root["nodes"] as? [[String: Any]] ?? []).map { object in
        Node(name: object["name"] as? String ?? "", opType: object["op"] as? String ?? "", domain: object["domain"] as? String ?? "",
             inputs: object["inputs"] as? [String] ?? [], outputs: object["outputs"] as? [String] ?? [],
             attributes: try (object["attributes"] as? [[String: Any]] ?? []).map(attribute))
    }
    let graph = Graph(name: json.deletingPathExtension().lastPathComponent, nodes: nodes,
                      inputs: (root["inputs"] as? [[String: Any]] ?? []).map(valueInfo),
                      outputs: (root["outputs"] as? [[String: Any]] ?? []).map(valueInfo),
                      initializers: try (root["initializers"] as? [[String: Any]] ?? []).map(tensor))
    let opsets = (root["opsets"] as? [String: Int] ?? [:]).map { OperatorSetID(domain: $0.key, version: Int64($0.value)) }
    return Model(opsetImports: opsets, graph: graph)
}

func readFloats(_ url: URL) throws -> [Float] {
    let data = try Data(contentsOf: url)
    return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
}

func main() throws {
    var arguments = Array(CommandLine.arguments.dropFirst())
    func option(_ name: String) -> Int? {
        guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
        defer { arguments.removeSubrange(index...(index + 1)) }
        return Int(arguments[index + 1])
    }
    let threads = option("--threads")
    let runs = option("--runs") ?? 5
    guard arguments.count == 3, let batch = Int(arguments[2]) else {
        throw BenchmarkFailure(description: "usage: RuntimeBenchmark <models folder> <name> <batch> [--threads N] [--runs R]")
    }
    let folder = URL(fileURLWithPath: arguments[0])
    let name = arguments[1]
    let model = try loadModel(json: folder.appendingPathComponent("\(name).json"), weights: folder.appendingPathComponent("\(name).bin"))
    let planStart = Date()
    let plan = try ExecutionPlan(model: model, threads: threads, batchSize: batch)
    let planSeconds = Date().timeIntervalSince(planStart)
    guard let input = plan.inputs.first, let shape = input.type.tensorShape?.compactMap(\.fixedValue) else {
        throw BenchmarkFailure(description: "the model has no fixed-shape input")
    }
    let data = try readFloats(folder.appendingPathComponent("\(name)-batch\(batch).input.bin"))
    let expected = try readFloats(folder.appendingPathComponent("\(name)-batch\(batch).output.bin"))
    let feed = RuntimeTensor(shape: shape, floats: data)
    let warmUpStart = DispatchTime.now().uptimeNanoseconds
    let output = try plan.run(feed).floats  // warm-up, and the answer to check
    let difference = zip(output, expected).map { abs($0 - $1) }.max() ?? .infinity
    // More untimed runs until half a second has passed, as make_models.py does for onnxruntime: a
    // fresh process's new threads take 50-100 ms to be spread over the cores on the benchmark VM
    // (a single 3x3 conv ran its first 100 runs at 0.7-1.0 ms, then 0.39 ms), which one run of a
    // 5 ms model does not cover.
    while DispatchTime.now().uptimeNanoseconds - warmUpStart < 500_000_000 {
        _ = try plan.run(feed)
    }
    var times: [Double] = []
    for _ in 0..<runs {
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try plan.run(feed)
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    if ProcessInfo.processInfo.environment["NNPIPE_BENCHMARK_TIMES"] != nil {
        // Every run's time in order, to tell a slow spell of the machine from a slow runtime.
        FileHandle.standardError.write((times.map { String(format: "%.2f", $0) }.joined(separator: " ") + "\n").data(using: .utf8)!)
    }
    times.sort()
    let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
    print(String(format: "{\"model\": \"%@\", \"batch\": %d, \"threads\": %d, \"median_ms\": %.2f, \"min_ms\": %.2f, \"plan_s\": %.2f, \"max_abs_difference\": %g, \"output_count\": %d}",
                 name, batch, plan.threads, median, times.first ?? .nan, planSeconds, Double(difference), output.count))
}

do { try main() } catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
