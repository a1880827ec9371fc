#!/usr/bin/env python3
"""Records a JSON Lines file of events one at a time, each stamped as if
recorded when it became known: MILESTONES_NOW is the latest `published` date
of its sources (else its own date), at noon UTC. Events go in the order they
became known, as far as the referential rules allow (an event waits for the
announcement, target or event it names); recorded_at never goes backwards,
so an event that had to wait is stamped with the later time. This gives the
bundled fixture a realistic transaction-time history for `--known-at`.

Usage: record-as-known.py MILESTONES_BINARY LEDGER EVENTS.jsonl
"""
import json, os, subprocess, sys

binary, ledger, path = sys.argv[1:4]
pending = [(n, line, json.loads(line)) for n, line in enumerate(open(path, encoding="utf-8"), 1) if line.strip()]


def known(e):
    return max([s.get("published", "") for s in e.get("sources", [])] + [e["date"]])


subjects, ids, targets = set(), set(), set()


def ready(e):
    t = e["type"]
    if t not in ("program.announced", "facility.announced") and e["subject"] not in subjects:
        return False
    if "program" in e and e["program"] not in subjects:
        return False
    if t in ("event.corrected", "event.retracted") and e.get("corrects", e.get("retracts")) not in ids:
        return False
    if t == "target.revised" and (e["subject"], e["milestone"]) not in targets:
        return False
    return True


while pending:
    candidates = [p for p in pending if ready(p[2])] or pending[:1]
    n, line, e = min(candidates, key=lambda p: (known(p[2]), p[0]))
    pending.remove((n, line, e))
    env = dict(os.environ, MILESTONES_NOW=known(e) + "T12:00:00Z")
    r = subprocess.run([binary, "record", "--quiet", "--ledger", ledger, "--file", "-"], input=line.encode(), env=env)
    if r.returncode != 0:
        sys.exit(f"{path}:{n}: record failed with exit {r.returncode}")
    subjects.add(e["subject"])
    ids.add(e.get("id"))
    if e["type"] == "target.set":
        targets.add((e["subject"], e["milestone"]))
