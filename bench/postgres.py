#!/usr/bin/env python3
"""The PostgreSQL read models, measured against baselines in the same run
(docs/read-models.md, "PostgreSQL"; issue 25). Run beside a server:

    scripts/with-postgres.sh python3 bench/postgres.py MILESTONES_BINARY N [N ...] [--runs 3] [--readers 16] [--queries 10]

(`make bench` does, with a throw-away server; MILESTONES_TEST_PG is the
server's URL without a database.) For each ledger size N (the seeded events
of bench/generate.py, cached as bench.py caches them):

- first projection into PostgreSQL (a new database and no working copy: the
  whole catch-up, the SQLite working copy's projection included, then the
  COPY), and the COPY part alone (the working copy already up to date),
  each against psql loading the same lines itself: COPY into a jsonb column,
  then INSERT … SELECT into an indexed table (primary key on seq, unique id,
  indexes on (subject, type, date) and (recorded_at, seq)), from nothing;
  run alternately;
- `status` (as of 2022-06-30, known at 2025-12-31, JSON; the ledger recorded in
  two batches, on 2025-06-01 and 2026-01-01, as bench.py records it) under R concurrent
  readers, each running it Q times in a row: the median and p99 latency of
  the R×Q runs, from PostgreSQL (a reader with the ledger: catch-up check,
  then the query; and a --read-only reader) against the same from the
  SQLite file on the same machine.

Writes bench/results/postgres-DATE.md (ratios first) and prints it.
"""
import concurrent.futures
import datetime
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

args = [a for a in sys.argv[1:]]


def option(name, default):
    if name in args:
        i = args.index(name)
        value = int(args[i + 1])
        del args[i:i + 2]
        return value
    return default


runs = option("--runs", 3)
readers = option("--readers", 16)
queries = option("--queries", 10)
binary = os.path.abspath(args[0])
sizes = [int(a) for a in args[1:]]
server = os.environ.get("MILESTONES_TEST_PG")
if not server:
    sys.exit("bench/postgres.py: MILESTONES_TEST_PG is not set; run it under scripts/with-postgres.sh (make bench does)")
root = pathlib.Path(__file__).resolve().parent.parent
cache = pathlib.Path(os.environ.get("MILESTONES_BENCH_CACHE", pathlib.Path.home() / ".cache" / "milestones-bench"))
cache.mkdir(parents=True, exist_ok=True)
work = pathlib.Path(tempfile.mkdtemp(prefix="milestones-bench-pg-"))
env = dict(os.environ, MILESTONES_NOW="2026-01-01T00:00:00Z")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, stdin=None, now=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=open(stdin, "rb") if stdin else subprocess.DEVNULL, capture_output=True,
                       env=dict(env, MILESTONES_NOW=now) if now else env)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stderr.decode()[-2000:]}")
    return seconds, p.stdout


def db_url(database):
    """A database's URL, without TLS: the test server offers it (make test checks every sslmode), but
    these figures are the read models', on one machine; psql and milestones connect the same way."""
    return f"{server}/{database}?sslmode=disable"


def psql(database, sql):
    return run(["psql", db_url(database), "-XqAt", "-v", "ON_ERROR_STOP=1", "-c", sql])


from events import events_file, record_query_ledger  # noqa: E402 (bench/events.py: the cached, seeded events)


def new_database(name):
    psql("postgres", f"DROP DATABASE IF EXISTS {name}")
    psql("postgres", f"CREATE DATABASE {name}")
    return db_url(name)


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def under_readers(cmd):
    """Latencies of `readers` processes each running `cmd` `queries` times in a row, all at once."""
    def reader(_):
        return [run(cmd)[0] for _ in range(queries)]
    with concurrent.futures.ThreadPoolExecutor(readers) as pool:
        lists = list(pool.map(reader, range(readers)))
    return [t for l in lists for t in l]


