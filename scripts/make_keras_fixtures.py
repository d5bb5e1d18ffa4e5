#!/usr/bin/env python3
"""Makes the Keras fixtures in Tests/Fixtures/keras with the real libraries.

Keras 3 files (legacy .h5 and .keras zip), with keras + jax:
    KERAS_BACKEND=jax python scripts/make_keras_fixtures.py --keras 3
Keras 2 files, with tensorflow-cpu + tf_keras (kept out of CI; run once, commit the output):
    python scripts/make_keras_fixtures.py --keras 2

Each model <prefix>_<name>.h5 gets <prefix>_<name>.io.h5 holding a small input batch
(inputs/<input name>) and Keras's own predictions (outputs/<output index>), so tests can
compare nnpipe against Keras without TensorFlow installed.
"""
import argparse
import os
import sys

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--keras", choices=["2", "3"], required=True)
parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "keras"))
options = parser.parse_args()

if options.keras == "2":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras as keras
    prefix = "k2"
else:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    prefix = "k3"
import h5py

layers = keras.layers
random = np.random.default_rng(20261130)


def randomize(model):
    """Non-trivial weights everywhere (BatchNormalization statistics included), deterministically."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        names = [w.name for w in layer.weights]
        new = []
        for name, w in zip(names, weights):
            if "variance" in name:
                new.append(random.uniform(0.5, 1.5, w.shape).astype(w.dtype))
            elif "embeddings" in name:
                new.append(random.normal(0, 1, w.shape).astype(w.dtype))
            else:
                new.append(random.normal(0, 0.4, w.shape).astype(w.dtype))
        layer.set_weights(new)


def sequential_cnn():
    return keras.Sequential([
        keras.Input(shape=(8, 8, 1), name="image"),
        layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
        layers.BatchNormalization(name="bn1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(6, 3, strides=1, padding="valid", name="conv2"),
        layers.LeakyReLU(name="leaky"),
        layers.Flatten(name="flatten"),
        layers.Dropout(0.5, name="dropout"),
        layers.Dense(10, activation="softmax", name="logits"),
    ], name="sequential_cnn")


def functional_residual():
    image = keras.Input(shape=(9, 9, 3), name="pixels")
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(image)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    branch = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=1, name="depthwise")(x)
    branch = layers.Activation("relu6", name="depthwise_relu6")(branch)
    branch = layers.Conv2D(8, 1, name="pointwise")(branch)
    x = layers.Add(name="residual")([x, branch])
    x = layers.Concatenate(name="concat")([x, branch])
    x = layers.ZeroPadding2D(((1, 0), (0, 1)), name="pad")(x)
    x = layers.AveragePooling2D(2, padding="same", name="avgpool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(5, name="head")(x)
    return keras.Model(image, x, name="functional_residual")


def separable():
    image = keras.Input(shape=(10, 10, 2), name="image")
    x = layers.SeparableConv2D(4, 3, strides=2, padding="same", activation="relu", name="separable")(image)
    x = layers.UpSampling2D(2, name="upsample")(x)
    x = layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="sigmoid", name="deconv")(x)
    x = layers.Cropping2D(((1, 2), (2, 1)), name="crop")(x)
    x = layers.DepthwiseConv2D(2, depth_multiplier=2, name="depthwise_x2")(x)
    x = layers.GlobalMaxPooling2D(name="gmp")(x)
    x = layers.Dense(3, activation="tanh", name="out")(x)
    return keras.Model(image, x, name="separable")


def mlp():
    features = keras.Input(shape=(16,), name="features")
    x = layers.Dense(24, activation="gelu", name="dense1")(features)
    x = layers.Dense(20, activation="swish", name="dense2")(x)
    x = layers.PReLU(name="prelu")(x)
    x = layers.LayerNormalization(name="norm")(x)
    x = layers.Dense(12, activation="elu", name="dense3")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Dense(8, activation="selu", name="dense4")(x)
    x = layers.Softmax(name="probabilities")(x)
    return keras.Model(features, x, name="mlp")


def multi_input():
    image = keras.Input(shape=(6, 6, 2), name="image")
    side = keras.Input(shape=(5,), name="side")
    conv = layers.Conv2D(3, 3, padding="same", activation="tanh", name="conv")(image)
    flat = layers.Flatten(name="flat")(conv)
    dense_side = layers.Dense(7, activation="relu", name="side_dense")(side)
    joined = layers.Concatenate(name="join")([flat, dense_side])
    score = layers.Dense(2, name="score")(joined)
    doubled = layers.Multiply(name="gate")([conv, conv])
    spatial = layers.Subtract(name="spatial")([doubled, conv])
    return keras.Model([image, side], [score, spatial], name="multi_input")


def sequence():
    series = keras.Input(shape=(12, 3), name="series")
    x = layers.Conv1D(4, 3, padding="causal", activation="relu", name="conv1d")(series)
    x = layers.MaxPooling1D(2, name="pool1d")(x)
    y = layers.Conv1D(4, 2, padding="same", name="conv1d_same")(x)
    x = layers.Maximum(name="maximum")([x, y])
    x = layers.Average(name="average")([x, y])
    x = layers.AveragePooling1D(2, name="avg1d")(x)
    x = layers.Permute((2, 1), name="permute")(x)
    x = layers.Reshape((6, 2), name="reshape")(x)
    x = layers.GlobalAveragePooling1D(name="gap1d")(x)
    x = layers.Dense(2, name="out")(x)
    return keras.Model(series, x, name="sequence")


def embedding():
    tokens = keras.Input(shape=(5,), name="tokens", dtype="int32")
    x = layers.Embedding(11, 4, name="embed")(tokens)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(3, name="out")(x)
    return keras.Model(tokens, x, name="embedding")


builders = {
    "sequential_cnn": sequential_cnn, "functional_residual": functional_residual, "separable": separable,
    "mlp": mlp, "multi_input": multi_input, "sequence": sequence, "embedding": embedding,
}


def sample_inputs(model):
    batch = []
    for tensor in model.inputs:
        shape = (3,) + tuple(tensor.shape[1:])
        if "int" in str(tensor.dtype):
            batch.append(random.integers(0, 11, shape).astype(np.int32))
        else:
            batch.append(random.normal(0, 1, shape).astype(np.float32))
    return batch


os.makedirs(options.out, exist_ok=True)
for name, build in builders.items():
    model = build()
    randomize(model)
    batch = sample_inputs(model)
    outputs = model.predict(batch if len(batch) > 1 else batch[0], verbose=0)
    if not isinstance(outputs, list):
        outputs = [outputs]
    stem = os.path.join(options.out, f"{prefix}_{name}")
    model.save(stem + ".h5")
    if options.keras == "3" and name in ("sequential_cnn", "functional_residual", "multi_input"):
        model.save(stem + ".keras")
    with h5py.File(stem + ".io.h5", "w") as io:
        for tensor, value in zip(model.inputs, batch):
            io.create_dataset("inputs/" + tensor.name.split(":")[0], data=value)
        for index, value in enumerate(outputs):
            io.create_dataset(f"outputs/{index}", data=np.asarray(value, dtype=np.float32))
    print("wrote", stem, [v.shape for v in outputs], file=sys.stderr)

# A weights-only file: has model_weights-like content but no model_config.
if options.keras == "3":
    model = mlp()
    model.save_weights(os.path.join(options.out, "k3_mlp.weights.h5"))
