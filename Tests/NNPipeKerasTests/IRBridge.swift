import Foundation
import NNPipeCore

/// A test-only JSON dump of an IR model, so Python can rebuild it with `onnx.helper` and run it in
/// onnxruntime before nnpipe's own ONNX writer is merged (an independent check of the Keras reader:
/// a mistake the writer mirrors would cancel out in the Keras round trip, not here).
enum IRBridge {
    static func json(_ model: Model) -> String {
        func quote(_ text: String) -> String { JSONWriter.quote(text) }
        func dimensions(_ type: ValueType) -> String {
            let dims = (type.tensorShape ?? []).map { dimension -> String in
                switch dimension {
                case .fixed(let value): String(value)
                case .symbolic(let name): quote(name)
                case .unknown: "null"
                }
            }
            return "[" + dims.joined(separator: ",") + "]"
        }
        func value(_ info: ValueInfo) -> String {
            "{\"name\":\(quote(info.name)),\"type\":\(info.type.tensorElementType?.rawValue ?? 1),\"shape\":\(dimensions(info.type))}"
        }
        func attribute(_ attribute: Attribute) -> String? {
            let encoded: String
            switch attribute.value {
            case .int(let number): encoded = String(number)
            case .float(let number): encoded = "{\"float\":\(number)}"
            case .string: encoded = quote(attribute.stringValue ?? "")
            case .ints(let numbers): encoded = "[" + numbers.map(String.init).joined(separator: ",") + "]"
            case .floats(let numbers): encoded = "{\"floats\":[" + numbers.map { "\($0)" }.joined(separator: ",") + "]}"
            default: return nil
            }
            return "\(quote(attribute.name)):\(encoded)"
        }
        let nodes = model.graph.nodes.map { node in
            "{\"name\":\(quote(node.name)),\"op\":\(quote(node.opType)),\"inputs\":[\(node.inputs.map(quote).joined(separator: ","))],"
                + "\"outputs\":[\(node.outputs.map(quote).joined(separator: ","))],"
                + "\"attributes\":{\(node.attributes.compactMap(attribute).joined(separator: ","))}}"
        }
        let initializers = model.graph.initializers.map { tensor in
            let bytes = tensor.withUnsafeBytes { Data($0) }.base64EncodedString()
            return "{\"name\":\(quote(tensor.name)),\"type\":\(tensor.dataType.rawValue),\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"raw\":\(quote(bytes))}"
        }
        return "{\"inputs\":[\(model.graph.inputs.map(value).joined(separator: ","))],"
            + "\"outputs\":[\(model.graph.outputs.map(value).joined(separator: ","))],"
            + "\"nodes\":[\(nodes.joined(separator: ","))],\"initializers\":[\(initializers.joined(separator: ","))],"
            + "\"opset\":\(model.opsetVersion() ?? 17),\"ir_version\":\(model.irVersion)}"
    }

    /// Builds the ONNX model from the dump, checks it with onnx.checker, runs onnxruntime on the io batch.
    static let runScript = """
        import sys, json, base64
        import numpy as np, h5py, onnx, onnxruntime
        from onnx import helper, numpy_helper
        dump = json.load(open(sys.argv[1]))
        def attr(value):
            if isinstance(value, dict):
                return value.get("float", value.get("floats"))
            return value
        nodes = [helper.make_node(n["op"], n["inputs"], n["outputs"], name=n["name"],
                                  **{k: attr(v) for k, v in n["attributes"].items()}) for n in dump["nodes"]]
        inits = []
        for t in dump["initializers"]:
            dtype = helper.tensor_dtype_to_np_dtype(t["type"])
            array = np.frombuffer(base64.b64decode(t["raw"]), dtype=dtype).reshape(t["shape"])
            inits.append(numpy_helper.from_array(array, t["name"]))
        def info(v):
            return helper.make_tensor_value_info(v["name"], v["type"], v["shape"])
        graph = helper.make_graph(nodes, "g", [info(v) for v in dump["inputs"]], [info(v) for v in dump["outputs"]], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", dump["opset"])], ir_version=dump["ir_version"])
        onnx.checker.check_model(model, full_check=True)
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        with h5py.File(sys.argv[2], "r") as io:
            feeds = {v["name"]: io["inputs"][v["name"]][()] for v in dump["inputs"]}
            expected = [io["outputs"][str(i)][()] for i in range(len(io["outputs"]))]
        got = session.run(None, feeds)
        for g, e in zip(got, expected):
            assert g.shape == e.shape, f"shape {g.shape} vs {e.shape}"
        print(json.dumps({"max_abs_diff": max(float(np.max(np.abs(g.astype(np.float64) - e))) for g, e in zip(got, expected))}))
        """
}
