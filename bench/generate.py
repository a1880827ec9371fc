#!/usr/bin/env python3
"""Seeded synthetic megaproject events, as JSON Lines input for `milestones record`.

Realistic shapes, not tuned to the product: every event type, programs with
many facilities, non-ASCII names and places, sources with URLs, summaries of
varied length, targets and their revisions, corrections and retractions, and
events recorded out of date order. Lines come out at roughly 400-550 bytes once
recorded. Usage: generate.py N SEED > events.jsonl
"""
import datetime, json, random, sys

n = int(sys.argv[1])
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)

ORGS = ["TSMC", "Foxconn", "Wistron", "Amkor", "SPIL", "Samsung Electronics", "Intel", "Micron", "GlobalFoundries",
        "SK hynix", "Texas Instruments", "Hon Hai Precision", "Siemens Energy", "Škoda Transportation", "Société Générale",
        "Nippon Steel", "三星電子", "台積電", "ASML", "Infineon", "Bosch", "Northvolt", "CATL", "LG Energy Solution"]
PLACES = [("Phoenix", "AZ", "US"), ("Houston", "TX", "US"), ("Fort Worth", "TX", "US"), ("Peoria", "AZ", "US"),
          ("Dresden", "Sachsen", "DE"), ("Magdeburg", "Sachsen-Anhalt", "DE"), ("Kumamoto", "九州", "JP"),
          ("Hsinchu", "新竹", "TW"), ("Pyeongtaek", "Gyeonggi", "KR"), ("Skellefteå", "Västerbotten", "SE"),
          ("Grenoble", "Auvergne-Rhône-Alpes", "FR"), ("Columbus", "OH", "US"), ("Syracuse", "NY", "US"),
          ("São Paulo", "SP", "BR"), ("Bengaluru", "Karnataka", "IN"), ("Łódź", "łódzkie", "PL")]
PUBLISHERS = [("Reuters", "https://www.reuters.com/technology/"), ("Bloomberg", "https://www.bloomberg.com/news/articles/"),
              ("Taipei Times", "https://www.taipeitimes.com/News/biz/archives/"), ("Handelsblatt", "https://www.handelsblatt.com/technik/"),
              ("日本経済新聞", "https://www.nikkei.com/article/"), ("Company press release", "https://example.com/press/"),
              ("Le Monde", "https://www.lemonde.fr/economie/article/"), ("Construction Dive", "https://www.constructiondive.com/news/")]
WORDS = ("capacity wafer fab packaging cleanroom ramp phase permit groundbreaking investment jobs subsidy grant "
         "equipment tool install line pilot volume schedule delay revised city council filing acquisition acre "
         "building supercomputer server assembly test advanced node yield customer demand tariff").split()
KINDS = ["fab", "packaging", "assembly", "datacenter", "other"]
MILESTONES = ["site.secured", "construction.started", "construction.completed", "production.started", "production.volume"]


EPOCH = datetime.date(2015, 1, 1)


def day(d):
    return (EPOCH + datetime.timedelta(days=d)).isoformat()


def any_subject():
    """A facility or a program, without building a joined list (O(1))."""
    k = rng.randrange(len(facilities) + len(programs))
    return facilities[k] if k < len(facilities) else programs[k - len(facilities)]


def summary():
    k = rng.choice([0, 0, 0, 2, 4, 9])
    return " ".join(rng.choice(WORDS) for _ in range(k)).capitalize() + ("." if k else "")


def sources():
    out = []
    for _ in range(rng.choice([1, 1, 1, 1, 2])):
        pub, base = rng.choice(PUBLISHERS)
        s = {"publisher": pub, "url": f"{base}{rng.randrange(10**9):09d}"}
        if rng.random() < 0.4:
            s["published"] = day(rng.randrange(3650))
        out.append(s)
    return out


def amount():
    return {"value": rng.randrange(1, 500) * 10**rng.choice([6, 7, 8, 9]), "currency": rng.choice(["USD", "USD", "EUR", "JPY", "TWD"]),
            "qualifier": rng.choice(["exact", "about", "up_to", "at_least"])}


class Recent:
    """The events a correction or retraction may name: only the last 5,000 are
    ever drawn, so older ones are dropped (10M events no longer hold every
    event in memory) while positions count as if none were: the same seed
    gives the same events."""

    def __init__(self):
        self.dropped, self.items = 0, []

    def __len__(self):
        return self.dropped + len(self.items)

    def _at(self, i):
        i = i - self.dropped if i >= 0 else len(self.items) + i
        assert 0 <= i < len(self.items), "an event older than the kept window was drawn"
        return i

    def __getitem__(self, i):
        return self.items[self._at(i)]

    def __setitem__(self, i, e):
        self.items[self._at(i)] = e

    def append(self, e):
        self.items.append(e)
        # Keep 10,000: twice the 5,000 drawn from, as retractions pop some
        # (the assertion above says if that were ever too few). Trims from
        # ~24k events on, so the tests' 40k-event ledger has them.
        if len(self.items) > 20_000:
            del self.items[:10_000]
            self.dropped += 10_000

    def pop(self):
        return self.items.pop()


