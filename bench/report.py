#!/usr/bin/env python3
"""Combines the tiers of one bench run (bench/results/latest-N.json, written by
bench.py) into bench/results/latest.md, latest.json and scaling.svg.

Usage: report.py N [N ...]   (the tiers of this run, smallest first)

latest.md has one table (a row per figure, a column per tier), the targets of
the issues checked against the largest tier, and the machine's description.
scaling.svg plots whole-process time against ledger size, log-log: ours next to
the limits (openssl dgst, SQLite's own JSON load) and the peers.
"""
import json, math, os, pathlib, sys

root = pathlib.Path(__file__).resolve().parent.parent
out = root / "bench" / "results"
tiers = [int(a) for a in sys.argv[1:]]
runs = {n: json.loads((out / f"latest-{n}.json").read_text()) for n in tiers}
top = runs[tiers[-1]]
F = {n: r["figures"] for n, r in runs.items()}


def value(n, key):
    f = F[n].get(key)
    return f["value"] if f else None


def cell(n, key):
    f = F[n].get(key)
    if not f:
        return "–"
    v, unit = f["value"], f["unit"]
    if unit == "events/s":
        s = f"{v:,.0f}"
    elif unit == "s":
        s = f"{v * 1e6:,.0f} µs" if v < 0.001 else (f"{v * 1000:,.0f} ms" if v < 1 else f"{v:,.2f} s")
    else:
        s = f"{v:,.2f} {unit}"
    if unit == "events/s":
        s += " ev/s"
    if f.get("baseline_value"):
        s += f" ({v / f['baseline_value']:.2f}×)"
    return s


# --- targets, checked against the largest tier
def ratio(key):
    f = F[tiers[-1]].get(key)
    return f["value"] / f["baseline_value"] if f and f.get("baseline_value") else None


def bytes_per_record():
    """Growth of verify's peak memory per record between the two largest tiers."""
    if len(tiers) < 2:
        return None
    a, b = tiers[-2], tiers[-1]
    ra, rb = value(a, "verify_peak_rss_mib"), value(b, "verify_peak_rss_mib")
    return None if ra is None or rb is None else (rb - ra) * 2**20 / (b - a)


def slowest(*times):
    """The slowest of some figures; None if any is missing (a missing one is not a pass)."""
    return None if None in times else max(times)


es = value(tiers[-1], "record_vs_eventsourcing")
checks = [
    # (issue, what, measured, target text, met)
    ("2", "deep verify vs openssl dgst", ratio("verify_s"), "≤ 4×", lambda v: v <= 4),
    ("5", "deep verify vs openssl dgst", ratio("verify_s"), "≤ 2.5×", lambda v: v <= 2.5),
    ("2", "batch record", value(tiers[-1], "record_batch_events_per_s"), "≥ 100,000 ev/s", lambda v: v >= 100_000),
    ("5", "batch record", value(tiers[-1], "record_batch_events_per_s"), "≥ 250,000 ev/s", lambda v: v >= 250_000),
    ("5", "batch record vs eventsourcing", es, "≥ 7×", lambda v: v >= 7),
    ("3", "first projection vs SQLite's JSON load", ratio("first_projection_s"), "≤ 3×", lambda v: v <= 3),
    ("5", "first projection vs SQLite's JSON load", ratio("first_projection_s"), "≤ 2×", lambda v: v <= 2),
    ("3", "status --as-of --known-at", value(tiers[-1], "status_as_of_known_at_s"), "≤ 150 ms", lambda v: v <= 0.150),
    ("3", "targets --as-of --known-at", value(tiers[-1], "targets_as_of_known_at_s"), "≤ 150 ms", lambda v: v <= 0.150),
    ("5", "queries", slowest(value(tiers[-1], "status_as_of_known_at_s"), value(tiers[-1], "targets_as_of_known_at_s")),
     "≤ 80 ms", lambda v: v <= 0.080),
    ("3", "record one event (incl. fsync)", value(tiers[-1], "record_one_s"), "≤ 50 ms", lambda v: v <= 0.050),
    ("5", "record one event (incl. fsync)", value(tiers[-1], "record_one_s"), "≤ 30 ms", lambda v: v <= 0.030),
    ("3", "catch-up after one record", value(tiers[-1], "catch_up_one_record_s"), "≤ 100 ms", lambda v: v <= 0.100),
    ("4", "tree build vs openssl dgst", ratio("tree_build_s"), "≤ 2×", lambda v: v <= 2),
    ("4", "inclusion proof (whole process)", value(tiers[-1], "prove_inclusion_s"), "≤ 50 ms", lambda v: v <= 0.050),
    ("4", "consistency proof (whole process)", value(tiers[-1], "prove_consistency_s"), "≤ 50 ms", lambda v: v <= 0.050),
    ("4", "checkpoint after one more record", value(tiers[-1], "checkpoint_after_one_more_s"), "≤ 50 ms", lambda v: v <= 0.050),
    ("5", "verify peak memory", value(tiers[-1], "verify_peak_rss_mib"), "≤ 64 MB", lambda v: v * 2**20 <= 64e6),
    ("5", "verify memory growth per record", bytes_per_record(), "≤ ~20 B", lambda v: v <= 20),
    ("27", "deep verify vs openssl dgst", ratio("verify_s"), "≤ 1.5×", lambda v: v <= 1.5),
    ("27", "batch record", value(tiers[-1], "record_batch_events_per_s"), "≥ 500,000 ev/s", lambda v: v >= 500_000),
    ("27", "batch record peak memory (100k batch)", value(100_000, "record_batch_peak_rss_mib") if 100_000 in F else None,
     "≤ 64 MiB", lambda v: v <= 64),
    ("27", "batch record peak memory", value(tiers[-1], "record_batch_peak_rss_mib"), "≤ 128 MiB", lambda v: v <= 128),
    ("27", "first projection vs the lean SQLite projection", value(tiers[-1], "first_projection_vs_lean"), "≤ 1.5×",
     lambda v: v <= 1.5),
]


