#!/usr/bin/env python3
"""The milestones benchmark: whole-process figures at one ledger size, each
next to a baseline measured in the same run (the machine is shared and noisy,
so only ratios mean much).

Usage: bench.py MILESTONES_BINARY N [--runs 3] [--memory [--projection]]
(--memory: the memory tier only, see below; --projection adds our first projection to it)
Writes bench/results/latest-N.md and bench/results/latest-N.json and prints the table.

Baselines:
- `openssl dgst -sha256` over the ledger file: the hashing limit for verify
  and for building the Merkle tree;
- the sqlite3 CLI loading the same lines into an indexed table with its own
  JSON functions (->>): the first projection's baseline since issue 5;
- the leanest way SQLite itself projects them (issue 27): `.import` into a
  TEMP table, then one INSERT … SELECT of seq, id, type, date, subject and the
  line, one index on (subject, date), all in one transaction;
- Python peers installed into a throwaway virtualenv: `eventsourcing` 9.5.6
  (appending the same events to its SQLite store, and replaying them) and
  `pymerkle` 7.0.0 (appending the same leaves, proving inclusion).
"""
import json, os, pathlib, statistics, subprocess, sys, tempfile, time

binary = os.path.abspath(sys.argv[1])
n = int(sys.argv[2])
runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
root = pathlib.Path(__file__).resolve().parent.parent
cache = pathlib.Path(os.environ.get("MILESTONES_BENCH_CACHE", pathlib.Path.home() / ".cache" / "milestones-bench"))
cache.mkdir(parents=True, exist_ok=True)
work = pathlib.Path(tempfile.mkdtemp(prefix="milestones-bench-"))
results = {"n": n, "runs": runs, "machine": {}, "figures": {}}
env = dict(os.environ, MILESTONES_NOW="2026-01-01T00:00:00Z")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, stdin=None, check=True, now=None, rss=False):
    """Runs a command (at clock time `now`, if given); returns (seconds, peak RSS in MiB
    when `rss` (from /usr/bin/time, which the time includes: about a millisecond), stdout)."""
    rss_file = work / "rss.txt"
    if rss:
        cmd = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] + list(cmd)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=open(stdin, "rb") if stdin else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env, MILESTONES_NOW=now) if now else env)
    out, err = p.communicate()
    seconds = time.perf_counter() - t0
    rc = p.returncode
    if check and rc != 0:
        sys.exit(f"failed ({rc}): {' '.join(map(str, cmd))}\n{err.decode()[-2000:]}")
    peak = int(rss_file.read_text().split()[-1]) / 1024 if rss else None
    return seconds, peak, out


def peak_rss(cmd, k=runs):
    """The median over k runs of a command's peak RSS (MiB), from /usr/bin/time -v
    (a single run's peak moves by about ±0.7 MB)."""
    peaks = []
    for _ in range(k):
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, env=env)
        if p.returncode != 0:
            sys.exit(f"failed: {cmd}\n{p.stderr.decode()[-2000:]}")
        peaks.append(next(int(l.split()[-1]) for l in p.stderr.decode().splitlines() if "Maximum resident set size" in l) / 1024)
    return statistics.median(peaks)


def median(cmd, k=runs, before=None, peaks=None):
    """The median time of k runs, after one warm-up run (not counted); `before` runs ahead of each;
    each counted run's peak RSS is added to the list `peaks`, if given."""
    times = []
    for i in range(k + 1):
        if before:
            before()
        t, peak, _ = run(cmd, rss=peaks is not None)
        if i > 0:
            times.append(t)
            if peaks is not None:
                peaks.append(peak)
    return statistics.median(times)


