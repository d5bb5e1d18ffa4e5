#!/usr/bin/env bash
# QAT vs post-training int8 on the digits CNN (Examples/digits/cnn.h5, trained by Keras):
#   ptq:      calibrate (minmax, 256 samples) -> quantize int8 weights / uint8 activations -> export
#   qat:      finetune qat:true (3 epochs, Adam 1e-4, seed 0) -> the same calibrate/quantize/export
#   finetune: finetune without qat, same budget -> the same (separates QAT from extra training)
# each with per-channel and per-tensor weights. Prints nnpipe's accuracy after quantize (its own
# runtime, QDQ in float) and onnxruntime's on the exported int8 ONNX. Not CI.
# Usage: Benchmarks/finetune/qat_vs_ptq.sh [nnpipe binary] [python]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
nnpipe="${1:-$root/.build/debug/nnpipe}"
python="${2:-${NNPIPE_PYTHON:-$root/.venv/bin/python3}}"
data="$root/Examples/digits"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

manifest() { # name per_channel finetune-stage-or-empty
    cat > "$work/$1.json" <<JSON
{"version": 1, "name": "$1", "model": "$data/cnn.h5", "output_dir": "out-$1",
 "datasets": {"calib": {"path": "$data/digits.h5", "inputs": "train/images", "limit": 256},
              "train": {"path": "$data/digits.h5", "inputs": "train/images", "labels": "train/y"},
              "test":  {"path": "$data/digits.h5", "inputs": "test/images",  "labels": "test/y"}},
 "evaluate": {"dataset": "test", "metrics": ["accuracy"]},
 "stages": [$3
   {"stage": "calibrate", "dataset": "calib", "method": "minmax"},
   {"stage": "quantize", "weights": "int8", "activations": "uint8", "per_channel": $2},
   {"stage": "export", "path": "int8.onnx"}]}
JSON
}
qat='{"stage": "finetune", "dataset": "train", "epochs": 3, "lr": 0.0001, "qat": true, "seed": 0},'
plain='{"stage": "finetune", "dataset": "train", "epochs": 3, "lr": 0.0001, "seed": 0},'

echo "| pipeline | weights | float before int8 (nnpipe) | int8 (nnpipe runtime) | int8 (onnxruntime) |"
echo "|---|---|---|---|---|"
for granularity in per_channel per_tensor; do
    flag=$([ "$granularity" = per_channel ] && echo true || echo false)
    for pipeline in ptq qat finetune; do
        stage=""
        [ "$pipeline" = qat ] && stage="$qat"
        [ "$pipeline" = finetune ] && stage="$plain"
        name="$pipeline-$granularity"
        manifest "$name" "$flag" "$stage"
        (cd "$work" && "$nnpipe" run --quiet --json "$name.json" > "$name.report" 2>/dev/null)
        read -r float quantized < <("$python" - "$work/$name.report" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
stages = report["stages"]
before = [s for s in stages if s["stage"] == "calibrate"][0]["evaluation"]["accuracy"]
after = [s for s in stages if s["stage"] == "quantize"][0]["evaluation"]["accuracy"]
print(f"{before * 100:.2f}% {after * 100:.2f}%")
PY
)
        onnxruntime=$("$python" "$root/Benchmarks/finetune/score_onnx.py" "$work/out-$name/int8.onnx" "$data/digits.h5" test/images test/y)
        printf '| %s | %s | %s | %s | %.2f%% |\n' "$pipeline" "$granularity" "$float" "$quantized" "$("$python" -c "print($onnxruntime * 100)")"
    done
done