def shown(what, v):
    if v is None:
        return "–"
    if "ev/s" in what or what == "batch record":
        return f"{v:,.0f} ev/s"
    if "vs the lean" in what:
        return f"{v:.2f}×"
    if "memory growth" in what:
        return f"{v:.1f} B/record"
    if "memory" in what:
        return f"{v:.1f} MiB"
    if "vs" in what:
        return f"{v:.2f}×"
    return f"{v * 1000:.0f} ms"


m = top["machine"]
lines = [f"# milestones bench: {', '.join(f'{n:,}' for n in tiers)} events", "",
         f"Machine: {m['cpus']} × {m['cpu']}, {m['memory_gib']} GiB; {m['openssl']}; SQLite {m['sqlite']}. "
         f"Whole-process times, median of {top['runs']} runs (5 for the short ones) after a warm-up run, unless said; ratios (×) are "
         "against a baseline measured in the same run (the machine is shared and noisy; only ratios travel)."
         + (f" The whole suite took {int(os.environ['BENCH_SECONDS']) / 60:.1f} min." if os.environ.get("BENCH_SECONDS") else ""), "",
         "| figure | " + " | ".join(f"{n:,}" for n in tiers) + " |", "|---|" + "---|" * len(tiers)]
keys = list(dict.fromkeys(k for n in tiers for k in F[n]))
for k in keys:
    notes = {F[n][k]["note"] for n in tiers if k in F[n]}
    if len(notes) == 1:  # the same note for every tier: once, by the name
        lines.append(f"| {k} {notes.pop()} | " + " | ".join(cell(n, k) for n in tiers) + " |")
    else:  # notes that differ by tier (row counts): in each cell
        lines.append(f"| {k} | " + " | ".join(f"{cell(n, k)} {F[n][k]['note'] if k in F[n] else ''}" for n in tiers) + " |")
lines += ["", f"## Targets at {tiers[-1]:,} events", "", "| issue | figure | measured | target | met |", "|---|---|---|---|---|"]
for issue, what, v, target, ok in checks:
    lines.append(f"| {issue} | {what} | {shown(what, v)} | {target} | {'–' if v is None else ('yes' if ok(v) else '**no**')} |")
if len(tiers) >= 2:
    a, b = tiers[-2], tiers[-1]
    lines += ["", f"The memory growth is the slope of verify's peak memory from {a:,} to {b:,} records. A single peak "
              "moves by up to about 0.7 MB from run to run, and a large table's huge pages round it up by up to 2 MiB, "
              f"so this slope is good to about ±1 B/record; `make bench-10m` measures it from 1M to 10M records in one "
              "run (bench/results/latest-10000000.md), where the same effects come to about ±0.1 B/record."]
# --- the scaling table: this run's tiers, and the 10M tier of `make bench-10m` when its results are there
big = out / "latest-10000000.json"
scale = dict(runs)
if big.exists() and 10_000_000 not in scale:
    scale[10_000_000] = json.loads(big.read_text())
sizes = sorted(scale)
SF = {n: scale[n]["figures"] for n in sizes}


def scaled(n, key):
    f = SF[n].get(key)
    if not f:
        return "–"
    v, unit = f["value"], f["unit"]
    s = (f"{v:,.0f} ev/s" if unit == "events/s" else f"{v * 1000:,.0f} ms" if unit == "s" and v < 1 else
         f"{v:,.2f} s" if unit == "s" else f"{v:,.2f}×" if unit == "×" else f"{v:,.1f} {unit}")
    if f.get("baseline_value"):
        s += f" ({v / f['baseline_value']:.2f}× {f['baseline']})"
    return s


