import ArgumentParser
import Foundation
import NNPipeCore

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model's format, opsets, inputs and outputs, operators, parameters, sparsity and size.")

    @Argument(help: "A model file (.onnx, .h5, .keras; the format is sniffed from content).")
    var model: String

    @Option(help: "Force the input format: onnx, keras-h5 or keras.")
    var format: String?

    @Flag(help: "Print the facts as JSON.")
    var json = false

    func run() throws {
        let toolkit = Toolkit.current
        let url = URL(fileURLWithPath: model).standardizedFileURL
        let reader = try toolkit.formats.format(forInput: url, declared: format)
        let loaded = try toolkit.formats.read(url, declared: format)
        try GraphCheck.validate(loaded, path: url.path)
        let statistics = ModelStatistics(loaded)
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        let facts = ModelFacts(model: loaded, statistics: statistics, format: reader.name, fileSize: fileSize, path: url.path)
        if json {
            Console.current.print(JSONWriter.write(facts.json))
        } else {
            Console.current.print(facts.text)
        }
    }
}

/// What `inspect` shows, as text and JSON.
struct ModelFacts {
    var model: Model
    var statistics: ModelStatistics
    var format: String
    var fileSize: Int
    var path: String

    static func describe(_ type: ValueType) -> String {
        switch type {
        case .tensor(let element, let shape):
            return "\(element)" + (shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "[?]")
        case .sparseTensor(let element, let shape):
            return "sparse \(element)" + (shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "")
        case .sequence(let inner): return "sequence<\(describe(inner))>"
        case .map(let key, let value): return "map<\(key), \(describe(value))>"
        case .optional(let inner): return "optional<\(describe(inner))>"
        case .unspecified: return "?"
        }
    }

    var opsets: String {
        model.opsetImports.map { ($0.domain.isEmpty ? "ai.onnx" : $0.domain) + " \($0.version)" }.joined(separator: ", ")
    }

    var text: String {
        var lines = [
            "file:        \(path)",
            "format:      \(format)  (\(ByteCountText.format(fileSize)))",
            "producer:    \(model.producerName) \(model.producerVersion)".trimmingCharacters(in: .whitespaces),
            "ir version:  \(model.irVersion)",
            "opsets:      \(opsets)",
            "inputs:",
        ]
        for input in model.graph.runtimeInputs { lines.append("  \(input.name): \(Self.describe(input.type))") }
        lines.append("outputs:")
        for output in model.graph.outputs { lines.append("  \(output.name): \(Self.describe(output.type))") }
        lines.append("nodes:       \(statistics.nodeCount)")
        lines.append("parameters:  \(statistics.parameterCount) (\(ByteCountText.format(statistics.totalBytes)) of weights)")
        lines.append(String(format: "sparsity:    %.2f%% zeros (%d non-zero)", statistics.sparsity * 100, statistics.nonZeroCount))
        lines.append("operators:")
        for (op, count) in statistics.operatorHistogram.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            lines.append("  " + op + String(repeating: " ", count: max(1, 26 - op.count)) + String(count))
        }
        return lines.joined(separator: "\n")
    }

    var json: JSONValue {
        func values(_ infos: [ValueInfo]) -> JSONValue {
            .array(infos.map { .object([("name", .string($0.name)), ("type", .string(Self.describe($0.type)))]) })
        }
        return .object([
            ("path", .string(path)),
            ("format", .string(format)),
            ("file_bytes", .number(Double(fileSize))),
            ("producer", .string(model.producerName)),
            ("producer_version", .string(model.producerVersion)),
            ("ir_version", .number(Double(model.irVersion))),
            ("opsets", .object(model.opsetImports.map { ($0.domain.isEmpty ? "ai.onnx" : $0.domain, .number(Double($0.version))) })),
            ("inputs", values(model.graph.runtimeInputs)),
            ("outputs", values(model.graph.outputs)),
            ("statistics", statistics.json),
        ])
    }
}
