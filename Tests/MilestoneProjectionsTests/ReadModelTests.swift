import CanonicalJSON
import Foundation
import TestSupport
import GRDB
import Testing
@testable import MilestoneLedger
@testable import MilestoneModel
@testable import MilestoneProjections

/// The golden ledger: the NVIDIA events recorded as they became known.

func queryJSON(_ args: [String], ledger: String, db: String) -> Any? {
    let r = cli(args + ["--ledger", ledger, "--db", db, "--format", "json"])
    precondition(r.code == 0, r.stderr)
    return parseJSON(r.stdout)
}

/// Reads a ledger's records for the in-memory replay.
func replayRecords(_ path: String) -> [ReplayRecord] {
    String(decoding: bytes(path), as: UTF8.self).split(separator: "\n").map { line in
        let o = try! JSONReader.parse(String(line)).objectValue!
        return ReplayRecord(seq: Int(o["seq"]!.intValue!), recordedAt: Timestamp(o["recorded_at"]!.stringValue!)!,
                            event: o["event"]!.objectValue!)
    }
}

func openModels(_ ledger: String, db: String, batch: Int = 20_000, upTo: Int? = nil, summaryGroup: Int? = nil) throws -> ReadModels {
    let file = try LedgerFile.open(ledger, writable: false)
    let models = try ReadModels(path: db)
    if let summaryGroup { models.summaryGroup = summaryGroup }
    try models.catchUp(file, upTo: upTo ?? (try file.size()), batch: batch)
    return models
}

/// Every subject's summaries in both tables, in order, however they are cut into rows.
func summaryEntries(_ models: ReadModels) throws -> [String] {
    try models.db.read { db in
        var out: [String] = []
        for part in [SubjectSummary.Part.announced, .targets] {
            try SubjectSummary.scan(db, .all, with: part) { subject, view in
                func hex(_ b: SubjectSummary.View.Blob) -> String {
                    UnsafeRawBufferPointer(start: b.base, count: b.count).map { String(format: "%02x", $0) }.joined()
                }
                out.append("\(part.table) \(String(decoding: subject, as: UTF8.self)) \(hex(view.lifecycle)) \(hex(view.other))")
            }
        }
        return out
    }
}

/// Every row of every table (the summaries by subject), to compare two databases.
func dump(_ models: ReadModels) throws -> [String] {
    try models.db.read { db in
        var out: [String] = []
        for t in ["meta", "records", "event_versions", "organizations", "version_roles"] {
            for row in try Row.fetchAll(db, sql: "SELECT * FROM \(t) ORDER BY 1, 2") { out.append("\(t): \(row)") }
        }
        return out
    } + summaryEntries(models)
}

@Suite("read models and time travel")
struct ReadModelTests {
    static let goldens: [(file: String, args: [String])] = [
        ("status-2025-03-31", ["status", "--as-of", "2025-03-31"]),
        ("status-2025-04-14", ["status", "--as-of", "2025-04-14"]),
        ("status-2025-12-31", ["status", "--as-of", "2025-12-31"]),
        ("status-2026-11-26", ["status", "--as-of", "2026-11-26"]),
        ("programs-2025-04-14", ["status", "--programs", "--as-of", "2025-04-14"]),
        ("programs-2026-11-26", ["status", "--programs", "--as-of", "2026-11-26"]),
        ("targets-2025-04-14", ["targets", "--as-of", "2025-04-14"]),
        ("targets-2025-12-31", ["targets", "--as-of", "2025-12-31"]),
        ("targets-2026-11-26", ["targets", "--as-of", "2026-11-26"]),
        ("timeline-2026-11-26", ["timeline", "--as-of", "2026-11-26"]),
        ("status-2025-12-31-known-2025-08-01", ["status", "--as-of", "2025-12-31", "--known-at", "2025-08-01"]),
        ("targets-2026-11-26-known-2025-08-01", ["targets", "--as-of", "2026-11-26", "--known-at", "2025-08-01"]),
        ("events-wistron", ["events", "--subject", "wistron-texas", "--as-of", "2026-11-26"]),
    ]

    @Test("golden JSON answers for the bundled ledger", arguments: goldens.map(\.file))
    func golden(_ file: String) throws {
        let dir = TempDir()
        let args = ReadModelTests.goldens.first { $0.file == file }!.args
        let got = cli(args + ["--ledger", goldenLedger, "--db", dir.file("g.sqlite"), "--format", "json"])
        #expect(got.code == 0, "\(got.stderr)")
        let want = String(decoding: bytes(Paths.fixture("golden/\(file).json")), as: UTF8.self)
        #expect(got.stdout == want)
    }

    @Test("known-at before and after a correction: the facility's name and place as known then")
    func knownAtCorrection() throws {
        let dir = TempDir()
        let db = dir.file("g.sqlite")
        func wistron(_ knownAt: String) -> [String: Any]? {
            (queryJSON(["status", "--as-of", "2025-12-31", "--known-at", knownAt], ledger: goldenLedger, db: db) as? [[String: Any]])?
                .first { $0["subject"] as? String == "wistron-texas" }
        }
        #expect((wistron("2025-08-20")?["name"] as? String)?.contains("Dallas") == true)
        #expect((wistron("2025-08-21")?["name"] as? String)?.contains("Fort Worth") == true)
        #expect((wistron("2025-08-21T11:59:59Z")?["name"] as? String)?.contains("Dallas") == true)
        // Before the facility was recorded at all, it is not known.
        #expect(wistron("2025-04-13") == nil)
    }

