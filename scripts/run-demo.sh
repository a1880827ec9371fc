#!/usr/bin/env bash
# The main job of `make run`: a ledger from the bundled NVIDIA fixture, verified,
# then one byte tampered in a copy to show verify catching it.
set -euo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
scratch="$2"
fixture="$(cd "$(dirname "$0")/.." && pwd)/fixtures/nvidia-ai-factories.jsonl"
mkdir -p "$scratch"
cd "$scratch"
rm -f ai.jsonl ai.sqlite tampered.jsonl
export MILESTONES_LEDGER="$scratch/ai.jsonl"
echo "== scratch folder: $scratch"
echo "== milestones init --name example.org/nvidia-ai-factories"
"$bin" init --name example.org/nvidia-ai-factories
echo "== milestones record --file fixtures/nvidia-ai-factories.jsonl"
"$bin" record --file "$fixture"
echo "== milestones verify"
"$bin" verify
echo "== the recorded events (seq, date, type, subject)"
python3 - "$MILESTONES_LEDGER" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line); e = r["event"]
    print(f'{r["seq"]:>3}  {e["date"]}  {e["type"]:<22} {e.get("subject", "")}')
PY
echo "== one byte changed in a copy: verify must fail"
python3 - "$MILESTONES_LEDGER" tampered.jsonl <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"500000000000")
b[i] = ord("6")
open(sys.argv[2], "wb").write(b)
PY
if "$bin" verify --ledger tampered.jsonl; then echo "tampering NOT detected"; exit 1; else echo "(exit $? as expected)"; fi
