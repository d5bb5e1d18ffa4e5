#!/usr/bin/env python3
"""Builds Tests/Fixtures/tf2onnx/: small digits CNNs trained with tf_keras (NHWC, so tf2onnx wraps
the convolutions in Transposes) and converted by tf2onnx, plus onnxruntime's outputs on the digits
test split. The Swift tests compare `nnpipe eval` against those outputs, so CI needs none of this.

Needs its own venv (TensorFlow pins protobuf and numpy differently from the test venv):
  python3 -m venv /tmp/venv-tf
  /tmp/venv-tf/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 tf2onnx==1.17.0 onnxruntime h5py
  /tmp/venv-tf/bin/python scripts/make_tf2onnx_fixtures.py

Writes, per model and conversion, <name>_opset<N>[_unoptimized].onnx and .npz (arrays: one per model
output, named after it, as onnxruntime computed it for test/images; plus `labels`).
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf2onnx converts tf_keras (Keras 2) models
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402
import tf_keras as keras  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "tf2onnx"
# (opset, tf2onnx optimizers): tf2onnx's optimizer folds most NHWC<->NCHW Transposes away (with one
# channel they become Reshapes); `{}` turns it off and keeps the Transpose pair around every conv,
# plus the Shape/Cast/Squeeze plumbing of a raw conversion.
CONVERSIONS = ((13, None), (17, None), (13, {}))


def digits():
    with h5py.File(ROOT / "Examples" / "digits" / "digits.h5", "r") as data:
        return (data["train/images"][()], data["train/y"][()], data["test/images"][()], data["test/y"][()])


def plain_cnn():
    """Conv/BN/ReLU/pool stack with a Flatten: tf2onnx's NHWC<->NCHW Transposes around each conv and before the Reshape."""
    return keras.Sequential([
        keras.layers.Input((8, 8, 1), name="images"),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Conv2D(16, 3, strides=1, padding="valid"),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Dropout(0.2),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ], name="plain_cnn")


def branchy_cnn():
    """Depthwise and strided convs, a residual Add, average pooling and a global average pool."""
    inputs = keras.layers.Input((8, 8, 1), name="images")
    x = keras.layers.Conv2D(12, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("elu")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Add()([x, y])
    x = keras.layers.AveragePooling2D(2, padding="same")(x)
    x = keras.layers.Conv2D(24, 3, strides=2, padding="same", activation="sigmoid")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10)(x)  # logits: no softmax, so eval scores raw outputs
    return keras.Model(inputs, outputs, name="branchy_cnn")


def layout_cnn():
    """Layers whose conversion moves data between layouts: padding, upsampling (Resize), cropping
    (Slice), channel Concat, separable convs, a Reshape layer, max-global pooling, LayerNormalization."""
    inputs = keras.layers.Input((8, 8, 1), name="images")
    x = keras.layers.ZeroPadding2D(((1, 0), (0, 1)))(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    up = keras.layers.UpSampling2D(2, interpolation="nearest")(x)
    smooth = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
    x = keras.layers.Concatenate(axis=-1)([up, smooth])
    x = keras.layers.Cropping2D(((1, 0), (0, 1)))(x)
    x = keras.layers.SeparableConv2D(16, 3, padding="valid", activation="tanh")(x)
    x = keras.layers.LayerNormalization(axis=-1)(x)
    pooled = keras.layers.GlobalMaxPooling2D()(x)
    x = keras.layers.Reshape((-1, 4))(pooled)
    x = keras.layers.Permute((2, 1))(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="layout_cnn")


def train(model, images, labels, epochs):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=model.name == "branchy_cnn")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=["accuracy"])
    model.fit(images, labels, epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    return model


def main():
    tf.random.set_seed(0)
    np.random.seed(0)
    keras.utils.set_random_seed(0)
    train_images, train_labels, test_images, test_labels = digits()
    OUT.mkdir(parents=True, exist_ok=True)
    for build, epochs in ((plain_cnn, 8), (branchy_cnn, 12), (layout_cnn, 12)):
        model = train(build(), train_images, train_labels, epochs)
        keras_scores = model.predict(test_images, verbose=0)
        for opset, optimizers in CONVERSIONS:
            signature = (tf.TensorSpec((None, 8, 8, 1), tf.float32, name="images"),)
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset, optimizers=optimizers)
            stem = "%s_opset%d%s" % (model.name, opset, "" if optimizers is None else "_unoptimized")
            path = OUT / (stem + ".onnx")
            path.write_bytes(proto.SerializeToString())
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            names = [output.name for output in session.get_outputs()]
            outputs = session.run(names, {session.get_inputs()[0].name: test_images})
            arrays = dict(zip(names, outputs))
            arrays["labels"] = test_labels
            np.savez(OUT / (stem + ".npz"), **arrays)
            accuracy = float((outputs[0].argmax(axis=1) == test_labels).mean())
            ops = sorted({node.op_type for node in proto.graph.node})
            drift = float(np.abs(outputs[0] - keras_scores).max())
            print("%s: accuracy %.4f, keras drift %.2g, %d nodes, ops %s" % (stem, accuracy, drift, len(proto.graph.node), " ".join(ops)))


if __name__ == "__main__":
    sys.exit(main())
