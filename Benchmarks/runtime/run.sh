#!/usr/bin/env bash
# Median latency of NNPipeRuntime vs onnxruntime, same machine, threads and inputs.
#   Benchmarks/runtime/run.sh [threads] [runs] [batches] [models]
# Needs the interop venv (scripts/setup-python.sh); builds the Swift runner in release mode.
# Each row is timed back to back (onnxruntime, then nnpipe) so both see the same machine load;
# the table's load column is the 1-minute load average when onnxruntime's timing started.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${1:-$(nproc)}
RUNS=${2:-5}
BATCHES=${3:-1,32}
MODELS=${4:-resnet50,squeezenet,densenet121,vgg19}
PYTHON=${NNPIPE_PYTHON:-.venv/bin/python3}
FOLDER=Benchmarks/runtime/models
swift build -c release --product RuntimeBenchmark
# Models, inputs and onnxruntime's reference outputs (one timed run; the rows below time again).
"$PYTHON" Benchmarks/runtime/make_models.py --threads "$THREADS" --runs 1 --batches "$BATCHES" --models "$MODELS"
: > "$FOLDER/nnpipe.jsonl"
for model in ${MODELS//,/ }; do
  for batch in ${BATCHES//,/ }; do
    "$PYTHON" Benchmarks/runtime/make_models.py --time-only --threads "$THREADS" --runs "$RUNS" --batches "$batch" --models "$model"
    .build/release/RuntimeBenchmark "$FOLDER" "$model" "$batch" --threads "$THREADS" --runs "$RUNS" | tee -a "$FOLDER/nnpipe.jsonl"
  done
done
"$PYTHON" - "$FOLDER" <<'PY'
import glob, json, sys
folder = sys.argv[1]
ours = {(r["model"], r["batch"]): r for r in map(json.loads, open(folder + "/nnpipe.jsonl"))}
# Medians are the verdict; minimums (fastest run of each) show what load left of the gap.
print("| model | batch | threads | load | onnxruntime ms | nnpipe ms | ratio | min ratio | max abs diff |")
print("|---|---|---|---|---|---|---|---|---|")
for path in sorted(glob.glob(folder + "/*.onnxruntime.json")):
    theirs = json.load(open(path))
    mine = ours.get((theirs["model"], theirs["batch"]))
    if mine:
        best = mine.get("min_ms", float("nan")) / theirs.get("min_ms", float("nan"))
        print("| %s | %d | %d | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.2g |" % (theirs["model"], theirs["batch"], theirs["threads"],
              theirs.get("load", float("nan")), theirs["median_ms"], mine["median_ms"], mine["median_ms"] / theirs["median_ms"],
              best, mine["max_abs_difference"]))
PY
