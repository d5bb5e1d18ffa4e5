#!/usr/bin/env python3
"""Hostile inputs: models, Keras files, data sets and manifests whose own numbers ask for the
impossible (negative or astronomically large shapes, NaN scales, zero strides, pipes, control
characters), written into a scratch folder and fed to the built `nnpipe`. Every run must end
with exit status 0, 1 or 2 and at most one line on standard error; a signal, a timeout or a
multi-line error is reported and makes this script exit 1.

Usage: .venv/bin/python scripts/hostile-inputs.py [NNPIPE] (default .build/debug/nnpipe)
Needs the test venv (onnx, numpy, h5py: scripts/setup-python.sh). Not part of CI; the cases it
found are kept as Swift tests (HostileModelTests, KerasBadInputTests, CommandTests).
"""
import copy, json, os, shutil, subprocess, sys, tempfile
import numpy as np, onnx, h5py
from onnx import helper as h, numpy_helper as nh, TensorProto as T

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
nnpipe = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, ".build/debug/nnpipe"))
scratch = tempfile.mkdtemp(prefix="nnpipe-hostile-")
runs = []  # (label, argv)

def vi(name, shape, element=T.FLOAT): return h.make_tensor_value_info(name, element, shape)
def const(name, values): return nh.from_array(np.array(values), name)
Y = vi("y", None)

def onnx_model(name, nodes, inputs, outputs=(Y,), initializers=(), opset=17):
    graph = h.make_graph(nodes, name, list(inputs), list(outputs), initializer=list(initializers))
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset), h.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    path = os.path.join(scratch, name + ".onnx")
    onnx.save(model, path)
    runs.append(("onnx " + name, ["bench", path, "--warmup", "0", "--warmup-seconds", "0", "--iterations", "1"]))
    # The Keras writer does its own shape arithmetic on the same attributes.
    runs.append(("to keras " + name, ["convert", "--quiet", path, os.path.join(scratch, name + ".h5")]))

X = vi("x", [1, 3, 8, 8])
W = const("w", np.ones((4, 3, 3, 3), np.float32))
def node(op, inputs, **attributes): return h.make_node(op, inputs, ["y"], **attributes)
big = 1 << 40

# ONNX: shapes, windows and values from the model's own constants.
onnx_model("constantofshape_huge", [node("ConstantOfShape", ["s"])], [], initializers=[const("s", np.array([1 << 31, 1 << 31], np.int64))])
onnx_model("expand_negative", [node("Expand", ["x", "s"])], [X], initializers=[const("s", np.array([-2, 3, 8, 8], np.int64))])
onnx_model("expand_huge", [node("Expand", ["x", "s"])], [X], initializers=[const("s", np.array([big, 3, 8, 8], np.int64))])
onnx_model("pad_huge", [node("Pad", ["x", "p"])], [X], initializers=[const("p", np.array([0, 0, big, 0, 0, 0, 0, 0], np.int64))])
onnx_model("reshape_huge", [node("Reshape", ["x", "s"])], [X], initializers=[const("s", np.array([1 << 62, 1 << 62], np.int64))])
onnx_model("resize_nan", [node("Resize", ["x", "", "s"])], [X], initializers=[const("s", np.array([1, 1, np.nan, 2], np.float32))])
onnx_model("resize_huge", [node("Resize", ["x", "", "s"])], [X], initializers=[const("s", np.array([1, 1, 1e9, 1e9], np.float32))])
onnx_model("resize_negative", [node("Resize", ["x", "", "", "s"])], [X], initializers=[const("s", np.array([1, 3, -4, 4], np.int64))])
onnx_model("slice_extremes", [node("Slice", ["x", "a", "b", "c", "d"])], [X], initializers=[
    const(n, np.array([v], np.int64)) for n, v in [("a", -2**63), ("b", 2**63 - 1), ("c", 2), ("d", -2**63)]])
