#!/usr/bin/env bash
# The README's first command: installs what is missing, builds nnpipe (release), runs the
# bundled example pipelines on the bundled models and data, and prints the reports.
#   Examples/digits/pipeline.json        skl2onnx MLP (.onnx): prune, calibrate, quantise to int8 QDQ
#   Examples/digits/keras-pipeline.json  Keras 3 CNN (.h5): to ONNX, channel-prune, back to .h5, int8 ONNX
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/system-packages.sh
swift build -c release --product nnpipe
nnpipe="$(swift build -c release --show-bin-path)/nnpipe"
for pipeline in Examples/digits/pipeline.json Examples/digits/keras-pipeline.json; do
    echo "== nnpipe run $pipeline"
    "$nnpipe" validate "$pipeline"
    "$nnpipe" run "$pipeline"
    echo
done
echo "== Examples/digits/out/mlp/report.json"
cat Examples/digits/out/mlp/report.json
