import CanonicalJSON
import Foundation
import TestSupport
import MilestoneLedger
import MilestoneProjections
import Testing

/// Answers an analyst can trust (docs/events.md "Targets" and "Publication
/// time"; docs/cli.md "Time travel", "The read models never answer for a
/// changed ledger", "Output"; docs/ledger-format.md "Crash safety"), through
/// the built binary.
@Suite struct TrustTests {
    /// A small ledger: one program, one facility, and `extra` JSON Lines.
    func ledger(_ dir: TempDir, _ extra: String = "", now: String = "2026-06-01T00:00:00Z") -> String {
        let path = dir.file("t.jsonl")
        #expect(cli(["init", "--name", "example.org/t", "--ledger", path], env: ["MILESTONES_NOW": "2025-01-01T00:00:00Z"]).code == 0)
        let base = """
            {"id":"p","type":"program.announced","date":"2025-04-14","subject":"prog","name":"P","sponsor":"NVIDIA","sources":[{"publisher":"NVIDIA","published":"2025-04-14"}]}
            {"id":"f","type":"facility.announced","date":"2025-04-14","subject":"foxconn-houston","name":"F","operator":"Foxconn","kind":"assembly","location":{"country":"US"},"program":"prog","sources":[{"publisher":"NVIDIA","published":"2025-04-14"}]}
            {"id":"t1","type":"target.set","date":"2025-04-14","subject":"foxconn-houston","milestone":"production.started","due":{"earliest":"2026-01-01","latest":"2026-03-31"},"sources":[{"publisher":"NVIDIA","published":"2025-04-14"}]}

            """
        let r = cli(["record", "-q", "--ledger", path, "--file", dir.write("base.jsonl", base + extra)], env: ["MILESTONES_NOW": now])
        #expect(r.code == 0, "\(r.stderr)")
        return path
    }

    func json(_ args: [String], _ ledger: String) -> [[String: Any]] {
        let r = cli(args + ["--ledger", ledger, "--format", "json"])
        #expect(r.code == 0, "\(args): \(r.stderr)")
        return parseJSON(r.stdout) as? [[String: Any]] ?? []
    }