lines += ["", f"## Scaling, {sizes[0]:,} to {sizes[-1]:,} events", "",
          "Each figure at each size; a ratio is against its baseline in the same tier's run. "
          + ("The 10,000,000 column is `make bench-10m` (bench/results/latest-10000000.md, its own run: one run of batch "
             "record and of the lean SQLite projection; SQLite's JSON load and, unless it was asked for, our first "
             "projection are left out there). " if 10_000_000 in scale and 10_000_000 not in runs else "")
          + "Peak memory is the whole process's maximum resident set (/usr/bin/time).", "",
          "| figure | " + " | ".join(f"{n:,}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
for key, label in [("verify_s", "deep verify"), ("verify_peak_rss_mib", "verify peak memory"),
                   ("record_batch_events_per_s", "batch record (one batch of all the events)"),
                   ("record_batch_peak_rss_mib", "batch record peak memory"),
                   ("sqlite_lean_projection_s", "lean SQLite projection"), ("sqlite_json_load_s", "SQLite JSON load"),
                   ("first_projection_s", "first projection"), ("first_projection_vs_lean", "first projection vs lean SQLite"),
                   ("first_projection_peak_rss_mib", "first projection peak memory")]:
    lines.append(f"| {label} | " + " | ".join(scaled(n, key) for n in sizes) + " |")
(out / "latest.md").write_text("\n".join(lines) + "\n")
(out / "latest.json").write_text(json.dumps({"tiers": tiers, "suite_seconds": int(os.environ["BENCH_SECONDS"]) if os.environ.get("BENCH_SECONDS") else None,
                                             "runs": {str(n): runs[n] for n in tiers}}, indent=1) + "\n")

# --- scaling.svg: seconds against events, log-log
def at(key):
    """A figure in seconds, at its tier's size."""
    return lambda n: (n, value(n, key)) if value(n, key) else None


def peer(key, rate=False):
    """A peer's figure at the size it ran on (at most 100k events): seconds, or a rate made seconds."""
    def point(n):
        v, m = value(n, key), runs[n].get("peers", {}).get("n")
        return None if not v or not m else (m, m / v if rate else v)
    return point


series = [  # (label, colour, dashed, (events, seconds) at a tier, or None)
    ("verify (ours)", "#d62728", False, at("verify_s")),
    ("openssl dgst (hash limit)", "#d62728", True, at("openssl_dgst_s")),
    ("tree build (ours)", "#9467bd", False, at("tree_build_s")),
    ("pymerkle append (peer, in-process)", "#9467bd", True, peer("pymerkle_append_s")),
    ("batch record (ours)", "#1f77b4", False, lambda n: (n, n / value(n, "record_batch_events_per_s")) if value(n, "record_batch_events_per_s") else None),
    ("eventsourcing append (peer)", "#1f77b4", True, peer("eventsourcing_append_events_per_s", rate=True)),
    ("eventsourcing replay (peer)", "#17becf", True, peer("eventsourcing_replay_events_per_s", rate=True)),
    ("first projection (ours)", "#2ca02c", False, at("first_projection_s")),
    ("sqlite3 JSON load (limit)", "#2ca02c", True, at("sqlite_json_load_s")),
    ("targets --as-of --known-at (ours)", "#ff7f0e", False, at("targets_as_of_known_at_s")),
    ("status --as-of --known-at (ours)", "#8c564b", False, at("status_as_of_known_at_s")),
    ("inclusion proof (ours)", "#7f7f7f", False, at("prove_inclusion_s")),
]
# One point per size: a peer capped at 100k runs at that size in the larger tiers too.
points = {label: sorted(dict(p for p in map(s, tiers) if p).items()) for label, _, _, s in series}
ys = [y for ps in points.values() for _, y in ps]
W, H, L, R, T, B = 900, 560, 70, 330, 40, 50
x0, x1 = math.log10(min(tiers)) - 0.15, math.log10(max(tiers)) + 0.15
y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))


def px(n):
    return L + (math.log10(n) - x0) / (x1 - x0) * (W - L - R)


def py(s):
    return T + (y1 - math.log10(s)) / (y1 - y0) * (H - T - B)


svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="22" font-size="14">milestones: whole-process seconds against ledger size (log–log), {m["cpus"]} × {m["cpu"]}</text>']
for e in range(y0, y1 + 1):
    y = py(10**e)
    svg.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
    svg.append(f'<text x="{L - 8}" y="{y + 4:.1f}" text-anchor="end">{10**e:g} s</text>')
for n in tiers:
    x = px(n)
    svg.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#ddd"/>')
    svg.append(f'<text x="{x:.1f}" y="{H - B + 18}" text-anchor="middle">{n:,}</text>')
svg.append(f'<text x="{(L + W - R) / 2:.0f}" y="{H - 10}" text-anchor="middle">events in the ledger</text>')
for k, (label, colour, dashed, _) in enumerate(series):
    ps = points[label]
    if not ps:
        continue
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(n):.1f},{py(s):.1f}" for i, (n, s) in enumerate(ps))
    svg.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
    for n, s in ps:
        svg.append(f'<circle cx="{px(n):.1f}" cy="{py(s):.1f}" r="3" fill="{colour}"/>')
    ly = T + 10 + k * 20
    svg.append(f'<line x1="{W - R + 15}" y1="{ly}" x2="{W - R + 45}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>')
    svg.append(f'<text x="{W - R + 52}" y="{ly + 4}">{label}</text>')
svg.append("</svg>")
(out / "scaling.svg").write_text("\n".join(svg) + "\n")
print((out / "latest.md").read_text())
