import Foundation
import NNPipeCore
import NNPipeRuntime

/// A model plus inputs and expected outputs, read from the JSON that `scripts/make_runtime_cases.py`
/// writes (the tests need no ONNX reader). Tensors are base64 little-endian raw bytes.
struct RuntimeCase {
    var model: Model
    var inputs: [String: RuntimeTensor]
    var expected: [(name: String, tensor: RuntimeTensor)]
    /// Why the case cannot run (a tensor type the runtime does not hold), if so.
    var unreadable: String?

    init(contentsOf url: URL) throws {
        let data = try Data(contentsOf: url)
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let modelObject = root["model"] as? [String: Any]
        else { throw NNPipeError(.invalidModel, "not a runtime case", path: url.path) }
        var unreadable: String?
        func tensor(_ object: Any) -> Tensor? {
            guard let object = object as? [String: Any] else { return nil }
            let name = object["name"] as? String ?? ""
            let type = DataType(rawValue: Int32(object["dtype"] as? Int ?? 0)) ?? .undefined
            let shape = object["shape"] as? [Int] ?? []
            if let strings = object["strings"] as? [String] {
                return Tensor(name: name, dataType: .string, shape: shape, storage: .strings(strings.map { Array($0.utf8) }))
            }
            guard let text = object["data"] as? String, let bytes = Data(base64Encoded: text) else {
                unreadable = "tensor '\(name)' of type \(type): \(object["unreadable"] ?? "no data")"
                return nil
            }
            let buffer = bytes.withUnsafeBytes { TensorBuffer(copying: $0) }
            return Tensor(name: name, dataType: type, shape: shape, storage: .bytes(buffer))
        }
        func number(_ value: Any) -> Float {
            if let text = value as? String {
                return text == "nan" ? .nan : text == "inf" ? .infinity : -.infinity
            }
            return Float((value as? NSNumber)?.doubleValue ?? 0)
        }
        func attribute(_ object: [String: Any]) -> Attribute {
            let name = object["name"] as? String ?? ""
            let value = object["value"] as Any
            switch object["type"] as? String {
            case "int": return .int(name, (value as? NSNumber)?.int64Value ?? 0)
            case "float": return .float(name, number(value))
            case "string": return .string(name, value as? String ?? "")
            case "ints": return .ints(name, (value as? [NSNumber] ?? []).map(\.int64Value))
            case "floats": return .floats(name, (value as? [Any] ?? []).map(number))
            case "strings": return Attribute(name: name, value: .strings((value as? [String] ?? []).map { Array($0.utf8) }))
            case "tensor":
                return tensor(value).map { .tensor(name, $0) } ?? .string(name, "unreadable tensor")
            default: return Attribute(name: name, value: .graph(Graph(name: "unsupported \(value)")))
            }
        }
        func valueInfo(_ object: [String: Any]) -> ValueInfo {
            let name = object["name"] as? String ?? ""
            guard object["kind"] as? String == "tensor" else { return ValueInfo(name: name, type: .unspecified) }
            let type = DataType(rawValue: Int32(object["dtype"] as? Int ?? 0)) ?? .undefined
            let shape = (object["shape"] as? [Any]).map { dimensions in
                dimensions.map { dimension -> NNPipeCore.Dimension in
                    if let size = dimension as? Int { return .fixed(size) }
                    if let symbol = dimension as? String { return .symbolic(symbol) }
                    return .unknown
                }
            }
            return ValueInfo(name: name, type: .tensor(elementType: type, shape: shape))
        }
        let nodes = (modelObject["nodes"] as? [[String: Any]] ?? []).map { object in
            Node(name: object["name"] as? String ?? "", opType: object["op"] as? String ?? "",
                 domain: object["domain"] as? String ?? "", inputs: object["inputs"] as? [String] ?? [],
                 outputs: object["outputs"] as? [String] ?? [],
                 attributes: (object["attributes"] as? [[String: Any]] ?? []).map(attribute))
        }
        let opsets = (modelObject["opsets"] as? [String: Int] ?? [:]).map {
            OperatorSetID(domain: $0.key, version: Int64($0.value))
        }
        let graph = Graph(
            name: url.deletingPathExtension().lastPathComponent, nodes: nodes,
            inputs: (modelObject["inputs"] as? [[String: Any]] ?? []).map(valueInfo),
            outputs: (modelObject["outputs"] as? [[String: Any]] ?? []).map(valueInfo),
            initializers: (modelObject["initializers"] as? [Any] ?? []).compactMap(tensor))
        model = Model(opsetImports: opsets, graph: graph)
        var inputs: [String: RuntimeTensor] = [:]
        for object in root["inputs"] as? [Any] ?? [] {
            guard let value = tensor(object) else { continue }
            do { inputs[value.name] = try RuntimeTensor(value) } catch { unreadable = "\(error)" }
        }
        var expected: [(String, RuntimeTensor)] = []
        for object in root["outputs"] as? [Any] ?? [] {
            guard let value = tensor(object) else { continue }
            do { expected.append((value.name, try RuntimeTensor(value))) } catch { unreadable = "\(error)" }
        }
        self.inputs = inputs
        self.expected = expected
        self.unreadable = unreadable
    }

