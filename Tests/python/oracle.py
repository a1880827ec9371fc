#!/usr/bin/env python3
"""Independent oracle for `milestones status` and `milestones targets`.

Written from the specifications alone (docs/events.md: "Facilities and
their lifecycle", "Targets", "Publication time", "Corrections"; docs/cli.md: "Time
travel", "Output"; docs/ledger-format.md for the records), without looking at the
Swift implementation, so that a property test can cross-check the binary.

  oracle.py status  LEDGER [--as-of D] [--known-at T] [--published-by P]
  oracle.py targets LEDGER [--as-of D] [--known-at T] [--published-by P]

prints a JSON array of rows, as `milestones status|targets --format json` does
(only the keys the spec names; rows in a stable order, but compare them as
sets).  Standard library only.  It trusts the ledger (run independent_check.py
to verify it); it only reads the records.

Interpretations (decided where the spec leaves room):
- A view is (as_of D: a date, default today UTC -- the date of $MILESTONES_NOW
  when that is set, the clock the binary uses in tests; known_at T: a
  timestamp, or a date meaning the end of that day UTC, default everything;
  published_by P: a date, default everything).
- A record counts in the view when its recorded_at <= T.  A domain event, a
  correction or a retraction additionally counts only when its publication
  date <= P.
- Publication date = the earliest `published` among the event's sources, else
  the UTC date of its record's recorded_at.  For a domain event its EFFECTIVE
  sources are used: after applying (in record order) the corrections that
  count in the view (a correction's `changes` may replace `sources`).  For a
  correction or a retraction: its own sources.
- Corrections apply in record order (each replaces the fields it names); a
  retraction that counts removes the event.
- The rules of docs/events.md "Targets" and the phase rule then apply to the
  effective, counting events dated on or before D.  An event covers an
  interval starting at its `date`: day -> that day; month -> to the last day
  of the month; quarter -> to the last day of the quarter; year -> to Dec 31.
- "first event (by date, then seq)" and "the earliest such event" (implied
  milestones) order by (date, seq) literally, even when another event has an
  earlier interval end.  `seq` is always the seq of the event's own record
  (not of a correction that changed it).
- revisions = the number of target events (target.set / target.revised) for
  that (subject, milestone) dated <= D after the first one by (date, seq); the
  current target is the last by (date, seq).  A target row exists for a
  (subject, milestone) when at least one counting target event of it is dated
  <= D.
- slip_from_original_days: the slip_days formula of the row's state, but
  against the FIRST target's due.latest; null when slip_days is null.
- status: one row per subject that has a counting lifecycle event
  (facility.announced ... production.volume) dated <= D.  Phase per docs/events.md:
  the latest by (date, seq) of its pause/resume/cancel events dated <= D
  decides paused/cancelled; otherwise the most advanced lifecycle phase
  reached.  phase_date = the date of the first (by date, seq) event that
  reached that top phase, or the control event's date when paused/cancelled;
  phase_precision = that event's precision.  name/kind/operator/program come
  from the subject's effective facility.announced when one counts in the view
  (whatever its date), else null.
"""
import calendar
import datetime
import json
import os
import sys

LIFECYCLE = [  # event type -> phase, in lifecycle order
    ("facility.announced", "announced"),
    ("site.secured", "site_secured"),
    ("construction.started", "under_construction"),
    ("construction.completed", "built"),
    ("production.started", "producing"),
    ("production.volume", "volume_production"),
]
PHASE_OF = dict(LIFECYCLE)
RANK = {t: i for i, (t, _) in enumerate(LIFECYCLE)}
MILESTONES = ["site.secured", "construction.started", "construction.completed",
              "production.started", "production.volume"]
CONTROL = {"facility.paused": "paused", "facility.resumed": None, "facility.cancelled": "cancelled"}
TARGET_TYPES = ("target.set", "target.revised")
META_TYPES = ("event.corrected", "event.retracted")


class Usage(Exception):
    pass


# ----------------------------------------------------------------- dates

def parse_date(text):
    return datetime.date.fromisoformat(text)