def paired(baseline, ours, k=runs, warm_up=True, before_baseline=None, before_ours=None):
    """Medians of `baseline` and `ours` over k runs each, run alternately (the
    machine's speed drifts: a baseline taken minutes apart would skew the
    ratio), after one warm-up run of each (not counted) unless told not to."""
    base, mine = [], []
    for i in range(k + (1 if warm_up else 0)):
        if before_baseline:
            before_baseline()
        b = run(baseline)[0]
        if before_ours:
            before_ours()
        m = run(ours)[0]
        if i > 0 or not warm_up:
            base.append(b)
            mine.append(m)
    return statistics.median(base), statistics.median(mine)


def fig(key, value, unit, baseline=None, base_value=None, note=""):
    results["figures"][key] = {"value": value, "unit": unit, "baseline": baseline, "baseline_value": base_value, "note": note}
    ratio = f" ({value / base_value:.2f}× {baseline})" if base_value else ""
    log(f"  {key}: {value:.4g} {unit}{ratio} {note}")


# --- report


def write_report():
    """bench/results/latest-N.md and .json; prints the table."""
    out_dir = root / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    F = results["figures"]

    def r(key):
        f = F.get(key)
        if not f:
            return "–"
        v, unit = f["value"], f["unit"]
        if unit == "s":
            s = f"{v * 1e6:,.0f} µs" if v < 0.001 else (f"{v * 1000:,.1f} ms" if v < 1 else f"{v:,.3f} s")
        else:
            s = f"{v:,.0f} {unit}" if unit == "events/s" else f"{v:,.2f} {unit}"
        if f.get("baseline_value"):
            s += f" ({v / f['baseline_value']:.2f}× {f['baseline']})"
        return s

    lines = [f"# milestones bench, {n:,} events ({size / 2**20:.0f} MiB ledger)", "",
             f"Machine: {results['machine']['cpus']} × {results['machine']['cpu']}, {results['machine']['memory_gib']} GiB; "
             f"{results['machine']['openssl']}; SQLite {results['machine']['sqlite']}. Whole-process times, median of {runs} runs "
             "(5 for the short ones) after a warm-up run, unless said; ratios against baselines measured in the same run.", "",
             "| figure | value |", "|---|---|"]
    for key in F:
        lines.append(f"| {key} | {r(key)} {F[key]['note']} |")
    md = "\n".join(lines) + "\n"
    (out_dir / f"latest-{n}.md").write_text(md)
    (out_dir / f"latest-{n}.json").write_text(json.dumps(results, indent=1) + "\n")
    print(md)
    subprocess.run(["rm", "-rf", str(work)])


# --- machine
results["machine"] = {
    "cpus": os.cpu_count(),
    "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip(),
    "sqlite": subprocess.run(["sqlite3", "--version"], capture_output=True, text=True).stdout.split()[0],
}

from events import events_file, record_query_ledger  # noqa: E402 (bench/events.py: the cached, seeded events)


events = events_file(n)

ledger = work / "l.jsonl"


def fresh_ledger():
    for p in work.glob("l.*"):
        p.unlink()
    run([binary, "init", "--name", "bench.example/ledger", "--ledger", str(ledger)])


def lean_sql(db_ledger):
    """The leanest SQLite projection of the ledger's lines (issue 27), as a sqlite3 script."""
    return f"""BEGIN;
CREATE TEMP TABLE raw (line TEXT);
.mode ascii
.separator "\\037" "\\n"
.import {db_ledger} raw
CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, date TEXT NOT NULL, subject TEXT, line TEXT NOT NULL);
INSERT INTO events SELECT line->>'$.seq', line->>'$.event.id', line->>'$.event.type', line->>'$.event.date', line->>'$.event.subject', line FROM raw;
CREATE INDEX events_subject_date ON events (subject, date);
COMMIT;
"""


def remove(pattern):
    for p in work.glob(pattern):
        p.unlink()


def first_query():
    """The first reading command on a ledger without read models: it builds them."""
    return [binary, "events", "--ledger", str(ledger), "--type", "site.secured", "--since", "3000-01-01", "--format", "json"]


