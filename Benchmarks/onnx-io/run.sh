#!/bin/sh
# Times ONNX read + write on VGG-19 with random weights (~570 MB): nnpipe vs Python onnx.load + onnx.save.
# Wall time and peak RSS from /usr/bin/time -v. Needs the venv (scripts/setup-python.sh) and a release build.
# Usage: Benchmarks/onnx-io/run.sh [WORKDIR]   (default /tmp/nnpipe-onnx-io)
set -eu
cd "$(dirname "$0")/../.."
work="${1:-/tmp/nnpipe-onnx-io}"
python="${NNPIPE_PYTHON:-.venv/bin/python3}"
mkdir -p "$work"
[ -f "$work/vgg19.onnx" ] || "$python" Benchmarks/onnx-io/make_vgg19.py "$work/vgg19.onnx"
swift build -c release --product onnx-roundtrip >/dev/null
size=$(stat -c %s "$work/vgg19.onnx")

measure() {  # label, command...
    label="$1"; shift
    sync
    /usr/bin/time -v "$@" 2>"$work/time.txt" >/dev/null
    wall=$(grep "Elapsed (wall clock)" "$work/time.txt" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "$work/time.txt" | awk '{print $NF}')
    ratio=$(awk -v r="$rss" -v s="$size" 'BEGIN { printf "%.2f", r * 1024 / s }')
    printf '| %s | %s | %d MB | %sx |\n' "$label" "$wall" $((rss / 1024)) "$ratio"
}

cat "$work/vgg19.onnx" >/dev/null  # warm the page cache for every contender alike
echo "model: $((size / 1000000)) MB"
echo "| tool | wall (m:ss) | peak RSS | RSS / file |"
echo "|---|---|---|---|"
measure "onnx-roundtrip (nnpipe ONNX read + write)" .build/release/onnx-roundtrip "$work/vgg19.onnx" "$work/out-nnpipe.onnx"
if [ -x .build/release/nnpipe ] && .build/release/nnpipe convert --help >/dev/null 2>&1; then
    measure "nnpipe convert" .build/release/nnpipe convert "$work/vgg19.onnx" "$work/out-convert.onnx"
fi
measure "python onnx.load + onnx.save" "$python" -c "import onnx, sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])" "$work/vgg19.onnx" "$work/out-python.onnx"
"$python" - "$work/vgg19.onnx" "$work/out-nnpipe.onnx" <<'PY'
import sys, onnx
from onnx import numpy_helper
a, b = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
same = all(x.raw_data == y.raw_data and x.name == y.name for x, y in zip(a.graph.initializer, b.graph.initializer))
print("initializers byte-identical:", same and len(a.graph.initializer) == len(b.graph.initializer))
PY
