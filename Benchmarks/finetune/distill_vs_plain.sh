#!/usr/bin/env bash
# Distillation vs plain fine-tuning at 95% sparsity, same epoch budget, on the digits data:
# prune 95% (magnitude, global, first and last layers included) -> finetune, with and without
# distill (teacher: the pipeline's input model). Prints nnpipe's test accuracy after the prune
# and after the fine-tune for each model, seed and setting. Not CI.
# Usage: SEEDS="0 1 2" Benchmarks/finetune/distill_vs_plain.sh [nnpipe binary] [epochs]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
nnpipe="${1:-$root/.build/debug/nnpipe}"
epochs="${2:-3}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
data="$root/Examples/digits"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() { # model input-prefix lr seed finetune-extra
    cat > "$work/p.json" <<JSON
{"version": 1, "name": "distill", "model": "$data/$1", "output_dir": "out",
 "datasets": {"train": {"path": "$data/digits.h5", "inputs": "train/$2", "labels": "train/y"},
              "test":  {"path": "$data/digits.h5", "inputs": "test/$2",  "labels": "test/y"}},
 "evaluate": {"dataset": "test", "metrics": ["accuracy"]},
 "stages": [{"stage": "prune", "sparsity": 0.95, "scope": "global", "include_first_last": true},
            {"stage": "finetune", "dataset": "train", "epochs": $epochs, "lr": $3, "seed": $4$5}]}
JSON
    (cd "$work" && "$nnpipe" run --quiet --json p.json 2>/dev/null) | python3 -c '
import json, sys
report = json.load(sys.stdin)
accuracy = lambda kind: [s for s in report["stages"] if s["stage"] == kind][0]["evaluation"]["accuracy"] * 100
print("%.2f%% %.2f%% %.2f%%" % (report["input_evaluation"]["accuracy"] * 100, accuracy("prune"), accuracy("finetune")))'
}

echo "| model | seed | setting | float | 95% pruned | after $epochs epochs |"
echo "|---|---|---|---|---|---|"
for model in "mlp.onnx x 0.01" "cnn.h5 images 0.001"; do
    set -- $model
    for seed in "${seeds[@]}"; do
        for setting in plain "distill T=4 alpha=0.5" "distill T=4 alpha=0.9"; do
            extra=""
            case "$setting" in
                "distill T=4 alpha=0.5") extra=', "distill": {"temperature": 4, "alpha": 0.5}' ;;
                "distill T=4 alpha=0.9") extra=', "distill": {"temperature": 4, "alpha": 0.9}' ;;
            esac
            read -r float pruned tuned < <(run "$1" "$2" "$3" "$seed" "$extra")
            echo "| ${1%%.*} | $seed | $setting | $float | $pruned | $tuned |"
        done
    done
done
