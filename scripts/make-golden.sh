#!/usr/bin/env bash
# Remakes fixtures/golden/: the bundled NVIDIA events recorded as they became
# known (scripts/record-as-known.py stamps each when its sources were published:
# a test fixture for --known-at, not the product's way), and the JSON answers of the query
# commands at several points of view. The tests compare the CLI against these
# files; after a deliberate change, run this and read the diff before committing.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/milestones}
out=fixtures/golden
rm -f "$out"/*.json "$out"/tables/*.txt "$out"/ledger.sqlite* "$out"/ledger.tree
mkdir -p "$out/tables"
# The ledger is kept (tests rely on its records and their times: the fixture's first
# 27 events as they became known); REMAKE_LEDGER=1 records it again from today's fixture.
if [ "${REMAKE_LEDGER:-0}" = 1 ] || [ ! -f "$out/ledger.jsonl" ]; then
  rm -f "$out"/ledger.*
  MILESTONES_NOW=2023-11-01T00:00:00Z "$bin" init --name example.org/nvidia-ai-factories --ledger "$out/ledger.jsonl" >/dev/null
  python3 scripts/record-as-known.py "$bin" "$out/ledger.jsonl" fixtures/nvidia-ai-factories.jsonl
fi
q() { name=$1; shift; "$bin" "$@" --ledger "$out/ledger.jsonl" --db /tmp/golden-$$.sqlite --format json > "$out/$name.json"; }
for d in 2025-03-31 2025-04-14 2025-12-31 2026-11-26; do
  q "status-$d" status --as-of $d
  q "programs-$d" status --programs --as-of $d
  q "targets-$d" targets --as-of $d
done
q "timeline-2026-11-26" timeline --as-of 2026-11-26
q "status-2025-12-31-known-2025-08-01" status --as-of 2025-12-31 --known-at 2025-08-01
q "targets-2026-11-26-known-2025-08-01" targets --as-of 2026-11-26 --known-at 2025-08-01
q "events-wistron" events --subject wistron-texas --as-of 2026-11-26
# Tables as a terminal of a fixed width shows them (on a pseudo-terminal, no colour).
for w in 60 100; do
  for cmd in status targets; do
    python3 Tests/python/on_terminal.py $w "$bin" $cmd --as-of 2026-11-26 --ledger "$out/ledger.jsonl" --db /tmp/golden-$$.sqlite > "$out/tables/$cmd-$w.txt"
  done
  python3 Tests/python/on_terminal.py $w "$bin" timeline wistron-texas --as-of 2026-11-26 --ledger "$out/ledger.jsonl" --db /tmp/golden-$$.sqlite > "$out/tables/timeline-wistron-$w.txt"
done
rm -f /tmp/golden-$$.sqlite*
echo "remade $(ls $out | wc -l) files in $out"