onnx_model("split_negative", [h.make_node("Split", ["x", "s"], ["y", "z"], axis=1)], [X], [Y, vi("z", None)], [const("s", np.array([-1, 4], np.int64))])
onnx_model("lrn_size_zero", [node("LRN", ["x"], size=0)], [X])
onnx_model("maxpool_pads_wide", [node("MaxPool", ["x"], kernel_shape=[2, 2], pads=[5, 5, 5, 5])], [X])
onnx_model("maxpool_window_huge", [node("MaxPool", ["x"], kernel_shape=[1 << 62, 2], pads=[1 << 61, 0, 1 << 61, 0])], [X])
onnx_model("avgpool_kernel_zero", [node("AveragePool", ["x"], kernel_shape=[0, 0])], [X])
onnx_model("conv_dilation_huge", [node("Conv", ["x", "w"], dilations=[1 << 62, 1])], [X], initializers=[W])
onnx_model("conv_pads_huge", [node("Conv", ["x", "w"], pads=[1 << 62, 0, 1 << 62, 0])], [X], initializers=[W])
onnx_model("conv_negative_pads", [node("Conv", ["x", "w"], pads=[-5, -5, -5, -5])], [X], initializers=[W])
onnx_model("conv_zero_channels", [node("Conv", ["x", "w"])], [vi("x", [1, 0, 8, 8])], initializers=[const("w", np.ones((4, 0, 3, 3), np.float32))])
onnx_model("convtranspose_stride_zero", [node("ConvTranspose", ["x", "w"], strides=[0, 0])], [X], initializers=[const("w", np.ones((3, 2, 3, 3), np.float32))])
onnx_model("gemm_empty_inner", [node("Gemm", ["x", "b"])], [vi("x", [2, 0])], initializers=[const("b", np.ones((0, 5), np.float32))])
onnx_model("instancenorm_scales", [node("InstanceNormalization", ["x", "s", "b"])], [X], initializers=[const("s", np.ones(5, np.float32)), const("b", np.ones(5, np.float32))])
onnx_model("gather_out_of_range", [node("Gather", ["x", "i"], axis=1)], [X], initializers=[const("i", np.array([0, 17], np.int64))])
onnx_model("input_dim_negative", [node("Relu", ["x"])], [vi("x", [-5, 3])])
onnx_model("input_huge", [node("Relu", ["x"])], [vi("x", [1 << 31, 1 << 31])])
onnx_model("cycle", [h.make_node("Relu", ["b"], ["a"]), h.make_node("Relu", ["a"], ["b"]), node("Identity", ["a"])], [X])
short = onnx.TensorProto(name="b", data_type=T.FLOAT, dims=[1, 3, 8, 8], raw_data=np.ones(2, np.float32).tobytes())
onnx_model("initializer_short", [node("Add", ["x", "b"])], [X], initializers=[short])

# Keras: the digits CNN with its model_config edited.
def keras_variant(name, edit_config=None, edit_file=None, source="Examples/digits/cnn.h5"):
    path = os.path.join(scratch, name + ".h5")
    shutil.copy(os.path.join(root, source), path)
    with h5py.File(path, "r+") as f:
        if edit_config:
            config = json.loads(f.attrs["model_config"])
            edit_config(config)
            f.attrs["model_config"] = json.dumps(config)
        if edit_file: edit_file(f)
    runs.append(("keras " + name, ["inspect", path]))
def layer(config, kind, index=0): return [l for l in config["config"]["layers"] if l["class_name"] == kind][index]["config"]
keras_variant("strides_zero", lambda c: layer(c, "Conv2D").update(strides=[0, 0]))
keras_variant("kernel_zero", lambda c: layer(c, "Conv2D").update(kernel_size=[0, 0]))
keras_variant("pool_huge", lambda c: layer(c, "MaxPooling2D").update(pool_size=[big, big]))
keras_variant("input_huge", lambda c: layer(c, "InputLayer").update(batch_input_shape=[None, big, big, 1], batch_shape=[None, big, big, 1]))
keras_variant("input_negative", lambda c: layer(c, "InputLayer").update(batch_input_shape=[None, -8, 8, 1], batch_shape=[None, -8, 8, 1]))
keras_variant("cycle", lambda c: c["config"]["layers"][1].update(inbound_nodes=[[["scores", 0, 0, {}]]]))
keras_variant("config_deep", edit_file=lambda f: f.attrs.__setitem__("model_config", "[" * 100000 + "]" * 100000))
keras_variant("config_not_text", edit_file=lambda f: f.attrs.__setitem__("model_config", np.frombuffer(b"\xff\xfe\x00", dtype=np.uint8)))
sequence = "Tests/Fixtures/keras/k2_sequence.h5"
keras_variant("permute_missing_axis", lambda c: layer(c, "Permute").update(dims=[0, 7]), source=sequence)
keras_variant("reshape_huge", lambda c: layer(c, "Reshape").update(target_shape=[1 << 62, 1 << 62]), source=sequence)
keras_variant("cropping_negative", lambda c: layer(c, "Cropping2D").update(cropping=[[-3, 0], [0, 0]]), source="Tests/Fixtures/keras/k2_separable.h5")
keras_variant("upsampling_zero", lambda c: layer(c, "UpSampling2D").update(size=[0, 0]), source="Tests/Fixtures/keras/k2_extras.h5")

