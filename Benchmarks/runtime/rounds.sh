#!/usr/bin/env bash
# run.sh several times and the median, over rounds, of each row's ratio nnpipe / onnxruntime.
#   Benchmarks/runtime/rounds.sh [rounds] [threads] [runs] [batches] [models]   e.g. rounds.sh 5 2 11 1
# On this shared VM one run.sh row can move by 1.5x from one minute to the next for either
# runtime (each row times onnxruntime, then nnpipe); a ratio taken in several rounds spread over
# minutes says more than one long row.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
shift || true
PYTHON=${NNPIPE_PYTHON:-.venv/bin/python3}
FOLDER=Benchmarks/runtime/models
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq "$ROUNDS"); do
  Benchmarks/runtime/run.sh "$@" > /dev/null
  "$PYTHON" - "$FOLDER" "$round" >> "$results" <<'PY'
import glob, json, sys
folder, round_number = sys.argv[1], int(sys.argv[2])
ours = {(r["model"], r["batch"]): r for r in map(json.loads, open(folder + "/nnpipe.jsonl"))}
for path in sorted(glob.glob(folder + "/*.onnxruntime.json")):
    theirs = json.load(open(path))
    mine = ours.get((theirs["model"], theirs["batch"]))
    if mine:
        print(json.dumps({"round": round_number, "model": theirs["model"], "batch": theirs["batch"], "onnxruntime_ms": theirs["median_ms"],
                          "nnpipe_ms": mine["median_ms"], "load": theirs.get("load")}))
PY
done
"$PYTHON" - "$results" "$ROUNDS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"{sys.argv[2]} rounds of run.sh; per row the median over rounds of (nnpipe median / onnxruntime median).\n")
print("| model | batch | median ratio | ratios by round | onnxruntime ms (median of rounds) | nnpipe ms (median of rounds) |")
print("|---|---|---|---|---|---|")
for key in sorted({(row["model"], row["batch"]) for row in rows}):
    mine = [row for row in rows if (row["model"], row["batch"]) == key]
    ratios = [row["nnpipe_ms"] / row["onnxruntime_ms"] for row in mine]
    print("| %s | %d | %.2fx | %s | %.1f | %.1f |" % (key[0], key[1], statistics.median(ratios), ", ".join("%.2f" % r for r in ratios),
          statistics.median(row["onnxruntime_ms"] for row in mine), statistics.median(row["nnpipe_ms"] for row in mine)))
PY
