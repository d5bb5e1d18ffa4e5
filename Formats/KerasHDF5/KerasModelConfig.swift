import NNPipeCore

/// A reference to one output of one call of a layer: Keras's `(layer, node_index, tensor_index)`.
struct KerasTensorReference: Hashable, CustomStringConvertible {
    var layerName: String
    var callIndex: Int
    var tensorIndex: Int
    var description: String { "\(layerName)[\(callIndex)][\(tensorIndex)]" }
}

/// One layer of a model config: its class, name, settings and the inputs of each call.
struct KerasLayerConfig {
    var className: String
    var name: String
    var config: JSONValue
    /// One entry per call of the layer (shared layers have several), each listing its inputs.
    var calls: [[KerasTensorReference]]

    subscript(key: String) -> JSONValue? { config[key] }
}

/// A model config in one shape whatever wrote it: Keras 2 or 3, Sequential or Functional.
struct KerasModelConfig {
    var name: String
    var layers: [KerasLayerConfig]
    var inputs: [KerasTensorReference]
    var outputs: [KerasTensorReference]

    /// Parses `model_config` (legacy .h5) or `config.json` (.keras) text.
    static func parse(_ text: String) throws -> KerasModelConfig {
        let root: JSONValue
        do { root = try JSONParser.parse(text) } catch {
            throw NNPipeError(.invalidModel, "model_config is not valid JSON (\(error))")
        }
        try KerasCodeScreen.refuseCode(in: root)
        guard let className = root["class_name"]?.stringValue, let config = root["config"] else {
            throw NNPipeError(.invalidModel, "model_config has no class_name/config")
        }
        switch className {
        case "Sequential": return try sequential(config)
        case "Functional", "Model": return try functional(config)
        default:
            throw NNPipeError(
                .unsupported, "model class '\(className)' is not supported (only Sequential and Functional models)")
        }
    }

    private static func layerList(_ config: JSONValue) throws -> [JSONValue] {
        guard let layers = config["layers"]?.arrayValue else {
            throw NNPipeError(.invalidModel, "model_config has no layer list")
        }
        return layers
    }

    private static func nameAndClass(_ layer: JSONValue, position: Int) throws -> (String, String) {
        guard let className = layer["class_name"]?.stringValue else {
            throw NNPipeError(.invalidModel, "layer \(position) in model_config has no class_name")
        }
        guard let name = layer["config"]?["name"]?.stringValue ?? layer["name"]?.stringValue else {
            throw NNPipeError(.invalidModel, "layer \(position) (\(className)) in model_config has no name")
        }
        return (name, className)
    }

    private static func sequential(_ config: JSONValue) throws -> KerasModelConfig {
        let entries = try layerList(config)
        var layers: [KerasLayerConfig] = []
        var previous: KerasTensorReference?
        for (position, entry) in entries.enumerated() {
            let (name, className) = try nameAndClass(entry, position: position)
            let settings = entry["config"] ?? JSONValue(.object([]))
            if className == "InputLayer" {
                layers.append(KerasLayerConfig(className: className, name: name, config: settings, calls: []))
                previous = KerasTensorReference(layerName: name, callIndex: 0, tensorIndex: 0)
                continue
            }
            if previous == nil {
                // Keras 2 Sequential without an InputLayer: the first layer carries the input shape.
                let shape = settings["batch_input_shape"] ?? config["build_input_shape"]
                guard let shape else {
                    throw NNPipeError(.invalidModel, "Sequential model has no input shape (it was never built)")
                }
                let inputName = "input"
                layers.append(KerasLayerConfig(
                    className: "InputLayer", name: inputName,
                    config: .object([("batch_input_shape", shape), ("name", .string(inputName))]), calls: []))
                previous = KerasTensorReference(layerName: inputName, callIndex: 0, tensorIndex: 0)
            }
            layers.append(KerasLayerConfig(className: className, name: name, config: settings, calls: [[previous!]]))
            previous = KerasTensorReference(layerName: name, callIndex: 0, tensorIndex: 0)
        }
        guard let first = layers.first, let last = previous else {
            throw NNPipeError(.invalidModel, "Sequential model has no layers")
        }
        return KerasModelConfig(
            name: config["name"]?.stringValue ?? "sequential", layers: layers,
            inputs: [KerasTensorReference(layerName: first.name, callIndex: 0, tensorIndex: 0)], outputs: [last])
    }

