"""Trains a Keras 3 Functional model with a residual Add, a Concatenate and a DepthwiseConv2D on
the bundled digits images (8x8x1) and saves it as a legacy .h5 for the prune stage's Done-when check.

    KERAS_BACKEND=jax python Benchmarks/prune/make_residual.py OUT.h5
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py
import keras

here = os.path.dirname(os.path.abspath(__file__))
with h5py.File(os.path.join(here, "../../Examples/digits/digits.h5"), "r") as handle:
    x_train, y_train = handle["train/images"][:], handle["train/y"][:]
    x_test, y_test = handle["test/images"][:], handle["test/y"][:]

keras.utils.set_random_seed(0)
inputs = keras.Input(shape=(8, 8, 1), name="image")
x = keras.layers.Conv2D(32, 3, padding="same", name="stem")(inputs)
x = keras.layers.BatchNormalization(name="stem_bn")(x)
x = keras.layers.ReLU(name="stem_relu")(x)
y = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
y = keras.layers.Activation("relu", name="depthwise_relu")(y)
y = keras.layers.Conv2D(32, 1, name="pointwise")(y)
x = keras.layers.Add(name="residual")([x, y])
z = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="branch")(x)
x = keras.layers.Concatenate(name="concat")([x, z])
x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="mix")(x)
x = keras.layers.MaxPooling2D(2, name="pool")(x)
x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
outputs = keras.layers.Dense(10, activation="softmax", name="scores")(x)
model = keras.Model(inputs, outputs, name="digits_residual")
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=20, batch_size=32, verbose=0)
print("Keras test accuracy: %.4f" % model.evaluate(x_test, y_test, verbose=0)[1])
model.save(sys.argv[1], include_optimizer=False)
