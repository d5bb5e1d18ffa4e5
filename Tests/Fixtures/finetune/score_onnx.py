#!/usr/bin/env python3
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