rows = []
for n in sizes:
    log(f"== {n} events")
    ledger = work / f"l{n}.jsonl"
    working = work / f"l{n}.sqlite"
    # The ledger bench.py's queries read (two batches at two times), so that status has answers.
    record_query_ledger(run, binary, ledger, events_file(n), work)
    size = ledger.stat().st_size
    first = [binary, "events", "--ledger", str(ledger), "--type", "site.secured", "--since", "3000-01-01", "--format", "json"]

    # psql's own load of the same lines (the baseline), from nothing.
    load = work / "load.sql"
    load.write_text(f"""
CREATE TABLE raw (line jsonb);
\\copy raw (line) FROM '{ledger}' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')
CREATE TABLE events (seq bigint PRIMARY KEY, id text NOT NULL UNIQUE, type text NOT NULL, subject text, date text NOT NULL,
                     recorded_at text NOT NULL, sha256 text NOT NULL, event jsonb NOT NULL);
CREATE INDEX events_subject ON events (subject, type, date);
CREATE INDEX events_recorded_at ON events (recorded_at, seq);
INSERT INTO events SELECT (line->>'seq')::bigint, line->'event'->>'id', line->'event'->>'type', line->'event'->>'subject',
       line->'event'->>'date', line->>'recorded_at', line->>'sha256', line->'event' FROM raw;
DROP TABLE raw;
""")
    base_cmd = ["psql", db_url("bench_base"), "-XqAt", "-v", "ON_ERROR_STOP=1", "-f", str(load)]
    whole, copy_only, baseline = [], [], []
    for i in range(runs):
        new_database("bench_base")
        baseline.append(run(base_cmd)[0])
        # The whole first projection: no database layout, no working copy.
        for p in work.glob(f"l{n}.sqlite*"):
            p.unlink()
        url = new_database("bench_pg")
        whole.append(run(first + ["--db", url])[0])
        # The COPY part: the working copy up to date, PostgreSQL empty.
        url = new_database("bench_pg")
        copy_only.append(run(first + ["--db", url])[0])
        log(f"  run {i + 1}: psql {baseline[-1]:.2f} s, ours {whole[-1]:.2f} s, COPY part {copy_only[-1]:.2f} s")
    b, w, c = statistics.median(baseline), statistics.median(whole), statistics.median(copy_only)
    records = psql("bench_pg", "SELECT count(*) FROM milestones.records")[1].decode().strip()

    # Status under concurrent readers.
    status = [binary, "status", "--ledger", str(ledger), "--as-of", "2022-06-30", "--known-at", "2025-12-31", "--format", "json"]
    answer_sqlite = run(status)[1]
    answer_pg = run(status + ["--db", url])[1]
    assert answer_sqlite == answer_pg, "PostgreSQL and SQLite disagree on status"
    facilities = answer_pg.count(b'"subject":')
    assert facilities > 0, "status answers nothing: the bench would measure an empty answer"
    lite = under_readers(status)
    pg = under_readers(status + ["--db", url])
    pg_ro = under_readers(status + ["--db", url, "--read-only"])
    rows.append(dict(n=n, size=size, records=records, baseline=b, whole=w, copy=c,
                     lite=(statistics.median(lite), percentile(lite, 99)), pg=(statistics.median(pg), percentile(pg, 99)),
                     pg_ro=(statistics.median(pg_ro), percentile(pg_ro, 99)), status_bytes=len(answer_pg),
                     facilities=facilities))
    log(f"  status ×{readers}: SQLite {rows[-1]['lite']}, PostgreSQL {rows[-1]['pg']}, read-only {rows[-1]['pg_ro']}")

today = datetime.date.today().isoformat()
version = subprocess.run(["psql", db_url("postgres"), "-XqAt", "-c", "SHOW server_version"], capture_output=True, text=True).stdout.strip()
out = [f"# PostgreSQL read models, measured {today}", "",
       f"`scripts/with-postgres.sh python3 bench/postgres.py` (release binary; PostgreSQL {version} on 127.0.0.1, started by the script with",
       "fsync off; psql and milestones connect without TLS; the shared 2-core machine: only the ratios mean much). Medians of "
       f"{runs} runs, each from nothing, run alternately with the baseline; status under {readers} concurrent readers, {queries} queries each.",
       "", "| events | first projection ÷ psql's own load | its COPY part ÷ psql's load | status p50 ÷ SQLite's | status p99 ÷ SQLite's | read-only p50 ÷ SQLite's | read-only p99 ÷ SQLite's |",
       "|---|---|---|---|---|---|---|"]
for r in rows:
    out.append(f"| {r['n']:,} | {r['whole'] / r['baseline']:.2f}× | {r['copy'] / r['baseline']:.2f}× | {r['pg'][0] / r['lite'][0]:.2f}× | "
               f"{r['pg'][1] / r['lite'][1]:.2f}× | {r['pg_ro'][0] / r['lite'][0]:.2f}× | {r['pg_ro'][1] / r['lite'][1]:.2f}× |")
out += ["", "The goals of issue 25: first projection within 2× of psql's own load; status under 16 readers within 2× of SQLite's.", "",
        "Measured values (seconds):", "",
        "| events | ledger | records | status answer | psql load | first projection | COPY part | SQLite status p50 / p99 | PostgreSQL status p50 / p99 | read-only p50 / p99 |",
        "|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    out.append(f"| {r['n']:,} | {r['size'] / 2**20:.0f} MiB | {r['records']} | {r['facilities']:,} facilities, {r['status_bytes'] / 2**20:.1f} MiB | {r['baseline']:.2f} | {r['whole']:.2f} | {r['copy']:.2f} | "
               f"{r['lite'][0]:.3f} / {r['lite'][1]:.3f} | {r['pg'][0]:.3f} / {r['pg'][1]:.3f} | {r['pg_ro'][0]:.3f} / {r['pg_ro'][1]:.3f} |")
text = "\n".join(out) + "\n"
path = root / "bench" / "results" / f"postgres-{today}.md"
path.write_text(text)
print(text)
log(f"wrote {path}")
