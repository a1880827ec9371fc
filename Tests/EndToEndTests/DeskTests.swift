import Foundation
import TestSupport
import Testing

/// The analyst's desk (docs/cli.md): log, diff, types, tables that fit,
/// input that fits the hand — through the built binary.
@Suite struct DeskTests {
    func ledger(_ dir: TempDir) -> String {
        let path = dir.file("d.jsonl")
        #expect(cli(["init", "--name", "example.org/d", "--ledger", path], env: ["MILESTONES_NOW": "2025-01-01T00:00:00Z"]).code == 0)
        let first = """
            {"id":"f","type":"facility.announced","date":"2025-04-14","subject":"plant","name":"工場 Plant","operator":"Foxconn","kind":"assembly","location":{"country":"US"},"sources":[{"publisher":"NVIDIA","published":"2025-04-14"}]}
            {"id":"t","type":"target.set","date":"2025-04-14","subject":"plant","milestone":"production.started","due":{"earliest":"2026-01-01","latest":"2026-03-31"},"sources":[{"publisher":"NVIDIA","published":"2025-04-14"}]}

            """
        let second = """
            {"id":"s","type":"site.secured","date":"2025-03-24","subject":"plant","sources":[{"publisher":"Taipei Times","published":"2025-03-25"}]}
            {"id":"c","type":"event.corrected","date":"2025-06-01","subject":"plant","corrects":"t","changes":{"due":{"earliest":"2026-04-01","latest":"2026-06-30"}},"reason":"revised in the filing","sources":[{"publisher":"TWSE","published":"2025-06-01"}]}

            """
        #expect(cli(["record", "-q", "--ledger", path, "--file", dir.write("1.jsonl", first)], env: ["MILESTONES_NOW": "2025-05-01T00:00:00Z"]).code == 0)
        #expect(cli(["record", "-q", "--ledger", path, "--file", dir.write("2.jsonl", second)], env: ["MILESTONES_NOW": "2025-07-01T00:00:00Z"]).code == 0)
        return path
    }

    @Test("log lists the records newest first, by recorded time, with --limit and --reverse")
    func log() throws {
        let dir = TempDir()
        let l = ledger(dir)
        let all = try #require(parseJSON(cli(["log", "--ledger", l, "--format", "json"]).stdout) as? [[String: Any]])
        #expect(all.map { $0["seq"] as? Int } == [5, 4, 3, 2, 1])
        #expect(all.first?["type"] as? String == "event.corrected" && all.first?["recorded_at"] as? String == "2025-07-01T00:00:00Z")
        let may = try #require(parseJSON(cli(["log", "--ledger", l, "--format", "json", "--since", "2025-05-01", "--until", "2025-05-31"]).stdout) as? [[String: Any]])
        #expect(may.map { $0["id"] as? String } == ["t", "f"])
        let oldest = try #require(parseJSON(cli(["log", "--ledger", l, "--format", "json", "--reverse", "--limit", "2"]).stdout) as? [[String: Any]])
        #expect(oldest.map { $0["seq"] as? Int } == [4, 5])
        #expect(cli(["log", "--ledger", l, "--since", "2025-06-01", "--until", "2025-05-01"]).code == 64)
    }

