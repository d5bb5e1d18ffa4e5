#!/usr/bin/env python3
"""Reference data and models for StageQuantizeTests.

  numerics <folder> [count]  onnxruntime's own results for QuantizeLinear / DequantizeLinear
                             (opset 21: per-tensor, per-axis, blocked) and compute_scale_zp, on
                             `count` random values per type and layout. Written at test time into
                             a temporary folder; never committed (hundreds of MB).
  models <folder>            small float ONNX models (CNN, MLP) built with onnx.helper.
  check <model.onnx> [inputs.npy]  onnx.checker + onnxruntime run; prints JSON with the outputs.
"""
import json
import os
import sys

import numpy as np

TYPES = {  # name: (onnx TensorProto type, full range, numpy dtype used to exchange values)
    "int8": (3, (-128, 127), np.int8),
    "uint8": (2, (0, 255), np.uint8),
    "int16": (5, (-32768, 32767), np.int16),
    "uint16": (4, (0, 65535), np.uint16),
    "int4": (22, (-8, 7), np.int8),
    "uint4": (21, (0, 15), np.uint8),
}

DEQUANTIZE_CHECKED = 1_000_000


def quantize_model(onnx_type, shape, axis, block_size, scale, zero_point, dequantize_too=False):
    from onnx import TensorProto, helper

    # Integer zero points: make_tensor packs 4-bit values itself.
    zp_tensor = helper.make_tensor("zp", onnx_type, list(zero_point.shape), zero_point.astype(np.int32).ravel().tolist())
    scale_tensor = helper.make_tensor("scale", TensorProto.FLOAT, list(scale.shape), scale.ravel().tolist())
    attributes = {}
    if axis is not None:
        attributes["axis"] = axis
    if block_size:
        attributes["block_size"] = block_size
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zp"], ["q"], **attributes)]
    # 4-bit outputs are widened by Cast so numpy can hold them.
    nodes.append(helper.make_node("Cast", ["q"], ["y"], to=TensorProto.INT32))
    outputs = [helper.make_tensor_value_info("y", TensorProto.INT32, list(shape))]
    if dequantize_too:
        nodes.append(helper.make_node("DequantizeLinear", ["q", "scale", "zp"], ["d"], **attributes))
        outputs.append(helper.make_tensor_value_info("d", TensorProto.FLOAT, list(shape)))
    graph = helper.make_graph(
        nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))], outputs,
        initializer=[scale_tensor, zp_tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    return model


def run(model, feeds):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def numerics(folder, count):
    """`count` values per type, split over the three layouts (40% per-tensor, 30% per-axis, 30% blocked)."""
    from onnxruntime.quantization.quant_utils import compute_scale_zp, get_qmin_qmax_for_qType

    rng = np.random.default_rng(20261130)
    os.makedirs(folder, exist_ok=True)
    rows = max(1, (count * 3 // 10) // 100_000)
    layouts = [  # name, shape, axis, block size
        ("per_tensor", [count - 2 * rows * 100_000], None, 0),
        ("per_axis", [rows, 1000, 100], 1, 0),
        ("blocked", [rows, 1000, 100], 1, 32),  # 1000 = 31 blocks of 32 and a partial block of 8
    ]
    manifest = {"count": count, "cases": [], "parameters": [], "bias": None}
    for type_name, (onnx_type, (qmin, qmax), dtype) in TYPES.items():
        for layout, shape, axis, block_size in layouts:
            if layout == "per_tensor":
                parameter_shape = []
            elif layout == "per_axis":
                parameter_shape = [shape[axis]]
            else:
                parameter_shape = list(shape)
                parameter_shape[axis] = -(-shape[axis] // block_size)
            slots = int(np.prod(parameter_shape)) if parameter_shape else 1
            scale = np.exp(rng.uniform(np.log(1e-4), np.log(10.0), slots)).astype(np.float32)
            # Power-of-two scales make (k + 0.5) * scale exact, so x / scale lands on true ties.
            powers = rng.random(slots) < 0.25
            scale[powers] = np.exp2(np.round(np.log2(scale[powers]))).astype(np.float32)
            zero_point = rng.integers(qmin, qmax + 1, slots).astype(np.float32)
            n = int(np.prod(shape))
            # Values in units of quantisation steps around each element's grid, some far beyond the range.
            steps = rng.standard_normal(n, dtype=np.float32) * np.float32((qmax - qmin) * 0.6)
            steps[: n // 4] = np.floor(steps[: n // 4]) + np.float32(0.5)
            steps = steps.reshape(shape)
            if layout == "per_tensor":
                x = (steps - zero_point[0]) * scale[0]
            elif layout == "per_axis":
                view = [1] * len(shape)
                view[axis] = shape[axis]
                x = (steps - zero_point.reshape(view)) * scale.reshape(view)
            else:
                def expand(grid):
                    return np.repeat(grid.reshape(parameter_shape), block_size, axis=axis)[:, : shape[axis], :]
                x = (steps - expand(zero_point)) * expand(scale)
            x = np.ascontiguousarray(x, dtype=np.float32)
            x.ravel()[:8] = [0.0, -0.0, 1e-30, -1e-30, 3.4e38, -3.4e38, 0.5, -0.5]
            model = quantize_model(onnx_type, shape, axis, block_size, scale.reshape(parameter_shape),
                                   zero_point.astype(np.int64).reshape(parameter_shape), dequantize_too=True)
            q, d = run(model, {"x": x})
            stem = f"{type_name}_{layout}"
            x.tofile(os.path.join(folder, stem + "_x.f32"))
            scale.astype(np.float32).tofile(os.path.join(folder, stem + "_scale.f32"))
            zero_point.astype(np.int32).tofile(os.path.join(folder, stem + "_zp.i32"))
            q.astype(np.int32).tofile(os.path.join(folder, stem + "_q.i32"))
            # DequantizeLinear is checked on a prefix: it is one multiply, and the file would double the disk use.
            d.astype(np.float32).ravel()[:DEQUANTIZE_CHECKED].tofile(os.path.join(folder, stem + "_dq.f32"))
            manifest["cases"].append({
                "type": type_name, "layout": layout, "shape": shape, "axis": axis,
                "block_size": block_size, "stem": stem})

    # compute_scale_zp on ranges with edge cases: tiny, zero-width, positive-only, negative-only, huge.
    pairs = rng.standard_normal((1000, 2)).astype(np.float32) * np.exp(rng.uniform(-40, 40, (1000, 1))).astype(np.float32)
    pairs[:10] = [[0, 0], [1e-39, 2e-39], [-1e-38, 1e-38], [1, 2], [-3, -1], [0, 1e-45], [-1e30, 1e30],
                  [-5.5, 3.25], [-1.17549435e-38 * 100, 0], [1e-3, 1e-3]]
    rmin = np.minimum(pairs[:, 0], pairs[:, 1]).astype(np.float32)
    rmax = np.maximum(pairs[:, 0], pairs[:, 1]).astype(np.float32)
    rmin.tofile(os.path.join(folder, "parameters_rmin.f32"))
    rmax.tofile(os.path.join(folder, "parameters_rmax.f32"))
    for type_name, (onnx_type, _, _) in TYPES.items():
        for symmetric in (False, True):
            for reduce_range in (False, True):
                qmin, qmax = get_qmin_qmax_for_qType(onnx_type, reduce_range=reduce_range, symmetric=symmetric)
                scales, zps = [], []
                for low, high in zip(rmin, rmax):
                    zp, scale = compute_scale_zp(np.array(low, np.float32), np.array(high, np.float32),
                                                 qmin, qmax, symmetric)
                    scales.append(np.float32(scale))
                    zps.append(int(zp))
                stem = f"parameters_{type_name}_{int(symmetric)}_{int(reduce_range)}"
                np.array(scales, np.float32).tofile(os.path.join(folder, stem + "_scale.f32"))
                np.array(zps, np.int32).tofile(os.path.join(folder, stem + "_zp.i32"))
                manifest["parameters"].append({"type": type_name, "symmetric": symmetric,
                                               "reduce_range": reduce_range, "stem": stem,
                                               "qmin": int(qmin), "qmax": int(qmax)})

    # Bias: the two lines of onnxruntime's quantize_bias_static_impl on float32 arrays.
    n = 1_000_000
    bias = (rng.standard_normal(n) * np.exp(rng.uniform(-5, 5, n))).astype(np.float32)
    input_scale = np.exp(rng.uniform(np.log(1e-4), np.log(1.0), n)).astype(np.float32)
    weight_scale = np.exp(rng.uniform(np.log(1e-4), np.log(1.0), n)).astype(np.float32)
    bias_scale = input_scale * weight_scale
    quantized = (np.asarray(bias, dtype=np.float64) / np.asarray(bias_scale, dtype=np.float64)).round()
    quantized = np.clip(quantized, np.float64(-2**31), np.float64(2**31 - 1)).astype(np.int32)
    for name, array in [("bias_b", bias), ("bias_sx", input_scale), ("bias_sw", weight_scale), ("bias_q", quantized)]:
        array.tofile(os.path.join(folder, name + (".i32" if name == "bias_q" else ".f32")))
    manifest["bias"] = {"count": n}
    with open(os.path.join(folder, "manifest.json"), "w") as handle:
        json.dump(manifest, handle)


def models(folder):
    """A small CNN and MLP (opset 13, seeded weights) and calibration / test inputs for them."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    os.makedirs(folder, exist_ok=True)

    def weight(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    def save(graph, name):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="nnpipe-fixtures")
        model.ir_version = 7
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, os.path.join(folder, name))

    cnn = helper.make_graph(
        [
            helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["conv1"], name="conv1", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv1"], ["relu1"], name="relu1"),
            helper.make_node("Conv", ["relu1", "conv2.weight", "conv2.bias"], ["conv2"], name="conv2", strides=[2, 2], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv2"], ["relu2"], name="relu2"),
            helper.make_node("Flatten", ["relu2"], ["flat"], name="flatten"),
            helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1),
        ],
        "cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[
            weight("conv1.weight", (8, 1, 3, 3), 0.5), weight("conv1.bias", (8,), 0.1),
            weight("conv2.weight", (16, 8, 3, 3), 0.2), weight("conv2.bias", (16,), 0.1),
            weight("fc.weight", (10, 256), 0.1), weight("fc.bias", (10,), 0.1),
        ],
    )
    save(cnn, "cnn.onnx")
    mlp = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "dense1.kernel"], ["dense1.matmul"], name="dense1"),
            helper.make_node("Add", ["dense1.matmul", "dense1.bias"], ["dense1.out"], name="dense1.add"),
            helper.make_node("Relu", ["dense1.out"], ["dense1.relu"], name="dense1.relu"),
            helper.make_node("MatMul", ["dense1.relu", "dense2.kernel"], ["dense2.matmul"], name="dense2"),
            helper.make_node("Add", ["dense2.matmul", "dense2.bias"], ["scores"], name="dense2.add"),
        ],
        "mlp",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            weight("dense1.kernel", (16, 64), 0.3), weight("dense1.bias", (64,), 0.1),
            weight("dense2.kernel", (64, 4), 0.2), weight("dense2.bias", (4,), 0.1),
        ],
    )
    save(mlp, "mlp.onnx")
    np.save(os.path.join(folder, "cnn_inputs.npy"), rng.standard_normal((128, 1, 8, 8)).astype(np.float32))
    np.save(os.path.join(folder, "mlp_inputs.npy"), rng.standard_normal((128, 16)).astype(np.float32))


def check(model_path, inputs_path, output_path):
    """onnx.checker on the model, then onnxruntime on the inputs; writes the first output as raw float32."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    inputs = np.load(inputs_path)
    # Default optimisation fuses Q/DQ into integer kernels (QLinearConv, MatMulNBits) with their own
    # rounding; with optimisation off onnxruntime computes the graph as written. Both are written.
    for level, suffix in [(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ""), (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ".unoptimized")]:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        output = session.run(None, {session.get_inputs()[0].name: inputs})[0]
        output.astype(np.float32).tofile(output_path + suffix)
    # The onnx package's reference evaluator: the spec's arithmetic, to tell which runtime follows it.
    # onnx 1.22's evaluator has Q/DQ only from opset 19: evaluate a copy marked opset 21 (the ops
    # these models use mean the same there).
    from onnx.reference import ReferenceEvaluator
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for entry in copy.opset_import:
        if entry.domain in ("", "ai.onnx") and entry.version < 21:
            entry.version = 21
    copy.ir_version = max(copy.ir_version, 10)
    reference = ReferenceEvaluator(copy).run(None, {copy.graph.input[0].name: inputs})[0]
    reference.astype(np.float32).tofile(output_path + ".reference")
    counts = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    print(json.dumps({"shape": list(output.shape), "opset": model.opset_import[0].version,
                      "operators": counts, "bytes": os.path.getsize(model_path)}))


def reference_qdq(model_path, inputs_path, output_path, per_channel):
    """onnxruntime's own quantize_static (QDQ, uint8 activations, int8 weights, minmax) for size comparison."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    inputs = np.load(inputs_path)

    class Reader(CalibrationDataReader):
        def __init__(self):
            import onnx
            name = onnx.load(model_path).graph.input[0].name
            self.batches = iter([{name: inputs[i:i + 32]} for i in range(0, len(inputs), 32)])

        def get_next(self):
            return next(self.batches, None)

    # quantize_static writes "<model>-inferred.onnx" beside the model it is given: work on a copy in
    # the output's folder, so parallel test cases do not race on one file in Tests/Fixtures.
    import shutil
    private_copy = os.path.join(os.path.dirname(os.path.abspath(output_path)), "reference-input.onnx")
    shutil.copyfile(model_path, private_copy)
    quantize_static(private_copy, output_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    print(json.dumps({"bytes": os.path.getsize(output_path)}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "numerics":
        numerics(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 10_000_000)
    elif command == "models":
        models(sys.argv[2])
    elif command == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    elif command == "reference-qdq":
        reference_qdq(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] == "per-channel")
    else:
        raise SystemExit(f"unknown command {command}")
