#!/usr/bin/env python3
"""Epoch time of Keras `model.fit` on the same models, data, batch size and optimiser as the
finetune benchmark: the digits MLP (64-64-32-10, as skl2onnx exported it) and the digits CNN of
Tests/Fixtures/finetune/digits_cnn.onnx (Conv 3x3 x8 + BN + ReLU + MaxPool + Dropout + Dense).

Usage: keras_epoch.py DIGITS_H5 THREADS   prints one JSON line per model.
With NNPIPE_KERAS=tf_keras it times tf_keras (Keras 2 on TensorFlow, as the issue asks; install
tensorflow-cpu and tf-keras into a separate venv); otherwise Keras 3 on KERAS_BACKEND (default jax).
"""
import json
import os
import sys
import time

threads = sys.argv[2] if len(sys.argv) > 2 else "1"
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
    os.environ[variable] = threads
os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads != '1' else 'false'} intra_op_parallelism_threads={threads}")
os.environ.setdefault("KERAS_BACKEND", "jax")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

if os.environ.get("NNPIPE_KERAS") == "tf_keras":
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    tf.config.threading.set_inter_op_parallelism_threads(int(threads))
else:
    import keras  # noqa: E402

with h5py.File(sys.argv[1], "r") as data:
    x = data["train/x"][:].astype(np.float32)
    y = data["train/y"][:]


def mlp():
    return keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])


def cnn():
    return keras.Sequential([
        keras.Input((64,)), keras.layers.Reshape((8, 8, 1)), keras.layers.Conv2D(8, 3, padding="same"),
        keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3), keras.layers.ReLU(), keras.layers.MaxPooling2D(2),
        keras.layers.Dropout(0.5), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch inside one fit call, as nnpipe's report history times its epochs."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


for name, make in (("mlp", mlp), ("cnn", cnn)):
    model = make()
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy")
    timer = EpochTimer()
    # Six epochs in one fit; epoch 1 pays tracing/compilation, so the best of epochs 2-6 counts.
    model.fit(x, y, batch_size=32, epochs=6, shuffle=True, verbose=0, callbacks=[timer])
    best = min(timer.seconds[1:])
    print(json.dumps({"model": name, "framework": f"{'tf_keras' if os.environ.get('NNPIPE_KERAS') == 'tf_keras' else 'keras'} {keras.__version__} ({keras.backend.backend()})",
                      "threads": int(threads), "epoch_seconds": round(best, 4), "samples_per_second": round(len(x) / best)}))