    @Test("known-at before and after a retraction; a retracted event drops out, stays in the log")
    func knownAtRetraction() throws {
        let dir = TempDir()
        let ledger = dir.file("r.jsonl")
        try bytes(goldenLedger).write(to: URL(fileURLWithPath: ledger))
        let r = cli(["record", "--ledger", ledger, "--type", "event.retracted", "--subject", "tsmc-arizona-phoenix",
                     "--date", "2025-11-01", "--retracts", "tsmc-phoenix-blackwell-full-production-2025-10-28",
                     "--reason", "test: the claim is withdrawn", "--source", "Test"], env: ["MILESTONES_NOW": "2025-11-01T09:00:00Z"])
        #expect(r.code == 0, "\(r.stderr)")
        let db = dir.file("r.sqlite")
        func tsmc(_ knownAt: String) -> String? {
            ((queryJSON(["status", "--as-of", "2025-12-31", "--known-at", knownAt], ledger: ledger, db: db) as? [[String: Any]])?
                .first { $0["subject"] as? String == "tsmc-arizona-phoenix" })?["phase"] as? String
        }
        #expect(tsmc("2025-10-31") == "volume_production")
        #expect(tsmc("2025-11-01") == "producing")
        let show = cli(["show", "tsmc-phoenix-blackwell-full-production-2025-10-28", "--ledger", ledger, "--db", db, "--format", "json"])
        let detail = parseJSON(show.stdout) as? [String: Any]
        #expect(detail?["current"] is NSNull)
        #expect((detail?["retraction"] as? [String: Any])?["seq"] as? Int == 29)
    }

    @Test("out of order: a site secured before the plant is announced; a pause then a resume; several revisions")
    func outOfOrder() throws {
        let dir = TempDir()
        let ledger = dir.file("o.jsonl")
        try bytes(goldenLedger).write(to: URL(fileURLWithPath: ledger))
        let src = #""sources":[{"publisher":"Test"}]"#
        let input = dir.write("o.jsonl.in", [
            #"{"id":"p1","type":"facility.paused","date":"2026-02-01","subject":"foxconn-houston","reason":"tariffs",\#(src)}"#,
            #"{"id":"r1","type":"facility.resumed","date":"2026-03-01","subject":"foxconn-houston",\#(src)}"#,
            #"{"id":"t2","type":"target.revised","date":"2025-09-01","subject":"foxconn-houston","milestone":"production.volume","due":{"earliest":"2026-06-01","latest":"2026-09-30"},\#(src)}"#,
            #"{"id":"t3","type":"target.revised","date":"2025-12-01","subject":"foxconn-houston","milestone":"production.volume","due":{"earliest":"2026-09-01","latest":"2026-12-31"},\#(src)}"#,
            #"{"id":"v1","type":"production.volume","date":"2026-10-15","subject":"foxconn-houston",\#(src)}"#,
        ].joined(separator: "\n") + "\n")
        #expect(cli(["record", "--ledger", ledger, "--file", input]).code == 0)
        let db = dir.file("o.sqlite")
        func phase(_ d: String) -> (String?, String?) {
            let f = ((queryJSON(["status", "--as-of", d], ledger: ledger, db: db) as? [[String: Any]])?
                .first { $0["subject"] as? String == "foxconn-houston" })
            return (f?["phase"] as? String, f?["phase_date"] as? String)
        }
        // The site was secured (2025-03-24) before the announcement (2025-04-14), recorded after it.
        #expect(phase("2025-03-30") == ("site_secured", "2025-03-24"))
        #expect(phase("2025-03-01") == (nil, nil))
        #expect(phase("2026-02-15") == ("paused", "2026-02-01"))
        #expect(phase("2026-03-15") == ("site_secured", "2025-03-24"))
        #expect(phase("2026-10-20") == ("volume_production", "2026-10-15"))
        func volumeTarget(_ d: String) -> [String: Any]? {
            (queryJSON(["targets", "--as-of", d], ledger: ledger, db: db) as? [[String: Any]])?
                .first { $0["subject"] as? String == "foxconn-houston" && $0["milestone"] as? String == "production.volume" }
        }
        let t = try #require(volumeTarget("2026-11-26"))
        #expect(t["state"] as? String == "met")
        #expect(t["revisions"] as? Int == 2)
        #expect(t["due_latest"] as? String == "2026-12-31")
        #expect(t["slip_days"] as? Int == -77)
        #expect(t["slip_from_original_days"] as? Int == 93)
        let earlier = try #require(volumeTarget("2025-10-01"))
        #expect(earlier["revisions"] as? Int == 1)
        #expect(earlier["due_latest"] as? String == "2026-09-30")
    }

