#!/usr/bin/env python3
"""Prepares the runtime benchmark: ResNet-50, SqueezeNet, DenseNet-121 and VGG-19 from onnx's bundled
light models (real architectures whose weights are ConstantOfShape placeholders), with the
placeholders replaced by seeded random weights. Writes, under Benchmarks/runtime/models/ (ignored):
  <name>.onnx                 the model, for onnxruntime
  <name>.json + <name>.bin    the same graph for the Swift benchmark (scripts/onnx_json.py format)
  <name>-batch<B>.input.bin / .output.bin   a random input and onnxruntime's output (float32 raw)
and times onnxruntime (same threads, same inputs) into <name>-batch<B>.onnxruntime.json.

  make_models.py [--threads N] [--runs R] [--batches 1,32] [--models resnet50,...] [--time-only]
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from onnx_json import model_json  # noqa: E402

# Seconds of untimed runs before the timed ones, for both runtimes.
WARM_UP_SECONDS = 0.5
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = {"resnet50": "light_resnet50.onnx", "squeezenet": "light_squeezenet.onnx",
          "densenet121": "light_densenet121.onnx", "vgg19": "light_vgg19.onnx"}


def randomize(model, rng):
    """Replaces each ConstantOfShape(shape initializer) by a random initializer of that shape."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    kept_nodes = []
    used_shapes = set()
    for node in graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in initializers:
            shape = [int(v) for v in numpy_helper.to_array(initializers[node.input[0]])]
            name = node.output[0]
            if len(shape) >= 2:
                fan_in = int(np.prod(shape[1:]))
                value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            elif "var" in name or "_s_" in name or "scale" in name or name.endswith("_s"):
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.standard_normal(shape) * 0.01
            graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
            used_shapes.add(node.input[0])
        else:
            kept_nodes.append(node)
    del graph.node[:]
    graph.node.extend(kept_nodes)
    remaining = [t for t in graph.initializer if t.name not in used_shapes]
    del graph.initializer[:]
    graph.initializer.extend(remaining)
    names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in used_shapes]
    del graph.input[:]
    graph.input.extend(inputs)
    # Free the batch axis so one model serves every batch size.
    for value in list(graph.input) + list(graph.output):
        if value.name not in names and value.type.tensor_type.shape.dim:
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
    # Caffe2-era Reshapes hard-code batch 1 ([1, 2048]); 0 copies the batch axis instead.
    for node in graph.node:
        if node.op_type == "Reshape" and node.input[1] in {t.name for t in graph.initializer}:
            target = next(t for t in graph.initializer if t.name == node.input[1])
            shape = numpy_helper.to_array(target).copy()
            if shape.size and shape[0] == 1:
                shape[0] = 0
                target.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), target.name))
    # Tame normalisation parameters so 50+ random layers neither explode nor vanish.
    by_name = {t.name: t for t in graph.initializer}

    def replace(name, value):
        if name in by_name:
            by_name[name].CopyFrom(numpy_helper.from_array(value.astype(np.float32), name))

    for node in graph.node:
        if node.op_type == "BatchNormalization":
            channels = numpy_helper.to_array(by_name[node.input[1]]).shape if node.input[1] in by_name else None
            if channels:
                replace(node.input[1], rng.uniform(0.2, 0.5, channels))
                replace(node.input[2], rng.standard_normal(channels) * 0.01)
                replace(node.input[3], rng.standard_normal(channels) * 0.01)
                replace(node.input[4], rng.uniform(0.5, 1.5, channels))
        elif node.op_type in ("Mul", "Add"):
            for name in node.input:
                if name in by_name:
                    shape = numpy_helper.to_array(by_name[name]).shape
                    replace(name, rng.uniform(0.2, 0.5, shape) if node.op_type == "Mul" else rng.standard_normal(shape) * 0.01)
    del graph.value_info[:]
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--time-only", action="store_true",
                        help="reuse the model and input files already written; only time onnxruntime")
    arguments = parser.parse_args()
    import onnxruntime
    folder = os.path.join(HERE, "models")
    os.makedirs(folder, exist_ok=True)
    for name in arguments.models.split(","):
        rng = np.random.default_rng(2026)
        path = os.path.join(folder, name + ".onnx")
        if not arguments.time_only:
            model = randomize(onnx.load(os.path.join(LIGHT, MODELS[name])), rng)
            onnx.save(model, path)
            with open(os.path.join(folder, name + ".bin"), "wb") as weights:
                description = model_json(model, weights)
            with open(os.path.join(folder, name + ".json"), "w") as handle:
                json.dump(description, handle)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = arguments.threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0]
        for batch in [int(b) for b in arguments.batches.split(",")]:
            shape = [batch] + [int(d) for d in feed.shape[1:]]
            input_path = os.path.join(folder, "%s-batch%d.input.bin" % (name, batch))
            warm_up_start = time.perf_counter()
            if arguments.time_only:
                data = np.fromfile(input_path, dtype=np.float32).reshape(shape)
                output = session.run(None, {feed.name: data})[0]
            else:
                data = rng.standard_normal(shape).astype(np.float32)
                output = session.run(None, {feed.name: data})[0]
                data.tofile(input_path)
                output.astype(np.float32).tofile(os.path.join(folder, "%s-batch%d.output.bin" % (name, batch)))
            # Warm-up as the Swift runner does: runs until half a second has passed (the first run
            # above included). A fresh process's new threads take 50-100 ms to be spread over the
            # cores on the benchmark VM, which one run of a 5 ms model does not cover.
            while time.perf_counter() - warm_up_start < WARM_UP_SECONDS:
                session.run(None, {feed.name: data})
            load = os.getloadavg()[0]
            times = []
            for _ in range(arguments.runs):
                start = time.perf_counter()
                session.run(None, {feed.name: data})
                times.append(time.perf_counter() - start)
            result = {"model": name, "batch": batch, "threads": arguments.threads, "input": feed.name,
                      "input_shape": shape, "output_shape": list(output.shape),
                      "median_ms": statistics.median(times) * 1000, "min_ms": min(times) * 1000, "runs": arguments.runs,
                      "load": load}
            with open(os.path.join(folder, "%s-batch%d.onnxruntime.json" % (name, batch)), "w") as handle:
                json.dump(result, handle)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
