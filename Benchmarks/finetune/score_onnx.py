#!/usr/bin/env python3
"""Top-1 accuracy of an ONNX classifier with onnxruntime: the first rank-2 output, argmax per row.
Usage: score_onnx.py MODEL DATA_H5 INPUT_KEY LABEL_KEY   (prints the accuracy)"""
import sys

import h5py
import numpy as np
import onnxruntime

model, data_path, input_key, label_key = sys.argv[1:5]
session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
with h5py.File(data_path, "r") as data:
    x, y = data[input_key][:].astype(np.float32), data[label_key][:]
outputs = [o.name for o in session.get_outputs() if len(o.shape) == 2]
scores = session.run(outputs[:1], {session.get_inputs()[0].name: x})[0]
print(f"{float(np.mean(np.argmax(scores, axis=1) == y.reshape(-1))):.6f}")