def verify_figures():
    """Deep verify of the ledger against openssl dgst over it, and verify's peak memory (returned, MiB)."""
    log("deep verify vs openssl dgst -sha256")
    t_openssl, t_verify = paired(["openssl", "dgst", "-sha256", str(ledger)], [binary, "verify", "--ledger", str(ledger)])
    fig("openssl_dgst_s", t_openssl, "s")
    fig("verify_s", t_verify, "s", "openssl dgst", t_openssl)
    rss = peak_rss([binary, "verify", "--ledger", str(ledger)])
    fig("verify_peak_rss_mib", rss, "MiB", note=f"({rss * 2**20 / n:.0f} bytes/record; median of {runs} runs)")
    return rss


# --- the memory tier (`make bench-10m`, N = 10M): too big for `make bench`'s 15
# minutes (its events take minutes to generate, once), so only what it is for:
# verify's peak memory at N and at 1M events in the same run (so its growth per
# record), verify against openssl dgst, and one batch record.
if "--memory" in sys.argv:
    small_n = 1_000_000
    if n <= small_n:
        sys.exit(f"bench.py: --memory needs N above {small_n:,} (it compares N events with the first {small_n:,}); got {n:,}")
    fresh_ledger()
    run([binary, "record", "--quiet", "--ledger", str(ledger), "--file", str(events_file(small_n))])
    rss_small = peak_rss([binary, "verify", "--ledger", str(ledger)])
    fresh_ledger()
    log(f"batch record of {n} events (one run)")
    t_record, rss_record, _ = run([binary, "record", "--quiet", "--ledger", str(ledger), "--file", str(events)], rss=True)
    fig("record_batch_events_per_s", n / t_record, "events/s", note="(one run)")
    fig("record_batch_peak_rss_mib", rss_record, "MiB", note="(the same run)")
    size = ledger.stat().st_size
    results["ledger_bytes"] = size
    rss = verify_figures()
    fig("verify_peak_rss_1m_mib", rss_small, "MiB", note=f"(its first {small_n:,} events, in the same run; median of {runs} runs)")
    fig("verify_growth_per_record", (rss - rss_small) * 2**20 / (n - small_n), "B", note=f"(peak memory from {small_n:,} to {n:,} records)")
    # One run of the lean SQLite projection; SQLite's JSON load, slower, is
    # left out, and so is our first projection unless asked for (--projection:
    # at 1M it takes about 30 s and over 1 GiB).
    log("the lean SQLite projection (one run)")
    (work / "lean.sql").write_text(lean_sql(ledger))
    remove("lean.sqlite*")
    t_lean = run(["sh", "-c", f"exec sqlite3 '{work / 'lean.sqlite'}' < '{work / 'lean.sql'}'"])[0]
    remove("lean.sqlite*")
    fig("sqlite_lean_projection_s", t_lean, "s", note="(one run)")
    if "--projection" in sys.argv:
        log("first projection (one run)")
        t_project, rss_project, _ = run(first_query(), rss=True)
        fig("first_projection_s", t_project, "s", "sqlite3 lean projection", t_lean, note="(one run, after SQLite's)")
        fig("first_projection_vs_lean", t_project / t_lean, "×", note="(the same runs)")
        fig("first_projection_peak_rss_mib", rss_project, "MiB", note="(the same run)")
    write_report()
    sys.exit(0)


# --- batch record
log(f"batch record of {n} events ({runs} runs)")
record_peaks = []
t_record = median([binary, "record", "--quiet", "--ledger", str(ledger), "--file", str(events)], before=fresh_ledger, peaks=record_peaks)
fig("record_batch_events_per_s", n / t_record, "events/s")
fig("record_batch_peak_rss_mib", statistics.median(record_peaks), "MiB", note=f"(median of the {runs} runs)")

# --- the ledger every other figure uses: the same events recorded in two
# batches at two times, so `--known-at 2025-12-31` falls inside it (the first
# three quarters known) and the bitemporal queries have real work to do
log("recording the query ledger in two batches (2025-06-01 and 2026-01-01)")
for p in work.glob("l.*"):
    p.unlink()
