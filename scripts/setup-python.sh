#!/usr/bin/env bash
# Creates <repo>/.venv with the packages the interop tests use (scripts/requirements-test.txt).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -x "$root/.venv/bin/python3" ]; then
    python3 -m venv "$root/.venv" || {
        echo "python3 -m venv failed; on Debian install python3-venv" >&2; exit 1; }
fi
"$root/.venv/bin/python3" -m pip install --quiet --disable-pip-version-check \
    -r "$root/scripts/requirements-test.txt"
