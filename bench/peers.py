#!/usr/bin/env python3
"""The Python peers of the bench, run inside its throwaway virtualenv.

Usage: peers.py EVENTS.jsonl LEDGER.jsonl N WORKDIR
- eventsourcing 9.5.6: the first N events appended to one aggregate's history
  in its SQLite store (one transaction), then the aggregate replayed;
- pymerkle 7.0.0: the first N ledger lines appended as leaves to an in-memory
  RFC 6962-style tree (security on: 0x00/0x01 prefixes), then one inclusion proof,
  one consistency proof (from N/2 leaves to N), and one more leaf with the new root.
Prints a JSON object of rates and times.
"""
import json, os, sys, time

events_path, ledger_path, n, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = []
with open(events_path, encoding="utf-8") as f:
    for i, line in enumerate(f):
        if i >= n:
            break
        lines.append(line.rstrip("\n"))

os.environ["PERSISTENCE_MODULE"] = "eventsourcing.sqlite"
os.environ["SQLITE_DBNAME"] = os.path.join(work, "eventsourcing.sqlite")
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event


class Ledger(Aggregate):
    @event("Recorded")
    def record(self, line: str):
        self.count = getattr(self, "count", 0) + 1


class Milestones(Application):
    pass


app = Milestones()
t0 = time.perf_counter()
ledger = Ledger()
for line in lines:
    ledger.record(line)
app.save(ledger)
append = time.perf_counter() - t0
t0 = time.perf_counter()
replayed = app.repository.get(ledger.id)
replay = time.perf_counter() - t0
assert replayed.count == len(lines)

from pymerkle import InmemoryTree

leaves = []
with open(ledger_path, "rb") as f:
    for i, line in enumerate(f):
        if i >= n:
            break
        leaves.append(line.rstrip(b"\n"))
tree = InmemoryTree(algorithm="sha256")
t0 = time.perf_counter()
for leaf in leaves:
    tree.append_entry(leaf)
tree_append = time.perf_counter() - t0
t0 = time.perf_counter()
tree.prove_inclusion(len(leaves) // 3 + 1)
prove = time.perf_counter() - t0
t0 = time.perf_counter()
tree.prove_consistency(len(leaves) // 2, len(leaves))
consistency = time.perf_counter() - t0
t0 = time.perf_counter()
tree.append_entry(b"one more")
tree.get_state()
state = time.perf_counter() - t0

print(json.dumps({"n": len(lines), "eventsourcing_append_per_s": len(lines) / append, "eventsourcing_replay_per_s": len(lines) / replay,
                  "pymerkle_append_s": tree_append, "pymerkle_prove_s": prove, "pymerkle_consistency_s": consistency,
                  "pymerkle_state_s": state}))