def interval_end(date_text, precision):
    """Last day of the interval an event of this date and precision covers."""
    d = parse_date(date_text)
    precision = precision or "day"
    if precision == "day":
        return d
    if precision == "month":
        return d.replace(day=calendar.monthrange(d.year, d.month)[1])
    if precision == "quarter":
        last_month = ((d.month - 1) // 3) * 3 + 3
        return datetime.date(d.year, last_month, calendar.monthrange(d.year, last_month)[1])
    if precision == "year":
        return datetime.date(d.year, 12, 31)
    raise ValueError(f"unknown precision {precision!r}")


def days(a, b):
    """a - b in days, both dates (or ISO strings)."""
    if isinstance(a, str):
        a = parse_date(a)
    if isinstance(b, str):
        b = parse_date(b)
    return (a - b).days


def publication_date(sources, recorded_at):
    published = [s["published"] for s in sources or [] if isinstance(s, dict) and s.get("published")]
    return min(published) if published else recorded_at[:10]


# ----------------------------------------------------------------- view

class View:
    def __init__(self, as_of=None, known_at=None, published_by=None):
        if as_of is None:
            now = os.environ.get("MILESTONES_NOW")
            as_of = now[:10] if now else datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        parse_date(as_of)
        self.as_of = as_of
        if known_at is not None:
            if len(known_at) == 10:
                parse_date(known_at)
                known_at = known_at + "T23:59:59Z"
            else:
                datetime.datetime.strptime(known_at, "%Y-%m-%dT%H:%M:%SZ")
        self.known_at = known_at
        if published_by is not None:
            parse_date(published_by)
        self.published_by = published_by

    def known(self, recorded_at):
        return self.known_at is None or recorded_at <= self.known_at

    def published(self, pub_date):
        return self.published_by is None or pub_date <= self.published_by


def read_records(path):
    records = []
    with open(path, "rb") as f:
        for line in f.read().split(b"\n"):
            if line.strip():
                records.append(json.loads(line.decode("utf-8")))
    return records


def effective_events(records, view):
    """The effective, counting domain events of the view (all dates), each a dict
    {"seq", "recorded_at", "event"} with corrections applied, in record order."""
    events = {}    # id -> {"seq", "recorded_at", "event"} (as recorded)
    order = []
    changes = {}   # id -> [changes, ...] of counting corrections, in record order
    retracted = set()
    for rec in records:
        if not view.known(rec["recorded_at"]):
            continue
        ev = rec["event"]
        kind = ev.get("type")
        if kind == "ledger.created":
            continue
        if kind in META_TYPES:
            if not view.published(publication_date(ev.get("sources"), rec["recorded_at"])):
                continue
            if kind == "event.corrected":
                changes.setdefault(ev["corrects"], []).append(ev["changes"])
            else:
                retracted.add(ev["retracts"])
            continue
        events[ev["id"]] = {"seq": rec["seq"], "recorded_at": rec["recorded_at"], "event": ev}
        order.append(ev["id"])
    result = []
    for event_id in order:
        if event_id in retracted:
            continue
        item = events[event_id]
        ev = dict(item["event"])
        for change in changes.get(event_id, []):
            for key, value in change.items():
                if key in ("type", "id", "subject"):
                    continue
                ev[key] = value
        if not view.published(publication_date(ev.get("sources"), item["recorded_at"])):
            continue
        ev.setdefault("precision", "day")
        result.append({"seq": item["seq"], "recorded_at": item["recorded_at"], "event": ev})
    return result


def key(item):
    return (item["event"]["date"], item["seq"])


# ----------------------------------------------------------------- status

def status(records, view):
    evs = effective_events(records, view)
    announced = {}
    for item in evs:  # the announcement counts in the view, whatever its date
        ev = item["event"]
        if ev["type"] == "facility.announced" and ev["subject"] not in announced:
            announced[ev["subject"]] = ev
    dated = sorted((i for i in evs if i["event"]["date"] <= view.as_of), key=key)
    lifecycle, control = {}, {}
    for item in dated:
        ev = item["event"]
        if ev["type"] in PHASE_OF:
            lifecycle.setdefault(ev["subject"], []).append(item)
        elif ev["type"] in CONTROL:
            control.setdefault(ev["subject"], []).append(item)
    rows = []
    for subject in sorted(lifecycle):
        items = lifecycle[subject]
        ctl = control.get(subject)
        if ctl and CONTROL[ctl[-1]["event"]["type"]] is not None:
            decider = ctl[-1]["event"]
            phase = CONTROL[decider["type"]]
        else:
            top = max(RANK[i["event"]["type"]] for i in items)
            decider = next(i["event"] for i in items if RANK[i["event"]["type"]] == top)
            phase = PHASE_OF[decider["type"]]
        ann = announced.get(subject, {})
        rows.append({
            "subject": subject,
            "name": ann.get("name"),
            "kind": ann.get("kind"),
            "operator": ann.get("operator"),
            "program": ann.get("program"),
            "phase": phase,
            "phase_date": decider["date"],
            "phase_precision": decider.get("precision", "day"),
        })
    return rows


# ----------------------------------------------------------------- targets

def targets(records, view):
    evs = effective_events(records, view)
    dated = sorted((i for i in evs if i["event"]["date"] <= view.as_of), key=key)
    by_target, by_subject = {}, {}
    for item in dated:
        ev = item["event"]
        if ev["type"] in TARGET_TYPES:
            by_target.setdefault((ev["subject"], ev["milestone"]), []).append(ev)
        elif ev["type"] in MILESTONES:
            by_subject.setdefault(ev["subject"], []).append(ev)
    d = view.as_of
    rows = []
    for (subject, milestone) in sorted(by_target):
        tgts = by_target[(subject, milestone)]
        first, current = tgts[0], tgts[-1]
        due_latest = current["due"]["latest"]
        original_latest = first["due"]["latest"]
        events = by_subject.get(subject, [])  # already in (date, seq) order
        actual = actual_latest = implied_by = None
        own = [e for e in events if e["type"] == milestone]
        if own:
            actual = own[0]["date"]
            actual_latest = interval_end(own[0]["date"], own[0]["precision"]).isoformat()
        else:
            later = [e for e in events if MILESTONES.index(e["type"]) > MILESTONES.index(milestone)]
            if later:
                actual_latest = interval_end(later[0]["date"], later[0]["precision"]).isoformat()
                implied_by = later[0]["type"]
        if actual_latest is not None and actual_latest <= due_latest:
            state = "met"
            slip = lambda due: days(actual_latest, due)
        elif actual is not None and actual > due_latest:
            state = "missed"
            slip = lambda due: days(actual, due)
        elif actual_latest is not None:
            state, slip = "undetermined", None
        elif d > due_latest:
            state = "overdue"
            slip = lambda due: days(d, due)
        else:
            state, slip = "pending", None
        rows.append({
            "subject": subject,
            "milestone": milestone,
            "due_earliest": current["due"]["earliest"],
            "due_latest": due_latest,
            "actual": actual,
            "actual_latest": actual_latest,
            "implied_by": implied_by,
            "state": state,
            "slip_days": slip(due_latest) if slip else None,
            "slip_from_original_days": slip(original_latest) if slip else None,
            "revisions": len(tgts) - 1,
        })
    return rows


# ----------------------------------------------------------------- CLI

def parse_args(argv):
    if len(argv) < 2 or argv[0] not in ("status", "targets"):
        raise Usage("usage: oracle.py status|targets LEDGER [--as-of D] [--known-at T] [--published-by P]")
    command, ledger, rest = argv[0], argv[1], argv[2:]
    opts = {"--as-of": None, "--known-at": None, "--published-by": None}
    i = 0
    while i < len(rest):
        name = rest[i]
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name not in opts:
            raise Usage(f"unknown option {name}")
        if value is None:
            if i + 1 >= len(rest):
                raise Usage(f"{name} needs a value")
            value = rest[i + 1]
            i += 1
        opts[name] = value
        i += 1
    try:
        view = View(opts["--as-of"], opts["--known-at"], opts["--published-by"])
    except ValueError as e:
        raise Usage(str(e)) from None
    return command, ledger, view


def compute(command, ledger, view):
    records = read_records(ledger)
    return status(records, view) if command == "status" else targets(records, view)


def main(argv):
    try:
        command, ledger, view = parse_args(argv)
    except Usage as e:
        print(e, file=sys.stderr)
        return 2
    try:
        rows = compute(command, ledger, view)
    except OSError as e:
        print(f"{ledger}: {e.strerror}", file=sys.stderr)
        return 2
    print(json.dumps(rows, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
