import CanonicalJSON
import Foundation
import TestSupport
import MilestoneLedger
import Testing

struct TamperCase: Decodable, Sendable, CustomTestStringConvertible {
    var file: String
    var line: Int
    var seq: Int?
    var reason: String
    var torn_tail: Bool
    var independent_check_fails: Bool
    var testDescription: String { file }

    static let all: [TamperCase] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Paths.fixture("tampered/manifest.json")))
        return try! JSONDecoder().decode([TamperCase].self, from: data)
    }()
}

@Suite("verify: tampered ledgers, torn tails, the independent check")
struct VerifyTests {
    @Test("the CLI's ledger passes the independent Python check, hash for hash")
    func independentCheck() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let ours = cli(["verify", "--format", "json", "--ledger", ledger])
        #expect(ours.code == 0)
        let report = try #require(parseJSON(ours.stdout) as? [String: Any])
        let py = pythonCheck(["ledger", ledger])
        #expect(py.code == 0, "\(py.stdout)\(py.stderr)")
        #expect(py.stdout == "ok \(report["records"]!) \(report["head"]!)\n")
        #expect(report["records"] as? Int == fixtureEventCount + 1)
    }

    @Test("the committed base ledger still verifies (the tampered fixtures are made from it)")
    func baseVerifies() {
        let r = cli(["verify", "--ledger", Paths.fixture("tampered/base.jsonl")])
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("ok: 28 records"))
    }

    @Test("each tampered ledger fails at the exact line and seq, for the right reason", arguments: TamperCase.all)
    func tampered(_ c: TamperCase) throws {
        let path = Paths.fixture("tampered/\(c.file)")
        let r = cli(["verify", "--format", "json", "--ledger", path])
        #expect(r.code == 1)
        let report = try #require(parseJSON(r.stdout) as? [String: Any], "stdout: \(r.stdout)")
        #expect(report["ok"] as? Bool == false)
        let error = try #require(report["error"] as? [String: Any])
        #expect(error["line"] as? Int == c.line)
        #expect(error["seq"] as? Int == c.seq)
        let reason = try #require(error["reason"] as? String)
        #expect(reason.contains(c.reason), "\(reason)")
        #expect(reason.hasPrefix("torn tail") == c.torn_tail)
        #expect(error["offset"] as? Int == lineOffset(path, line: c.line))
        // One line on stderr, naming the place.
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains("line \(c.line)"))
        if c.independent_check_fails {
            let py = pythonCheck(["ledger", path])
            #expect(py.code == 1, "the independent check accepted \(c.file)")
        }
    }

    func lineOffset(_ path: String, line: Int) -> Int {
        let data = bytes(path)
        var n = 1
        var offset = 0
        for (i, b) in data.enumerated() where n < line && b == 0x0A {
            n += 1
            offset = i + 1
        }
        return offset
    }

    @Test("a ledger whose lines run shorter than its first ones foretold: the id table is sized again as it goes, and still finds an id from the start repeated at the end")
    func shrinkingLines() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        // The first 2 MiB chunk holds 1,800-byte lines, foretelling about 13k records; 60k follow.
        let text = milestoneLines(ids: "long-", 0..<1_500, summary: 1_500) + milestoneLines(ids: "s-", 0..<60_000)
        #expect(cli(["record", "-q", "--ledger", ledger, "--file", dir.write("in.jsonl", text)]).code == 0)
        #expect(cli(["verify", "--ledger", ledger]).stdout.hasPrefix("ok: \(fixtureEventCount + 1 + 61_500) records"))
        // One more record, well formed and chained, repeating the id of the first long line.
        let data = bytes(ledger)
        let lines = data.split(separator: 0x0A)
        let last = try #require(parseJSON(String(decoding: lines.last!, as: UTF8.self)) as? [String: Any])
        let event = Array(#"{"date":"2026-01-01","id":"long-0","milestone":"again","precision":"day","sources":[{"publisher":"x"}],"subject":"foxconn-houston","type":"production.milestone"}"#.utf8)
        var line: [UInt8] = []
        var hasher = SHA256()
        RecordLine.append(event: event, seq: (last["seq"] as! Int) + 1, prev: Digest(hex: last["sha256"] as! String)!,
                          recordedAt: Array((last["recorded_at"] as! String).utf8), to: &line, hasher: &hasher)
        let forged = dir.file("forged.jsonl")
        try (data + Data(line)).write(to: URL(fileURLWithPath: forged))
        let r = cli(["verify", "--ledger", forged])
        #expect(r.code == 1)
        #expect(r.stderr.contains("line \(fixtureEventCount + 2 + 61_500)") && r.stderr.contains(#"id: "long-0" is already recorded"#), "\(r.stderr)")
    }

    @Test("every single-byte change to a record is caught")
    func everyByte() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let original = bytes(ledger)
        // Line 2 (a record in the middle) and the last line; every byte, one change each.
        let lines = original.split(separator: 0x0A, omittingEmptySubsequences: false)
        let start2 = lines[0].count + 1
        let targets = Array(start2..<(start2 + lines[1].count + 1))
        let tampered = dir.file("t.jsonl")
        var survivors: [Int] = []
        for (k, i) in targets.enumerated() where k % 7 == 0 || i == targets.last {
            var copy = original
            copy[i] = copy[i] == 0x41 ? 0x42 : 0x41
            try copy.write(to: URL(fileURLWithPath: tampered))
            if cli(["verify", "--ledger", tampered]).code != 1 { survivors.append(i) }
        }
        #expect(survivors.isEmpty, "byte changes not caught at offsets \(survivors)")
    }
}

