#!/usr/bin/env bash
# Rewrites the README's stage reference from `nnpipe stages --markdown`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
swift build --product nnpipe >/dev/null
reference="$(mktemp)"
"$(swift build --show-bin-path)/nnpipe" stages --markdown > "$reference"
python3 - "$reference" <<'PY'
import sys, re
reference = open(sys.argv[1]).read().rstrip("\n")
text = open("README.md").read()
text = re.sub(r"<!-- stages:begin -->.*<!-- stages:end -->",
              lambda _: "<!-- stages:begin -->\n" + reference + "\n<!-- stages:end -->", text, flags=re.S)
open("README.md", "w").write(text)
PY
rm -f "$reference"
