#!/usr/bin/env python3
"""Builds Tests/Fixtures/finetune/: models the finetune tests train, written with onnx.helper the
way converters lay them out (flat [N, 64] input reshaped to NCHW inside the graph), plus
score_onnx.py, which scores an exported model on the digits test split with onnxruntime.

  digits_cnn.onnx  Reshape -> Conv 3x3 -> BatchNormalization -> Relu -> MaxPool 2x2 -> Dropout
                   -> Flatten -> Gemm(transB) -> Softmax, He-initialised with a fixed seed.

Run: /tmp/venv/bin/python scripts/make_finetune_fixtures.py  (onnx==1.22.0, numpy)
"""
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "finetune"


def digits_cnn() -> onnx.ModelProto:
    rng = np.random.default_rng(20261130)
    channels = 8
    initializers = [
        numpy_helper.from_array(np.array([-1, 1, 8, 8], dtype=np.int64), "image_shape"),
        numpy_helper.from_array((rng.standard_normal((channels, 1, 3, 3)) * np.sqrt(2 / 9)).astype(np.float32), "conv.weight"),
        numpy_helper.from_array(np.zeros(channels, np.float32), "conv.bias"),
        numpy_helper.from_array(np.ones(channels, np.float32), "bn.scale"),
        numpy_helper.from_array(np.zeros(channels, np.float32), "bn.bias"),
        numpy_helper.from_array(np.zeros(channels, np.float32), "bn.mean"),
        numpy_helper.from_array(np.ones(channels, np.float32), "bn.var"),
        numpy_helper.from_array((rng.standard_normal((10, channels * 16)) * np.sqrt(2 / (channels * 16))).astype(np.float32), "dense.weight"),
        numpy_helper.from_array(np.zeros(10, np.float32), "dense.bias"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x", "image_shape"], ["image"], name="image"),
        helper.make_node("Conv", ["image", "conv.weight", "conv.bias"], ["conv_out"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["conv_out", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["bn_out"], name="bn", momentum=0.9, epsilon=1e-3),
        helper.make_node("Relu", ["bn_out"], ["relu_out"], name="relu"),
        helper.make_node("MaxPool", ["relu_out"], ["pool_out"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Dropout", ["pool_out"], ["dropout_out"], name="dropout"),
        helper.make_node("Flatten", ["dropout_out"], ["features"], name="flatten"),
        helper.make_node("Gemm", ["features", "dense.weight", "dense.bias"], ["logits"], name="dense", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits-cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_finetune_fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


SCORER = '''#!/usr/bin/env python3
"""Top-1 accuracy of an ONNX model's 'probabilities' on digits.h5 test/x, test/y with onnxruntime.
Usage: score_onnx.py MODEL DIGITS_H5   (prints the accuracy)"""
import sys

import h5py
import numpy as np
import onnxruntime

session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
with h5py.File(sys.argv[2], "r") as data:
    x, y = data["test/x"][:], data["test/y"][:]
name = session.get_inputs()[0].name
probabilities = session.run(["probabilities"], {name: x.astype(np.float32)})[0]
print(f"{float(np.mean(np.argmax(probabilities, axis=1) == y)):.6f}")
'''


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(digits_cnn(), OUT / "digits_cnn.onnx")
    (OUT / "score_onnx.py").write_text(SCORER)
    print("wrote", OUT / "digits_cnn.onnx", "and", OUT / "score_onnx.py")


if __name__ == "__main__":
    main()