    private static func functional(_ config: JSONValue) throws -> KerasModelConfig {
        var layers: [KerasLayerConfig] = []
        for (position, entry) in try layerList(config).enumerated() {
            let (name, className) = try nameAndClass(entry, position: position)
            let calls = try (entry["inbound_nodes"]?.arrayValue ?? []).map { try references(inCall: $0, layer: name) }
            layers.append(KerasLayerConfig(
                className: className, name: name, config: entry["config"] ?? JSONValue(.object([])), calls: calls))
        }
        return KerasModelConfig(
            name: config["name"]?.stringValue ?? "model", layers: layers,
            inputs: try endpoints(config["input_layers"], what: "input_layers"),
            outputs: try endpoints(config["output_layers"], what: "output_layers"))
    }

    /// `[["a", 0, 0], ...]`, or a single `["a", 0, 0]` (Keras 3 writes that for one input).
    private static func endpoints(_ value: JSONValue?, what: String) throws -> [KerasTensorReference] {
        guard let list = value?.arrayValue else { throw NNPipeError(.invalidModel, "model_config has no \(what)") }
        if let single = try? triple(value!) { return [single] }
        return try list.map(triple)
    }

    private static func triple(_ value: JSONValue) throws -> KerasTensorReference {
        guard let items = value.arrayValue, items.count >= 3, let name = items[0].stringValue,
              let call = items[1].integerValue, let index = items[2].integerValue
        else { throw NNPipeError(.invalidModel, "malformed tensor reference \(value) in model_config") }
        return KerasTensorReference(layerName: name, callIndex: call, tensorIndex: index)
    }

    /// The inputs of one call: Keras 2 `[["a",0,0,{}], ...]` or Keras 3 `{"args": [...], "kwargs": {}}`.
    private static func references(inCall call: JSONValue, layer: String) throws -> [KerasTensorReference] {
        if let args = call["args"] {
            var found: [KerasTensorReference] = []
            collectKerasTensors(args, into: &found)
            return found
        }
        guard let items = call.arrayValue else {
            throw NNPipeError(.invalidModel, "layer '\(layer)' has a malformed inbound node")
        }
        return try items.map(triple)
    }

    private static func collectKerasTensors(_ value: JSONValue, into found: inout [KerasTensorReference]) {
        if let items = value.arrayValue {
            for item in items { collectKerasTensors(item, into: &found) }
        } else if value["class_name"]?.stringValue == "__keras_tensor__",
                  let history = value["config"]?["keras_history"], let reference = try? triple(history) {
            found.append(reference)
        }
    }
}

/// Refuses configs that carry Python code (Lambda layers, marshalled or lambda functions):
/// nnpipe never evaluates them (the Keras CVE-2024-3660 class of attacks).
enum KerasCodeScreen {
    static let codeClasses: Set<String> = ["Lambda", "__lambda__", "TFOpLambda", "SlicingOpLambda"]

    static func refuseCode(in value: JSONValue, layer: String? = nil) throws {
        if let members = value.objectValue {
            let here = value["config"]?["name"]?.stringValue ?? layer
            if let className = value["class_name"]?.stringValue, codeClasses.contains(className) {
                throw NNPipeError(
                    .unsupported,
                    "layer '\(here ?? "?")' is a \(className): it carries Python code, which nnpipe refuses to run")
            }
            if value["function_type"]?.stringValue == "lambda" {
                throw NNPipeError(
                    .unsupported, "layer '\(here ?? "?")' carries a Python lambda, which nnpipe refuses to run")
            }
            for member in members {
                if member.key == "function" || member.key == "code",
                   member.value.stringValue != nil || member.value.arrayValue?.first?.stringValue != nil {
                    throw NNPipeError(
                        .unsupported, "layer '\(here ?? "?")' carries Python code ('\(member.key)'), which nnpipe refuses to run")
                }
                try refuseCode(in: member.value, layer: here)
            }
        } else if let items = value.arrayValue {
            for item in items { try refuseCode(in: item, layer: layer) }
        }
    }
}
