#!/usr/bin/env bash
# Issue 8's first "done when": gradual (polynomial) pruning to 90% during fine-tuning, on a CNN
# trained and saved by Keras (Examples/digits/cnn.h5) and on one converted by tf2onnx
# (Tests/Fixtures/tf2onnx/plain_cnn_opset13.onnx), both on the digits images. Each pipeline
#   prune 90% global (schedule polynomial 0.5 -> 0.9 over the first 5 of 20 epochs; first and last
#   layers kept dense as by default) -> finetune 20 epochs (Adam 1e-3, cosine) -> export .onnx, .h5
# EPOCHS, END_STEP, FIRST_LAST (include_first_last) and LR_SCHEDULE override those settings.
# then checks the files with onnxruntime and Keras themselves: test accuracy, and the sparsity of
# Conv/Gemm/MatMul weights counted in the exported files: over the layers the stage prunes, and over
# all of them. Not CI.
# Usage: Benchmarks/finetune/gradual_prune.sh [nnpipe binary] [python]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
nnpipe="${1:-$root/.build/release/nnpipe}"
python="${2:-${NNPIPE_PYTHON:-$root/.venv/bin/python3}}"
data="$root/Examples/digits"
epochs="${EPOCHS:-20}" end_step="${END_STEP:-215}" first_last="${FIRST_LAST:-false}" lr_schedule="${LR_SCHEDULE:-cosine}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "| model | float (nnpipe) | after prune step 0 | after finetune (nnpipe) | .onnx in onnxruntime | .h5 in Keras | sparsity of pruned layers .onnx / .h5 | sparsity of all layers |"
echo "|---|---|---|---|---|---|---|---|"
for model in "$data/cnn.h5" "$root/Tests/Fixtures/tf2onnx/plain_cnn_opset13.onnx"; do
    name="$(basename "${model%.*}")"
    # 1347 training images, batch 32: 43 steps per epoch; sparsity rises 0.5 -> 0.9 over steps 0-215.
    cat > "$work/$name.json" <<JSON
{"version": 1, "name": "gradual-$name", "model": "$model", "output_dir": "out-$name",
 "datasets": {"train": {"path": "$data/digits.h5", "inputs": "train/images", "labels": "train/y"},
              "test":  {"path": "$data/digits.h5", "inputs": "test/images",  "labels": "test/y"}},
 "evaluate": {"dataset": "test", "metrics": ["accuracy"]},
 "stages": [
   {"stage": "prune", "sparsity": 0.9, "scope": "global", "include_first_last": $first_last,
    "schedule": {"kind": "polynomial", "initial_sparsity": 0.5, "final_sparsity": 0.9,
                 "begin_step": 0, "end_step": $end_step, "frequency": 10}},
   {"stage": "finetune", "dataset": "train", "epochs": $epochs, "lr": 0.001, "schedule": "$lr_schedule", "seed": 0},
   {"stage": "export", "path": "pruned.onnx"},
   {"stage": "export", "path": "pruned.h5"}]}
JSON
    (cd "$work" && "$nnpipe" run --quiet --json "$name.json" > "$name.report" 2> "$name.log") || {
        echo "| $name | pipeline failed: $(tail -1 "$work/$name.log") |"; continue; }
    FIRST_LAST="$first_last" "$python" - "$work/$name.report" "$work/out-$name" "$data/digits.h5" "$name" <<'PY'
import json, os, sys
os.environ.setdefault("KERAS_BACKEND", "jax")
import h5py, numpy as np, onnx, onnxruntime, keras
from onnx import numpy_helper

report_path, out, data_path, name = sys.argv[1:5]
report = json.load(open(report_path))
stages = report["stages"]
accuracy = lambda kind: [s for s in stages if s["stage"] == kind][0]["evaluation"]["accuracy"] * 100
with h5py.File(data_path, "r") as data:
    x, y = data["test/images"][:].astype(np.float32), data["test/y"][:].reshape(-1)

session = onnxruntime.InferenceSession(f"{out}/pruned.onnx", providers=["CPUExecutionProvider"])
onnx_scores = session.run(None, {session.get_inputs()[0].name: x})[0]
onnx_accuracy = np.mean(np.argmax(onnx_scores, axis=1) == y) * 100
graph = onnx.load(f"{out}/pruned.onnx").graph
initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
weights = [initializers[n.input[1]] for n in graph.node
           if n.op_type in ("Conv", "Gemm", "MatMul") and n.input[1] in initializers]
sparsity = lambda arrays: sum(int((a == 0).sum()) for a in arrays) / sum(a.size for a in arrays) * 100
pruned = lambda arrays: arrays if os.environ.get("FIRST_LAST") == "true" else arrays[1:-1]

keras_model = keras.saving.load_model(f"{out}/pruned.h5", compile=False)
keras_accuracy = np.mean(np.argmax(keras_model.predict(x, verbose=0), axis=1) == y) * 100
kernels = [layer.get_weights()[0] for layer in keras_model.layers
           if type(layer).__name__ in ("Conv2D", "Dense") and layer.get_weights()]

print(f"| {name} | {report['input_evaluation']['accuracy'] * 100:.2f}% | {accuracy('prune'):.2f}% "
      f"| {accuracy('finetune'):.2f}% | {onnx_accuracy:.2f}% | {keras_accuracy:.2f}% "
      f"| {sparsity(pruned(weights)):.3f}% / {sparsity(pruned(kernels)):.3f}% | {sparsity(weights):.3f}% |")
PY
done
