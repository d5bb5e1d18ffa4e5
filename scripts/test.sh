#!/usr/bin/env bash
# The README's second command: installs what is missing (system packages, the Python venv
# used for interop checks with onnx, onnxruntime and Keras), then runs the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/system-packages.sh
scripts/setup-python.sh
export NNPIPE_PYTHON="$root/.venv/bin/python3"
swift build --build-tests
swift test --skip-build "$@"
# The in-process stage example builds against this checkout as a user's package would.
swift build --package-path Plugins/RoundStage --build-tests
swift test --package-path Plugins/RoundStage --skip-build