    /// Runs the case; returns nil on a match, else what differs.
    func mismatch(relativeTolerance: Double = 1e-4, absoluteTolerance: Double = 1e-5, threads: Int? = 1) throws -> String? {
        let plan = try ExecutionPlan(model: model, threads: threads)
        let results = try plan.run(inputs: inputs, outputs: expected.map(\.name))
        for (name, want) in expected {
            guard let got = results[name] else { return "output '\(name)' missing" }
            if let difference = Comparison.difference(got, want, relativeTolerance: relativeTolerance, absoluteTolerance: absoluteTolerance) {
                return "output '\(name)': \(difference)"
            }
        }
        return nil
    }
}

extension RuntimeCase {
    /// Plan-time shape inference against a run: for every value the run produced, the inferred type
    /// and shape must equal the real ones. Values inference could not tell are listed, not failed.
    func shapeInferenceCheck() throws -> (checked: Int, mismatches: [String], unknown: [String]) {
        let plan = try ExecutionPlan(model: model, threads: 1)
        final class Seen: @unchecked Sendable { var values: [String: (DataType, [Int])] = [:] }
        let seen = Seen()
        let results = try plan.run(inputs: inputs, outputs: expected.map(\.name)) { name, value in
            seen.values[name] = (value.dataType, value.shape)
        }
        for (name, value) in results { seen.values[name] = (value.dataType, value.shape) }
        // Small inputs after the first (axes, shapes, sizes, pads as node tests feed them) count as known
        // values, so the rules that depend on them are checked too; the data input never is.
        let dataInput = model.graph.runtimeInputs.first?.name
        let known = inputs.filter { $0.key != dataInput && $0.value.elementCount <= 64 }
        let inferred = try ShapeInference.infer(model, inputShapes: inputs.mapValues(\.shape), inputValues: known)
        var mismatches: [String] = [], unknown: [String] = []
        for (name, (type, shape)) in seen.values.sorted(by: { $0.key < $1.key }) {
            guard let guess = inferred[name], let guessedShape = guess.shape else {
                unknown.append(name)
                continue
            }
            if guessedShape != shape || (guess.dataType != nil && guess.dataType != type) {
                mismatches.append("'\(name)': inferred \(guess), ran \(type)\(shape)")
            }
        }
        return (seen.values.count, mismatches, unknown)
    }
}

enum Comparison {
    /// nil when `got` matches `want`: same type and shape, floats within tolerance, others exact.
    static func difference(_ got: RuntimeTensor, _ want: RuntimeTensor, relativeTolerance: Double, absoluteTolerance: Double) -> String? {
        if got.dataType != want.dataType { return "type \(got.dataType), expected \(want.dataType)" }
        if got.shape != want.shape { return "shape \(got.shape), expected \(want.shape)" }
        if got.dataType == .float || got.dataType == .double || got.dataType == .float16 {
            let left = got.dataType == .double ? got.values(as: Double.self)! : got.floats.map(Double.init)
            let right = want.dataType == .double ? want.values(as: Double.self)! : want.floats.map(Double.init)
            for index in left.indices {
                let a = left[index], b = right[index]
                if a.isNaN && b.isNaN { continue }
                if a == b { continue }
                if !(abs(a - b) <= absoluteTolerance + relativeTolerance * abs(b)) {
                    return "element \(index): \(a), expected \(b) (max |diff| \(zip(left, right).map { abs($0 - $1) }.max() ?? 0))"
                }
            }
            return nil
        }
        let left = got.integers, right = want.integers
        if let index = left.indices.first(where: { left[$0] != right[$0] }) {
            return "element \(index): \(left[index]), expected \(right[index])"
        }
        return nil
    }
}
