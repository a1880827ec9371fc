import Foundation
import TestSupport
import Testing
import MilestoneModel
@testable import MilestoneLedger

/// Edges a review found: the year 9999, odd amounts and dates, foreign databases,
/// spreadsheets with stray columns, a hash-valid but invalid last line.
@Suite struct EdgeTests {
    @Test("intervals end inside their own period, even in the year 9999")
    func intervalEnds() {
        let d = CalendarDate("9999-01-01")!
        #expect(d.end(at: .year).description == "9999-12-31")
        #expect(CalendarDate("9999-10-01")!.end(at: .quarter).description == "9999-12-31")
        #expect(CalendarDate("9999-12-01")!.end(at: .month).description == "9999-12-31")
        #expect(CalendarDate("2024-02-01")!.end(at: .month).description == "2024-02-29")
        #expect(CalendarDate("2025-04-01")!.end(at: .quarter).description == "2025-06-30")
        #expect(CalendarDate("9999-12-31")!.adding(months: 1) == nil)
        #expect(PartialDate("9999")?.end.description == "9999-12-31")
    }

    @Test("partial dates take digits only; amounts refuse what is not a whole number, whatever the letter", arguments: [
        "+025", "2025-+9", "2025-Q+1", "0000", "2025-00", "2025-q3", "２０２５",
    ])
    func partialDateRefuses(_ text: String) {
        #expect(PartialDate(text) == nil)
    }

    @Test("amounts", arguments: [("5ß", nil), ("5ﬁ", nil), ("5.", nil), ("5.B", nil), (".5B", nil), ("1.5k", Int64(1500)), ("$761M", 761_000_000), ("NT$500M", 500_000_000)] as [(String, Int64?)])
    func amounts(_ c: (String, Int64?)) {
        #expect(AmountText.parse(c.0)?.value == c.1, "\(c.0)")
    }

    @Test("record refuses odd amounts and dates as invalid input, without crashing")
    func oddInputs() {
        let dir = TempDir()
        let l = fixtureLedger(in: dir)
        for (option, value) in [("--amount", "5ß"), ("--amount", "5."), ("--date", "2025-+9")] {
            let r = cli(["record", "--ledger", l, "--type", "investment.committed", "--subject", "wistron-texas", "--date", "2025-09",
                         "--amount", "1M", "--source", "X", option, value])
            #expect(r.code == 65, "\(option) \(value): \(r.code) \(r.stderr)")
        }
    }

    @Test("--db naming someone else's SQLite database is refused and the file left as it was")
    func foreignDatabase() throws {
        let dir = TempDir()
        let l = fixtureLedger(in: dir)
        let other = dir.file("other.sqlite")
        #expect(run("/usr/bin/env", ["sqlite3", other, "CREATE TABLE precious (x); INSERT INTO precious VALUES (42);"]).code == 0)
        let r = cli(["status", "--ledger", l, "--db", other])
        #expect(r.code == 74 && r.stderr.contains("not a milestones read-model file"), "\(r.stderr)")
        #expect(run("/usr/bin/env", ["sqlite3", other, "SELECT x FROM precious"]).stdout == "42\n")
    }

