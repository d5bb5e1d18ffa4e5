"""Builds the bundled example: scikit-learn's digits data set (bundled with scikit-learn, no
download) written to HDF5, and an MLP classifier trained on it, exported to ONNX by skl2onnx.

    python -m pip install scikit-learn skl2onnx onnx h5py numpy
    python Examples/digits/make_example.py

Outputs (committed): digits.h5 (train/x, train/y, test/x, test/y) and mlp.onnx.
"""
import os

import h5py
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from skl2onnx import to_onnx

here = os.path.dirname(os.path.abspath(__file__))
digits = load_digits()
x = (digits.data / 16.0).astype(np.float32)  # pixel values 0..16 scaled to 0..1
y = digits.target.astype(np.int64)
x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

classifier = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=400, random_state=0)
classifier.fit(x_train, y_train)
print("scikit-learn test accuracy: %.4f" % classifier.score(x_test, y_test))

# zipmap=False: probabilities come out as a plain [N, 10] tensor (no sequence of maps).
model = to_onnx(classifier, x_train[:1], options={id(classifier): {"zipmap": False}},
                target_opset={"": 17, "ai.onnx.ml": 3})
model.producer_name = "skl2onnx"
with open(os.path.join(here, "mlp.onnx"), "wb") as handle:
    handle.write(model.SerializeToString())

with h5py.File(os.path.join(here, "digits.h5"), "w") as handle:
    handle.create_dataset("train/x", data=x_train)
    handle.create_dataset("train/y", data=y_train)
    handle.create_dataset("test/x", data=x_test)
    handle.create_dataset("test/y", data=y_test)
print("wrote mlp.onnx and digits.h5 to", here)