    @Test("diff shows events added and corrected field by field, and the targets that changed, by either clock")
    func diff() throws {
        let dir = TempDir()
        let l = ledger(dir)
        let r = cli(["diff", "--ledger", l, "--from", "2025-05-31", "--as-of", "2026-12-31", "--format", "json"])
        #expect(r.code == 0, "\(r.stderr)")
        let d = try #require(parseJSON(r.stdout) as? [String: Any])
        let events = try #require(d["events"] as? [[String: Any]])
        #expect(events.map { "\($0["change"]!) \($0["id"]!)" }.sorted() == ["added s", "corrected t"])
        let due = ((events.first { $0["id"] as? String == "t" }?["fields"] as? [String: Any])?["due"] as? [String: Any])
        #expect((due?["from"] as? [String: Any])?["latest"] as? String == "2026-03-31")
        #expect((due?["to"] as? [String: Any])?["latest"] as? String == "2026-06-30")
        let targets = try #require(d["targets"] as? [[String: Any]])
        #expect(targets.count == 1 && (targets[0]["fields"] as? [String: Any])?["due_latest"] != nil)
        let status = try #require(d["status"] as? [[String: Any]])
        #expect((status.first?["fields"] as? [String: Any])?["phase"] != nil)
        // By the publication clock: between 2025-05-31 and 2025-06-01 only the correction was published.
        let p = try #require(parseJSON(cli(["diff", "--ledger", l, "--from", "2025-05-31", "--to", "2025-06-01", "--by", "published",
                                             "--as-of", "2026-12-31", "--format", "json"]).stdout) as? [String: Any])
        #expect((p["events"] as? [[String: Any]])?.map { $0["id"] as? String } == ["t"])
        // CSV: one line a changed field.
        let csv = cli(["diff", "--ledger", l, "--from", "2025-05-31", "--as-of", "2026-12-31", "--format", "csv"]).stdout
        #expect(csv.hasPrefix("what,change,subject,id_or_milestone,field,before,after"))
        #expect(csv.contains("target,changed,plant,production.started,due_latest,2026-03-31,2026-06-30"))
        // Nothing between a time and itself.
        let same = try #require(parseJSON(cli(["diff", "--ledger", l, "--from", "2025-07-01", "--format", "json"]).stdout) as? [String: Any])
        #expect((same["events"] as? [Any])?.isEmpty == true && (same["targets"] as? [Any])?.isEmpty == true)
    }

    @Test("types lists the vocabulary from the validator's tables; one type in full; a typo is named")
    func types() throws {
        let all = cli(["types"])
        #expect(all.code == 0)
        for t in ["program.announced", "facility.announced", "target.revised", "event.corrected", "production.milestone"] {
            #expect(all.stdout.contains(t))
        }
        let one = try #require(parseJSON(cli(["types", "target.set", "--format", "json"]).stdout) as? [[String: Any]])
        let fields = try #require(one.first?["fields"] as? [[String: Any]])
        #expect(Set(fields.map { $0["name"] as! String }) == ["type", "id", "date", "precision", "subject", "sources", "summary", "milestone", "due"])
        #expect(fields.first { $0["name"] as? String == "due" }?["required"] as? Bool == true)
        let typo = cli(["types", "target.sett"])
        #expect(typo.code == 64 && typo.stderr.contains(#"did you mean "target.set""#))
        #expect(cli(["record", "--help"]).stdout.contains("milestones types"))
    }

    @Test("options take partial dates, human amounts and a source's title and publication date")
    func handyInput() throws {
        let dir = TempDir()
        let l = ledger(dir)
        let r = cli(["record", "--ledger", l, "--type", "investment.committed", "--subject", "plant", "--date", "2025-Q3", "--amount", "$1.2B",
                     "--source", "Reuters,https://example.org/r", "--source-title", "Plant grows", "--source-published", "2025-08-02", "--format", "json"])
        #expect(r.code == 0, "\(r.stderr)")
        let last = try #require(parseJSON(String(decoding: bytes(l), as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "") as? [String: Any])
        let e = try #require(last["event"] as? [String: Any])
        #expect(e["date"] as? String == "2025-07-01" && e["precision"] as? String == "quarter")
        #expect((e["amount"] as? [String: Any])?["value"] as? Int == 1_200_000_000)
        let source = (e["sources"] as? [[String: Any]])?.first
        #expect(source?["title"] as? String == "Plant grows" && source?["published"] as? String == "2025-08-02")
        // A target window from partial dates: the first day of one period to the last of another.
        #expect(cli(["record", "--ledger", l, "--type", "target.revised", "--subject", "plant", "--date", "2025-09", "--milestone", "production.started",
                     "--due-earliest", "2026-Q3", "--due-latest", "2026-Q4", "--source", "X"]).code == 0)
        let t = try #require((parseJSON(cli(["targets", "--ledger", l, "--format", "json", "--as-of", "2026"]).stdout) as? [[String: Any]])?.first)
        #expect(t["due_earliest"] as? String == "2026-07-01" && t["due_latest"] as? String == "2026-12-31")
        for bad in [["--amount", "1.2345K"], ["--amount", "lots"], ["--date", "2025-Q5"], ["--date", "2025-Q3", "--precision", "month"]] {
            let b = cli(["record", "--ledger", l, "--type", "investment.committed", "--subject", "plant", "--date", "2025-08-01", "--amount", "1M", "--source", "X"] + bad)
            #expect(b.code == 64 || b.code == 65, "\(bad): \(b.code) \(b.stderr)")
        }
    }

    @Test("record --file takes a spreadsheet's CSV export: header of field paths, all or nothing, errors name line and column")
    func csvInput() throws {
        let dir = TempDir()
        let l = ledger(dir)
        let good = dir.write("good.csv", """
            type,date,subject,amount,source.publisher,source.url,source.published,source.title,summary,location.country
            investment.committed,2025-Q4,plant,$1.1B,Reuters,https://example.org/a,2025-11-02,"Plant grows, again","two
            lines"
            production.started,2026-03,plant,,Reuters,https://example.org/b,2026-03-30,Started,,

            """)
        let r = cli(["record", "--ledger", l, "--file", good, "--format", "json"])
        #expect(r.code == 0, "\(r.stderr)")
        let events = try #require(parseJSON(cli(["events", "--ledger", l, "--format", "json", "--as-of", "2026-12-31", "--type", "investment.committed",
                                                 "--type", "production.started"]).stdout) as? [[String: Any]])
        #expect(events.count == 2)
        let i = try #require(events.first { $0["type"] as? String == "investment.committed" })
        #expect(i["date"] as? String == "2025-10-01" && i["precision"] as? String == "quarter" && i["summary"] as? String == "two\nlines")
        #expect((i["amount"] as? [String: Any])?["value"] as? Int == 1_100_000_000)
        #expect((i["sources"] as? [[String: Any]])?.first?["title"] as? String == "Plant grows, again")
        // Bad rows: nothing written, each problem with its line (a quoted field spans two) and column or field.
        let before = bytes(l)
        let bad = dir.write("bad.csv", """
            type,date,subject,amount,source.publisher,summary
            investment.committed,2025-08,plant,$1M,X,"a
            b"
            investment.committed,2025-08,plant,lots,X,
            production.started,2026,plnt,,X,
            site.secured,2025-02-30,plant,,X,

            """)
        let b = cli(["record", "--ledger", l, "--file", bad])
        #expect(b.code == 65)
        #expect(b.stderr.contains("bad.csv:4: column amount: \"lots\""), "\(b.stderr)")
        #expect(b.stderr.contains("bad.csv:5: subject: \"plnt\""), "\(b.stderr)")
        #expect(b.stderr.contains("bad.csv:6: date: \"2025-02-30\" is not a calendar date"), "\(b.stderr)")
        #expect(bytes(l) == before)
        let unknown = cli(["record", "--ledger", l, "--file", dir.write("u.csv", "type,date,subject,colour\nsite.secured,2025-01-01,plant,red\n")])
        #expect(unknown.code == 65 && unknown.stderr.contains("u.csv:2: column colour: unknown column"))
    }

    @Test("tables: never cut when piped, --wide, wide characters aligned, no colour when piped")
    func tables() throws {
        let dir = TempDir()
        let l = ledger(dir)
        let piped = cli(["status", "--ledger", l])
        #expect(piped.code == 0 && !piped.stdout.contains("…") && !piped.stdout.contains("\u{1B}["))
        // The CJK name takes two columns a character: the phase column starts at the same column in every row.
        let facilities = piped.stdout.components(separatedBy: "\n\n")[0]
        let lines = facilities.split(separator: "\n").filter { $0.hasPrefix("plant") || $0.hasPrefix("subject") }
        func column(_ line: Substring, of word: String) -> Int? {
            guard let r = line.range(of: word) else { return nil }
            return line[..<r.lowerBound].unicodeScalars.reduce(0) { n, u in n + ((0x4E00...0x9FFF).contains(u.value) || (0x3040...0x30FF).contains(u.value) ? 2 : 1) }
        }
        #expect(lines.count == 2)
        #expect(column(lines[0], of: "phase") == column(lines[1], of: "site_secured"), "\(lines)")
        #expect(cli(["status", "--ledger", l, "--wide"]).code == 0)
    }

    @Test("shell completion: scripts for bash, zsh and fish; subjects completed from the ledger, event types from the vocabulary")
    func completion() {
        let dir = TempDir()
        let l = ledger(dir)
        for shell in ["bash", "zsh", "fish"] {
            let script = cli(["--generate-completion-script", shell])
            #expect(script.code == 0 && script.stdout.contains("target.revised"), "\(shell)")
        }
        // The protocol the scripts use: ---completion SUBCOMMAND -- ARG WORD-INDEX CURSOR WORDS….
        let r = cli(["---completion", "targets", "--", "--subject", "3", "2", "milestones", "targets", "--subject", "pl"], env: ["MILESTONES_LEDGER": l])
        #expect(r.stdout.split(separator: "\n") == ["plant"], "\(r.stdout) \(r.stderr)")
        let named = cli(["---completion", "events", "--", "--subject", "5", "0", "milestones", "events", "--ledger", l, "--subject", ""])
        #expect(named.stdout.contains("plant"), "\(named.stdout) \(named.stderr)")
    }

    @Test("long jobs show progress on a terminal only: a big batch, the first projection")
    func progress() {
        let dir = TempDir()
        let l = fixtureLedger(in: dir)
        let input = dir.write("big.jsonl", milestoneLines(ids: "p-", 0..<20_000, summary: 500))
        // On a terminal (a pseudo-terminal made by Python's pty module): a progress line on stderr.
        let script = "import os, pty, sys\nos.environ['MILESTONES_NOW'] = '2026-01-01T00:00:00Z'\n"
            + "sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))"
        let tty = run("/usr/bin/env", ["python3", "-c", script, Paths.binary, "record", "-q", "--ledger", l, "--file", input])
        #expect(tty.code == 0, "\(tty.stdout)")
        #expect(tty.stdout.contains("checking") && tty.stdout.contains("%"), "\(tty.stdout.suffix(300))")
        let catchUp = run("/usr/bin/env", ["python3", "-c", script, Paths.binary, "status", "--ledger", l])
        #expect(catchUp.stdout.contains("catching up"), "\(catchUp.stdout.suffix(300))")
        // Publishing and the report too.
        #expect(cli(["keygen", "--name", "example.org/nvidia-ai-factories", "--out", dir.file("k")]).code == 0)
        let publish = run("/usr/bin/env", ["python3", "-c", script, Paths.binary, "publish", dir.file("site"), "--key", dir.file("k.key"), "--ledger", l])
        #expect(publish.code == 0 && publish.stdout.contains("publishing:"), "\(publish.stdout.suffix(300))")
        let report = run("/usr/bin/env", ["python3", "-c", script, Paths.binary, "report", "--out", dir.file("r.html"), "--ledger", l])
        #expect(report.code == 0 && report.stdout.contains("report:"), "\(report.stdout.suffix(300))")
        // Piped: none.
        let piped = cli(["record", "-q", "--ledger", l, "--file", dir.write("more.jsonl", milestoneLines(ids: "q-", 0..<20_000, summary: 500))])
        #expect(piped.code == 0 && piped.stderr.isEmpty, "\(piped.stderr)")
    }

    @Test("tables on a terminal of a fixed width match their golden files (dates and numbers never cut)", arguments: [
        ("status", 60), ("status", 100), ("targets", 60), ("targets", 100), ("timeline-wistron", 60), ("timeline-wistron", 100),
    ] as [(String, Int)])
    func goldenTables(_ c: (String, Int)) {
        let dir = TempDir()
        let command = c.0 == "timeline-wistron" ? ["timeline", "wistron-texas"] : [c.0]
        let r = run("/usr/bin/env", ["python3", Paths.root.appendingPathComponent("Tests/python/on_terminal.py").path, "\(c.1)", Paths.binary]
                    + command + ["--as-of", "2026-11-26", "--ledger", goldenLedger, "--db", dir.file("g.sqlite")], env: ["MILESTONES_NOW": fixedNow])
        #expect(r.code == 0, "\(r.stderr)")
        let want = String(decoding: bytes(Paths.fixture("golden/tables/\(c.0)-\(c.1).txt")), as: UTF8.self)
        #expect(r.stdout == want, "\(c.0) at \(c.1) columns:\n\(r.stdout)")
        // At 100 columns every table fits; at 60 the dates and numbers alone can be wider (they are never cut).
        if c.1 >= 100 { #expect(r.stdout.split(separator: "\n").allSatisfy { displayColumns($0) <= c.1 }, "a line wider than \(c.1) columns") }
    }

    /// Columns a line takes (East Asian wide characters two), as a terminal shows it.
    func displayColumns(_ line: Substring) -> Int {
        line.unicodeScalars.reduce(0) { n, u in n + ((0x1100...0x115F).contains(u.value) || (0x2E80...0xA4CF).contains(u.value) || (0xAC00...0xD7A3).contains(u.value) || (0xFF00...0xFF60).contains(u.value) ? 2 : 1) }
    }

    @Test("show prints labels aligned, each correction with its reason and its changes")
    func show() {
        let dir = TempDir()
        let l = ledger(dir)
        let s = cli(["show", "t", "--ledger", l]).stdout
        #expect(s.contains("corrected by c (seq 5, 2025-07-01T00:00:00Z): revised in the filing"))
        #expect(s.contains(#"changes: {"due":{"earliest":"2026-04-01","latest":"2026-06-30"}}"#))
        // As known before the correction: no correction, the content as recorded.
        let then = cli(["show", "t", "--ledger", l, "--known-at", "2025-06-01"]).stdout
        #expect(!then.contains("corrected by") && !then.contains("now "))
    }
}
