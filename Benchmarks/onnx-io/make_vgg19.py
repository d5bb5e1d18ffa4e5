#!/usr/bin/env python3
"""Builds VGG-19 with random float32 weights (~570 MB) from onnx's bundled light_vgg19 model,
whose weights are ConstantOfShape placeholders: each becomes a real initializer.
Usage: make_vgg19.py OUT.onnx"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

source = Path(onnx.__file__).parent / "backend/test/data/light/light_vgg19.onnx"
model = onnx.load(source)
graph = model.graph
shapes = {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name.endswith("__SHAPE")}
rng = np.random.default_rng(0)
kept_nodes = []
for node in graph.node:
    if node.op_type == "ConstantOfShape" and node.input[0] in shapes:
        shape = [int(d) for d in shapes[node.input[0]]]
        weights = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(weights, node.output[0]))
    else:
        kept_nodes.append(node)
del graph.node[:]
graph.node.extend(kept_nodes)
remaining = [t for t in graph.initializer if not t.name.endswith("__SHAPE")]
del graph.initializer[:]
graph.initializer.extend(remaining)
names = {t.name for t in remaining}
inputs = [i for i in graph.input if i.name not in shapes]
del graph.input[:]
graph.input.extend(inputs)
model.ir_version = 4  # IR 4+: initializers need not be listed as graph inputs
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
print(f"{sys.argv[1]}: {Path(sys.argv[1]).stat().st_size / 1e6:.0f} MB, {len(remaining)} initializers")
