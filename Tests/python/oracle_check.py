#!/usr/bin/env python3
"""Property test: `milestones status|targets` against the independent oracle.

  oracle_check.py BINARY --seeds N [--seed0 S] [--views V] [--jobs J] [--keep DIR]

For each seed it builds a random ledger with the binary itself (`init`, then
several `record --file` batches, each stamped with a later MILESTONES_NOW so
that --known-at matters), then asks the binary and oracle.py (written from the
spec alone) the same questions: `status` and `targets` for V random views
(--as-of, --known-at, --published-by, alone and together, or none).  Rows are
compared as sets keyed by subject (status) or (subject, milestone) (targets),
on the keys the spec names.

The generator writes events that are valid per docs/events.md.  Should `record`
still refuse a line (a rule this generator does not know of), the driver drops
that line, retries the batch, and reports the refusal reasons on stderr; the
generator only builds on events that were accepted.

On a mismatch it prints the seed, the view, and the first differing row of each
side.  The last line is `N passed, M failed` (comparisons); the exit status is
0 only when all passed and, with N >= 20 seeds, every target state (met,
missed, undetermined by a straddling actual and by an implied one, overdue,
pending) occurred in the oracle's answers.  Standard library only.
"""
import argparse
import collections
import concurrent.futures
import datetime
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import oracle  # noqa: E402

STATUS_KEYS = ["subject", "name", "kind", "operator", "program", "phase", "phase_date", "phase_precision"]
TARGET_KEYS = ["subject", "milestone", "due_earliest", "due_latest", "actual", "actual_latest", "implied_by",
               "state", "slip_days", "slip_from_original_days", "revisions"]
MILESTONES = oracle.MILESTONES
PRECISIONS = ["day"] * 5 + ["month"] * 2 + ["quarter"] * 2 + ["year"] * 2
MISSING = "<missing>"
INIT_NOW = datetime.datetime(2025, 1, 1, 0, 0, 0)
D = datetime.date


