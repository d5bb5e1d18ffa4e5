#!/usr/bin/env bash
# Distillation vs plain fine-tuning at 95% sparsity with a small fine-tuning set, same steps and
# seeds: prune 95% (magnitude, global, first and last layers included) -> finetune on LIMIT
# training samples (a random subset picked by the data set's shuffle seed = the run's seed),
# without and with distill (teacher: the pipeline's input model) -> nnpipe's accuracy on the
# 450-sample test split. Prints one markdown row per model, seed and setting. Not CI.
#
# Usage: Benchmarks/finetune/distill_vs_plain.sh /abs/path/to/nnpipe
# Environment (defaults in brackets):
#   MODELS   ["mlp cnn"]   mlp = Examples/digits/mlp.onnx (skl2onnx), cnn = Examples/digits/cnn.h5 (Keras 3)
#   SEEDS    ["0 1 2 3 4"]     each seed picks its own subset and training order; plain and distill share both
#   LIMIT    [100]         training samples (0: the whole 1347-sample training split)
#   EPOCHS   [100]         passes over the LIMIT samples (batch 32: 4 steps per epoch at LIMIT=100)
#   SETTINGS ["plain T=4,alpha=0.9 T=8,alpha=1"]  plain, or T=<temperature>,alpha=<alpha>
#   MLP_LR [0.01]  CNN_LR [0.001]      Adam learning rates
set -euo pipefail
nnpipe="${1:?usage: $0 /absolute/path/to/nnpipe}"
case "$nnpipe" in /*) ;; *) echo "give the nnpipe binary as an absolute path" >&2; exit 2 ;; esac
root="$(cd "$(dirname "$0")/../.." && pwd)"
read -r -a models <<< "${MODELS:-mlp cnn}"
read -r -a seeds <<< "${SEEDS:-0 1 2 3 4}"
read -r -a settings <<< "${SETTINGS:-plain T=4,alpha=0.9 T=8,alpha=1}"
limit="${LIMIT:-100}"
epochs="${EPOCHS:-100}"
data="$root/Examples/digits"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() { # model-file input-key lr seed finetune-extra
    local subset=""
    [ "$limit" -gt 0 ] && subset=", \"limit\": $limit, \"shuffle\": true, \"seed\": $4"
    cat > "$work/p.json" <<JSON
{"version": 1, "name": "distill", "model": "$data/$1", "output_dir": "out",
 "datasets": {"train": {"path": "$data/digits.h5", "inputs": "train/$2", "labels": "train/y"$subset},
              "test":  {"path": "$data/digits.h5", "inputs": "test/$2",  "labels": "test/y"}},
 "evaluate": {"dataset": "test", "metrics": ["accuracy"]},
 "stages": [{"stage": "prune", "sparsity": 0.95, "scope": "global", "include_first_last": true},
            {"stage": "finetune", "dataset": "train", "epochs": $epochs, "lr": $3, "seed": $4$5}]}
JSON
    (cd "$work" && "$nnpipe" run --quiet --json p.json 2>/dev/null) | python3 -c '
import json, sys
report = json.load(sys.stdin)
stage = lambda kind: [s for s in report["stages"] if s["stage"] == kind][0]
accuracy = lambda kind: stage(kind)["evaluation"]["accuracy"] * 100
print("%.2f %.2f %.2f %d" % (report["input_evaluation"]["accuracy"] * 100, accuracy("prune"), accuracy("finetune"),
                             stage("finetune")["details"]["steps"]))'
}

echo "| model | samples | seed | setting | float | 95% pruned | after $epochs epochs | steps |"
echo "|---|---|---|---|---|---|---|---|"
for model in "${models[@]}"; do
    case "$model" in
        mlp) set -- mlp.onnx x "${MLP_LR:-0.01}" ;;
        cnn) set -- cnn.h5 images "${CNN_LR:-0.001}" ;;
        *) echo "unknown model $model" >&2; exit 2 ;;
    esac
    for seed in "${seeds[@]}"; do
        for setting in "${settings[@]}"; do
            extra=""
            if [ "$setting" != plain ]; then
                temperature="${setting#T=}"; temperature="${temperature%%,*}"
                alpha="${setting##*alpha=}"
                extra=", \"distill\": {\"temperature\": $temperature, \"alpha\": $alpha}"
            fi
            read -r float pruned tuned steps < <(run "$1" "$2" "$3" "$seed" "$extra")
            echo "| $model | ${limit/#0/1347} | $seed | $setting | $float% | $pruned% | $tuned% | $steps |"
        done
    done
done
