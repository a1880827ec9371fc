#!/usr/bin/env bash
# The main job of `make run`: the bundled NVIDIA fixture recorded in one
# all-or-nothing batch, verified, and queried by the three clocks — as of a
# date, as known at a time, and as published by a date (no clock is faked:
# each event's sources say when it became public) — including a correction
# recorded by the product's own means; then checkpointed and proven, and one
# byte tampered in a copy to show verify catching it.
set -euo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
scratch="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
fixture="$root/fixtures/nvidia-ai-factories.jsonl"
mkdir -p "$scratch"
cd "$scratch"
rm -rf ai.* tampered.* signer.* today.checkpoint claim.json report.html site mirror.*
export MILESTONES_LEDGER="$scratch/ai.jsonl"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "scratch folder: $scratch"
step "milestones init --name example.org/nvidia-ai-factories"
"$bin" init --name example.org/nvidia-ai-factories
step "milestones record: the fixture as first written (its first 27 lines), then the December 2026 fact-check and the events since"
# Two real batches, a second apart: --known-at can then show what the ledger said before the fact-check.
head -n 27 "$fixture" | "$bin" record --file - --quiet
before=$(tail -n 1 "$MILESTONES_LEDGER" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["recorded_at"])')
sleep 1
"$bin" record --file "$fixture" --quiet
echo "recorded $(($(wc -l < "$MILESTONES_LEDGER") - 1)) events; the first 27 by $before"
step "milestones verify"
"$bin" verify
step "milestones status --as-of 2025-04-14   (the day of the announcement)"
"$bin" status --as-of 2025-04-14
step "milestones status   (as of today)"
"$bin" status
step "milestones targets   (promised vs actual: dates as intervals, slips as certain bounds)"
"$bin" targets
step "the publication clock: what had been published by 2025-06-30, about the state as of today"
"$bin" targets --published-by 2025-06-30
step "what the ledger said before the fact-check (--known-at $before) and after: TSMC Phoenix as of 2025-12-31"
"$bin" status --as-of 2025-12-31 --known-at "$before" --format csv | grep -E '^subject|tsmc'
"$bin" status --as-of 2025-12-31 --format csv | grep -E 'tsmc'
step "a correction is an event with its own sources and reason: Wistron's board approval, first dated 16 May 2025"
"$bin" show wistron-texas-investment-2025-05-16
step "milestones timeline wistron-texas"
"$bin" timeline wistron-texas
step "milestones report --out report.html   (one self-contained page: open it in a browser)"
"$bin" report --out report.html --force
step "what changed in what had been published between mid-2025 and the end of 2025"
"$bin" diff --from 2025-06-30 --to 2025-12-31 --by published --format csv | cut -c1-160 | head -20
step "a signed checkpoint and a proof that record 5 is in it"
"$bin" keygen --name example.org/nvidia-ai-factories --out signer
"$bin" checkpoint --key signer.key --out today.checkpoint
cat today.checkpoint
"$bin" prove --seq 5 --bundle --checkpoint today.checkpoint --out claim.json
"$bin" verify-proof --bundle claim.json --key signer.vkey
step "publish the ledger as static C2SP tiles (any web server can serve them); a mirror follows and checks it"
"$bin" publish site --key signer.key
"$bin" mirror site --key signer.vkey --ledger mirror.jsonl
cmp "$MILESTONES_LEDGER" mirror.jsonl && echo "the mirror is byte-identical to the ledger"
step "one byte changed in a copy: verify must fail"
python3 - "$MILESTONES_LEDGER" tampered.jsonl <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"500000000000")
b[i] = ord("6")
open(sys.argv[2], "wb").write(b)
PY
if "$bin" verify --ledger tampered.jsonl; then echo "tampering NOT detected"; exit 1; else echo "(exit $? as expected)"; fi
