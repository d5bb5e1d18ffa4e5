import Foundation
import NNPipeCore

/// The conformance checks every stage must pass, built-in or a user's own (house rule 3).
///
/// Use from any test framework: `#expect(StageConformance.problems(...).isEmpty)`.
/// It checks that the option schema round-trips through the manifest, that bad options are
/// rejected at their JSON path, that a run leaves a model that passes the graph checks, that two
/// runs with the same options give the same weights, and that the stage reports what it did.
public enum StageConformance {
    /// - Parameters:
    ///   - descriptor: the stage under test.
    ///   - options: manifest members for a successful run (without "stage"), e.g. `"sparsity": 0.5`.
    ///   - model: a model the stage can run on.
    ///   - datasets: manifest `datasets` members if the stage needs data.
    public static func problems(
        _ descriptor: StageDescriptor, options: String = "", model: Model, datasets: String = "{}",
        folder: URL? = nil, formats: FormatRegistry = FormatRegistry()
    ) -> [String] {
        var problems: [String] = []
        var registry = StageRegistry()
        registry.register(descriptor)
        let manifestFolder = folder ?? FileManager.default.temporaryDirectory
        func decode(_ stage: String) throws -> Manifest {
            let text = "{\"version\": 1, \"model\": \"model.onnx\", \"datasets\": \(datasets), \"stages\": [\(stage)]}"
            var decoder = ManifestDecoder(registry: registry)
            return try decoder.decode(Array(text.utf8), file: manifestFolder.appendingPathComponent("pipeline.json"))
        }
        let kindMember = "\"stage\": \(JSONWriter.quote(descriptor.kind))"

        // 1. The schema round-trips: declared defaults come back as the option values.
        let valid: Manifest
        do {
            valid = try decode("{\(kindMember)\(options.isEmpty ? "" : ", " + options)}")
        } catch {
            return ["the manifest with the given options is rejected: \(error)"]
        }
        let decoded = valid.stages[0].options
        for option in descriptor.options {
            if let defaultValue = option.defaultValue, !options.contains("\"\(option.name)\""), decoded.values[option.name] != defaultValue {
                problems.append("option '\(option.name)': default \(defaultValue) did not come back from the manifest")
            }
            if option.help.isEmpty { problems.append("option '\(option.name)' has no help text") }
        }
        if descriptor.summary.isEmpty { problems.append("the stage has no summary") }

        // 2. Bad options are rejected at their JSON path.
        let unknown = "{\(kindMember), \"no_such_option_\": 1}"
        if let message = rejection(of: unknown, decode: decode) {
            if !message.contains("stages[0].no_such_option_") { problems.append("an unknown option is rejected without its path: \(message)") }
        } else {
            problems.append("an unknown option is accepted")
        }
        for option in descriptor.options {
            guard let wrong = wrongValue(for: option.kind) else { continue }
            let text = "{\(kindMember), \(JSONWriter.quote(option.name)): \(wrong)}"
            if let message = rejection(of: text, decode: decode) {
                if !message.contains("stages[0].\(option.name)") {
                    problems.append("option '\(option.name)': a wrong value is rejected without its path: \(message)")
                }
            } else {
                problems.append("option '\(option.name)' accepts the wrong value \(wrong)")
            }
        }

        // 3-5. A run leaves a valid model, is deterministic, and reports what it did.
        let context = StageContext(
            manifestDirectory: manifestFolder, outputDirectory: manifestFolder.appendingPathComponent("conformance-out"),
            datasets: valid.datasets, formats: formats, logger: .init(label: "conformance"), progress: .silent,
            stagePath: "stages[0]", originalModel: model)
        var results: [Model] = []
        for attempt in 0..<2 {
            do {
                let stage = try descriptor.make(decoded)
                var working = model
                let result = try stage.run(&working, context: context)
                let graphProblems = GraphCheck.problems(in: working.graph)
                if !graphProblems.isEmpty { problems.append("the model after the stage fails the graph checks: \(graphProblems[0])") }
                if attempt == 0 && result.summary.isEmpty { problems.append("the stage reports no summary of what it did") }
                results.append(working)
            } catch {
                problems.append("the stage failed on the sample model: \(error)")
                return problems
            }
        }
        if results.count == 2 && !sameWeights(results[0], results[1]) {
            problems.append("two runs with the same options gave different weights (not deterministic)")
        }
        return problems
    }

    private static func rejection(of stage: String, decode: (String) throws -> Manifest) -> String? {
        do {
            _ = try decode(stage)
            return nil
        } catch let problems as ManifestProblems {
            return problems.problems.first?.description ?? "rejected"
        } catch {
            return "\(error)"
        }
    }

    /// A JSON value of the wrong type for the kind, or nil when every value is acceptable.
    static func wrongValue(for kind: OptionSpec.ValueKind) -> String? {
        switch kind {
        case .string, .choice, .datasetReference, .stringList: "12345"
        case .integer, .number, .numberList: "\"not a number\""
        case .boolean: "\"yes\""
        case .object: "[]"
        case .either(let first, let second):
            [first, second].allSatisfy { if case .string = $0 { return false } else { return true } } ? "{}" : nil
        }
    }

    private static func sameWeights(_ first: Model, _ second: Model) -> Bool {
        guard first.graph.initializers.count == second.graph.initializers.count else { return false }
        for (a, b) in zip(first.graph.initializers, second.graph.initializers) {
            guard a.name == b.name, a.shape == b.shape, a.dataType == b.dataType else { return false }
            let equal = a.withUnsafeBytes { left in b.withUnsafeBytes { right in left.elementsEqual(right) } }
            if !equal { return false }
        }
        return true
    }
}