# Data sets for the digits MLP (input [N, 64]).
mlp = os.path.join(root, "Examples/digits/mlp.onnx")
def data_file(name, content):
    path = os.path.join(scratch, name)
    with open(path, "wb") as f: f.write(content)
    keys = [] if name.endswith(".npy") else ["--inputs", "x"]  # a .npy file is its one array
    runs.append(("data " + name, ["eval", mlp, "--data", path] + keys + ["--metrics", "fidelity", "--reference", mlp]))
def npy(header, body):
    header = header.encode("latin1")
    header += b" " * (16 - (10 + len(header) + 1) % 16) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body
body = np.random.rand(4, 64).astype(np.float32).tobytes()
data_file("huge_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 64), }", body))
data_file("negative_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-4, 64), }", body))
data_file("short_body.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (400, 64), }", body))
data_file("header_too_long.npy", b"\x93NUMPY\x02\x00" + (0xFFFFFFF0).to_bytes(4, "little") + b"{")
data_file("not_zip.npz", b"hello" * 20)
data_file("hdf5_then_garbage.h5", b"\x89HDF\r\n\x1a\n" + os.urandom(4096))
pipe = os.path.join(scratch, "pipe")
os.mkfifo(pipe)
runs.append(("data pipe", ["eval", mlp, "--data", pipe, "--inputs", "x"]))
runs.append(("model pipe", ["inspect", pipe]))
runs.append(("model device", ["bench", "/dev/zero"]))

# Manifests.
def manifest(name, text):
    path = os.path.join(scratch, name + ".json")
    with open(path, "w") as f: f.write(text if isinstance(text, str) else json.dumps(text))
    runs.append(("manifest " + name, ["run", "--dry-run", path]))
base = {"version": 1, "model": mlp, "output_dir": "out", "stages": [{"stage": "prune", "sparsity": 0.5}, {"stage": "export", "path": "m.onnx"}]}
def edited(**changes): return dict(copy.deepcopy(base), **changes)
manifest("deep", "[" * 100000 + "]" * 100000)
manifest("export_outside", edited(stages=[{"stage": "export", "path": "../../../../tmp/evil.onnx"}]))
manifest("export_nul", edited(stages=[{"stage": "export", "path": "a\u0000b.onnx"}]))
manifest("output_dir_newline", edited(output_dir="o\nut"))
manifest("model_pipe", edited(model=pipe))
manifest("data_device", edited(datasets={"test": {"path": "/dev/urandom", "inputs": "x"}}))

failures = 0
for label, arguments in runs:
    try:
        result = subprocess.run([nnpipe] + arguments, capture_output=True, text=True, errors="replace", timeout=60, cwd=scratch)
        status, error = result.returncode, result.stderr.strip()
    except subprocess.TimeoutExpired:
        status, error = "timeout", ""
    lines = [line for line in error.splitlines() if line.strip()]
    bad = status not in (0, 1, 2) or len(lines) > 1
    failures += bad
    print(f"{'FAIL' if bad else 'ok  '} {label:34} exit {status}: {(lines[0] if lines else '')[:160]}")
shutil.rmtree(scratch, ignore_errors=True)
print(f"{len(runs)} runs, {failures} crashed, hung or printed more than one line")
sys.exit(1 if failures else 0)