    @Test("a year-precision start against a Q1 window is undetermined, not met early")
    func coarseDateIsUndetermined() throws {
        let dir = TempDir()
        let l = ledger(dir, #"{"type":"production.started","subject":"foxconn-houston","date":"2026-01-01","precision":"year","sources":[{"publisher":"X"}]}"# + "\n")
        let t = try #require(json(["targets", "--as-of", "2026-12-31"], l).first { $0["milestone"] as? String == "production.started" })
        #expect(t["state"] as? String == "undetermined")
        #expect(t["actual"] as? String == "2026-01-01")
        #expect(t["actual_latest"] as? String == "2026-12-31")
        #expect(t["slip_days"] is NSNull)
        #expect(t["implied_by"] is NSNull)
        // The table prints the date as precisely as it is known.
        let table = cli(["targets", "--ledger", l, "--as-of", "2026-12-31"]).stdout
        #expect(table.contains(" 2026 ") && table.contains("undetermined"), "\(table)")
        // A month inside the window is met, with its certain bound: at least 31 days early.
        let other = TempDir()
        let m = ledger(other, #"{"type":"production.started","subject":"foxconn-houston","date":"2026-02-01","precision":"month","sources":[{"publisher":"X"}]}"# + "\n")
        let met = try #require(json(["targets", "--as-of", "2026-12-31"], m).first)
        #expect(met["state"] as? String == "met" && met["slip_days"] as? Int == -31 && met["actual_latest"] as? String == "2026-02-28")
    }

    @Test("a later milestone implies the earlier one: targets never call overdue what status shows as passed")
    func impliedMilestone() throws {
        let dir = TempDir()
        let l = ledger(dir, #"{"type":"production.volume","subject":"foxconn-houston","date":"2026-02-10","sources":[{"publisher":"X"}]}"# + "\n")
        let t = try #require(json(["targets", "--as-of", "2026-12-31"], l).first)
        #expect(t["state"] as? String == "met")
        #expect(t["actual"] is NSNull)
        #expect(t["actual_latest"] as? String == "2026-02-10")
        #expect(t["implied_by"] as? String == "production.volume")
        #expect(t["slip_days"] as? Int == -49)
        let s = try #require(json(["status", "--as-of", "2026-12-31"], l).first)
        #expect(s["phase"] as? String == "volume_production" && s["phase_precision"] as? String == "day")
        // Implied only after due.latest: it happened, but when is not known: undetermined.
        let other = TempDir()
        let late = ledger(other, #"{"type":"production.volume","subject":"foxconn-houston","date":"2026-05-01","sources":[{"publisher":"X"}]}"# + "\n")
        #expect(json(["targets", "--as-of", "2026-12-31"], late).first?["state"] as? String == "undetermined")
    }

    @Test("status carries phase_precision and tables print the phase date as precisely as known")
    func phasePrecision() throws {
        let dir = TempDir()
        let l = ledger(dir, #"{"type":"construction.started","subject":"foxconn-houston","date":"2025-07-01","precision":"quarter","sources":[{"publisher":"X"}]}"# + "\n")
        let s = try #require(json(["status"], l).first)
        #expect(s["phase_date"] as? String == "2025-07-01" && s["phase_precision"] as? String == "quarter")
        #expect(cli(["status", "--ledger", l]).stdout.contains("2025-Q3"))
    }

    @Test("--published-by answers with what had been published by then, corrections included by their own dates")
    func publishedBy() {
        let dir = TempDir()
        // Typed in today (recorded 2026-06-01) from 2025 articles; one fact with no source date counts from its recording.
        let l = ledger(dir, """
            {"id":"s1","type":"site.secured","subject":"foxconn-houston","date":"2025-03-24","sources":[{"publisher":"Taipei Times","published":"2025-03-25"}]}
            {"id":"c1","type":"construction.started","subject":"foxconn-houston","date":"2025-09-01","sources":[{"publisher":"Blog"}]}
            {"id":"fix","type":"event.corrected","subject":"foxconn-houston","date":"2025-05-09","corrects":"s1","changes":{"date":"2025-03-20"},"reason":"the filing's date","sources":[{"publisher":"TWSE","published":"2025-05-09"}]}

            """)
        func phase(_ by: String?) -> [String: Any] {
            json(["status", "--as-of", "2026-01-01"] + (by.map { ["--published-by", $0] } ?? []), l).first ?? [:]
        }
        #expect(phase(nil)["phase"] as? String == "under_construction")
        #expect(phase("2026-05-31")["phase"] as? String == "site_secured")  // c1 counts from 2026-06-01, its recording
        #expect(phase("2025-04-30")["phase_date"] as? String == "2025-03-24")  // before the correction was published
        #expect(phase("2025-05-09")["phase_date"] as? String == "2025-03-20")  // after
        #expect(json(["status", "--as-of", "2026-01-01", "--published-by", "2025-03-01"], l).isEmpty)
        // The other time-travel commands take it too.
        let events = json(["events", "--published-by", "2025-04-30"], l).map { $0["id"] as? String }
        #expect(events == ["p", "f", "t1", "s1"])
        #expect(json(["timeline", "foxconn-houston", "--published-by", "2025-05-09"], l).map { $0["date"] as? String } == ["2025-03-20", "2025-04-14", "2025-04-14"])
        #expect(json(["targets", "--published-by", "2025-04-30"], l).count == 1)
        let out = dir.file("r.sqlite")
        #expect(cli(["replay", "--ledger", l, "--published-by", "2025-04-30", "--out", out]).code == 0)
    }

    @Test("a ledger edited under its read models is refused: no answer, nothing appended")
    func changedLedgerRefused() throws {
        let dir = TempDir()
        let l = ledger(dir, #"{"type":"site.secured","subject":"foxconn-houston","date":"2025-03-24","sources":[{"publisher":"X"}]}"# + "\n")
        #expect(cli(["status", "--ledger", l]).code == 0)  // the read models exist
        // Same length, same last record: only a full check can see it.
        var text = try String(contentsOfFile: l, encoding: .utf8)
        text = text.replacingOccurrences(of: #""name":"F""#, with: #""name":"G""#)
        try text.write(toFile: l, atomically: true, encoding: .utf8)
        let before = bytes(l)
        let s = cli(["status", "--ledger", l])
        #expect(s.code == 1 && s.stdout.isEmpty)
        #expect(s.stderr.contains("seq 3"), "\(s.stderr)")
        let r = cli(["record", "--ledger", l, "--type", "construction.started", "--subject", "foxconn-houston", "--date", "2025-09-01", "--source", "X"])
        #expect(r.code == 1, "\(r.stderr)")
        #expect(bytes(l) == before)
        // An append by the tool itself is not a change to re-check; and a query after it answers.
        let other = TempDir()
        let ok = ledger(other)
        #expect(cli(["status", "--ledger", ok]).code == 0)
        #expect(cli(["record", "--ledger", ok, "--type", "site.secured", "--subject", "foxconn-houston", "--date", "2025-03-24", "--source", "X"]).code == 0)
        #expect(cli(["status", "--ledger", ok]).code == 0)
    }

    @Test("a batch is not appended when the ledger changed while it was being checked (the lock is only advisory)")
    func changedDuringBatch() throws {
        let dir = TempDir()
        let l = ledger(dir)
        #expect(cli(["status", "--ledger", l]).code == 0)  // the read models exist, and have checked the file
        let recording = try Recording(ledger: l, readModels: ReadModels.path(forLedger: l), wait: 1)
        recording.batch.add(.object(JSONObject(dictionary: [
            "type": "site.secured", "subject": "foxconn-houston", "date": "2025-03-24", "sources": [.object(JSONObject(dictionary: ["publisher": "X"]))],
        ])))
        // Another program rewrites a record in place, byte for byte the same length, while the batch waits.
        var text = try String(contentsOfFile: l, encoding: .utf8)
        text = text.replacingOccurrences(of: #""name":"F""#, with: #""name":"G""#)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: l))
        try handle.write(contentsOf: Data(text.utf8))
        try handle.close()
        let before = bytes(l)
        #expect(throws: LedgerError.self) { _ = try recording.commit() }
        #expect(bytes(l) == before)
    }

    @Test("a zero-byte file is not a ledger: exit 66 for queries and record")
    func emptyFile() {
        let dir = TempDir()
        let l = dir.write("empty.jsonl", "")
        for args in [["status"], ["targets"], ["events"], ["record", "--type", "site.secured", "--subject", "x", "--date", "2025-01-01", "--source", "X"]] {
            let r = cli(args + ["--ledger", l])
            #expect(r.code == 66, "\(args): \(r.code) \(r.stderr)")
            #expect(r.stderr.contains("empty"))
        }
        #expect(bytes(l).isEmpty)
    }

    @Test("repair gives a whole last record its LF back, and still removes a real torn tail")
    func repairKeepsWholeRecord() throws {
        let dir = TempDir()
        let l = ledger(dir)
        let whole = bytes(l)
        try whole.dropLast().write(to: URL(fileURLWithPath: l))
        let r = cli(["repair", "--torn-tail", "--ledger", l])
        #expect(r.code == 0 && r.stdout.contains("written back"), "\(r.stdout)")
        #expect(bytes(l) == whole)
        // A record cut short, and bytes after the last LF that are no record: removed.
        for tail in [Data(whole.suffix(40).dropLast()), Data("garbage".utf8)] {
            try (whole + tail).write(to: URL(fileURLWithPath: l))
            let cut = cli(["repair", "--torn-tail", "--ledger", l])
            #expect(cut.code == 0 && cut.stdout.contains("removed a torn tail of \(tail.count) bytes"), "\(cut.stdout)")
            #expect(bytes(l) == whole)
        }
    }

    @Test("typos are loud: unknown subjects, inverted ranges, mistyped commands; repeated filters mean either")
    func loudTypos() {
        let dir = TempDir()
        let l = ledger(dir)
        for args in [["timeline", "foxconn-huston"], ["targets", "--subject", "foxconn-huston"], ["events", "--subject", "foxconn-huston"]] {
            let r = cli(args + ["--ledger", l])
            #expect(r.code == 64, "\(args)")
            #expect(r.stderr.contains(#"did you mean "foxconn-houston""#), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        #expect(cli(["events", "--ledger", l, "--since", "2025-09-01", "--until", "2025-01-01"]).code == 64)
        let typo = cli(["stauts", "--ledger", l])
        #expect(typo.code == 64 && typo.stderr.contains(#"did you mean "status""#))
        let either = json(["events", "--type", "program.announced", "--type", "target.set"], l).map { $0["id"] as? String }
        #expect(either == ["p", "t1"])
        let both = json(["events", "--subject", "prog", "--subject", "foxconn-houston"], l)
        #expect(both.count == 3)
    }

    @Test("events and timeline JSON carry every field of the event, sources included, with seq and recorded_at")
    func listsCarryFacts() throws {
        let dir = TempDir()
        let l = ledger(dir, """
            {"id":"r1","type":"target.revised","subject":"foxconn-houston","date":"2025-08-01","milestone":"production.started","due":{"earliest":"2026-04-01","latest":"2026-06-30"},"reason":"permits","sources":[{"publisher":"Reuters","url":"https://example.org/a","published":"2025-08-02","title":"Delay"}]}

            """)
        let e = json(["events", "--subject", "foxconn-houston"], l).first { $0["id"] as? String == "r1" }!
        #expect(e["seq"] as? Int == 5 && e["recorded_at"] as? String == "2026-06-01T00:00:00Z")
        #expect(e["reason"] as? String == "permits")
        #expect((e["due"] as? [String: Any])?["latest"] as? String == "2026-06-30")
        let source = (e["sources"] as? [[String: Any]])?.first
        #expect(source?["url"] as? String == "https://example.org/a" && source?["title"] as? String == "Delay")
        let t = json(["timeline", "foxconn-houston"], l)
        #expect(t.allSatisfy { $0["sources"] != nil && $0["seq"] != nil })
        #expect((json(["events"], l).first { $0["id"] as? String == "f" }?["location"] as? [String: Any])?["country"] as? String == "US")
    }

    @Test("a correction or retraction by options is dated today unless --date says otherwise")
    func amendmentDatedToday() {
        let dir = TempDir()
        let l = ledger(dir)
        let r = cli(["record", "--ledger", l, "--type", "event.corrected", "--subject", "foxconn-houston", "--corrects", "t1",
                     "--changes", #"{"due":{"earliest":"2026-01-01","latest":"2026-06-30"}}"#, "--reason", "typo", "--source", "X"],
                    env: ["MILESTONES_NOW": "2026-07-04T10:00:00Z"])
        #expect(r.code == 0, "\(r.stderr)")
        let c = json(["events", "--type", "event.corrected", "--as-of", "2026-12-31"], l).first
        #expect(c?["date"] as? String == "2026-07-04")
    }

    @Test("--version prints milestones and a semantic version")
    func version() {
        let r = cli(["--version"])
        #expect(r.code == 0)
        #expect(r.stdout.range(of: #"^milestones [0-9]+\.[0-9]+\.[0-9]+\n$"#, options: .regularExpression) != nil, "\(r.stdout)")
    }
}
