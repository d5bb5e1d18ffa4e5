"""Adds a Keras 3 CNN to the bundled example: trains a small convolutional classifier on the
digits images (8x8x1, NHWC as Keras users feed them) and saves it as a legacy Keras .h5.

    python -m pip install keras jax h5py numpy
    python Examples/digits/make_example.py          # first: digits.h5 and mlp.onnx
    python Examples/digits/make_keras_example.py

Outputs (committed): cnn.h5, and train/images, test/images ([N, 8, 8, 1]) added to digits.h5.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py
import keras
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
with h5py.File(os.path.join(here, "digits.h5"), "a") as handle:
    x_train = handle["train/x"][:].reshape(-1, 8, 8, 1)
    x_test = handle["test/x"][:].reshape(-1, 8, 8, 1)
    y_train = handle["train/y"][:]
    y_test = handle["test/y"][:]
    for name, data in (("train/images", x_train), ("test/images", x_test)):
        if name in handle:
            del handle[name]
        handle.create_dataset(name, data=data)

keras.utils.set_random_seed(0)
inputs = keras.Input(shape=(8, 8, 1), name="image")
x = keras.layers.Conv2D(16, 3, padding="same", name="conv1")(inputs)
x = keras.layers.BatchNormalization(name="bn1")(x)
x = keras.layers.ReLU(name="relu1")(x)
x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
x = keras.layers.MaxPooling2D(2, name="pool")(x)
x = keras.layers.Flatten(name="flatten")(x)
x = keras.layers.Dense(64, activation="relu", name="dense1")(x)
outputs = keras.layers.Dense(10, activation="softmax", name="scores")(x)
model = keras.Model(inputs, outputs, name="digits_cnn")
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
print("Keras test accuracy: %.4f" % model.evaluate(x_test, y_test, verbose=0)[1])
model.save(os.path.join(here, "cnn.h5"), include_optimizer=False)
print("wrote cnn.h5")
