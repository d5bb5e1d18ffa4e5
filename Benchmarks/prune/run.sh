#!/usr/bin/env bash
# The prune issue's Done-when figures on real models and data (digits): 90% global sparsity on the
# skl2onnx MLP and the Keras CNN, 50% channels on a Keras Functional model with Add, Concatenate and
# DepthwiseConv2D (l1 and taylor). Exports are checked with onnx.checker, onnxruntime, Keras 3 and
# `nnpipe eval --save-outputs`. Not CI. Usage: Benchmarks/prune/run.sh [work folder] [python]
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
work="${1:-$(mktemp -d)}"
python="${2:-${NNPIPE_PYTHON:-.venv/bin/python3}}"
mkdir -p "$work"
swift build --product nnpipe >/dev/null
nnpipe="$(swift build --show-bin-path)/nnpipe"
[ -f "$work/residual.h5" ] || KERAS_BACKEND=jax "$python" Benchmarks/prune/make_residual.py "$work/residual.h5"

digits="$root/Examples/digits/digits.h5"
manifest() {  # name model inputs stage-json export-paths...
    local name="$1" model="$2" inputs="$3" stage="$4"; shift 4
    local exports=""
    for path in "$@"; do exports="$exports, {\"stage\": \"export\", \"path\": \"$path\"}"; done
    cat > "$work/$name.json" <<JSON
{"version": 1, "name": "$name", "model": "$model", "output_dir": "$work/$name",
 "datasets": {"train": {"path": "$digits", "inputs": "train/$inputs", "labels": "train/y"},
              "test": {"path": "$digits", "inputs": "test/$inputs", "labels": "test/y"}},
 "evaluate": {"dataset": "test", "metrics": ["accuracy"]},
 "stages": [{"stage": "export", "path": "dense.onnx"}, $stage$exports]}
JSON
    "$nnpipe" run "$work/$name.json" --quiet >/dev/null
}
manifest mlp-90 "$root/Examples/digits/mlp.onnx" x \
    '{"stage": "prune", "sparsity": 0.9, "scope": "global", "include_first_last": true}' pruned.onnx
manifest cnn-90 "$root/Examples/digits/cnn.h5" images \
    '{"stage": "prune", "sparsity": 0.9, "scope": "global", "include_first_last": true}' pruned.onnx pruned.h5
manifest residual-l1 "$work/residual.h5" images \
    '{"stage": "prune", "granularity": "channel", "channel_ratio": 0.5, "criterion": "l1"}' pruned.onnx pruned.h5
manifest residual-taylor "$work/residual.h5" images \
    '{"stage": "prune", "granularity": "channel", "channel_ratio": 0.5, "criterion": "taylor", "dataset": "train"}' pruned.onnx pruned.h5
for name in mlp-90 cnn-90 residual-l1 residual-taylor; do
    inputs=x; [ "$name" = mlp-90 ] || inputs=images
    for file in "$work/$name"/pruned.onnx "$work/$name"/pruned.h5; do
        [ -f "$file" ] || continue
        "$nnpipe" eval "$file" --data "$digits" --inputs "test/$inputs" --labels test/y --quiet \
            --save-outputs "${file%.*}.$(basename "${file##*.}").nnpipe.npz" >/dev/null
    done
done
"$python" Benchmarks/prune/check.py "$work" "$digits"
