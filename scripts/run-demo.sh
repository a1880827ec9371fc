#!/usr/bin/env bash
# The main job of `make run`: the bundled NVIDIA fixture recorded as it became
# known, verified, queried at several points of view, checkpointed and proven;
# then one byte tampered in a copy to show verify catching it.
set -euo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
scratch="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
fixture="$root/fixtures/nvidia-ai-factories.jsonl"
mkdir -p "$scratch"
cd "$scratch"
rm -f ai.* tampered.* signer.* today.checkpoint claim.json
export MILESTONES_LEDGER="$scratch/ai.jsonl"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "scratch folder: $scratch"
step "milestones init --name example.org/nvidia-ai-factories"
MILESTONES_NOW=2023-11-01T00:00:00Z "$bin" init --name example.org/nvidia-ai-factories
step "record fixtures/nvidia-ai-factories.jsonl, each event stamped when it became known"
python3 "$root/scripts/record-as-known.py" "$bin" "$MILESTONES_LEDGER" "$fixture"
echo "recorded $(($(wc -l < "$MILESTONES_LEDGER") - 1)) events"
step "milestones verify"
"$bin" verify
step "milestones status --as-of 2025-04-14   (the day of the announcement)"
"$bin" status --as-of 2025-04-14 --format table
step "milestones status   (as of today)"
"$bin" status --format table
step "milestones targets   (promised vs actual, with slips)"
"$bin" targets --format table
step "what we knew then vs now: Wistron's plant as of 2025-12-31, known at 2025-08-01 vs now"
"$bin" status --as-of 2025-12-31 --known-at 2025-08-01 --format csv | grep -E '^subject|wistron'
"$bin" status --as-of 2025-12-31 --format csv | grep -E 'wistron'
step "milestones timeline wistron-texas"
"$bin" timeline wistron-texas --format table
step "a signed checkpoint and a proof that record 5 is in it"
"$bin" keygen --name example.org/nvidia-ai-factories --out signer
"$bin" checkpoint --key signer.key --out today.checkpoint
cat today.checkpoint
"$bin" prove --seq 5 --bundle --checkpoint today.checkpoint --out claim.json
"$bin" verify-proof --bundle claim.json --key signer.vkey
step "one byte changed in a copy: verify must fail"
python3 - "$MILESTONES_LEDGER" tampered.jsonl <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.index(b"500000000000")
b[i] = ord("6")
open(sys.argv[2], "wb").write(b)
PY
if "$bin" verify --ledger tampered.jsonl; then echo "tampering NOT detected"; exit 1; else echo "(exit $? as expected)"; fi