@Suite("init, record, repair: end to end")
struct RecordTests {
    @Test func initRefusesAnExistingFile() {
        let dir = TempDir()
        let ledger = dir.file("l.jsonl")
        #expect(cli(["init", "--name", "example.org/x", "--ledger", ledger]).code == 0)
        let before = bytes(ledger)
        let again = cli(["init", "--name", "example.org/y", "--ledger", ledger])
        #expect(again.code == 73)
        #expect(again.stderr.contains("already exists"))
        #expect(bytes(ledger) == before)
        #expect(cli(["init", "--name", "has space", "--ledger", dir.file("m.jsonl")]).code == 65)
        #expect(!FileManager.default.fileExists(atPath: dir.file("m.jsonl")))
    }

    @Test func missingLedgerAndInput() {
        let dir = TempDir()
        let r = cli(["verify", "--ledger", dir.file("none.jsonl")])
        #expect(r.code == 66)
        #expect(r.stderr.contains("no such ledger"))
        let ledger = fixtureLedger(in: dir)
        let m = cli(["record", "--ledger", ledger, "--file", dir.file("none.jsonl")])
        #expect(m.code == 66)
    }

    @Test func usageErrors() {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        #expect(cli(["record", "--ledger", ledger]).code == 64)
        #expect(cli(["record", "--ledger", ledger, "--file", "x", "--type", "site.secured"]).code == 64)
        #expect(cli(["repair", "--ledger", ledger]).code == 64)
        #expect(cli(["verify", "--ledger", ledger, "--format", "yaml"]).code == 64)
        #expect(cli(["frobnicate"]).code == 64)
        #expect(cli(["record", "--ledger", ledger, "--wait", "-1", "--file", "x"]).code == 64)
    }

    @Test func helpHasExamples() {
        for command in ["init", "record", "verify", "repair"] {
            let r = cli([command, "--help"])
            #expect(r.code == 0)
            #expect(r.stdout.contains("Example"), "\(command) --help has no examples")
        }
    }