def iso(d):
    return d.isoformat()


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def period_start(d, precision):
    if precision == "month":
        return d.replace(day=1)
    if precision == "quarter":
        return D(d.year, ((d.month - 1) // 3) * 3 + 1, 1)
    if precision == "year":
        return D(d.year, 1, 1)
    return d


# ------------------------------------------------------------------ generator

class Generator:
    """Random, valid events, batch by batch, building only on accepted events."""

    def __init__(self, rng):
        self.rng = rng
        self.n = 0
        self.events = {}          # id -> event (as generated; accepted ones only after commit)
        self.retracted = set()
        self.programs = []
        self.facilities = []      # slugs announced (accepted)
        self.target_sets = set()  # (subject, milestone) with an accepted target.set
        self.now = INIT_NOW
        self.base = {}            # facility -> base date of its life
        self.last = {}            # facility -> date of its last lifecycle event

    def new_id(self, prefix):
        self.n += 1
        return f"{prefix}-{self.n}"

    def date_between(self, a, b):
        if b < a:
            a, b = b, a
        return a + datetime.timedelta(days=self.rng.randint(0, (b - a).days))

    def sources(self, day_hint=None):
        """1-3 sources; `published` sometimes absent, usually on or before the record's day."""
        rng, out = self.rng, []
        recorded = self.now.date()
        for i in range(rng.choice([1, 1, 1, 2, 3])):
            s = {"publisher": rng.choice(["Reuters", "NVIDIA", "Bloomberg", "Local Paper"])}
            if rng.random() < 0.3:
                s["url"] = f"https://example.org/a/{self.n}/{i}"
            r = rng.random()
            if r < 0.55:
                low = min(day_hint or recorded, recorded) - datetime.timedelta(days=60)
                s["published"] = iso(self.date_between(low, recorded))
            elif r < 0.6:  # published after it was recorded (a scheduled story, a typo)
                s["published"] = iso(recorded + datetime.timedelta(days=rng.randint(1, 120)))
            out.append(s)
        return out

    def dated(self, d, precision=None):
        precision = precision or self.rng.choice(PRECISIONS)
        return {"date": iso(period_start(d, precision)), "precision": precision}

    def event(self, etype, subject, d, precision=None, **fields):
        ev = {"id": self.new_id(etype.split(".")[0][:4]), "type": etype, "subject": subject}
        ev.update(self.dated(d, precision))
        ev.update(fields)
        ev["sources"] = self.sources(d)
        if self.rng.random() < 0.2:
            ev["summary"] = f"generated {etype}"
        return ev

    def announce_facility(self, slug):
        rng = self.rng
        d = self.date_between(D(2024, 1, 1), D(2025, 12, 31))
        fields = {"name": f"Plant {slug}", "operator": rng.choice(["TSMC", "Foxconn", "Wistron", "Amkor"]),
                  "kind": rng.choice(["fab", "packaging", "assembly", "datacenter", "other"]),
                  "location": {"country": "US"}}
        if self.programs and rng.random() < 0.7:
            fields["program"] = rng.choice(self.programs)
        self.base[slug] = d
        self.last[slug] = d
        return self.event("facility.announced", slug, d, rng.choice(["day", "day", "month"]), **fields)

    def lifecycle(self, slug):
        """A few lifecycle events of one facility: skips, duplicates, ties, some before the announcement."""
        rng, out = self.rng, []
        d = self.last[slug] + datetime.timedelta(days=rng.randint(-200, 150))
        start = rng.randint(0, 2)
        for m in MILESTONES[start:start + rng.randint(1, 3)]:
            if rng.random() < 0.35:
                continue  # skipped: a later milestone implies it
            if rng.random() < 0.15:
                pass      # same date as the previous one: a tie broken by seq
            else:
                d = d + datetime.timedelta(days=rng.randint(-30, 240))
            out.append(self.event(m, slug, d))
            if rng.random() < 0.12:  # a second report of the same milestone
                out.append(self.event(m, slug, d + datetime.timedelta(days=rng.randint(-90, 90))))
        if out:
            self.last[slug] = max(self.last[slug], D.fromisoformat(out[-1]["date"]))
        if rng.random() < 0.1:
            out.append(self.event("production.milestone", slug, d, milestone="first wafer"))
        return out

    def control(self, slug):
        rng = self.rng
        kind = rng.choice(["facility.paused", "facility.paused", "facility.resumed", "facility.cancelled"])
        d = self.last[slug] + datetime.timedelta(days=rng.randint(-120, 200))
        extra = {"reason": "generated"} if rng.random() < 0.5 else {}
        return self.event(kind, slug, d, **extra)

    def due(self, around):
        earliest = around + datetime.timedelta(days=self.rng.randint(-250, 500))
        latest = earliest + datetime.timedelta(days=self.rng.choice([0, 30, 90, 180, 365]))
        return {"earliest": iso(earliest), "latest": iso(latest)}

    def target(self, subject, kind, milestone=None):
        rng = self.rng
        if milestone is None:
            milestone = rng.choice(MILESTONES)
        base = self.base.get(subject, D(2025, 4, 1))
        d = base + datetime.timedelta(days=rng.randint(-60, 300))
        extra = {"reason": "slipped"} if kind == "target.revised" and rng.random() < 0.5 else {}
        return self.event(kind, subject, d, "day", milestone=milestone, due=self.due(base), **extra)

    def correction(self):
        rng = self.rng
        live = [e for i, e in self.events.items() if i not in self.retracted
                and e["type"] not in ("event.corrected", "event.retracted")]
        if not live:
            return None
        ev = rng.choice(live)
        options = ["date", "sources"]
        if ev["type"] in ("target.set", "target.revised"):
            options += ["due", "due"]
        if ev["type"] == "facility.announced":
            options += ["name"]
        what = rng.choice(options)
        if what == "date":
            base = D.fromisoformat(ev["date"]) + datetime.timedelta(days=rng.randint(-200, 200))
            changes = self.dated(base, "day" if ev["type"].startswith("target.") else None)
        elif what == "sources":
            changes = {"sources": self.sources(D.fromisoformat(ev["date"]))}
        elif what == "due":
            changes = {"due": self.due(D.fromisoformat(ev["due"]["latest"]) - datetime.timedelta(days=200))}
        else:
            changes = {"name": f"{ev['name']} (renamed)"}
        return {"id": self.new_id("corr"), "type": "event.corrected", "subject": ev["subject"],
                "date": iso(self.now.date()), "corrects": ev["id"], "changes": changes,
                "reason": "a better source", "sources": self.sources()}

    def retraction(self, batch):
        rng = self.rng
        in_batch = {e.get("corrects") for e in batch} | {e.get("retracts") for e in batch}
        live = [e for i, e in self.events.items() if i not in self.retracted and i not in in_batch
                and e["type"] not in ("event.corrected", "event.retracted", "program.announced")]
        if not live:
            return None
        weights = [0.25 if e["type"] == "facility.announced" else 1.0 for e in live]
        ev = rng.choices(live, weights)[0]
        return {"id": self.new_id("retr"), "type": "event.retracted", "subject": ev["subject"],
                "date": iso(self.now.date()), "retracts": ev["id"], "reason": "wrong",
                "sources": self.sources()}

    def batch(self, index):
        """The next batch (list of events) for batch number `index` (0 = the first)."""
        rng, out = self.rng, []
        if index == 0:
            prog = "prog-a"
            out.append(self.event("program.announced", prog, D(2024, 6, 1), "day", name="Program A",
                                  sponsor="NVIDIA", amount={"value": 500000000000, "currency": "USD",
                                                            "qualifier": "up_to"}))
            self.programs.append(prog)
            for k in range(rng.randint(2, 5)):
                out.append(self.announce_facility(f"fac-{k}"))
            facilities = [e["subject"] for e in out if e["type"] == "facility.announced"]
        else:
            facilities = list(self.facilities)
            if rng.random() < 0.25 and len(facilities) < 6:  # a facility announced later
                ev = self.announce_facility(f"fac-{len(facilities) + 10 * index}")
                out.append(ev)
                facilities.append(ev["subject"])
        for slug in facilities:
            if rng.random() < 0.8:
                out += self.lifecycle(slug)
            if rng.random() < 0.25:
                out.append(self.control(slug))
            if rng.random() < 0.1:
                out.append(self.event("investment.committed", slug, self.last[slug], "day",
                                      amount={"value": rng.randint(1, 10) * 10**9, "currency": "USD"}))
        # targets: set, then revisions of an accepted or same-batch set
        sets = set(self.target_sets)
        for slug in facilities:
            for _ in range(rng.choice([0, 1, 1, 2])):
                ev = self.target(slug, "target.set")
                out.append(ev)
                sets.add((ev["subject"], ev["milestone"]))
        if index == 0 and rng.random() < 0.3:
            out.append(self.target(self.programs[0], "target.set", "production.started"))
            sets.add((self.programs[0], "production.started"))
        for (subject, milestone) in sorted(sets):
            if rng.random() < 0.35:
                out.append(self.target(subject, "target.revised", milestone))
        if index > 0:
            for _ in range(rng.randint(0, 4)):
                ev = self.correction()
                if ev:
                    out.append(ev)
            for _ in range(rng.randint(0, 2)):
                ev = self.retraction(out)
                if ev:
                    out.append(ev)
        return out

    def commit(self, accepted):
        for ev in accepted:
            self.events[ev["id"]] = ev
            if ev["type"] == "facility.announced":
                self.facilities.append(ev["subject"])
            elif ev["type"] == "target.set":
                self.target_sets.add((ev["subject"], ev["milestone"]))
            elif ev["type"] == "event.retracted":
                self.retracted.add(ev["retracts"])


# ------------------------------------------------------------------ running

def run(args, env_now, cwd):
    env = dict(os.environ)
    env.pop("MILESTONES_LEDGER", None)
    env.pop("MILESTONES_DB", None)
    env["MILESTONES_NOW"] = env_now
    env["NO_COLOR"] = "1"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


LINE_ERROR = re.compile(r"^[^\n:]*batch\.jsonl:(\d+):\s*(.*)$", re.M)


def record_batch(binary, ledger, events, now, cwd, refusals):
    """Records `events`, dropping the lines `record` refuses; returns the accepted events."""
    events = list(events)
    path = os.path.join(cwd, "batch.jsonl")
    for _ in range(len(events) + 1):
        if not events:
            return []
        with open(path, "w", encoding="utf-8") as f:
            for ev in events:
                f.write(json.dumps(ev, ensure_ascii=False) + "\n")
        r = run([binary, "record", "--quiet", "--ledger", ledger, "--file", path], now, cwd)
        if r.returncode == 0:
            return events
        m = LINE_ERROR.search(r.stderr)
        if r.returncode != 65 or not m:
            raise RuntimeError(f"record failed (exit {r.returncode}): {r.stderr.strip()}")
        line = int(m.group(1))
        bad = events.pop(line - 1)
        reason = re.sub(r'"[^"]*"', '"…"', m.group(2))
        reason = re.sub(r"\b\d{4}-\d{2}-\d{2}\b", "D", reason)
        refusals[f"{bad['type']}: {reason}"] += 1
    raise RuntimeError("record kept refusing")


def random_view(rng, times, event_dates, pub_dates):
    """(as_of, known_at, published_by, now) -- any may be None except now."""
    def some_date():
        r = rng.random()
        if r < 0.35 and event_dates:
            d = D.fromisoformat(rng.choice(event_dates))
            return iso(d + datetime.timedelta(days=rng.choice([0, 0, -1, 1])))
        return iso(D(2024, 1, 1) + datetime.timedelta(days=rng.randint(0, 365 * 4 + 180)))

    def some_time():
        t = rng.choice(times)
        r = rng.random()
        if r < 0.4:
            return stamp(t)
        if r < 0.55:
            return stamp(t - datetime.timedelta(seconds=1))
        if r < 0.7:
            return iso(t.date())
        a, b = times[0], times[-1] + datetime.timedelta(days=30)
        return stamp(a + datetime.timedelta(seconds=rng.randint(0, int((b - a).total_seconds()))))

    def some_pub():
        r = rng.random()
        if r < 0.5 and pub_dates:
            d = D.fromisoformat(rng.choice(pub_dates))
            return iso(d + datetime.timedelta(days=rng.choice([0, 0, -1])))
        t = rng.choice(times).date()
        return iso(t + datetime.timedelta(days=rng.randint(-90, 60)))

    now = stamp(times[-1] + datetime.timedelta(days=rng.randint(0, 900), seconds=rng.randint(0, 86399)))
    as_of = some_date() if rng.random() < 0.85 else None
    known_at = some_time() if rng.random() < 0.5 else None
    published_by = some_pub() if rng.random() < 0.5 else None
    return as_of, known_at, published_by, now


def view_args(view):
    as_of, known_at, published_by, _ = view
    out = []
    if as_of:
        out += ["--as-of", as_of]
    if known_at:
        out += ["--known-at", known_at]
    if published_by:
        out += ["--published-by", published_by]
    return out


def project(row, keys):
    return {k: row.get(k, MISSING) for k in keys}


def compare(command, ours, theirs, programs):
    """None when equal, else (key, binary row, oracle row) of the first difference."""
    keys = STATUS_KEYS if command == "status" else TARGET_KEYS
    ident = (lambda r: (r.get("subject"),)) if command == "status" else \
        (lambda r: (r.get("subject"), r.get("milestone")))
    if command == "status":  # program rows (if any) are not facility rows
        ours = [r for r in ours if r.get("subject") not in programs]
    b = {}
    for r in ours:
        k = ident(r)
        if k in b:
            return (k, project(r, keys), "(duplicate row in the binary's answer)")
        b[k] = project(r, keys)
    o = {ident(r): project(r, keys) for r in theirs}
    for k in sorted(set(b) | set(o), key=lambda k: tuple(str(x) for x in k)):
        if b.get(k) != o.get(k):
            return (k, b.get(k), o.get(k))
    return None


def check_seed(binary, seed, views, keep):
    """Returns (passed, failed, report lines, state counter, refusals)."""
    rng = random.Random(seed)
    tmp = tempfile.mkdtemp(prefix=f"oracle-{seed}-")
    ledger = os.path.join(tmp, "l.jsonl")
    refusals = collections.Counter()
    states = collections.Counter()
    report = []
    passed = failed = 0
    try:
        r = run([binary, "init", "--ledger", ledger, "--name", "example.org/t"], stamp(INIT_NOW), tmp)
        if r.returncode != 0:
            raise RuntimeError(f"init failed (exit {r.returncode}): {r.stderr.strip()}")
        gen = Generator(rng)
        times = [INIT_NOW]
        for index in range(rng.randint(3, 5)):
            gen.now = times[-1] + datetime.timedelta(days=rng.randint(1, 60), seconds=rng.randint(0, 86399))
            if rng.random() < 0.2 and index > 0:
                gen.now = times[-1]  # two batches in the same second
            times.append(gen.now)
            accepted = record_batch(binary, ledger, gen.batch(index), stamp(gen.now), tmp, refusals)
            gen.commit(accepted)
        records = oracle.read_records(ledger)
        event_dates, pub_dates = set(), set()
        for rec in records:
            ev = rec["event"]
            event_dates.add(ev["date"])
            if "due" in ev:
                event_dates.add(ev["due"]["latest"])
            for s in ev.get("sources", []):
                if s.get("published"):
                    pub_dates.add(s["published"])
            pub_dates.add(rec["recorded_at"][:10])
        event_dates, pub_dates = sorted(event_dates), sorted(pub_dates)
        for v in range(views):
            view = random_view(rng, times, event_dates, pub_dates)
            args = view_args(view)
            oview = oracle.View(view[0] or view[3][:10], view[1], view[2])
            for command in ("status", "targets"):
                theirs = oracle.status(records, oview) if command == "status" else oracle.targets(records, oview)
                if command == "status":
                    for row in theirs:
                        states["phase " + row["phase"]] += 1
                        if row["name"] is None:
                            states["phase row without announcement"] += 1
                else:
                    for row in theirs:
                        state = row["state"]
                        if state == "undetermined":
                            state += " (implied)" if row["implied_by"] else " (straddling)"
                        elif state == "met" and row["implied_by"]:
                            states["met (implied)"] += 1
                        states[state] += 1
                res = run([binary, command, "--format", "json", "--ledger", ledger] + args, view[3], tmp)
                problem = None
                if res.returncode != 0:
                    problem = f"exit {res.returncode}: {res.stderr.strip()}"
                else:
                    try:
                        ours = json.loads(res.stdout)
                        diff = compare(command, ours, theirs, set(gen.programs))
                        if diff:
                            problem = (f"row {diff[0]}\n    binary: {json.dumps(diff[1], ensure_ascii=False)}"
                                       f"\n    oracle: {json.dumps(diff[2], ensure_ascii=False)}")
                    except (ValueError, AttributeError) as e:
                        problem = f"unreadable JSON ({e}): {res.stdout[:200]}"
                if problem is None:
                    passed += 1
                    continue
                failed += 1
                if not any(line.startswith(f"seed {seed}:") for line in report):
                    report.append(f"seed {seed}: view {v}: {command} {' '.join(args)} (MILESTONES_NOW={view[3]})"
                                  f"\n    {problem}")
        return passed, failed, report, states, refusals
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return passed, failed + 1, report + [f"seed {seed}: {e}"], states, refusals
    finally:
        if keep:
            dest = os.path.join(keep, f"seed-{seed}")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(tmp, dest)
        shutil.rmtree(tmp, ignore_errors=True)


REQUIRED_STATES = ["met", "missed", "undetermined (straddling)", "undetermined (implied)", "overdue", "pending"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary")
    p.add_argument("--seeds", type=int, required=True)
    p.add_argument("--seed0", type=int, default=1)
    p.add_argument("--views", type=int, default=20, help="random views per ledger (default 20)")
    p.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--keep", help="copy each seed's ledger to KEEP/seed-S (for reproducing a failure)")
    a = p.parse_args()
    binary = os.path.abspath(a.binary)
    if not os.access(binary, os.X_OK):
        print(f"{binary}: not an executable", file=sys.stderr)
        return 2
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    seeds = list(range(a.seed0, a.seed0 + a.seeds))
    passed = failed = 0
    states, refusals = collections.Counter(), collections.Counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        results = list(pool.map(lambda s: check_seed(binary, s, a.views, a.keep), seeds))
    for ps, fs, report, st, rf in results:
        passed += ps
        failed += fs
        states.update(st)
        refusals.update(rf)
        for line in report:
            print(line)
    if refusals:
        print("record refused (lines dropped and the batch retried):", file=sys.stderr)
        for reason, n in refusals.most_common():
            print(f"  {n:4d}  {reason}", file=sys.stderr)
    print("target states seen: " + ", ".join(f"{k} {states[k]}" for k in REQUIRED_STATES + ["met (implied)"]))
    print("status rows seen: " + ", ".join(f"{k[6:]} {n}" for k, n in sorted(states.items()) if k.startswith("phase ")))
    coverage_ok = True
    if a.seeds >= 20:
        never = [s for s in REQUIRED_STATES if states[s] == 0]
        if never:
            coverage_ok = False
            print(f"the generator never produced: {', '.join(never)}")
    if failed:
        print(f"to reproduce one seed S: {sys.argv[0]} {a.binary} --seeds 1 --seed0 S --views {a.views} --keep DIR, "
              f"then {os.path.join(HERE, 'oracle.py')} status|targets DIR/seed-S/l.jsonl [view options]")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and coverage_ok else 1


if __name__ == "__main__":
    sys.exit(main())
