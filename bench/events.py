"""The bench's events: the first k of one seeded stream (bench/generate.py), cached outside
the repo and named by the generator's own hash, so that a changed generator makes new files
(a smaller tier's events are a prefix of a larger's). Shared by bench.py and postgres.py."""
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