    @Test("one-batch and chunked catch-up give identical databases; delete and rebuild gives identical answers")
    func catchUpModes() throws {
        let dir = TempDir()
        let whole = try openModels(goldenLedger, db: dir.file("a.sqlite"))
        // Chunked: small transactions, and the ledger taken in three stages.
        let size = try LedgerFile.open(goldenLedger, writable: false).size()
        let lines = String(decoding: bytes(goldenLedger), as: UTF8.self).split(separator: "\n")
        let cut1 = lines.prefix(9).map { $0.utf8.count + 1 }.reduce(0, +)
        let cut2 = lines.prefix(20).map { $0.utf8.count + 1 }.reduce(0, +)
        _ = try openModels(goldenLedger, db: dir.file("b.sqlite"), batch: 2, upTo: cut1)
        _ = try openModels(goldenLedger, db: dir.file("b.sqlite"), batch: 3, upTo: cut2)
        let chunked = try openModels(goldenLedger, db: dir.file("b.sqlite"), batch: 1, upTo: size)
        #expect(try dump(whole) == dump(chunked))
        #expect(try dump(whole).count > 60)
        // Delete and rebuild.
        let db = dir.file("c.sqlite")
        let first = cli(["targets", "--as-of", "2026-11-26", "--ledger", goldenLedger, "--db", db, "--format", "json"]).stdout
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) }
        let again = cli(["targets", "--as-of", "2026-11-26", "--ledger", goldenLedger, "--db", db, "--format", "json"]).stdout
        #expect(first == again)
        #expect(!first.isEmpty)
    }

    @Test("a first projection that builds its indexes at the end gives the same database; an interrupted one gets them back")
    func bulkLoad() throws {
        let dir = TempDir()
        func indexes(_ m: ReadModels) throws -> [String] {
            try m.db.read { db in try String.fetchAll(db, sql: "SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name") }
        }
        let normal = try openModels(goldenLedger, db: dir.file("a.sqlite"))
        let file = try LedgerFile.open(goldenLedger, writable: false)
        let bulk = try ReadModels(path: dir.file("b.sqlite"))
        let done = try bulk.catchUp(file, upTo: try file.size(), batch: 5, bulkLoadAbove: 0)
        #expect(done.projected > 20)
        #expect(try dump(normal) == dump(bulk))
        #expect(try indexes(bulk) == indexes(normal))
        #expect(try indexes(normal).count >= 7)
        // Loaded with a rollback journal, then back in WAL mode, as every other read-model file is.
        // The index builds' settings (temporary files, a small cache, sorting threads) do not outlive them.
        for m in [normal, bulk] {
            #expect(try m.db.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
            #expect(try m.db.read { db in try Int.fetchOne(db, sql: "PRAGMA temp_store") } == 2)
            #expect(try m.db.read { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") } == -ReadModels.cacheKiB)
            #expect(try m.db.read { db in try Int.fetchOne(db, sql: "PRAGMA threads") } == 0)
            #expect(try m.db.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == ReadModels.pageSize)
        }
        // Interrupted: the indexes set aside, then the process gone.
        let interrupted = try ReadModels(path: dir.file("c.sqlite"))
        try interrupted.setIndexesAside()
        // Only those whose entries come in order are kept.
        #expect(try indexes(interrupted).map { String($0.prefix { $0 != ":" }) } == ReadModels.keptInBulk.sorted())
        let reopened = try openModels(goldenLedger, db: dir.file("c.sqlite"))
        #expect(try indexes(reopened) == indexes(normal))
        #expect(try dump(reopened) == dump(normal))
    }

    @Test("each record's corrections, retraction and versions are those its ledger's lines name, in bulk or not")
    func correctionColumns() throws {
        let dir = TempDir()
        let ledger = generatedLedger(in: dir, "c.jsonl", events: 1_500, seed: 11)
        // What the lines say, read with Foundation's JSON: how many corrections name each id, which seq retracts
        // it, and the seqs that make its versions (its own, then each correction's).
        var corrections: [String: Int] = [:], retractedBy: [String: Int] = [:], versions: [String: [Int]] = [:]
        var seqOf: [String: Int] = [:]
        for line in String(decoding: bytes(ledger), as: UTF8.self).split(separator: "\n") {
            let record = try #require(parseJSON(String(line)) as? [String: Any])
            let (seq, event) = (record["seq"] as! Int, record["event"] as! [String: Any])
            let id = event["id"] as! String
            seqOf[id] = seq
            if let target = event["corrects"] as? String {
                corrections[target, default: 0] += 1
                versions[target, default: []].append(seq)
            } else if let target = event["retracts"] as? String {
                retractedBy[target] = seq
            } else if event["type"] as? String != "ledger.created" {
                versions[id] = [seq]
            }
        }
        #expect(corrections.count > 20 && retractedBy.count > 5)
        let file = try LedgerFile.open(ledger, writable: false)
        for bulk in [false, true] {
            let models = try ReadModels(path: dir.file("c\(bulk).sqlite"))
            try models.catchUp(file, upTo: try file.size(), batch: 50, bulkLoadAbove: bulk ? 0 : .max)
            try models.db.read { db in
                for row in try Row.fetchAll(db, sql: "SELECT id, corrections, retracted_by FROM records WHERE seq > 1") {
                    let id: String = row[0]
                    #expect(row[1] as Int == corrections[id, default: 0], "\(id)")
                    #expect(row[2] as Int? == retractedBy[id], "\(id)")
                }
                for (id, froms) in versions {
                    let stored = try Row.fetchAll(db, sql: "SELECT from_seq, to_seq FROM event_versions WHERE event_seq = ? ORDER BY from_seq",
                                                  arguments: [seqOf[id]!]).map { ($0[0] as Int, $0[1] as Int?) }
                    // Each version holds until the next; the last until a retraction, or still.
                    let expected = froms.enumerated().map { k, from in (from, k + 1 < froms.count ? froms[k + 1] : retractedBy[id]) }
                    #expect(stored.map(\.0) == expected.map(\.0) && stored.map(\.1) == expected.map(\.1), "\(id)")
                }
            }
        }
    }

    @Test("a first projection verifies the ledger alongside: a ledger that fails keeps nothing, and its first bad record is named")
    func verifiedAlongside() throws {
        let dir = TempDir()
        let ledger = generatedLedger(in: dir, "v.jsonl", events: 600, seed: 5)
        // One more record, chained and well formed, about a subject never announced:
        // only the verification sees it (the projection writes it like any other).
        let data = bytes(ledger)
        let last = try #require(parseJSON(String(decoding: data.split(separator: 0x0A).last!, as: UTF8.self)) as? [String: Any])
        let event = Array(#"{"date":"2026-01-01","id":"forged-1","milestone":"x","precision":"day","sources":[{"publisher":"x"}],"subject":"nowhere-plant","type":"production.milestone"}"#.utf8)
        var line: [UInt8] = []
        var hasher = SHA256()
        RecordLine.append(event: event, seq: (last["seq"] as! Int) + 1, prev: Digest(hex: last["sha256"] as! String)!,
                          recordedAt: Array((last["recorded_at"] as! String).utf8), to: &line, hasher: &hasher)
        try (data + Data(line)).write(to: URL(fileURLWithPath: ledger))
        let bad = last["seq"] as! Int + 1
        let models = try ReadModels(path: dir.file("v.sqlite"))
        let file = try LedgerFile.open(ledger, writable: false)
        #expect {
            try models.catchUp(file, upTo: try file.size(), batch: 50, bulkLoadAbove: 0)
        } throws: { error in
            "\(error)".contains("seq \(bad)") && "\(error)".contains("nowhere-plant")
        }
        // Every batch before it was written, then taken out again.
        for table in ["records", "event_versions", "version_roles"] + SubjectSummary.tables {
            #expect(try models.db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") } == 0, "\(table)")
        }
        #expect(try models.head() == nil)
        // The command says the same, with nothing on stdout, and keeps nothing either.
        let r = cli(["status", "--ledger", ledger, "--db", dir.file("w.sqlite")], env: ["MILESTONES_TEST_BULK_LOAD_BYTES": "1"])
        #expect(r.code == 1 && r.stdout.isEmpty && r.stderr.contains("seq \(bad)"), "\(r.stderr)")
        #expect(try ReadModels(path: dir.file("w.sqlite")).db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM records") } == 0)
    }

    @Test("a ledger rewritten under existing read models is detected, not silently rebuilt")
    func rewritten() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        #expect(cli(["status", "--ledger", ledger]).code == 0)
        let other = TempDir()
        let otherLedger = fixtureLedger(in: other)
        _ = cli(["record", "-q", "--ledger", otherLedger, "--type", "construction.started", "--subject", "foxconn-houston", "--date", "2025-09-01", "--source", "z"])
        // Same first records, another history after: the stored head is gone.
        var text = String(decoding: bytes(otherLedger), as: UTF8.self)
        text = text.replacingOccurrences(of: "Amkor", with: "Amkorr")
        try Data(text.utf8).write(to: URL(fileURLWithPath: ledger))
        let r = cli(["status", "--ledger", ledger])
        // The file is not the one last checked: verified whole, the first bad record named.
        #expect(r.code == 1 && r.stdout.isEmpty)
        #expect(r.stderr.contains("not intact: seq 2"), "\(r.stderr)")
        #expect(cli(["record", "-q", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston", "--date", "2025-09-02", "--source", "z"]).code == 1)
        // Truncation too.
        try Data(bytes(otherLedger).prefix(3000)).write(to: URL(fileURLWithPath: ledger))
        #expect(cli(["status", "--ledger", ledger]).code == 1)
    }

    @Test("bad --as-of and --known-at: exit 64 with a clear message", arguments: [
        ["--as-of", "2025-02-30"], ["--as-of", "yesterday"], ["--known-at", "2025-13-01"], ["--known-at", "2025-01-01T25:00:00Z"],
        ["--known-at", "2025-01-01 10:00"],
    ])
    func badTimes(_ args: [String]) {
        let r = cli(["status", "--ledger", goldenLedger] + args)
        #expect(r.code == 64)
        #expect(r.stderr.contains(args[0]))
    }

    @Test("replay --out writes a self-contained database and refuses to overwrite without --force")
    func replayOut() throws {
        let dir = TempDir()
        let out = dir.file("then.sqlite")
        let args = ["replay", "--ledger", goldenLedger, "--db", dir.file("g.sqlite"), "--as-of", "2025-12-31", "--known-at", "2025-08-01", "--out", out]
        #expect(cli(args).code == 0)
        #expect(cli(args).code == 73)
        #expect(cli(args + ["--force"]).code == 0)
        let q = try DatabaseQueue(path: out)
        let name = try q.read { db in try String.fetchOne(db, sql: "SELECT name FROM facilities WHERE subject = 'wistron-texas'") }
        #expect(name?.contains("Dallas") == true)
        let overdue = try q.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM targets") }
        #expect((overdue ?? 0) > 0)
        // Locations, precisions, intervals and sources travel into the file too.
        let row = try q.read { db in try Row.fetchOne(db, sql: "SELECT city, country, phase_precision FROM facilities WHERE subject = 'wistron-texas'") }
        #expect(row?["country"] as String? == "US" && row?["phase_precision"] as String? != nil)
        let columns = try q.read { db in try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('targets')") }
        #expect(columns.contains("actual_latest") && columns.contains("implied_by"))
        let sourced = try q.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT seq) FROM sources") }
        let lines = try q.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM timeline WHERE json_extract(event, '$.sources') IS NOT NULL") }
        #expect(sourced == lines && (sourced ?? 0) > 5)
    }

    @Test("the read models find their head record when it is a long line (the catch-up reads the ledger's end in two reaches)")
    func longHeadLine() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        // 1,500 four-byte characters: a record line of over 6,000 bytes, more than the first reach.
        let summary = String(repeating: "🏭", count: 1500)
        let r = cli(["record", "-q", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston",
                     "--date", "2025-09-01", "--source", "z", "--summary", summary])
        #expect(r.code == 0, "\(r.stderr)")
        #expect(try LedgerFile.open(ledger, writable: false).line(endingAt: try LedgerFile.open(ledger, writable: false).size())?.count ?? 0 > 6000)
        #expect(cli(["status", "--ledger", ledger]).code == 0)  // projects the long record: it is the head now
        #expect(cli(["status", "--ledger", ledger]).code == 0)  // finds it again
        #expect(cli(["record", "-q", "--ledger", ledger, "--type", "construction.completed", "--subject", "foxconn-houston",
                     "--date", "2025-10-01", "--source", "z"]).code == 0)
        let t = cli(["timeline", "foxconn-houston", "--ledger", ledger, "--format", "json"])
        #expect(t.code == 0 && t.stdout.contains("construction.completed"), "\(t.stderr)")
    }

    @Test("a damaged subject summary is an error that names it and the remedy, not a crash or a wrong answer", arguments: [
        // (table, piece of foxconn-houston's entry: 1 lifecycle, 2 the other part, 0 the whole row; its damage; the command that reads it)
        ("subject_status", 1, "x'00'", "status"),
        ("subject_targets", 1, "drop last", "targets"),
        ("subject_status", 1, "|| x'00'", "status"),
        // Well laid out, but its one lifecycle version's type is no event type.
        ("subject_targets", 1, "x'01000000ff" + String(repeating: "00", count: 16) + "'", "targets"),
        ("subject_targets", 2, "x'01000000'", "targets"),
        ("subject_targets", 2, "|| x'00'", "targets"),
        ("subject_targets", 2, "drop last", "targets"),
        ("subject_status", 2, "x'01000000'", "status"),
        ("subject_status", 2, "|| x'00'", "status"),
        // The row itself: cut short in the entry, or one byte too many after the last.
        ("subject_status", 0, "drop last", "status"),
        ("subject_targets", 0, "|| x'00'", "targets"),
        // Well laid out, but a date no ledger holds (it overflowed a day count into a crash before).
        ("subject_status", 1, "lifecycle date", "status"),
        ("subject_targets", 1, "lifecycle date", "targets"),
        ("subject_targets", 2, "due latest", "targets"),
    ])
    func damagedSummary(_ table: String, _ piece: Int, _ damage: String, _ command: String) throws {
        func damaged(_ b: [UInt8]) -> [UInt8] {
            switch damage {
            case "drop last": return Array(b.dropLast())
            case "|| x'00'": return b + [0]
            case "lifecycle date", "due latest":
                // Int32.min over the first lifecycle version's date, or the first target version's due.latest.
                let at = damage == "lifecycle date" ? 5 : 4 + 4 + (Int(b[4]) | Int(b[5]) << 8) + 4 + 8
                var d = b
                d.replaceSubrange(at..<(at + 4), with: [0, 0, 0, 0x80])
                return d
            default:
                let hex = Array(damage.dropFirst(2).dropLast())
                return stride(from: 0, to: hex.count, by: 2).map { UInt8(String(hex[$0...$0 + 1]), radix: 16)! }
            }
        }
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        #expect(cli(["status", "--ledger", ledger]).code == 0)
        let models = try ReadModels(path: ReadModels.path(forLedger: ledger))
        // foxconn-houston's row, its pieces (length-led) rewritten with the damage.
        try models.db.write { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT first, summaries FROM \(table) WHERE first <= 'foxconn-houston' ORDER BY first DESC LIMIT 1"))
            let blob: [UInt8] = (row[1] as Data).map { $0 }
            var out: [UInt8] = []
            var at = 0
            var found = false
            while at < blob.count {
                var pieces: [[UInt8]] = []
                for _ in 0..<3 {
                    let n = Int(blob[at]) | Int(blob[at + 1]) << 8 | Int(blob[at + 2]) << 16 | Int(blob[at + 3]) << 24
                    pieces.append(Array(blob[(at + 4)..<(at + 4 + n)]))
                    at += 4 + n
                }
                if pieces[0] == Array("foxconn-houston".utf8), piece > 0 {
                    pieces[piece] = damaged(pieces[piece])
                    found = true
                }
                for p in pieces { out += withUnsafeBytes(of: UInt32(p.count).littleEndian, Array.init) + p }
            }
            if piece == 0 { (out, found) = (damaged(out), true) }
            #expect(found)
            try db.execute(sql: "UPDATE \(table) SET summaries = ? WHERE first = ?", arguments: [Data(out), row[0] as String])
        }
        do {
            let r = cli([command, "--ledger", ledger, "--format", "json"])
            #expect(r.code == 74, "\(command): \(r.stderr)")
            // A damaged entry is named; a damaged row names the entry where reading it failed.
            #expect(r.stderr.contains(piece > 0 ? "\"foxconn-houston\" is damaged" : " is damaged") && r.stderr.contains("remove the .sqlite file"),
                    "\(r.stderr)")
        }
        // The other query does not read the damaged table.
        #expect(cli([command == "status" ? "targets" : "status", "--ledger", ledger]).code == 0)
        // The remedy works.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: ReadModels.path(forLedger: ledger) + suffix) }
        #expect(cli(["status", "--ledger", ledger]).code == 0)
    }

    @Test("rows of summaries out of order across rows, or keyed by another subject, are an error, not a wrong answer", arguments: [
        "overlap", "repeat", "key",
    ])
    func damagedRows(_ damage: String) throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        #expect(cli(["status", "--ledger", ledger]).code == 0)
        let models = try ReadModels(path: ReadModels.path(forLedger: ledger))
        let good = ["status", "targets"].map { cli([$0, "--ledger", ledger, "--format", "json"]).stdout }
        try models.db.write { db in
            // Rows of 2 subjects, then the second row in both tables damaged alike.
            try SubjectSummary.rebuildAll(db, groupSize: 2)
            for t in SubjectSummary.tables {
                let rows = try Row.fetchAll(db, sql: "SELECT first, subjects, summaries FROM \(t) ORDER BY first")
                #expect(rows.count >= 2)
                let (first, second) = (rows[0], rows[1])
                switch damage {
                case "overlap":  // the second row also holds the first's last subject
                    let one: [UInt8] = (first[2] as Data).map { $0 }
                    // The first row's second entry: skip its first entry's three pieces.
                    var at = 0
                    for _ in 0..<3 { at += 4 + (Int(one[at]) | Int(one[at + 1]) << 8 | Int(one[at + 2]) << 16) }
                    let entry = Array(one[at...])
                    let name = String(decoding: entry[4..<(4 + Int(entry[0]))], as: UTF8.self)
                    try db.execute(sql: "DELETE FROM \(t) WHERE first = ?", arguments: [second[0] as String])
                    try db.execute(sql: "INSERT INTO \(t) VALUES (?, ?, ?)",
                                   arguments: [name, (second[1] as Int) + 1, Data(entry) + (second[2] as Data)])
                case "repeat":  // the second row is the first again, under the second's key
                    try db.execute(sql: "UPDATE \(t) SET subjects = ?, summaries = ? WHERE first = ?",
                                   arguments: [first[1] as Int, first[2] as Data, second[0] as String])
                default:  // the second row keyed by a subject that is not its first
                    try db.execute(sql: "UPDATE \(t) SET first = 'zzz' WHERE first = ?", arguments: [second[0] as String])
                }
            }
        }
        for command in ["status", "targets"] {
            let r = cli([command, "--ledger", ledger, "--format", "json"])
            #expect(r.code == 74 && r.stderr.contains(" is damaged") && r.stderr.contains("remove the .sqlite file"), "\(damage) \(command): \(r.stderr)")
        }
        // Rows of 2, undamaged, answer as the one row did.
        try models.db.write { db in try SubjectSummary.rebuildAll(db, groupSize: 2) }
        #expect(["status", "targets"].map { cli([$0, "--ledger", ledger, "--format", "json"]).stdout } == good)
    }

    @Test("read models of another layout (older or newer) are emptied and built again, with the same answers")
    func otherLayoutRebuilt() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let queries = [["status", "--format", "json"], ["targets", "--format", "json"], ["targets", "--as-of", "2025-06-30", "--format", "csv"]]
        let answers = queries.map { cli($0 + ["--ledger", ledger]).stdout }
        #expect(answers.allSatisfy { $0.count > 100 })
        for version in [ReadModels.schemaVersion - 1, ReadModels.schemaVersion + 1, 0] {
            // An old layout: a table of summaries that no longer exists, holding nothing usable.
            let models = try ReadModels(path: ReadModels.path(forLedger: ledger))
            try models.db.write { db in
                try db.execute(sql: "DROP TABLE subject_status")
                try db.execute(sql: "CREATE TABLE subject_summaries (subject TEXT PRIMARY KEY, entries BLOB NOT NULL) WITHOUT ROWID")
                try db.execute(sql: "INSERT INTO subject_summaries VALUES ('foxconn-houston', x'00')")
                try db.execute(sql: "PRAGMA user_version = \(version)")
            }
            #expect(queries.map { cli($0 + ["--ledger", ledger]).stdout } == answers, "from layout \(version)")
            let tables = try models.db.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") }
            #expect(!tables.contains("subject_summaries") && tables.contains("subject_status"))
            #expect(try models.db.read { db in try Int.fetchOne(db, sql: "PRAGMA user_version") } == ReadModels.schemaVersion)
        }
    }

    @Test("lines inspected on another core, a window ahead, project the same tables as one line at a time")
    func inspectedAhead() throws {
        let dir = TempDir()
        // Enough lines for several windows, with corrections and retractions among them.
        let ledger = generatedLedger(in: dir, "w.jsonl", events: 1_500, seed: 7)
        #expect(String(decoding: bytes(ledger), as: UTF8.self).contains(#""type":"event.corrected""#))
        // Batches of 5 lines are inspected in line (below two windows); one batch of them all, ahead.
        #expect(1_500 >= 4 * PendingLines.window)
        let inline = try openModels(ledger, db: dir.file("a.sqlite"), batch: 5)
        let ahead = try openModels(ledger, db: dir.file("b.sqlite"), batch: 20_000)
        #expect(try dump(inline) == dump(ahead))
        #expect(try dump(ahead).count > 3_000)
    }

    /// Starts a bulk first projection of `ledger` into `db`, paused `pause` seconds with its first transaction in flight.
    func startBulkLoad(_ ledger: String, db: String, pause: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Paths.binary)
        p.arguments = ["status", "--ledger", ledger, "--db", db]
        p.environment = ["MILESTONES_TEST_BULK_LOAD_BYTES": "1", "MILESTONES_TEST_PAUSE_IN_BULK_LOAD": "\(pause)"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        var waited = 0
        while !FileManager.default.fileExists(atPath: db + "-journal"), waited < 600 {
            usleep(50_000)
            waited += 1
        }
        // The journal is there once the transaction has written; give it the rest of the batch.
        usleep(500_000)
        #expect(FileManager.default.fileExists(atPath: db + "-journal"), "no rollback journal: the load was not in one")
        return p
    }

    /// `status` from `db` and from a new `clean` file answer the same, and the two files hold the same
    /// rows; both opened for reading (a writing open would roll back a hot journal itself).
    @discardableResult
    func expectSameAsFresh(_ ledger: String, db: String, clean: String) throws -> (ReadModels, ReadModels) {
        let bulk = ["MILESTONES_TEST_BULK_LOAD_BYTES": "1"]
        let (again, fresh) = (cli(["status", "--ledger", ledger, "--db", db], env: bulk), cli(["status", "--ledger", ledger, "--db", clean], env: bulk))
        #expect(again.code == 0 && fresh.code == 0, "\(again.stderr) \(fresh.stderr)")
        #expect(again.stdout == fresh.stdout && again.stdout.count > 1_000)
        let (a, b) = (try ReadModels(readingOnly: db), try ReadModels(readingOnly: clean))
        #expect(try dump(a) == dump(b))
        return (a, b)
    }

    /// Kills a bulk first projection with its first transaction in flight.
    func killInBulkLoad(_ ledger: String, db: String) throws {
        let p = try startBulkLoad(ledger, db: db, pause: 60)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)
    }

    @Test("a first projection killed in its bulk load (a hot rollback journal) is done again by the next command, as if never killed")
    func killedBulkLoad() throws {
        let dir = TempDir()
        let ledger = generatedLedger(in: dir, "k.jsonl", events: 1_500, seed: 3)
        let (killed, clean) = (dir.file("killed.sqlite"), dir.file("clean.sqlite"))
        // A bulk load (from 1 byte on), stopped with its first transaction in flight.
        try killInBulkLoad(ledger, db: killed)
        // The next command does it again; its answers and tables are those of a projection never killed.
        let (a, b) = try expectSameAsFresh(ledger, db: killed, clean: clean)
        for m in [a, b] {
            #expect(try m.db.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
            #expect(try m.db.read { db in try String.fetchOne(db, sql: "PRAGMA integrity_check") } == "ok")
            #expect(try m.db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pending_indexes") } == 0)
            #expect(try m.db.read { db in try Int.fetchOne(db, sql: "SELECT unsynced_load FROM meta") } == 0)
        }
        #expect(!FileManager.default.fileExists(atPath: killed + "-journal"))
    }

    @Test("rows a bulk load wrote without syncing are not trusted once it died: the next command deletes them and projects again")
    func unsyncedBulkLoad() throws {
        let dir = TempDir()
        let ledger = generatedLedger(in: dir, "u.jsonl", events: 1_500, seed: 5)
        let (killed, clean) = (dir.file("killed.sqlite"), dir.file("clean.sqlite"))
        try killInBulkLoad(ledger, db: killed)
        // (Opening it to write rolls the killed transaction back.) The load had marked itself unsynced before its rows.
        let models = try ReadModels(path: killed)
        #expect(try models.db.read { db in try Int.fetchOne(db, sql: "SELECT unsynced_load FROM meta") } == 1)
        // A row such as a machine that went down could leave from a write never synced.
        try models.db.write { db in
            try db.execute(sql: "INSERT INTO records (seq, id, type, date, precision, recorded_at, sha256, offset, length, content, event) VALUES (-1, 'x', 'ledger.created', '', 'day', '', '', 0, 0, 0, '{}')")
        }
        let (a, _) = try expectSameAsFresh(ledger, db: killed, clean: clean)
        #expect(try a.db.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM records WHERE seq = -1") } == 0)
    }

    @Test("a command started while another process's first projection runs waits for it, and does not take its rows for a dead load's")
    func waitsForRunningLoad() throws {
        let dir = TempDir()
        let ledger = generatedLedger(in: dir, "w.jsonl", events: 1_500, seed: 6)
        let (shared, clean) = (dir.file("shared.sqlite"), dir.file("clean.sqlite"))
        let first = try startBulkLoad(ledger, db: shared, pause: 3)
        let second = cli(["status", "--ledger", ledger, "--db", shared], env: ["MILESTONES_TEST_BULK_LOAD_BYTES": "1"])
        first.waitUntilExit()
        let fresh = cli(["status", "--ledger", ledger, "--db", clean], env: ["MILESTONES_TEST_BULK_LOAD_BYTES": "1"])
        #expect(first.terminationStatus == 0 && second.code == 0 && fresh.code == 0, "\(second.stderr)")
        #expect(second.stdout == fresh.stdout && second.stdout.count > 1_000)
        #expect(try dump(try ReadModels(readingOnly: shared)) == dump(try ReadModels(readingOnly: clean)))
    }

    @Test("a command whose read models are up to date takes no lock (record included); one with records to project waits for the catch-up lock")
    func readersTakeNoLock() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let db = dir.file("ai.sqlite")
        #expect(cli(["status", "--ledger", ledger, "--db", db]).code == 0)
        // Another process's catch-up, as far as the lock goes: this test holds it.
        let fd = open(db + "-lock", O_RDWR)
        #expect(fd >= 0 && flock(fd, LOCK_EX) == 0)
        func start(_ args: [String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Paths.binary)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        func exited(_ p: Process, within seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while p.isRunning, Date() < deadline { usleep(20_000) }
            return !p.isRunning
        }
        let reader = try start(["status", "--ledger", ledger, "--db", db])
        #expect(exited(reader, within: 30), "an up-to-date reader waited for the lock")
        // record checks the batch against the read models (up to date: no lock), then appends.
        let record = try start(["record", "-q", "--ledger", ledger, "--db", db,
                                "--file", dir.write("n.jsonl", milestoneLines(ids: "lock-", 0..<1))])
        #expect(exited(record, within: 30), "record waited for the lock with nothing to catch up")
        #expect(reader.terminationStatus == 0 && record.terminationStatus == 0)
        // The next reader has a record to project: it waits for the lock, and answers once it is free.
        let waiting = try start(["status", "--ledger", ledger, "--db", db])
        #expect(!exited(waiting, within: 1.5), "a catch-up with work did not wait for the lock")
        flock(fd, LOCK_UN)
        close(fd)
        #expect(exited(waiting, within: 60) && waiting.terminationStatus == 0)
        #expect(try ReadModels(readingOnly: db).head()?.seq == fixtureEventCount + 2)
    }

    @Test("the inspecting thread hands over every line in order, and stops when the writer fails")
    func inspectedAheadInOrder() throws {
        let file = try LedgerFile.open(goldenLedger, writable: false)
        var lines: [[UInt8]] = []
        try file.forEachChunk(upTo: try file.size(), { chunk, spans in
            for s in spans { lines.append(Array(chunk[s.start..<(s.start + s.length)])) }
        })
        var pending = PendingLines()
        // The golden ledger's lines over and over: many windows; every 97th line damaged.
        let n = 5 * PendingLines.window + 3
        for k in 0..<n {
            var line = lines[k % lines.count]
            if k % 97 == 0 { line[line.count / 2] ^= 1 }
            line.withUnsafeBytes { pending.append($0, offset: k, isFinal: k == n - 1) }
        }
        var seen: [Int] = []
        try pending.forEachInspected { line, offset, _, inspected, tape in
            seen.append(offset)
            // The same as inspecting the line here and now.
            var hasher = SHA256()
            let here = Projector.Inspected(line, into: JSONTape(), hasher: &hasher)
            #expect((inspected.problem == nil) == (here.problem == nil), "line \(offset)")
            #expect(inspected.hashes?.computed == here.hashes?.computed && inspected.content == here.content)
            #expect(inspected.facts == here.facts)
            if inspected.problem == nil { #expect(inspected.event!.byteRange == here.event!.byteRange && tape.root["event"] != nil) }
            #expect((offset % 97 == 0) == (inspected.problem != nil), "line \(offset)")
        }
        #expect(seen == Array(0..<n))
        // A writer that fails part-way: the failure comes out, nothing hangs.
        struct Stop: Error {}
        var count = 0
        #expect(throws: Stop.self) {
            try pending.forEachInspected { _, _, _, _, _ in
                count += 1
                if count == PendingLines.window + 10 { throw Stop() }
            }
        }
        #expect(count == PendingLines.window + 10)
    }

    @Test("status and targets scanned in two halves on two threads print the same bytes as one scan")
    func parallelHalves() throws {
        let dir = TempDir()
        let ledger = dir.file("h.jsonl")
        #expect(cli(["init", "--name", "example.org/h", "--ledger", ledger], env: ["MILESTONES_NOW": "2015-01-01T00:00:00Z"]).code == 0)
        let events = generatedEvents(600, seed: 5)
        #expect(cli(["record", "-q", "--ledger", ledger, "--file", dir.write("e.jsonl", events)]).code == 0)
        // Rows of 4 subjects: several dozen rows to cut.
        let models = try openModels(ledger, db: dir.file("h.sqlite"), summaryGroup: 4)
        let halves = try models.halves(minimum: 2)
        #expect(halves.count == 2)
        for args in [["status"], ["status", "--as-of", "2020-01-01"], ["targets"], ["targets", "--as-of", "2021-06-30", "--state", "met"]] {
            for format in ["json", "csv"] {
                let all = args + ["--ledger", ledger, "--format", format]
                let one = cli(all, env: ["MILESTONES_PARALLEL_FROM": "1000000000"])
                let two = cli(all, env: ["MILESTONES_PARALLEL_FROM": "2"])
                #expect(one.code == 0 && two.code == 0)
                #expect(one.stdout == two.stdout, "\(all)")
                #expect(one.stdout.count > 100)
            }
        }
        // The stored split is the first row with half the summaries' bytes before it.
        let split = try models.db.write { db -> String? in
            try SubjectSummary.storeSplit(db, minimum: 2)
            return try SubjectSummary.split(db)
        }
        let sizes = try models.db.read { db in try SubjectSummary.rowSizes(db).map { ($0[0] as String, $0[2] as Int) } }
        #expect(sizes.count > 10)
        let total = sizes.reduce(0) { $0 + $1.1 }
        let before = sizes.filter { $0.0 < split! }.reduce(0) { $0 + $1.1 }
        let last = sizes.last { $0.0 < split! }?.1 ?? 0
        #expect(before * 2 >= total && (before - last) * 2 < total)
        // Each half alone holds its own subjects.
        let first = try models.facilities(PointOfView(asOf: CalendarDate("2030-01-01")!, knownSeq: 10_000))
        var parts: [String] = []
        for h in halves { try models.forEachFacility(PointOfView(asOf: CalendarDate("2030-01-01")!, knownSeq: 10_000), subjects: h) { parts.append($0.status.subject) } }
        #expect(parts == first.map(\.subject))
    }

    @Test("a split that catch-ups have left far from half the bytes is worked out again; one near half is kept")
    func splitRebalanced() throws {
        let dir = TempDir()
        let ledger = dir.file("s.jsonl")
        #expect(cli(["init", "--name", "example.org/s", "--ledger", ledger], env: ["MILESTONES_NOW": "2015-01-01T00:00:00Z"]).code == 0)
        let lines = generatedEvents(600, seed: 9).split(separator: "\n")
        func record(_ part: ArraySlice<Substring>, _ name: String) {
            #expect(cli(["record", "-q", "--ledger", ledger, "--file", dir.write(name, part.joined(separator: "\n") + "\n")]).code == 0)
        }
        func split(_ m: ReadModels) throws -> String? { try m.db.read { db in try SubjectSummary.split(db) } }
        record(lines[..<300], "a.jsonl")
        let models = try openModels(ledger, db: dir.file("s.sqlite"), summaryGroup: 4)
        // A split near half, stored by hand (the ledger has fewer subjects than a split is stored for).
        let near = try models.db.write { db -> String in
            try SubjectSummary.storeSplit(db, minimum: 2)
            return try #require(try SubjectSummary.split(db))
        }
        record(lines[300..<310], "b.jsonl")
        #expect(try split(try openModels(ledger, db: dir.file("s.sqlite"), summaryGroup: 4)) == near)
        // The second row: one row of about ten before it, out of 40–60%.
        let far = try models.db.write { db -> String in
            let second = try #require(try String.fetchOne(db, sql: "SELECT first FROM subject_status ORDER BY first LIMIT 1 OFFSET 1"))
            try db.execute(sql: "UPDATE meta SET summary_split = ? WHERE id = 1", arguments: [second])
            return second
        }
        #expect(try models.db.read { db in try SubjectSummary.share(db, before: far) }! < 0.4)
        // A catch-up with nothing new keeps it; one that projects works it out again (none, below 2,000 subjects).
        #expect(try split(try openModels(ledger, db: dir.file("s.sqlite"), summaryGroup: 4)) == far)
        record(lines[310...], "c.jsonl")
        #expect(try split(try openModels(ledger, db: dir.file("s.sqlite"), summaryGroup: 4)) == nil)
    }

    @Test("the SQL read models agree with the in-memory replay of docs/events.md's rules, for random ledgers and points of view")
    func sqlAgreesWithReplay() throws {
        var rng = SplitMix64(seed: 42)
        for seed in 1...4 {
            let dir = TempDir()
            let ledger = dir.file("p.jsonl")
            #expect(cli(["init", "--name", "example.org/p", "--ledger", ledger], env: ["MILESTONES_NOW": "2015-01-01T00:00:00Z"]).code == 0)
            let events = generatedEvents(400, seed: seed)
            let lines = events.split(separator: "\n")
            // Recorded in five batches at five times, so known-at matters; the
            // read models caught up after each (their subject summaries
            // rewritten batch by batch, corrections and retractions included).
            for (k, part) in stride(from: 0, to: lines.count, by: 80).enumerated() {
                let input = dir.write("b\(k).jsonl", lines[part..<min(part + 80, lines.count)].joined(separator: "\n") + "\n")
                let r = cli(["record", "-q", "--ledger", ledger, "--file", input], env: ["MILESTONES_NOW": "202\(k)-06-01T00:00:00Z"])
                #expect(r.code == 0, "\(r.stderr)")
                // Rows of 3 subjects: a catch-up adds subjects to rows, and cuts rows grown past 6.
                _ = try openModels(ledger, db: dir.file("p.sqlite"), batch: 7, summaryGroup: 3)
            }
            let records = replayRecords(ledger)
            let models = try openModels(ledger, db: dir.file("p.sqlite"))
            // The same summaries as one rebuild from the versions, each row within its size.
            let rows = try models.db.read { db in try Int.fetchAll(db, sql: "SELECT subjects FROM subject_targets") }
            #expect(rows.count > 5 && rows.allSatisfy { (1...6).contains($0) }, "\(rows)")
            let incremental = try summaryEntries(models)
            try models.db.write { db in try SubjectSummary.rebuildAll(db, groupSize: 5) }
            #expect(try summaryEntries(models) == incremental)
            #expect(incremental.count > 40)
            for _ in 0..<12 {
                let asOf = CalendarDate(days: CalendarDate("2015-01-01")!.days + Int32.random(in: 0..<4200, using: &rng))
                let knownAt: Timestamp? = Bool.random(using: &rng) ? nil
                    : Timestamp(seconds: Timestamp("2019-06-01T00:00:00Z")!.seconds + Int64.random(in: 0..<(6 * 365 * 86400), using: &rng))
                let knownSeq = knownAt.map { Replay.knownSeq(records, at: $0) } ?? records.count
                #expect(try models.knownSeq(at: knownAt) == knownSeq)
                let pov = PointOfView(asOf: asOf, knownSeq: knownSeq)
                let known = Replay.known(records, upTo: knownSeq)
                let facilities = try models.facilities(pov)
                #expect(facilities == Replay.facilities(known, asOf: asOf), "facilities, seed \(seed), \(pov)")
                #expect(try models.programs(pov, facilities: facilities) == Replay.programs(known, asOf: asOf), "programs, \(pov)")
                #expect(try models.targets(pov) == Replay.targets(known, asOf: asOf), "targets, \(pov)")
                #expect(try models.timeline(pov).map(\.seq) == Replay.timeline(known, asOf: asOf).map(\.seq), "timeline, \(pov)")
                // One subject's timeline and events (searched by subject, not scanned) are the whole lists' rows for it.
                let subject = known.randomElement(using: &rng)?.subject ?? ""
                #expect(try models.timeline(pov, subject: subject).map(\.seq)
                    == Replay.timeline(known, asOf: asOf).filter { $0.subject == subject }.map(\.seq), "timeline of \(subject), \(pov)")
                #expect(try models.events(pov, subjects: [subject]) == models.events(pov).filter { $0.subject == subject },
                        "events of \(subject), \(pov)")
            }
        }
    }
}
