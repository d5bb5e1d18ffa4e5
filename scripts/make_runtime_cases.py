#!/usr/bin/env python3
"""Reference cases for the NNPipeRuntime tests.

  make_runtime_cases.py fixtures               writes Tests/Fixtures/runtime/*.json (committed):
                                               small models built with onnx.helper, outputs from onnxruntime
  make_runtime_cases.py node-tests OUT OPS...  converts onnx's bundled node tests for those ops to
                                               OUT/<case>.json plus OUT/index.json (run by the tests)
"""
import glob
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_json import model_json, proto_tensor_json, tensor_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def node_test_root():
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")


def op_under_test(name, model, cases):
    """The op a node test checks: its single node's op, or for an expanded case its sibling's."""
    base = name.split("_expanded")[0]
    if base != name and base in cases:
        return cases[base]
    ops = [node.op_type for node in model.graph.node]
    return ops[0] if len(ops) == 1 else None


def node_tests(out, wanted):
    os.makedirs(out, exist_ok=True)
    root = node_test_root()
    names = sorted(os.listdir(root))
    ops = {}
    models = {}
    for name in names:
        models[name] = onnx.load(os.path.join(root, name, "model.onnx"), load_external_data=False)
    for name in names:
        if "_expanded" not in name:
            ops[name] = op_under_test(name, models[name], ops)
    index = []
    for name in names:
        op = ops.get(name) or op_under_test(name, models[name], ops)
        if op not in wanted:
            continue
        model = models[name]
        entry = {"case": name, "op": op}
        folder = os.path.join(root, name, "test_data_set_0")
        inputs, outputs = [], []
        try:
            for kind, target in (("input", inputs), ("output", outputs)):
                for path in sorted(glob.glob(os.path.join(folder, kind + "_*.pb")),
                                   key=lambda p: int(p.rsplit("_", 1)[1].split(".")[0])):
                    proto = TensorProto()
                    with open(path, "rb") as handle:
                        proto.ParseFromString(handle.read())
                    target.append(proto_tensor_json(proto))
        except Exception as error:  # sequences/optionals are not TensorProto files
            entry["skip"] = "test data is not plain tensors: %s" % error
        kinds = [v.type.WhichOneof("value") for v in list(model.graph.input) + list(model.graph.output)]
        if any(kind != "tensor_type" for kind in kinds):
            entry["skip"] = "graph inputs/outputs are not plain tensors"
        if "skip" not in entry:
            graph_inputs = [v.name for v in model.graph.input]
            graph_outputs = [v.name for v in model.graph.output]
            for tensor, value_name in zip(inputs, graph_inputs):
                tensor["name"] = value_name
            for tensor, value_name in zip(outputs, graph_outputs):
                tensor["name"] = value_name
            with open(os.path.join(out, name + ".json"), "w") as handle:
                json.dump({"model": model_json(model), "inputs": inputs, "outputs": outputs}, handle)
        index.append(entry)
    with open(os.path.join(out, "index.json"), "w") as handle:
        json.dump(index, handle, indent=0)


def run_onnxruntime(model, feeds):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def write_case(name, model, feeds, description):
    onnx.checker.check_model(model, full_check=True)
    expected = run_onnxruntime(model, feeds)
    case = {"description": description, "model": model_json(model),
            "inputs": [tensor_json(value, key) for key, value in feeds.items()],
            "outputs": [tensor_json(value, key) for key, value in expected.items()]}
    folder = os.path.join(ROOT, "Tests", "Fixtures", "runtime")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name + ".json"), "w") as handle:
        json.dump(case, handle)


