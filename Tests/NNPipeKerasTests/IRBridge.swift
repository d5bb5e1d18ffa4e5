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

    /// Python: `onnx_run(dump_path, feeds)` rebuilds the ONNX model from the dump, checks it with
    /// onnx.checker (full) and returns onnxruntime's outputs.
    static let pythonLibrary = """
        import json, base64
        import numpy as np, onnx, onnxruntime
        from onnx import helper, numpy_helper

        def onnx_run(dump_path, feeds):
            dump = json.load(open(dump_path))
            def attr(value):
                return value.get("float", value.get("floats")) if isinstance(value, dict) else value
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
            return session.run(None, {v["name"]: feeds[v["name"]] for v in dump["inputs"]})
        """

    /// Runs the dump (argv[1]) on a fixture's io batch (argv[2]) and prints the max abs difference.
    static let runScript = pythonLibrary + """

        import sys, h5py
        with h5py.File(sys.argv[2], "r") as io:
            feeds = {name: io["inputs"][name][()] for name in io["inputs"]}
            expected = [io["outputs"][str(i)][()] for i in range(len(io["outputs"]))]
        got = onnx_run(sys.argv[1], feeds)
        for g, e in zip(got, expected):
            assert g.shape == e.shape, f"shape {g.shape} vs {e.shape}"
        print(json.dumps({"max_abs_diff": max(float(np.max(np.abs(g.astype(np.float64) - e))) for g, e in zip(got, expected))}))
        """
}
