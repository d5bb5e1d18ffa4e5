import Foundation
import NNPipeCore

/// Stages and a format used to exercise the engine without the real formats or runtime.
struct ScaleStage: Stage {
    static let kind = "scale"
    static let summary = "multiply every float initializer by a factor"
    static let options: [OptionSpec] = [
        OptionSpec("factor", .number, default: .number(2), minimum: 0, maximum: 100, exclusiveMinimum: true, help: "multiplier"),
        OptionSpec("sparsity", .number, minimum: 0, maximum: 1, exclusiveMaximum: true, help: "fraction"),
        OptionSpec("method", .choice(["minmax", "entropy", "percentile"]), default: .string("minmax"), help: "method"),
        OptionSpec("dataset", .datasetReference, help: "data"),
        OptionSpec("steps", .integer, minimum: 1, help: "steps"),
        OptionSpec("exclude", .stringList, help: "names"),
        OptionSpec("verbose", .boolean, default: .bool(false), help: "talk"),
        OptionSpec("activations", .choice(["uint8", "int8"]), allowsNull: true, help: "activation type"),
        OptionSpec("distill", .object([
            OptionSpec("temperature", .number, required: true, minimum: 0, exclusiveMinimum: true, help: "T"),
            OptionSpec("alpha", .number, default: .number(0.5), minimum: 0, maximum: 1, help: "mix"),
        ]), help: "distillation"),
        OptionSpec("size", .either(.integer, .choice(["auto"])), help: "a size or auto"),
    ]
    let factor: Float
    init(options: StageOptions) throws {
        factor = Float(options.double("factor") ?? 2)
        if options.string("method") == "percentile", options.has("steps") {
            throw options.error("steps", "cannot be combined with method 'percentile'")
        }
    }
    func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        for index in model.graph.initializers.indices {
            let tensor = model.graph.initializers[index]
            guard let values: [Float] = tensor.values() else { continue }
            model.graph.initializers[index] = Tensor(name: tensor.name, shape: tensor.shape, values: values.map { $0 * factor })
        }
        Thread.sleep(forTimeInterval: 0.01)
        return StageResult(summary: "scaled by \(factor)")
    }
}

/// Needs a "scale" stage with method entropy earlier in the pipeline (an order rule).
struct NeedsScaleStage: Stage {
    static let kind = "needs-scale"
    static let summary = "requires a scale stage before it"
    static let options: [OptionSpec] = []
    init(options: StageOptions) throws {}
    static func checkPlacement(_ invocation: StageInvocation, in pipeline: [StageInvocation]) -> [NNPipeError] {
        pipeline.contains { $0.kind == "scale" && $0.index < invocation.index } ? [] : [
            NNPipeError(.invalidManifest, "needs a 'scale' stage before it", path: invocation.path)
        ]
    }
    func run(_ model: inout Model, context: StageContext) throws -> StageResult { StageResult(summary: "ok") }
}

struct FailingStage: Stage {
    static let kind = "fail"
    static let summary = "always fails"
    static let options: [OptionSpec] = []
    init(options: StageOptions) throws {}
    func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        model.graph.initializers.removeAll()
        throw NNPipeError(.stageFailed, "deliberate failure")
    }
}

/// Breaks the graph: the runner's check after the stage must catch it.
struct BreakingStage: Stage {
    static let kind = "break"
    static let summary = "removes the producer of the output"
    static let options: [OptionSpec] = []
    init(options: StageOptions) throws {}
    func run(_ model: inout Model, context: StageContext) throws -> StageResult {
        model.graph.nodes.removeAll()
        return StageResult(summary: "broke it")
    }
}

/// A trivial text format: first line "toy-model", then initializer names and float values.
struct ToyFormat: ModelFormat {
    let name = "toy"
    let fileExtensions = ["toy"]
    func recognizes(fileAt url: URL, header: [UInt8]) -> Bool { header.starts(with: Array("toy-model".utf8)) }
    func read(from url: URL) throws -> Model {
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(separator: "\n").map(String.init)
        guard lines.first == "toy-model" else { throw NNPipeError(.invalidModel, "not a toy model") }
        lines.removeFirst()
        var initializers: [Tensor] = []
        for line in lines {
            let parts = line.split(separator: " ")
            guard let name = parts.first else { continue }
            let values = parts.dropFirst().compactMap { Float($0) }
            initializers.append(Tensor(name: String(name), shape: [values.count], values: values))
        }
        return ToyModels.model(initializers: initializers)
    }
    func write(_ model: Model, to url: URL) throws {
        var text = "toy-model\n"
        for tensor in model.graph.initializers {
            text += tensor.name + " " + (tensor.floatValues() ?? []).map { String($0) }.joined(separator: " ") + "\n"
        }
        try AtomicFile.write(Data(text.utf8), to: url)
    }
}

enum ToyModels {
    /// x -> Add(x, w) -> y, with `w` the first initializer.
    static func model(initializers: [Tensor]) -> Model {
        let weight = initializers.first?.name ?? "w"
        let graph = Graph(
            name: "toy",
            nodes: [Node(name: "add", opType: "Add", inputs: ["x", weight], outputs: ["y"])],
            inputs: [ValueInfo(name: "x", type: .tensor(elementType: .float, shape: [.fixed(3)]))],
            outputs: [ValueInfo(name: "y", type: .tensor(elementType: .float, shape: [.fixed(3)]))],
            initializers: initializers)
        return Model(graph: graph)
    }

    static var registry: StageRegistry {
        StageRegistry([
            StageDescriptor(ExportStage.self), StageDescriptor(ScaleStage.self),
            StageDescriptor(NeedsScaleStage.self), StageDescriptor(FailingStage.self),
            StageDescriptor(BreakingStage.self),
        ])
    }
}