    @Test("recorded events are normalised and canonical, byte for byte as the independent check writes them: defaults, member order, escapes, ids")
    func normalisedAsTheSpecSays() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let fixtureID = "nvda-us-ai-2025-04-14"
        // Members in every order, escaped keys and values, non-ASCII text, defaults absent and
        // present (precision; an amount's qualifier, at the top and in changes), ids given and not.
        let input = #"""
        {"type":"program.announced","subject":"p-norm","date":"2025-01-02","name":"Prog été","sponsor":"Acme","sources":[{"url":"https://a.example/x","publisher":"A"}],"amount":{"value":5,"currency":"USD"},"id":"norm-1"}
        {"sources":[{"publisher":"台積電","url":"https://b.example/y"}],"location":{"country":"US","city":"Austin"},"kind":"fab","operator":"Op","name":"Fab","program":"p-norm","precision":"month","date":"2025-01-01","subject":"f-norm","type":"facility.announced"}
        {"type":"target.set","subject":"f-norm","date":"2025-02-03","milestone":"production.volume","due":{"latest":"2027-07-14","earliest":"2026-04-14"},"sources":[{"publisher":"C"}],"id":"norm-3"}
        {"type":"event.corrected","subject":"nvidia-us-ai-infrastructure","date":"2025-02-04","corrects":"\#(fixtureID)","reason":"fix","changes":{"name":"Renamed","amount":{"value":7,"currency":"EUR"}},"sources":[{"publisher":"D"}]}
        {"amount":{"qualifier":"about","currency":"USD","value":9},"type":"program.announced","subject":"p-norm-2","date":"2025-03-01","name":"P2","sponsor":"B","sources":[{"publisher":"E"}]}
        """#
        let file = dir.file("in.jsonl")
        try input.write(toFile: file, atomically: true, encoding: .utf8)
        let r = cli(["record", "--quiet", "--ledger", ledger, "--file", file])
        #expect(r.code == 0, "\(r.stderr)")
        let py = pythonCheck(["normalized", file, ledger])
        #expect(py.code == 0, "\(py.stdout)\(py.stderr)")
        #expect(py.stdout == "ok 5\n")
    }

    @Test("one event by options, then the same again is a no-op")
    func recordByOptions() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let args = ["record", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston",
                    "--date", "2025-09-01", "--precision", "month", "--source", "Reuters, Inc.,https://www.reuters.com/x",
                    "--format", "json"]
        let r = cli(args)
        #expect(r.code == 0, "\(r.stderr)")
        let out = try #require(parseJSON(r.stdout) as? [String: Any])
        #expect(out["appended"] as? Int == 1)
        let event = try #require((out["events"] as? [[String: Any]])?.first)
        #expect(event["seq"] as? Int == fixtureEventCount + 2)
        let id = try #require(event["id"] as? String)
        #expect(id.hasPrefix("ev-") && id.count == 23)
        let last = String(decoding: bytes(ledger), as: UTF8.self).split(separator: "\n").last!
        #expect(last.contains(#""sources":[{"publisher":"Reuters, Inc.","url":"https://www.reuters.com/x"}]"#))
        #expect(last.contains(#""precision":"month""#))
        let before = bytes(ledger)
        let again = cli(args)
        #expect(again.code == 0)
        #expect((parseJSON(again.stdout) as? [String: Any])?["already_recorded"] as? Int == 1)
        #expect(bytes(ledger) == before)
        let bad = cli(["record", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston",
                       "--date", "2025-02-30", "--source", "Reuters"])
        #expect(bad.code == 65)
        #expect(bad.stderr.hasPrefix(#"record: date: "2025-02-30" is not a calendar date"#))
    }

    @Test("re-recording the whole fixture batch is a no-op; ids without content change are idempotent")
    func idempotentBatch() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let before = bytes(ledger)
        let r = cli(["record", "--ledger", ledger, "--file", Paths.fixture("nvidia-ai-factories.jsonl")])
        #expect(r.code == 0)
        #expect(r.stdout.contains("0 appended, \(fixtureEventCount) already recorded"))
        #expect(bytes(ledger) == before)
        // An id-less event gets a content-derived id, so its retry is a no-op too.
        let input = dir.write("one.jsonl", #"{"type":"production.started","date":"2026-02-01","precision":"month","subject":"foxconn-houston","sources":[{"publisher":"Reuters"}]}"# + "\n")
        #expect(cli(["record", "--ledger", ledger, "--file", input]).stdout.contains("1 appended"))
        let after = bytes(ledger)
        #expect(cli(["record", "--ledger", ledger, "--file", input]).stdout.contains("0 appended, 1 already recorded"))
        #expect(bytes(ledger) == after)
    }

    @Test("within one batch, an event given again is recorded once, and an id given again with other content is refused")
    func repeatsInBatch() throws {
        let dir = TempDir()
        func event(_ id: String, _ milestone: String) -> String {
            #"{"type":"production.milestone","date":"2026-01-01","id":"\#(id)","milestone":"\#(milestone)","subject":"foxconn-houston","sources":[{"publisher":"x"}]}"#
        }
        // 200 events; the 51st again (the first repeat: the batch's places by
        // id are gathered then), then one more, given twice after it.
        var lines = (0..<200).map { event("r-\($0)", "m\($0)") }
        lines += [event("r-50", "m50"), event("r-x", "mx"), event("r-x", "mx")]
        let ledger = fixtureLedger(in: dir)
        let r = cli(["record", "--ledger", ledger, "--file", dir.write("in.jsonl", lines.joined(separator: "\n") + "\n"), "--format", "json"])
        #expect(r.code == 0, "\(r.stderr)")
        let out = try #require(parseJSON(r.stdout) as? [String: Any])
        #expect(out["appended"] as? Int == 201 && out["already_recorded"] as? Int == 2, "\(r.stdout)")
        // Other content for an id given before in the same batch: as the
        // first repeat, after it, and for an event added after it.
        let first = Array(lines.prefix(200))
        for (tail, line) in [([event("r-7", "other")], 201), ([event("r-50", "m50"), event("r-7", "other")], 202),
                             ([event("r-50", "m50"), event("r-x", "mx"), event("r-x", "other")], 203)] {
            let fresh = fixtureLedger(in: dir, name: "clash-\(line).jsonl")
            let before = bytes(fresh)
            let input = dir.write("clash-\(line).jsonl.in", (first + tail).joined(separator: "\n") + "\n")
            let bad = cli(["record", "--ledger", fresh, "--file", input])
            #expect(bad.code == 65 && bad.stderr.contains(":\(line): id: ") && bad.stderr.contains("is already recorded with other content"),
                    "\(bad.stderr)")
            #expect(bytes(fresh) == before)
        }
        // After a rejected line, an event given twice is still no clash: only the bad line is listed.
        let bad = #"{"type":"construction.started","id":"c2","date":"2025-02-30","subject":"foxconn-houston","sources":[{"publisher":"x"}]}"#
        let fresh = fixtureLedger(in: dir, name: "after-bad.jsonl")
        let input = dir.write("after-bad.in", (first + [bad, event("r-y", "my"), event("r-y", "my"), event("r-5", "m5")]).joined(separator: "\n") + "\n")
        let rejected = cli(["record", "--ledger", fresh, "--file", input])
        #expect(rejected.code == 65 && rejected.stderr.contains(":201: date: ") && !rejected.stderr.contains("already recorded"),
                "\(rejected.stderr)")
    }

    @Test("a batch larger than the spool's buffer (its events read back from a temporary file): the same ledger as in small batches, through a file or stdin; a repeat or a clash with an event spooled long before; a bad last line writes nothing")
    func largeBatch() throws {
        let dir = TempDir()
        let env = ["MILESTONES_NOW": "2026-03-01T00:00:00Z"]
        func ledger(_ name: String) -> String {
            let path = dir.file(name)
            #expect(cli(["init", "--name", "example.org/big", "--ledger", path], env: env).code == 0)
            #expect(cli(["record", "--quiet", "--ledger", path, "--file", Paths.fixture("nvidia-ai-factories.jsonl")], env: env).code == 0)
            return path
        }
        // 12,000 events of about 570 bytes: 6.8 MB, past the spool's 4 MiB buffer.
        let n = 12_000
        let events = milestoneLines(ids: "big-", 0..<n, summary: 400).split(separator: "\n").map { String($0) + "\n" }
        let small = ledger("small.jsonl")
        for part in stride(from: 0, to: n, by: 3_000) {
            let input = dir.write("part-\(part).jsonl", events[part..<(part + 3_000)].joined())
            #expect(cli(["record", "--quiet", "--ledger", small, "--file", input], env: env).code == 0)
        }
        // One batch, the first event given again at its end (an idempotent retry, found in the spool's file).
        let whole = events.joined() + events[0]
        for (name, file, stdin) in [("file.jsonl", dir.write("whole.jsonl", whole), nil), ("stdin.jsonl", "-", whole)] {
            let big = ledger(name)
            let r = cli(["record", "--ledger", big, "--file", file], stdin: stdin, env: env)
            #expect(r.code == 0, "\(r.stderr)")
            #expect(r.stdout.contains("… \(n + 1 - 20) more\n\(n) appended, 1 already recorded"), "\(r.stdout)")
            // (Compared as a Bool: a failed == of two large Data would be diffed, which takes minutes.)
            let same = bytes(big) == bytes(small)
            #expect(same, "\(name): not the ledger the small batches made")
        }
        // The first event's id again with other content, or a bad date, on the last line: nothing written.
        let clash = events[0].replacingOccurrences(of: "\"lot 0\"", with: "\"lot zero\"")
        let badDate = events[1].replacingOccurrences(of: "big-1\"", with: "big-x\"").replacingOccurrences(of: "2026-01-01", with: "2026-02-30")
        for (k, (last, why)) in [(clash, "is already recorded with other content"), (badDate, "date: ")].enumerated() {
            let big = ledger("bad-\(k).jsonl")
            let before = bytes(big)
            let r = cli(["record", "--ledger", big, "--file", "-"], stdin: events.joined() + last, env: env)
            #expect(r.code == 65 && r.stderr.contains("<stdin>:\(n + 1): ") && r.stderr.contains(why), "\(r.stderr)")
            let unchanged = bytes(big) == before
            #expect(unchanged, "the ledger changed")
        }
    }

    @Test("a batch is validated whole: one bad line, nothing written, every problem listed with line and field")
    func allOrNothing() {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let before = bytes(ledger)
        let good = #"{"type":"construction.started","date":"2025-09-01","subject":"foxconn-houston","sources":[{"publisher":"Reuters"}]}"#
        let input = dir.write("events.jsonl", [good, #"{"type":"site.secured","date":"2025-02-30","subject":"foxconn-houston","sources":[{"publisher":"x"}]}"#, "", "{not json", good.replacingOccurrences(of: "2025-09-01", with: "2025-09-02")].joined(separator: "\n") + "\n")
        let r = cli(["record", "--ledger", ledger, "--file", input])
        #expect(r.code == 65)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.first == "\(input):2: date: \"2025-02-30\" is not a calendar date (YYYY-MM-DD)")
        #expect(lines.contains { $0.hasPrefix("\(input):4: not JSON") })
        #expect(lines.last == "milestones: nothing was written")
        #expect(bytes(ledger) == before)
    }

    @Test("input encodings: BOM refused, CRLF accepted, stdin works")
    func encodings() {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let good = #"{"type":"construction.started","date":"2025-09-01","subject":"foxconn-houston","sources":[{"publisher":"Reuters"}]}"#
        let bom = dir.write("bom.jsonl", "\u{FEFF}" + good + "\n")
        let r = cli(["record", "--ledger", ledger, "--file", bom])
        #expect(r.code == 65)
        #expect(r.stderr.contains("byte order mark"))
        let crlf = dir.write("crlf.jsonl", good + "\r\n")
        #expect(cli(["record", "--ledger", ledger, "--file", crlf]).code == 0)
        let s = cli(["record", "--ledger", ledger, "--file", "-", "--quiet"], stdin: good.replacingOccurrences(of: "09-01", with: "09-03") + "\n")
        #expect(s.code == 0, "\(s.stderr)")
        #expect(s.stdout.isEmpty)
        #expect(cli(["verify", "--ledger", ledger]).stdout.hasPrefix("ok: \(fixtureEventCount + 3) records"))
    }

    @Test("torn tail: detected by verify, refused by record, removed by repair and nothing else")
    func tornTail() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let intact = bytes(ledger)
        let torn = intact + Data(#"{"event":{"date":"2025-"#.utf8)
        try torn.write(to: URL(fileURLWithPath: ledger))
        let v = cli(["verify", "--ledger", ledger])
        #expect(v.code == 1)
        #expect(v.stderr.contains("torn tail") && v.stderr.contains("repair --torn-tail"))
        let r = cli(["record", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston", "--date", "2025-09-01", "--source", "x"])
        #expect(r.code == 1)
        #expect(r.stderr.contains("repair --torn-tail"))
        #expect(bytes(ledger) == torn)
        let fix = cli(["repair", "--torn-tail", "--ledger", ledger])
        #expect(fix.code == 0)
        #expect(fix.stdout.contains("removed a torn tail of \(torn.count - intact.count) bytes"))
        #expect(bytes(ledger) == intact)
        #expect(cli(["repair", "--torn-tail", "--ledger", ledger]).stdout.contains("nothing removed"))
        #expect(bytes(ledger) == intact)
        // Damage in the middle is not a torn tail: refused, file untouched.
        let middle = Paths.fixture("tampered/2-sha256.jsonl")
        let copy = dir.file("mid.jsonl")
        try bytes(middle).write(to: URL(fileURLWithPath: copy))
        let refused = cli(["repair", "--torn-tail", "--ledger", copy])
        #expect(refused.code == 1)
        #expect(bytes(copy) == bytes(middle))
        // A complete last line failing its hash is a torn tail too.
        let badHash = dir.file("bad-hash.jsonl")
        try bytes(Paths.fixture("tampered/torn-bad-hash.jsonl")).write(to: URL(fileURLWithPath: badHash))
        #expect(cli(["repair", "--torn-tail", "--ledger", badHash]).code == 0)
        #expect(cli(["verify", "--ledger", badHash]).stdout.hasPrefix("ok: 27 records"))
    }

    @Test("4 concurrent writer processes: nothing lost, nothing doubled, the chain unbroken")
    func concurrentWriters() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let writers = 4
        let perWriter = 25
        var fileList: [String] = []
        for w in 0..<writers {
            var text = ""
            for i in 0..<perWriter {
                text += #"{"id":"w\#(w)-e\#(i)","type":"production.milestone","milestone":"lot \#(i)","date":"2026-01-01","subject":"foxconn-houston","sources":[{"publisher":"writer \#(w)"}]}"# + "\n"
            }
            fileList.append(dir.write("w\(w).jsonl", text))
        }
        let files = fileList
        // Each writer records its events in batches of 5, interleaved with the others.
        let group = DispatchGroup()
        let codes = Codes()
        for w in 0..<writers {
            group.enter()
            DispatchQueue.global().async {
                let lines = String(decoding: bytes(files[w]), as: UTF8.self).split(separator: "\n")
                for chunk in stride(from: 0, to: lines.count, by: 5) {
                    let part = dir.write("w\(w)-\(chunk).jsonl", lines[chunk..<min(chunk + 5, lines.count)].joined(separator: "\n") + "\n")
                    codes.add(cli(["record", "--quiet", "--wait", "60", "--ledger", ledger, "--file", part]).code)
                }
                group.leave()
            }
        }
        group.wait()
        #expect(codes.all.allSatisfy { $0 == 0 }, "exit codes \(codes.all)")
        let v = cli(["verify", "--format", "json", "--ledger", ledger])
        #expect(v.code == 0, "\(v.stderr)")
        #expect((parseJSON(v.stdout) as? [String: Any])?["records"] as? Int == fixtureEventCount + 1 + writers * perWriter)
        let text = String(decoding: bytes(ledger), as: UTF8.self)
        for w in 0..<writers {
            for i in 0..<perWriter {
                #expect(text.components(separatedBy: #""id":"w\#(w)-e\#(i)""#).count == 2)
            }
        }
        #expect(pythonCheck(["ledger", ledger]).code == 0)
    }

    @Test("a lock held elsewhere: exit 75 after --wait, nothing written")
    func lockTimeout() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let before = bytes(ledger)
        // flock(1) holds the lock in another process for 3 s.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = [ledger, "sleep", "5"]
        try holder.run()
        // Wait until the holder has the lock (a loaded machine may be slow to start it).
        var held = false
        for _ in 0..<100 where !held {
            held = run("/usr/bin/flock", ["--nonblock", ledger, "true"]).code != 0
            if !held { Thread.sleep(forTimeInterval: 0.05) }
        }
        #expect(held)
        let r = cli(["record", "--wait", "0.5", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston", "--date", "2025-09-01", "--source", "x"])
        holder.waitUntilExit()
        #expect(r.code == 75)
        #expect(r.stderr.contains("locked by another writer"))
        #expect(bytes(ledger) == before)
    }

    @Test("recorded_at never goes backwards, even when the clock does")
    func clockBackwards() {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let r = cli(["record", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston", "--date", "2025-09-01", "--source", "x"],
                    env: ["MILESTONES_NOW": "2020-01-01T00:00:00Z"])
        #expect(r.code == 0)
        let last = String(decoding: bytes(ledger), as: UTF8.self).split(separator: "\n").last!
        #expect(last.contains(#""recorded_at":"2026-01-01T00:00:00Z""#))
        #expect(cli(["verify", "--ledger", ledger]).code == 0)
    }
}

struct RejectionCase: Decodable, Sendable, CustomTestStringConvertible {
    var rule: String
    var events: [AnyJSON]
    var line: Int
    var field: String
    var contains: String
    var testDescription: String { rule }

    static let all: [RejectionCase] = {
        struct File: Decodable { var cases: [RejectionCase] }
        let data = try! Data(contentsOf: URL(fileURLWithPath: Paths.fixture("rejections.json")))
        return try! JSONDecoder().decode(File.self, from: data).cases
    }()
}

/// Raw JSON kept as its text, to be written back out unchanged.
struct AnyJSON: Decodable, Sendable {
    var text: String
    init(from decoder: Decoder) throws {
        let v = try decoder.singleValueContainer().decode(JSONAny.self)
        text = String(decoding: try JSONSerialization.data(withJSONObject: v.value, options: [.fragmentsAllowed, .sortedKeys]), as: UTF8.self)
    }
}

struct JSONAny: Decodable, @unchecked Sendable {
    var value: Any
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { value = NSNull() } else if let b = try? c.decode(Bool.self) { value = b } else if let i = try? c.decode(Int64.self) { value = i } else if let s = try? c.decode(String.self) { value = s } else if let a = try? c.decode([JSONAny].self) { value = a.map(\.value) } else { value = try c.decode([String: JSONAny].self).mapValues(\.value) }
    }
}

@Suite("docs/events.md: every rejection rule")
struct RejectionTests {
    static let shared: (dir: TempDir, ledger: String, createdID: String) = {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let first = String(decoding: bytes(ledger), as: UTF8.self).split(separator: "\n")[0]
        let id = first.components(separatedBy: #""id":""#)[1].prefix { $0 != "\"" }
        return (dir, ledger, String(id))
    }()

    @Test("rejected with exit 65, the place named, the ledger byte-identical", arguments: RejectionCase.all)
    func rejected(_ c: RejectionCase) throws {
        let (dir, ledger, created) = RejectionTests.shared
        let before = bytes(ledger)
        let name = "case-\(abs(c.rule.hashValue)).jsonl"
        let input = dir.write(name, c.events.map { $0.text.replacingOccurrences(of: "$CREATED", with: created) }.joined(separator: "\n") + "\n")
        let r = cli(["record", "--ledger", ledger, "--file", input])
        #expect(r.code == 65)
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        let prefix = c.field.isEmpty ? "\(input):\(c.line): " : "\(input):\(c.line): \(c.field): "
        #expect(first.hasPrefix(prefix), "\(first)")
        #expect(first.contains(c.contains), "\(first)")
        #expect(bytes(ledger) == before)
    }

    /// Cases that cannot be written as a record a verifier reads as an event
    /// (not an object, beyond canonical integers), or that verify words
    /// otherwise (only record 1 is `ledger.created`).
    static let notRecordable: Set<String> = [
        "an event is an object", "amounts are integers within 2^53", "ledger.created is written by init only",
    ]

    /// `verify` checks recorded events by facts alone and reads a failing
    /// line again for the names its message quotes: a record that breaks a
    /// rule (written with a valid hash, as a forger would) is reported with
    /// the same field and words as `record` uses.
    @Test("verify names the same rule in a forged record", arguments: RejectionCase.all.filter { !notRecordable.contains($0.rule) })
    func forged(_ c: RejectionCase) throws {
        let (dir, ledger, created) = RejectionTests.shared
        var text = Array(bytes(ledger))
        let lines = text.split(separator: UInt8(ascii: "\n"))
        let tail = try #require(Array(lines.last!).withUnsafeBytes { RecordLine.tail(of: $0) })
        var (seq, prev) = (tail.seq, tail.sha256)
        var hasher = SHA256()
        for (i, event) in c.events.enumerated() {
            var value = try JSONReader.parse(event.text.replacingOccurrences(of: "$CREATED", with: created))
            if case .object(var o) = value, o["id"] == nil {
                o["id"] = .string("forged-\(i)")
                value = .object(o)
            }
            seq += 1
            prev = RecordLine.append(event: JSONWriter.bytes(value), seq: seq, prev: prev, recordedAt: Array(fixedNow.utf8),
                                     to: &text, hasher: &hasher)
        }
        let path = dir.file("forged-\(abs(c.rule.hashValue)).jsonl")
        try Data(text).write(to: URL(fileURLWithPath: path))
        let r = cli(["verify", "--ledger", path, "--format", "json"])
        #expect(r.code == 1)
        let report = try #require(parseJSON(r.stdout) as? [String: Any], "\(r.stdout)")
        let failure = try #require(report["error"] as? [String: Any], "\(r.stdout)")
        #expect(failure["seq"] as? Int == tail.seq + c.line)
        let reason = failure["reason"] as? String ?? ""
        #expect(reason.hasPrefix(c.field.isEmpty ? "event: " : "event: \(c.field): "), "\(reason)")
        // verify cannot tell a retry from a clash: it keeps no contents.
        #expect(reason.contains(c.contains.replacingOccurrences(of: " with other content", with: "")), "\(reason)")
    }
}

@Suite("appending in pieces")
struct PieceAppendTests {
    /// Folders to append in: the test's own and, where there is one, a tmpfs.
    static func folders(_ dir: TempDir) -> [String] {
        var out = [dir.path]
        let shm = "/dev/shm/milestones-test-\(UUID().uuidString)"
        if (try? FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: false)) != nil { out.append(shm) }
        return out
    }

    @Test("lines made piece by piece land whole and in order, after any length of file, synced as they go or only at the end",
          arguments: [0, 100, 4096, 6001], [false, true])
    func pieces(start: Int, flushed: Bool) throws {
        let dir = TempDir()
        // Lines of 1 to 9,000 bytes (some longer than a page, and than a piece's spare room).
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15 &+ UInt64(start)
        var lines: [[UInt8]] = []
        for i in 0..<400 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            let n = i % 37 == 0 ? 9000 : Int(seed >> 33) % 3000 + 1
            lines.append((0..<(n - 1)).map { UInt8(0x61 + ($0 + i) % 26) } + [0x0A])
        }
        let prefix = [UInt8](repeating: 0x7A, count: start)
        for folder in PieceAppendTests.folders(dir) {
            defer { if folder != dir.path { try? FileManager.default.removeItem(atPath: folder) } }
            let path = folder + "/l.jsonl"
            #expect(FileManager.default.createFile(atPath: path, contents: Data(prefix)))
            let file = try LedgerFile.open(path, writable: true)
            let longest = lines.map(\.count).max()!
            var (next, smallestRoom, calls) = (0, Int.max, 0)
            try file.append(at: start, total: lines.reduce(0) { $0 + $1.count }, longestLine: longest,
                            piece: 16384, flushFrom: flushed ? 0 : Int.max) { room in
                calls += 1
                smallestRoom = min(smallestRoom, room.count)
                var used = 0
                while next < lines.count, used + lines[next].count <= room.count {
                    lines[next].withUnsafeBytes { (room.baseAddress! + used).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    used += lines[next].count
                    next += 1
                }
                return used
            }
            #expect(next == lines.count, "\(folder)")
            #expect(calls > 10, "\(folder): \(calls) pieces")
            #expect(smallestRoom >= longest, "\(folder)")
            let (after, expected) = (bytes(path), Data(prefix + lines.flatMap { $0 }))
            let same = after == expected  // (a failed comparison of this much Data takes minutes to describe)
            #expect(same, "\(folder): \(after.count) bytes, \(expected.count) expected")
        }
    }
}

extension PieceAppendTests {
    @Test("lines that do not come to the length announced, or overrun their room: an error, and the file as it was",
          arguments: [("short", 2_000_000), ("long", 2_000_000), ("overrun", 2_000_000), ("short", 9_000_000)])
    func wrongLength(fault: String, total: Int) throws {
        let dir = TempDir()
        let path = dir.file("l.jsonl")
        let prefix = [UInt8](repeating: 0x7A, count: 5000)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(prefix)))
        let file = try LedgerFile.open(path, writable: true)
        let line = [UInt8](repeating: 0x61, count: 999) + [0x0A]
        var made = 0
        #expect(throws: LedgerError.self) {
            try file.append(at: prefix.count, total: total, longestLine: line.count, piece: 65536) { room in
                // short: stops 1,000 bytes early; long: goes 1,000 bytes over; overrun: claims more than its room.
                let limit = fault == "short" ? total - line.count : total + line.count
                var used = 0
                while made < limit, used + line.count <= room.count {
                    line.withUnsafeBytes { (room.baseAddress! + used).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    (used, made) = (used + line.count, made + line.count)
                }
                return fault == "overrun" && used > 0 ? room.count + 1 : used
            }
        }
        let after = bytes(path)
        let same = after == Data(prefix)  // (a failed comparison of megabytes of Data takes minutes to describe)
        #expect(same, "\(after.count) bytes, not \(prefix.count)")
    }
}
