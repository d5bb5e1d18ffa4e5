#!/usr/bin/env bash
# One epoch of the finetune stage (release nnpipe) against Keras model.fit on the same digits
# models and data, batch 32, Adam, shuffled, same thread count. Not CI: prints JSON lines.
# nnpipe: one `nnpipe run` of 6 epochs per model; the best of epochs 2-6 from report.json's
# history (epoch 1 pays the warm-up, as Keras's first fit does).
# Usage: Benchmarks/finetune/run.sh [threads] [python]
#   NNPIPE_KERAS=tf_keras Benchmarks/finetune/run.sh 1 /tmp/venv-tf/bin/python   # tf_keras, as the issue asks
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
threads="${1:-1}"
python="${2:-${NNPIPE_PYTHON:-.venv/bin/python3}}"
export NNPIPE_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
swift build -c release --product nnpipe >/dev/null
nnpipe="$(swift build -c release --show-bin-path)/nnpipe"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for model in "mlp Examples/digits/mlp.onnx" "cnn Tests/Fixtures/finetune/digits_cnn.onnx"; do
    set -- $model
    cat > "$work/$1.json" <<JSON
{"version": 1, "name": "bench-$1", "model": "$root/$2", "output_dir": "out-$1",
 "datasets": {"train": {"path": "$root/Examples/digits/digits.h5", "inputs": "train/x", "labels": "train/y"}},
 "stages": [{"stage": "finetune", "dataset": "train", "epochs": 6, "batch_size": 32, "optimizer": "adam", "lr": 0.001}]}
JSON
    (cd "$work" && "$nnpipe" run --quiet "$1.json" >/dev/null)
    python3 - "$work/out-$1/report.json" "$1" "$threads" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
history = report["stages"][0]["details"]["history"]
best = max(epoch["samples_per_second"] for epoch in history[1:])
print(json.dumps({"model": sys.argv[2], "framework": "nnpipe finetune", "threads": int(sys.argv[3]),
                  "epoch_seconds": round(1347 / best, 4), "samples_per_second": round(best)}))
PY
done
"$python" Benchmarks/finetune/keras_epoch.py Examples/digits/digits.h5 "$threads"
