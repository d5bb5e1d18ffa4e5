// nnpipe-stage-cluster: an out-of-process nnpipe plugin written in Swift (protocol version 1,
// see PLUGINS.md). Weight clustering: each Conv/Gemm/MatMul weight tensor is replaced by its
// nearest of `clusters` shared values found by k-means (Lloyd's algorithm, seeded), so the
// tensor holds only that many distinct values and compresses well.
import Foundation
import NNPipeCore
import NNPipeONNX

let description = """
    {"protocol": 1, "kind": "cluster", "version": "1.0.0",
     "summary": "Share weights: k-means each Conv/Gemm/MatMul weight tensor to N values (a Swift plugin)",
     "formats": ["onnx"],
     "options": [
       {"name": "clusters", "type": "integer", "default": 16, "minimum": 2, "maximum": 256, "help": "distinct values per weight tensor"},
       {"name": "iterations", "type": "integer", "default": 20, "minimum": 1, "maximum": 1000, "help": "k-means iterations"},
       {"name": "seed", "type": "integer", "default": 0, "minimum": 0, "help": "seed for the initial centroids"}
     ]}
    """

func fail(_ message: String, status: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("nnpipe-stage-cluster: \(message)\n".utf8))
    exit(status)
}

/// Lloyd's k-means on scalars; centroids start at evenly spaced quantiles (deterministic), `seed` jitters ties.
func cluster(_ values: [Float], clusters: Int, iterations: Int, seed: UInt64) -> (values: [Float], centroids: [Float]) {
    let sorted = values.sorted()
    let count = min(clusters, Set(sorted).count)
    var centroids = (0..<count).map { index in sorted[(index * (sorted.count - 1)) / max(count - 1, 1)] }
    var state = seed
    for index in centroids.indices {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        centroids[index] += Float(state >> 40) / Float(1 << 24) * 1e-7
    }
    centroids.sort()
    var assignment = [Int](repeating: 0, count: values.count)
    for _ in 0..<iterations {
        // Sorted centroids: the nearest one is found by binary search on midpoints.
        let boundaries = zip(centroids, centroids.dropFirst()).map { ($0 + $1) / 2 }
        var sums = [Double](repeating: 0, count: centroids.count)
        var counts = [Int](repeating: 0, count: centroids.count)
        for (index, value) in values.enumerated() {
            var low = 0
            var high = boundaries.count
            while low < high {
                let middle = (low + high) / 2
                if value > boundaries[middle] { low = middle + 1 } else { high = middle }
            }
            assignment[index] = low
            sums[low] += Double(value)
            counts[low] += 1
        }
        var moved = false
        for index in centroids.indices where counts[index] > 0 {
            let updated = Float(sums[index] / Double(counts[index]))
            if updated != centroids[index] { moved = true }
            centroids[index] = updated
        }
        centroids.sort()
        if !moved { break }
    }
    return (assignment.map { centroids[$0] }, centroids)
}

let arguments = CommandLine.arguments
if arguments.count == 2 && arguments[1] == "describe" {
    print(description)
    exit(0)
}
guard arguments.count == 3 && arguments[1] == "run" else { fail("usage: nnpipe-stage-cluster describe | run REQUEST.json", status: 2) }

let requestData = FileManager.default.contents(atPath: arguments[2]) ?? Data()
guard let request = try? JSONParser.parse(Array(requestData)), request["protocol"]?.integerValue == 1 else {
    fail("the request is not protocol version 1 JSON", status: 3)
}
guard let input = request["input_model"]?.stringValue, let output = request["output_model"]?.stringValue,
    let resultPath = request["result"]?.stringValue
else { fail("the request lacks input_model, output_model or result", status: 3) }
let clusters = request["options"]?["clusters"]?.integerValue ?? 16
let iterations = request["options"]?["iterations"]?.integerValue ?? 20
let seed = UInt64(request["options"]?["seed"]?.integerValue ?? 0)

do {
    let format = ONNXFormat()
    var model = try format.read(from: URL(fileURLWithPath: input))
    let weightNames = Set(model.graph.nodes.filter { ["Conv", "Gemm", "MatMul"].contains($0.opType) && $0.inputs.count > 1 }.map { $0.inputs[1] })
    var layers = 0
    var worstError: Float = 0
    for index in model.graph.initializers.indices where weightNames.contains(model.graph.initializers[index].name) {
        let tensor = model.graph.initializers[index]
        guard let values: [Float] = tensor.values(), values.count > clusters else { continue }
        let (clustered, _) = cluster(values, clusters: clusters, iterations: iterations, seed: seed)
        worstError = max(worstError, zip(values, clustered).map { abs($0 - $1) }.max() ?? 0)
        model.graph.initializers[index] = Tensor(name: tensor.name, shape: tensor.shape, values: clustered)
        layers += 1
        FileHandle.standardError.write(Data("\(tensor.name): \(values.count) weights -> \(Set(clustered).count) values\n".utf8))
    }
    try format.write(model, to: URL(fileURLWithPath: output))
    let result = JSONValue.object([
        ("summary", .string("clustered \(layers) weight tensors to at most \(clusters) values each")),
        ("metrics", .object([("layers", .number(Double(layers))), ("max_abs_change", .number(Double(worstError)))])),
        ("messages", .array([])),
    ])
    try Data(JSONWriter.write(result).utf8).write(to: URL(fileURLWithPath: resultPath))
} catch {
    fail("\(error)")
}