    @Test("a report whose dates reach the year 9999 is drawn, and ends")
    func reportAtTheEndOfTime() {
        let dir = TempDir()
        let l = fixtureLedger(in: dir)
        #expect(cli(["record", "-q", "--ledger", l, "--type", "target.set", "--subject", "foxconn-houston", "--date", "2025-05-01",
                     "--milestone", "construction.completed", "--due-earliest", "9998", "--due-latest", "9999", "--source", "X"]).code == 0)
        for asOf in ["9998-12-31", "9999-12-31"] {
            let r = run("/usr/bin/timeout", ["60", Paths.binary, "report", "--ledger", l, "--as-of", asOf, "--out", dir.file("r-\(asOf).html")],
                        env: ["MILESTONES_NOW": fixedNow])
            #expect(r.code == 0, "\(asOf): \(r.code) \(r.stderr)")
        }
    }

    @Test("CSV: a blank header cell with something under it is named; one long row does not sink the rest")
    func csvEdges() {
        let dir = TempDir()
        let l = fixtureLedger(in: dir)
        let blank = cli(["record", "--ledger", l, "--file", dir.write("b.csv", "type,subject,date,,source.publisher\nsite.secured,wistron-texas,2025-10-04,note,X\n")])
        #expect(blank.code == 65 && blank.stderr.contains(#"b.csv:2: column "" (column 4): unknown column"#), "\(blank.stderr)")
        let long = cli(["record", "--ledger", l, "--file", dir.write("l.csv", """
            type,subject,date,amount,source.publisher
            investment.committed,wistron-texas,2025-09,5M,X
            investment.committed,wistron-texas,2025-10,6M,X,extra

            """)])
        #expect(long.code == 65 && long.stderr.contains("l.csv:3: 6 cells but the header names 5 columns") && !long.stderr.contains("l.csv:2"), "\(long.stderr)")
        let trailing = cli(["record", "--ledger", l, "--file", dir.write("t.csv", "type,subject,date,amount,source.publisher\ninvestment.committed,wistron-texas,2025-09,5M,X,\n")])
        #expect(trailing.code == 0, "\(trailing.stderr)")
    }

    @Test("repair: a last line whose hash and chain hold but whose event is invalid is removed, not given an LF; record 1 gets its LF back")
    func repairChecksEverything() throws {
        let dir = TempDir()
        let l = fixtureLedger(in: dir)
        let whole = bytes(l)
        // A record line that hashes and chains, holding an event no ledger may hold.
        let forge = """
            import hashlib, json, sys
            lines = open(sys.argv[1], 'rb').read().split(b'\\n')
            last = json.loads(lines[-2])
            rec = {"event": {"type": "bogus.thing", "id": "x"}, "prev": last["sha256"], "recorded_at": last["recorded_at"], "seq": last["seq"] + 1}
            text = json.dumps(rec, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            rec["sha256"] = hashlib.sha256(text.encode()).hexdigest()
            open(sys.argv[1], 'ab').write(json.dumps(rec, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode())
            """
        #expect(run("/usr/bin/env", ["python3", "-c", forge, l]).code == 0)
        let r = cli(["repair", "--torn-tail", "--ledger", l])
        #expect(r.code == 0 && r.stdout.contains("removed a torn tail"), "\(r.stdout) \(r.stderr)")
        #expect(bytes(l) == whole)
        // A ledger of one record that lacks only its LF.
        let one = dir.file("one.jsonl")
        #expect(cli(["init", "--name", "example.org/one", "--ledger", one]).code == 0)
        let first = bytes(one)
        try first.dropLast().write(to: URL(fileURLWithPath: one))
        let fixed = cli(["repair", "--torn-tail", "--ledger", one])
        #expect(fixed.code == 0 && fixed.stdout.contains("written back"), "\(fixed.stdout) \(fixed.stderr)")
        #expect(bytes(one) == first)
    }

    @Test("RFC 9162's split of n leaves, for any n a checkpoint can claim (doubling overflowed past 2^62 and never ended)")
    func mostSplit() {
        #expect(Merkle.split(2) == 1 && Merkle.split(3) == 2 && Merkle.split(4) == 2 && Merkle.split(5) == 4 && Merkle.split(257) == 256)
        #expect(Merkle.split(Int.max) == 1 << 62)
        #expect(Merkle.split(1 << 62 + 1) == 1 << 62)
    }

    @Test("a hostile log: an entry holding two records, a checkpoint of 2^63 - 1 records, another origin — refused, nothing written", arguments: ["joined", "huge", "origin"])
    func hostileLog(_ mode: String) throws {
        let dir = TempDir()
        let l = dir.file("src.jsonl")
        #expect(cli(["init", "--name", "example.org/log", "--ledger", l]).code == 0)
        #expect(cli(["record", "-q", "--ledger", l, "--file", dir.write("e.jsonl", """
            {"id":"p","type":"program.announced","date":"2025-04-14","subject":"prog","name":"P","sponsor":"S","sources":[{"publisher":"X"}]}
            {"id":"f","type":"facility.announced","date":"2025-04-14","subject":"plant","name":"F","operator":"O","kind":"fab","location":{"country":"US"},"sources":[{"publisher":"X"}]}
            {"id":"s","type":"site.secured","date":"2025-05-01","subject":"plant","sources":[{"publisher":"X"}]}

            """)]).code == 0)
        #expect(cli(["keygen", "--name", "example.org/log", "--out", dir.file("log")]).code == 0)
        let site = dir.file("site")
        let forge = run("/usr/bin/env", ["python3", Paths.root.appendingPathComponent("Tests/python/forge_log.py").path, dir.file("log.key"), l, site, mode])
        #expect(forge.code == 0, "\(forge.stderr)")
        // A local copy of the first two records, for the huge claim (consistency from there).
        let local = dir.file("m.jsonl")
        if mode == "huge" {
            let two = String(decoding: bytes(l), as: UTF8.self).split(separator: "\n").prefix(2).joined(separator: "\n") + "\n"
            try Data(two.utf8).write(to: URL(fileURLWithPath: local))
        }
        let before = bytes(local)
        let r = run("/usr/bin/timeout", ["60", Paths.binary, "mirror", site, "--key", dir.file("log.vkey"), "--ledger", local], env: ["MILESTONES_NOW": fixedNow])
        #expect(r.code == 1, "\(mode): \(r.code) \(r.stderr)")
        #expect(bytes(local) == before)
    }

    @Test("diff: --from after --to is a usage error; --as-of takes a partial date")
    func diffOptions() {
        let dir = TempDir()
        let l = fixtureLedger(in: dir)
        #expect(cli(["diff", "--ledger", l, "--from", "2026-01-01", "--to", "2025-01-01"]).code == 64)
        #expect(cli(["diff", "--ledger", l, "--from", "2025-06-30", "--by", "published", "--as-of", "2025-Q4"]).code == 0)
    }
}
