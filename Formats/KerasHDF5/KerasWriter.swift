import Foundation
import NNPipeCore
import NNPipeHDF5

/// Writes an IR model as a Keras legacy `.h5` that Keras 3 loads (`keras.models.load_model`):
/// a Functional `model_config`, `model_weights/<layer>/<layer>/<weight>` datasets with
/// `layer_names` / `weight_names` attributes, and `keras_version` / `backend` attributes.
enum KerasWriter {
    /// The Keras version whose file layout this writer reproduces.
    static let kerasVersion = "3.0.0"
    /// Keras only looks at `backend` to convert Theano-era kernels; "tensorflow" means "no conversion" to every reader.
    static let backend = "tensorflow"

    static func write(_ model: Model, to url: URL) throws {
        try GraphCheck.validate(model, path: url.path)
        var exporter = KerasExporter(graph: model.graph)
        do { try exporter.run() } catch let error as NNPipeError { throw error.located(at: url.path) }
        let layers = assignNames(exporter)
        let config = modelConfig(name: sanitized(model.graph.name.isEmpty ? "model" : model.graph.name), layers: layers,
                                 inputs: model.graph.runtimeInputs.map { exporter.values[$0.name]!.layer },
                                 outputs: model.graph.outputs.map { exporter.values[$0.name]!.layer })
        try AtomicFile.write(to: url) { temporary in
            let file = try HDF5File(creating: temporary, errorCode: .io)
            let root = try file.rootGroup()
            try root.attributes.set("keras_version", string: kerasVersion)
            try root.attributes.set("backend", string: backend)
            try root.attributes.set("model_config", string: JSONWriter.write(config, pretty: false))
            let weights = try root.createGroup("model_weights")
            try weights.attributes.set("layer_names", splitStrings: layers.map(\.name))
            try weights.attributes.set("backend", string: backend)
            try weights.attributes.set("keras_version", string: kerasVersion)
            for layer in layers {
                let group = try weights.createGroup(layer.name)
                try group.attributes.set("weight_names", splitStrings: layer.weights.map { "\(layer.name)/\($0.role)" })
                for weight in layer.weights {
                    try group.createDataset("\(layer.name)/\(weight.role)", tensor: weight.tensor)
                }
            }
            try file.flush()
        }
    }

    /// Keras layer names: graph outputs keep their names, others their IR value's, made valid and unique.
    static func assignNames(_ exporter: KerasExporter) -> [ExportLayer] {
        var layers = exporter.layers
        var used: Set<String> = []
        func claim(_ base: String) -> String {
            var candidate = base
            var counter = 1
            while used.contains(candidate) {
                candidate = "\(base)_\(counter)"
                counter += 1
            }
            used.insert(candidate)
            return candidate
        }
        for output in exporter.graph.outputs {
            let index = exporter.values[output.name]!.layer
            if layers[index].name.isEmpty, layers[index].className != "InputLayer" { layers[index].name = claim(sanitized(output.name)) }
        }
        for index in layers.indices where layers[index].name.isEmpty {
            layers[index].name = claim(sanitized(layers[index].baseName))
        }
        return layers
    }

    /// Keras names cannot contain "/" and are used as HDF5 group names: keep [A-Za-z0-9_.-].
    static func sanitized(_ name: String) -> String {
        var text = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") ? $0 : "_" })
        while text.hasPrefix("_") || text.hasPrefix(".") { text.removeFirst() }
        return text.isEmpty ? "layer" : text
    }

    static func modelConfig(name: String, layers: [ExportLayer], inputs: [Int], outputs: [Int]) -> JSONValue {
        func reference(_ index: Int) -> JSONValue { .array([.string(layers[index].name), .number(0), .number(0)]) }
        func endpoints(_ indices: [Int]) -> JSONValue { indices.count == 1 ? reference(indices[0]) : .array(indices.map(reference)) }
        let entries: [JSONValue] = layers.map { layer in
            var settings: [(String, JSONValue)] = [("name", .string(layer.name)), ("trainable", .bool(true))]
            if layer.className != "InputLayer" { settings.append(("dtype", .string("float32"))) }
            settings += layer.config
            // Keras 2's inbound-node form, which Keras 3 still reads: one call, inputs as [layer, 0, 0, {}].
            let call: JSONValue = .array(layer.inputs.map { .array([.string(layers[$0].name), .number(0), .number(0), .object([])]) })
            return .object([
                ("module", .string("keras.layers")), ("class_name", .string(layer.className)), ("config", .object(settings)),
                ("registered_name", .null), ("name", .string(layer.name)),
                ("inbound_nodes", layer.className == "InputLayer" ? .array([]) : .array([call])),
            ])
        }
        return .object([
            ("class_name", .string("Functional")),
            ("config", .object([
                ("name", .string(name)), ("trainable", .bool(true)), ("layers", .array(entries)),
                ("input_layers", endpoints(inputs)), ("output_layers", endpoints(outputs)),
            ])),
        ])
    }
}
