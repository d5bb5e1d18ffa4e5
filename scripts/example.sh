#!/usr/bin/env bash
# The README's first command: installs what is missing, builds nnpipe (release), runs the
# bundled example pipeline on the bundled model and data, and prints the report.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/system-packages.sh
swift build -c release --product nnpipe
nnpipe="$(swift build -c release --show-bin-path)/nnpipe"
"$nnpipe" validate Examples/digits/pipeline.json
"$nnpipe" run Examples/digits/pipeline.json
echo
echo "== Examples/digits/out/report.json"
cat Examples/digits/out/report.json