record_query_ledger(run, binary, ledger, events, work)
size = ledger.stat().st_size
results["ledger_bytes"] = size

verify_figures()

# --- Merkle tree and proofs
log("Merkle tree build, proofs, checkpoint")
tree = work / "l.tree"
run([binary, "prove", "--ledger", str(ledger), "--seq", "1"])  # the first build
t_openssl_tree, t_tree = paired(["openssl", "dgst", "-sha256", str(ledger)],
                                [binary, "prove", "--ledger", str(ledger), "--seq", "1", "--rebuild"])
fig("tree_build_s", t_tree, "s", "openssl dgst", t_openssl_tree, "(prove --rebuild: builds l.tree from the ledger; openssl run alternately)")
fig("prove_inclusion_s", median([binary, "prove", "--ledger", str(ledger), "--seq", str(n // 3)], k=5), "s")
fig("prove_consistency_s", median([binary, "prove", "--ledger", str(ledger), "--from-size", str(n // 2)], k=5), "s")
run([binary, "keygen", "--name", "bench.example/ledger", "--out", str(work / "k")])

# --- first projection vs sqlite3's own JSON load
log("first projection vs sqlite3 loading the same lines")
base_db = work / "base.sqlite"
sql = f"""PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE raw (line TEXT);
.mode ascii
.separator "\\037" "\\n"
.import {ledger} raw
CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, subject TEXT, date TEXT NOT NULL,
                     recorded_at TEXT NOT NULL, sha256 TEXT NOT NULL, event TEXT NOT NULL);
CREATE INDEX events_subject ON events (subject, type, date);
CREATE INDEX events_recorded_at ON events (recorded_at);
INSERT INTO events SELECT line->>'$.seq', line->>'$.event.id', line->>'$.event.type', line->>'$.event.subject',
       line->>'$.event.date', line->>'$.recorded_at', line->>'$.sha256', line->'$.event' FROM raw;
DROP TABLE raw;
"""
(work / "load.sql").write_text(sql)
(work / "lean.sql").write_text(lean_sql(ledger))

# Each run from nothing (no database, no read models), the three in turn; no
# warm-up run: each reads the whole ledger, which the figures before have
# left in the page cache.
t_sqlite, t_lean, t_project, project_peaks = [], [], [], []
for _ in range(runs):
    remove("base.sqlite*")
    t_sqlite.append(run(["sh", "-c", f"exec sqlite3 '{base_db}' < '{work / 'load.sql'}'"])[0])
    remove("lean.sqlite*")
    t_lean.append(run(["sh", "-c", f"exec sqlite3 '{work / 'lean.sqlite'}' < '{work / 'lean.sql'}'"])[0])
    remove("l.sqlite*")
    t, peak, _ = run(first_query(), rss=True)
    t_project.append(t)
    project_peaks.append(peak)
remove("lean.sqlite*")
t_sqlite, t_lean, t_project = statistics.median(t_sqlite), statistics.median(t_lean), statistics.median(t_project)
fig("sqlite_json_load_s", t_sqlite, "s", note=f"(median of {runs}, no warm-up run)")
fig("sqlite_lean_projection_s", t_lean, "s", note=f"(median of {runs}, no warm-up run: .import into a TEMP table, one INSERT … SELECT, one index, one transaction)")
fig("first_projection_s", t_project, "s", "sqlite3 JSON load", t_sqlite, note=f"(median of {runs}, run in turn with SQLite's two)")
fig("first_projection_vs_lean", t_project / t_lean, "×", note="(against the lean SQLite projection, the same runs)")
fig("first_projection_peak_rss_mib", statistics.median(project_peaks), "MiB", note=f"(median of the {runs} runs)")

# --- queries on caught-up read models
log("queries, record one, catch-up")
for name, cmd in [("status", ["status"]), ("targets", ["targets"])]:
    query = [binary] + cmd + ["--ledger", str(ledger), "--as-of", "2022-06-30", "--known-at", "2025-12-31", "--format", "json"]
    answer = json.loads(run(query)[2])
    rows = sum(len(v) for v in answer.values()) if isinstance(answer, dict) else len(answer)
    fig(f"{name}_as_of_known_at_s", median(query, k=5), "s", note=f"({rows:,} rows, JSON)")
counter = [0]


def one_event():
    counter[0] += 1
    return [binary, "record", "--quiet", "--ledger", str(ledger), "--type", "production.milestone", "--subject", "fac-0-" + first_country,
            "--milestone", f"bench lot {counter[0]}", "--date", "2025-01-01", "--source", "Bench"]


first_id = json.loads(open(events).readline())["id"]
first_country = next(json.loads(l)["subject"].split("-", 2)[2] for l in open(events) if '"facility.announced"' in l)
times, catch = [], []
for _ in range(5):
    times.append(run(one_event())[0])
    catch.append(run([binary, "show", first_id, "--ledger", str(ledger), "--format", "json"])[0])
fig("record_one_s", statistics.median(times), "s", note="(incl. fsync; read models as the index)")
fig("catch_up_one_record_s", statistics.median(catch), "s", note="(whole process: catch-up of the new record + `show` of one event)")
run(one_event())
fig("checkpoint_after_one_more_s", median([binary, "checkpoint", "--ledger", str(ledger), "--key", str(work / "k.key")], k=3), "s")

# --- Python peers in a throwaway virtualenv
venv = cache / "venv"
PEERS = {"eventsourcing": "9.5.6", "pymerkle": "7.0.0"}


def peers_ready():
    """Whether the virtualenv holds the peers at their versions (an install that failed half-way does not)."""
    check = f"import importlib.metadata as m, sys; sys.exit(any(m.version(p) != v for p, v in {PEERS!r}.items()))"
    return (venv / "bin" / "python").exists() and subprocess.run([str(venv / "bin" / "python"), "-c", check],
                                                                 capture_output=True).returncode == 0


if not peers_ready():
    log("installing eventsourcing 9.5.6 and pymerkle 7.0.0 into a throwaway virtualenv")
    subprocess.run(["rm", "-rf", str(venv)])
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q"] + [f"{p}=={v}" for p, v in PEERS.items()])
    if r.returncode != 0 or not peers_ready():
        log("could not install the Python peers: their figures are left out")
if peers_ready():
    peer_n = min(n, 100_000)
    out = subprocess.run([str(venv / "bin" / "python"), str(root / "bench" / "peers.py"), str(events), str(ledger), str(peer_n), str(work)],
                         capture_output=True, text=True)
    if out.returncode == 0:
        peers = json.loads(out.stdout)
        results["peers"] = peers
        rate = n / t_record
        fig("eventsourcing_append_events_per_s", peers["eventsourcing_append_per_s"], "events/s", note=f"(on {peer_n} events)")
        fig("record_vs_eventsourcing", rate / peers["eventsourcing_append_per_s"], "×", note="(our batch rate / theirs)")
        fig("eventsourcing_replay_events_per_s", peers["eventsourcing_replay_per_s"], "events/s", note=f"(on {peer_n} events)")
        fig("pymerkle_append_s", peers["pymerkle_append_s"], "s", note=f"(on {peer_n} leaves; ours: tree build of {n})")
        fig("pymerkle_inclusion_proof_s", peers["pymerkle_prove_s"], "s", note=f"(in-process, one proof, at {peer_n} leaves)")
        fig("pymerkle_consistency_proof_s", peers["pymerkle_consistency_s"], "s", note=f"(in-process, from {peer_n // 2} to {peer_n} leaves)")
        fig("pymerkle_state_after_one_more_s", peers["pymerkle_state_s"], "s",
            note="(in-process: one more leaf and the new root, what our checkpoint computes before it signs)")
    else:
        log("peers failed:", out.stderr[-1500:])

write_report()