def initializer(rng, name, shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def small_cnn(rng):
    """Conv-BN-Relu, depthwise conv, max pool, residual add, global pool, Flatten, Gemm, Softmax."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g1", "be1", "m1", "v1"], ["n1"], epsilon=1e-3),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s2"]),
        helper.make_node("MaxPool", ["s2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p2", "w3", "b3"], ["c3"], strides=[2, 2], auto_pad="SAME_UPPER", dilations=[1, 1]),
        helper.make_node("LeakyRelu", ["c3"], ["r3"], alpha=0.1),
        helper.make_node("AveragePool", ["r3"], ["p3"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0),
        helper.make_node("GlobalAveragePool", ["p3"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    initializers = [
        initializer(rng, "w1", [8, 3, 3, 3]), initializer(rng, "b1", [8]),
        initializer(rng, "g1", [8]), initializer(rng, "be1", [8]), initializer(rng, "m1", [8]),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, [8]).astype(np.float32), "v1"),
        initializer(rng, "w2", [8, 1, 3, 3]),
        initializer(rng, "w3", [16, 8, 3, 3]), initializer(rng, "b3", [16]),
        initializer(rng, "w4", [10, 16]), initializer(rng, "b4", [10]),
    ]
    graph = helper.make_graph(
        nodes, "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    feeds = {"x": rng.standard_normal([2, 3, 16, 16]).astype(np.float32)}
    write_case("small_cnn", model, feeds, "a small CNN checked against onnxruntime")


def single_node(rng, name, op, inputs, attributes=None, opset=17, domain="", constants=None, description=""):
    """One node over the given numpy inputs (graph inputs) and constants (initializers)."""
    constants = constants or {}
    input_infos = [helper.make_tensor_value_info(key, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape))
                   for key, value in inputs.items()]
    node = helper.make_node(op, list(inputs) + list(constants), ["y"], domain=domain, **(attributes or {}))
    graph = helper.make_graph([node], name, input_infos, [helper.make_empty_tensor_value_info("y")],
                              [numpy_helper.from_array(value, key) for key, value in constants.items()])
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    expected = run_onnxruntime(model, inputs)
    case = {"description": description or name, "model": model_json(model),
            "inputs": [tensor_json(value, key) for key, value in inputs.items()],
            "outputs": [tensor_json(value, key) for key, value in expected.items()]}
    folder = os.path.join(ROOT, "Tests", "Fixtures", "runtime")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name + ".json"), "w") as handle:
        json.dump(case, handle)


def operator_cases(rng):
    """Cases the node tests do not cover well, each checked against onnxruntime."""
    image = rng.standard_normal([1, 4, 9, 9]).astype(np.float32)
    weights = (rng.standard_normal([6, 2, 3, 3]) * 0.3).astype(np.float32)
    single_node(rng, "conv_group_dilated_strided", "Conv", {"x": image},
                {"group": 2, "dilations": [2, 2], "strides": [2, 1], "pads": [2, 1, 0, 2]},
                constants={"w": weights, "b": rng.standard_normal([6]).astype(np.float32)})
    single_node(rng, "conv_depthwise_same_lower", "Conv", {"x": image},
                {"group": 4, "auto_pad": "SAME_LOWER", "strides": [2, 2]},
                constants={"w": (rng.standard_normal([4, 1, 4, 4]) * 0.3).astype(np.float32)})
    single_node(rng, "conv_transpose_strided_output_padding", "ConvTranspose", {"x": image},
                {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1], "group": 2},
                constants={"w": (rng.standard_normal([4, 3, 3, 3]) * 0.3).astype(np.float32)})
    single_node(rng, "matmul_broadcast_batched", "MatMul",
                {"a": rng.standard_normal([2, 1, 3, 5]).astype(np.float32)},
                constants={"b": rng.standard_normal([3, 5, 4]).astype(np.float32)})
    single_node(rng, "resize_linear_half_pixel", "Resize", {"x": image},
                {"mode": "linear"}, opset=13,
                constants={"roi": np.array([], np.float32), "scales": np.array([1, 1, 1.7, 0.6], np.float32)})
    single_node(rng, "resize_nearest_sizes_asymmetric", "Resize", {"x": image},
                {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, opset=13,
                constants={"roi": np.array([], np.float32), "scales": np.array([], np.float32),
                           "sizes": np.array([1, 4, 20, 5], np.int64)})
    single_node(rng, "maxpool_ceil_dilated", "MaxPool", {"x": image},
                {"kernel_shape": [3, 3], "strides": [2, 2], "dilations": [2, 1], "ceil_mode": 1, "pads": [1, 0, 1, 1]},
                opset=12)
    single_node(rng, "averagepool_ceil_include_pad", "AveragePool", {"x": image},
                {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1, "pads": [1, 1, 1, 0], "count_include_pad": 1},
                opset=19)
    single_node(rng, "softmax_opset11_flatten", "Softmax", {"x": rng.standard_normal([2, 3, 4]).astype(np.float32)},
                {"axis": 1}, opset=11)
    single_node(rng, "logsoftmax_opset13_axis", "LogSoftmax", {"x": rng.standard_normal([2, 3, 4]).astype(np.float32)},
                {"axis": 1}, opset=13)
    values = (rng.standard_normal([2, 3, 5]) * 4).astype(np.float32)
    values.flat[:6] = [0.5, 1.5, 2.5, -0.5, -1.5, -0.0]
    single_node(rng, "quantize_linear_per_channel_int8", "QuantizeLinear", {"x": values}, {"axis": 1}, opset=13,
                constants={"scale": np.array([0.5, 0.1, 0.03], np.float32), "zero_point": np.array([0, 3, -7], np.int8)})
    single_node(rng, "quantize_linear_uint8_ties", "QuantizeLinear", {"x": values}, opset=13,
                constants={"scale": np.array(0.5, np.float32), "zero_point": np.array(128, np.uint8)})
    quantized = rng.integers(0, 255, [1, 3, 7, 7]).astype(np.uint8)
    single_node(rng, "qlinear_conv_per_channel", "QLinearConv", {"x": quantized}, {"pads": [1, 1, 1, 1]}, opset=13,
                constants={"x_scale": np.array(0.02, np.float32), "x_zero_point": np.array(120, np.uint8),
                           "w": rng.integers(-100, 100, [4, 3, 3, 3]).astype(np.int8),
                           "w_scale": np.array([0.01, 0.02, 0.015, 0.005], np.float32),
                           "w_zero_point": np.zeros([4], np.int8),
                           "y_scale": np.array(0.1, np.float32), "y_zero_point": np.array(100, np.uint8),
                           "bias": rng.integers(-500, 500, [4]).astype(np.int32)})
    single_node(rng, "qlinear_matmul_int8", "QLinearMatMul", {"a": rng.integers(-128, 127, [3, 6]).astype(np.int8)},
                opset=13,
                constants={"a_scale": np.array(0.05, np.float32), "a_zero_point": np.array(-3, np.int8),
                           "b": rng.integers(-128, 127, [6, 4]).astype(np.int8),
                           "b_scale": np.array(0.02, np.float32), "b_zero_point": np.array(2, np.int8),
                           "y_scale": np.array(0.2, np.float32), "y_zero_point": np.array(-5, np.int8)})
    single_node(rng, "pad_reflect_opset18_axes", "Pad", {"x": image}, {"mode": "reflect"}, opset=18,
                constants={"pads": np.array([2, 1, 1, 3], np.int64), "value": np.array(0, np.float32),
                           "axes": np.array([2, 3], np.int64)})
    single_node(rng, "layer_normalization_axis_minus2", "LayerNormalization", {"x": image}, {"axis": -2, "epsilon": 1e-3},
                constants={"scale": rng.standard_normal([9, 9]).astype(np.float32),
                           "bias": rng.standard_normal([9, 9]).astype(np.float32)})


def fixtures():
    rng = np.random.default_rng(7)
    small_cnn(rng)
    operator_cases(rng)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "fixtures":
        fixtures()
    elif len(sys.argv) >= 3 and sys.argv[1] == "node-tests":
        node_tests(sys.argv[2], set(sys.argv[3:]))
    else:
        print(__doc__)
        sys.exit(2)
