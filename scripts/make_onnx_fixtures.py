#!/usr/bin/env python3
"""Builds Tests/Fixtures/onnx/ from the onnx pip package's own test data (onnx==1.22.0, the last
release that ships the node tests) plus a few models made here: skl2onnx digits classifiers, one
model per tensor dtype and storage field, external data, sparse initializers, functions, and bad
input. Run with the venv from scripts/setup-python.sh:  .venv/bin/python3 scripts/make_onnx_fixtures.py
"""
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "onnx"
DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
NODE_BUDGET = 12 * 1024 * 1024  # bytes of node-test folders to keep
CASE_LIMIT = 400 * 1024  # a single node-test folder larger than this is skipped

# Operators the runtime issue (issue 4) implements, as onnx names its node tests (test_<prefix>...).
RUNTIME_OPS = """conv convtranspose gemm matmul add sub mul div pow max min sum mean relu leakyrelu prelu elu
selu sigmoid hardsigmoid hardswish tanh softplus softsign gelu erf exp log sqrt abs neg reciprocal clip
softmax logsoftmax maxpool averagepool globalaveragepool globalmaxpool lrn batchnorm instancenorm
layer_normalization dropout flatten reshape transpose squeeze unsqueeze concat split slice gather pad
constant_pad edge_pad reflect_pad wrap_pad shape constant identity cast reduce_mean reduce_sum reduce_max
reduce_min argmax expand where equal greater less resize quantizelinear dequantizelinear
dynamicquantizelinear qlinearconv qlinearmatmul matmulinteger convinteger ai_onnx_ml_array_feature_extractor
if loop scan optional sequence""".split()


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def copy_node_tests() -> int:
    target = OUT / "node"
    shutil.rmtree(target, ignore_errors=True)
    cases = sorted(p for p in (DATA / "node").iterdir() if p.is_dir())
    def kept_files(case: Path) -> list:
        return [case / "model.onnx"] + sorted((case / "test_data_set_0").glob("*.pb"))

    total = sum(f.stat().st_size for case in cases for f in kept_files(case) if f.exists())
    keep_all = total <= NODE_BUDGET
    pattern = re.compile(r"^test_(" + "|".join(map(re.escape, RUNTIME_OPS)) + r")")
    used = 0
    kept = 0
    for case in cases:
        if not keep_all and not pattern.match(case.name):
            continue
        files = kept_files(case)
        size = sum(f.stat().st_size for f in files if f.exists())
        if size > CASE_LIMIT or used + size > NODE_BUDGET:
            continue
        (target / case.name / "test_data_set_0").mkdir(parents=True, exist_ok=True)
        for f in files:
            if f.exists():
                shutil.copy(f, target / case.name / f.relative_to(case))
        used += size
        kept += 1
    print(f"node: kept {kept} of {len(cases)} cases ({'all that fit' if keep_all else 'runtime ops'}), {used / 1e6:.1f} MB")
    return kept


def copy_model_folders() -> None:
    """light/ (architectures, tiny), simple/ and the smaller pytorch-converted/-operator models."""
    for name, limit in (("light", 300_000), ("simple", 200_000), ("pytorch-converted", 150_000), ("pytorch-operator", 60_000)):
        target = OUT / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        source = DATA / name
        count = 0
        for model in sorted(source.rglob("*.onnx")):
            if model.stat().st_size > limit:
                continue
            relative = model.relative_to(source)
            flat = str(relative.parent).replace("/", "_") if relative.parent != Path(".") else relative.stem
            shutil.copy(model, target / f"{flat}.onnx")
            count += 1
        print(f"{name}: {count} models")


def make_sklearn() -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    target = OUT / "sklearn"
    target.mkdir(parents=True, exist_ok=True)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    for name, model in (
        ("mlp_digits", MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0)),
        ("logistic_digits", LogisticRegression(max_iter=500)),
    ):
        model.fit(x, y)
        onx = to_onnx(model, x[:1], options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3})
        onnx.save(onx, target / f"{name}.onnx")
    np.save(target / "digits_x_first16.npy", x[:16])
    print("sklearn: 2 models")


def identity_model(tensor: TensorProto, opset: int = 23, ir: int = 11) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["value"], ["out"])], "dtype",
        [], [helper.make_tensor_value_info("out", tensor.data_type, list(tensor.dims))], [tensor])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)