programs, facilities, targets, correctable = [], [], {}, Recent()
out = sys.stdout
count = 0


def emit(e, keep=True):
    global count
    e["id"] = f"e{count:07d}-{rng.randrange(36**4):04x}"
    e["sources"] = sources()
    s = summary()
    if s:
        e["summary"] = s
    out.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    if keep and e["type"] not in ("event.corrected", "event.retracted"):
        correctable.append(e)
    count += 1


while count < n:
    r = rng.random()
    d = rng.randrange(3650)
    if not programs or r < 0.01:
        slug = f"program-{len(programs)}"
        programs.append(slug)
        emit({"type": "program.announced", "date": day(d), "subject": slug, "name": f"{rng.choice(ORGS)} program {len(programs)}",
              "sponsor": rng.choice(ORGS), "amount": amount(), "horizon": day(d + 1460)})
    elif not facilities or r < 0.08:
        city, region, country = rng.choice(PLACES)
        slug = f"fac-{len(facilities)}-{country.lower()}"
        facilities.append(slug)
        e = {"type": "facility.announced", "date": day(d), "subject": slug, "name": f"{rng.choice(ORGS)} {city} plant {len(facilities)}",
             "operator": rng.choice(ORGS), "kind": rng.choice(KINDS), "location": {"city": city, "region": region, "country": country},
             "program": rng.choice(programs)}
        if rng.random() < 0.5:
            e["partners"] = rng.sample(ORGS, 2)
        if rng.random() < 0.5:
            e["area_sqft"] = rng.randrange(10**4, 10**7)
        emit(e)
    elif r < 0.30:
        f = rng.choice(facilities)
        t = rng.choice(["site.secured", "construction.started", "construction.completed", "production.started", "production.volume",
                        "facility.paused", "facility.resumed", "facility.cancelled"])
        e = {"type": t, "date": day(d), "subject": f}
        if t.startswith("production."):
            e["product"] = rng.choice(["Blackwell GPUs", "GB300 servers", "HBM3E", "N4P wafers", "Akkuzellen"])
        if t.startswith("facility."):
            e["reason"] = summary() or "schedule"
        if t == "site.secured":
            e["area_sqft"] = rng.randrange(10**4, 10**7)
        if rng.random() < 0.2:
            # A coarser date: month, quarter or year, picked from the day (no more draws,
            # so the events after this one are as before), dated on the first day of its period.
            p = ("month", "quarter", "year")[d % 3]
            y, m = e["date"][:4], int(e["date"][5:7])
            e["precision"] = p
            e["date"] = {"month": e["date"][:8] + "01", "quarter": f"{y}-{(m - 1) // 3 * 3 + 1:02d}-01", "year": f"{y}-01-01"}[p]
        emit(e)
    elif r < 0.45:
        f = rng.choice(facilities)
        emit({"type": "production.milestone", "date": day(d), "subject": f, "milestone": rng.choice(["first wafer", "first rack shipped", "tool move-in", "line qualified"]),
              "quantity": rng.randrange(1, 10000)})
    elif r < 0.65:
        s = any_subject()
        m = rng.choice(MILESTONES)
        lo = d + rng.randrange(90, 900)
        e = {"type": "target.set", "date": day(d), "subject": s, "milestone": m, "due": {"earliest": day(lo), "latest": day(lo + rng.randrange(0, 200))}}
        if (s, m) in targets and rng.random() < 0.6:
            e["type"] = "target.revised"
            e["reason"] = summary() or "revised schedule"
        targets[(s, m)] = True
        emit(e)
    elif r < 0.80:
        emit({"type": "investment.committed", "date": day(d), "subject": any_subject(), "amount": amount()})
    elif r < 0.95 and correctable:
        target = correctable[rng.randrange(max(0, len(correctable) - 5000), len(correctable))]
        if target["type"] in ("facility.announced",):
            changes = {"location": {"city": rng.choice(PLACES)[0], "country": target["location"]["country"]}}
        elif target["type"] in ("site.secured", "construction.started", "construction.completed", "production.started",
                                "production.volume", "facility.paused", "facility.resumed") and rng.random() < 0.6:
            changes = {"date": day(rng.randrange(3650))[:8] + "01"}  # first of a month: valid at any precision but quarter/year
            if target.get("precision") not in (None, "day", "month"):
                changes = {"summary": "corrected date"}
        elif "amount" in target:
            changes = {"amount": amount()}
        else:
            changes = {"summary": summary() or "corrected"}
        emit({"type": "event.corrected", "date": day(d), "subject": target["subject"], "corrects": target["id"],
              "changes": changes, "reason": "corrected per later reporting"})
    elif correctable:
        i = rng.randrange(max(0, len(correctable) - 5000), len(correctable))
        target = correctable[i]
        if target["type"] in ("program.announced", "facility.announced", "target.set"):
            continue
        correctable[i] = correctable[-1]
        correctable.pop()
        emit({"type": "event.retracted", "date": day(d), "subject": target["subject"], "retracts": target["id"], "reason": "source withdrew the report"})
