#!/usr/bin/env bash
# One epoch of the finetune stage (release build) against Keras model.fit on the same digits
# models and data, batch 32, Adam, same thread count. Not CI: prints both JSON lines per model.
# Usage: Benchmarks/finetune/run.sh [threads] [python]
set -euo pipefail
cd "$(dirname "$0")/../.."
threads="${1:-1}"
python="${2:-${NNPIPE_PYTHON:-.venv/bin/python3}}"
export NNPIPE_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"
swift build -c release --build-tests -Xswiftc -enable-testing >/dev/null
NNPIPE_BENCHMARK=1 swift test -c release -Xswiftc -enable-testing --skip-build \
    --filter "StageFineTuneTests.FineTuneBenchmarkTests" 2>&1 | grep '^BENCHMARK' | sed 's/^BENCHMARK //'
"$python" Benchmarks/finetune/keras_epoch.py Examples/digits/digits.h5 "$threads"
