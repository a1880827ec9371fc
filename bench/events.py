"""The bench's events: the first k of one seeded stream (bench/generate.py), cached outside
the repo and named by the generator's own hash, so that a changed generator makes new files
(a smaller tier's events are a prefix of a larger's). Shared by bench.py and postgres.py, with the ledger their queries read (record_query_ledger)."""
import hashlib
import os
import pathlib
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
cache = pathlib.Path(os.environ.get("MILESTONES_BENCH_CACHE", pathlib.Path.home() / ".cache" / "milestones-bench"))
cache.mkdir(parents=True, exist_ok=True)


def events_file(k):
    version = hashlib.sha256((root / "bench" / "generate.py").read_bytes()).hexdigest()[:8]
    path = cache / f"events-{k}-{version}.jsonl"
    if not path.exists():
        print(f"generating {k} events into {path}", file=sys.stderr, flush=True)
        with open(str(path) + ".tmp", "w") as f:
            subprocess.run([sys.executable, str(root / "bench" / "generate.py"), str(k), "1"], stdout=f, check=True)
        os.rename(str(path) + ".tmp", path)
    return path


def record_query_ledger(run, binary, ledger, events, work):
    """Records `events` into a new `ledger` as the queries' ledger: in two batches at two
    times (2025-06-01 and 2026-01-01, after init on 2025-01-01), so that `--known-at
    2025-12-31` falls inside it (the first three quarters known) and the bitemporal queries
    have real work and answers. `run(cmd, now=...)` runs a command at that clock time."""
    lines = open(events, "rb").readlines()
    cut = len(lines) * 3 // 4
    (work / "part1.jsonl").write_bytes(b"".join(lines[:cut]))
    (work / "part2.jsonl").write_bytes(b"".join(lines[cut:]))
    del lines
    run([binary, "init", "--name", "bench.example/ledger", "--ledger", str(ledger)], now="2025-01-01T00:00:00Z")
    run([binary, "record", "--quiet", "--ledger", str(ledger), "--file", str(work / "part1.jsonl")], now="2025-06-01T00:00:00Z")
    run([binary, "record", "--quiet", "--ledger", str(ledger), "--file", str(work / "part2.jsonl")], now="2026-01-01T00:00:00Z")