DTYPE_VALUES = {
    TensorProto.FLOAT: [0.5, -1.25, 3.0e8, -0.0, 7.0, 1.0e-8],
    TensorProto.DOUBLE: [0.5, -1.25, 3.0e300, -0.0, 7.0, 1.0e-300],
    TensorProto.FLOAT16: [0.5, -1.25, 65504.0, -0.0, 7.0, 0.0001],
    TensorProto.BFLOAT16: [0.5, -1.25, 3.0e8, -0.0, 7.0, 1.0e-8],
    TensorProto.FLOAT8E4M3FN: [0.5, -1.25, 448.0, -0.0, 7.0, 0.015625],
    TensorProto.FLOAT8E4M3FNUZ: [0.5, -1.25, 240.0, 0.0, 7.0, 0.0078125],
    TensorProto.FLOAT8E5M2: [0.5, -1.25, 57344.0, -0.0, 7.0, 0.0001],
    TensorProto.FLOAT8E5M2FNUZ: [0.5, -1.25, 57344.0, 0.0, 7.0, 0.0001],
    TensorProto.FLOAT8E8M0: [0.5, 1.0, 2.0 ** 100, 4.0, 0.25, 2.0 ** -100],
    TensorProto.FLOAT4E2M1: [0.5, -1.5, 6.0, -0.0, 3.0, 1.0],
    TensorProto.INT8: [-128, 127, 0, -1, 5, 9],
    TensorProto.UINT8: [0, 255, 1, 128, 5, 9],
    TensorProto.INT16: [-32768, 32767, 0, -1, 5, 9],
    TensorProto.UINT16: [0, 65535, 1, 32768, 5, 9],
    TensorProto.INT32: [-2**31, 2**31 - 1, 0, -1, 5, 9],
    TensorProto.UINT32: [0, 2**32 - 1, 1, 2**31, 5, 9],
    TensorProto.INT64: [-2**63, 2**63 - 1, 0, -1, 5, 9],
    TensorProto.UINT64: [0, 2**64 - 1, 1, 2**63, 5, 9],
    TensorProto.BOOL: [True, False, True, True, False, False],
    TensorProto.INT4: [-8, 7, 0, -1, 5, 3],
    TensorProto.UINT4: [0, 15, 1, 8, 5, 9],
    TensorProto.INT2: [-2, 1, 0, -1, 1, -2],
    TensorProto.UINT2: [0, 3, 1, 2, 3, 0],
    TensorProto.COMPLEX64: [1 + 2j, -3.5j, 0, 7, 1e8 + 1j, -0.5],
    TensorProto.COMPLEX128: [1 + 2j, -3.5j, 0, 7, 1e300 + 1j, -0.5],
    TensorProto.STRING: [b"a", b"", "\u00e9t\u00e9".encode(), b"\x00\xff", b"long " * 20, b"z"],
}


def make_dtypes() -> int:
    """For each dtype: <name>.raw.onnx (raw_data), <name>.typed.onnx (the typed field the spec names),
    and <name>.expected holding the raw bytes both must decode to."""
    target = OUT / "dtypes"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    count = 0
    for dtype, values in DTYPE_VALUES.items():
        name = TensorProto.DataType.Name(dtype).lower()
        dims = [2, 3]
        typed = helper.make_tensor("value", dtype, dims, values, raw=False)
        # Identity gained float8e8m0 in opset 24 and the 2-bit types in opset 25.
        versions = (25, 12) if dtype in (TensorProto.FLOAT8E8M0, TensorProto.INT2, TensorProto.UINT2) else (23, 11)
        onnx.save(identity_model(typed, *versions), target / f"{name}.typed.onnx")
        count += 1
        if dtype != TensorProto.STRING:
            raw = numpy_helper.from_array(numpy_helper.to_array(typed), "value") if dtype not in (
                TensorProto.INT4, TensorProto.UINT4, TensorProto.FLOAT4E2M1, TensorProto.INT2, TensorProto.UINT2) else None
            if raw is None or raw.data_type != dtype:
                raw = TensorProto()
                raw.CopyFrom(typed)
                packed = numpy_helper.to_array(typed)
                raw_bytes = _raw_bytes(typed)
                del raw.int32_data[:]
                raw.raw_data = raw_bytes
            onnx.save(identity_model(raw, *versions), target / f"{name}.raw.onnx")
            (target / f"{name}.expected").write_bytes(raw.raw_data)
            count += 1
        else:
            (target / f"{name}.expected").write_bytes(b"\n".join(values))
    print(f"dtypes: {count} models")
    return count


def _raw_bytes(tensor: TensorProto) -> bytes:
    """Raw layout of a tensor held in int32_data for the packed sub-byte types."""
    if tensor.data_type in (TensorProto.INT4, TensorProto.UINT4, TensorProto.FLOAT4E2M1, TensorProto.INT2, TensorProto.UINT2):
        return bytes(v & 0xFF for v in tensor.int32_data)
    return numpy_helper.to_array(tensor).tobytes()


def make_structures() -> None:
    """Sparse initializers, a model-local function, metadata/doc strings, IR 3 style inputs."""
    target = OUT / "structures"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)

    # Sparse initializer: 3x4 with three non-zeros, densified by a Constant-free path (Add with zeros).
    values = helper.make_tensor("sparse_weight", TensorProto.FLOAT, [3], [1.5, -2.0, 4.0])
    indices = helper.make_tensor("sparse_weight_indices", TensorProto.INT64, [3], [1, 6, 11])
    sparse = helper.make_sparse_tensor(values, indices, [3, 4])
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "sparse_weight"], ["y"])], "sparse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])])
    graph.sparse_initializer.append(sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, target / "sparse_initializer.onnx")

    # A model-local function with an attribute reference and a default.
    function = helper.make_function(
        "custom", "ScaledRelu", ["X"], ["Y"],
        [helper.make_node("Relu", ["X"], ["R"]),
         helper.make_node("Constant", [], ["S"], value_float=2.0),
         helper.make_node("Mul", ["R", "S"], ["Y"])],
        [helper.make_opsetid("", 17)], attributes=["unused"])
    graph = helper.make_graph(
        [helper.make_node("ScaledRelu", ["x"], ["y"], domain="custom")], "function_graph",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], doc_string="graph doc")
    model = helper.make_model(graph, functions=[function], ir_version=10, doc_string="model doc",
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)])
    helper.set_model_props(model, {"author": "nnpipe tests", "license": "MIT"})
    onnx.save(model, target / "local_function.onnx")

    # IR 3 style: the weight is an initializer and also a graph input; node domain spelled "ai.onnx".
    weight = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], domain="ai.onnx")], "ir3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 7)], ir_version=3)
    onnx.save(model, target / "ir3_initializer_inputs.onnx")

    # training_info and configuration, which nnpipe carries through as opaque bytes.
    weight = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "trainable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    algorithm = helper.make_graph(
        [helper.make_node("Mul", ["w", "w"], ["w_new"])], "update", [],
        [helper.make_tensor_value_info("w_new", TensorProto.FLOAT, [2, 2])])
    info = model.training_info.add()
    info.algorithm.CopyFrom(algorithm)
    binding = info.update_binding.add()
    binding.key, binding.value = "w", "w_new"
    onnx.save(model, target / "training_info.onnx")
    print("structures: 4 models")


def make_external() -> None:
    """A valid external-data model and hostile variants of it."""
    target = OUT / "external"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    weight = np.arange(64, dtype=np.float32).reshape(8, 8)
    bias = np.full((8,), 0.25, dtype=np.float32)

    def model_with(location: str, offset: int = 0, length=None) -> onnx.ModelProto:
        w = numpy_helper.from_array(weight, "w")
        w.ClearField("raw_data")
        w.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)),
                           ("length", str(weight.nbytes if length is None else length))):
            entry = w.external_data.add()
            entry.key, entry.value = key, value
        b = numpy_helper.from_array(bias, "b")
        graph = helper.make_graph(
            [helper.make_node("Gemm", ["x", "w", "b"], ["y"])], "external",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [w, b])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)

    data = bytes(16) + weight.tobytes()
    (target / "weights.bin").write_bytes(data)
    onnx.save(model_with("weights.bin", offset=16), target / "valid.onnx")
    onnx.save(model_with("/etc/passwd"), target / "absolute_path.onnx")
    onnx.save(model_with("../outside.bin"), target / "dot_dot.onnx")
    onnx.save(model_with("sub/../../outside.bin"), target / "dot_dot_nested.onnx")
    onnx.save(model_with("missing.bin"), target / "missing_file.onnx")
    onnx.save(model_with("weights.bin", offset=200), target / "past_end.onnx")
    onnx.save(model_with("weights.bin", offset=16, length=12), target / "wrong_length.onnx")
    print("external: 7 models")


def make_bad() -> None:
    """Valid protobuf, invalid models."""
    target = OUT / "bad"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)

    def with_tensor(mutate) -> onnx.ModelProto:
        tensor = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "value")
        mutate(tensor)
        model = identity_model(tensor, opset=17, ir=8)
        return model

    def short_raw(t):
        t.raw_data = t.raw_data[:12]

    def negative_dim(t):
        t.dims[0] = -2

    def huge_dims(t):
        del t.dims[:]
        t.dims.extend([2**62, 2**62, 4])

    def unknown_type(t):
        t.data_type = 99

    def float_in_int64(t):
        t.ClearField("raw_data")
        t.int64_data.extend([1, 2, 3, 4])

    onnx.save(with_tensor(short_raw), target / "raw_data_too_short.onnx")
    onnx.save(with_tensor(negative_dim), target / "negative_dimension.onnx")
    onnx.save(with_tensor(huge_dims), target / "overflowing_dimensions.onnx")
    onnx.save(with_tensor(unknown_type), target / "unknown_data_type.onnx")
    onnx.save(with_tensor(float_in_int64), target / "data_in_wrong_field.onnx")
    dangling = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["nothing"], ["y"])], "dangling", [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]), ir_version=8,
        opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(dangling, target / "dangling_input.onnx")
    # A valid protobuf message that is a tensor, not a model.
    (target / "tensor_not_model.onnx").write_bytes(
        numpy_helper.from_array(np.ones((3,), dtype=np.float32), "t").SerializeToString())
    no_graph = onnx.ModelProto()
    no_graph.ir_version = 8
    (target / "model_without_graph.onnx").write_bytes(no_graph.SerializeToString())
    print("bad: 8 files")


def main() -> None:
    if onnx.__version__ != "1.22.0":
        print(f"warning: onnx {onnx.__version__}; the fixtures were made with 1.22.0", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    copy_node_tests()
    copy_model_folders()
    make_sklearn()
    make_dtypes()
    make_structures()
    make_external()
    make_bad()
    print(f"total: {folder_size(OUT) / 1e6:.1f} MB in {OUT}")


if __name__ == "__main__":
    main()
