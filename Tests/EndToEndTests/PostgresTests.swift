import Foundation
import Testing
import TestSupport
import MilestoneLedger
import MilestoneModel
@testable import MilestoneProjections
import PostgresNIO

/// The server the PostgreSQL tests use: `make test` starts a throw-away one
/// (scripts/with-postgres.sh) and sets `MILESTONES_TEST_PG` to its URL
/// (without a database: each test creates its own) and
/// `MILESTONES_TEST_PG_REQUIRED=1`, so that a missing server fails them. A
/// plain `swift test` without a server skips them, saying why.
enum TestPostgres {
    static let base = ProcessInfo.processInfo.environment["MILESTONES_TEST_PG"].flatMap { $0.isEmpty ? nil : $0 }
    static let required = ProcessInfo.processInfo.environment["MILESTONES_TEST_PG_REQUIRED"] == "1"
    static var enabled: Bool { base != nil || required }
    static let reason: Comment = "no PostgreSQL server: `make test` starts one; or set MILESTONES_TEST_PG=postgresql://USER:PASSWORD@HOST:PORT"
    /// The CA of the server's TLS certificate (scripts/with-postgres.sh makes both; the certificate names 127.0.0.1 only).
    static let ca = ProcessInfo.processInfo.environment["MILESTONES_TEST_PG_CA"].flatMap { $0.isEmpty ? nil : $0 }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "MILESTONES_TEST_PG is not set but MILESTONES_TEST_PG_REQUIRED=1: the test server did not start" }
    }

    /// A new, empty database; its URL.
    static func database() throws -> String {
        guard let base else { throw Missing() }
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let r = psql(base + "/postgres", "CREATE DATABASE \(name)")
        guard r.code == 0 else { throw Failure(message: "CREATE DATABASE: \(r.stderr)") }
        return base + "/" + name
    }

    /// Runs SQL through psql (one value per line, unaligned).
    @discardableResult
    static func psql(_ url: String, _ sql: String) -> Run {
        run("/usr/bin/env", ["psql", url, "-XqAt", "-v", "ON_ERROR_STOP=1", "-c", sql])
    }

    /// The URL with its password taken out, and that password.
    static func split(_ url: String) -> (url: String, password: String) {
        let rest = url.dropFirst("postgresql://".count)
        let at = rest.lastIndex(of: "@")!
        let credentials = rest[..<at]
        let colon = credentials.firstIndex(of: ":")!
        return ("postgresql://" + credentials[..<colon] + rest[at...], String(credentials[credentials.index(after: colon)...]))
    }

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

/// Every table of the read models in PostgreSQL, in key order, as text: two databases hold the same rows if these are equal
/// (without `summaries`, the rows of summaries left out: two databases may cut the same summaries into other rows).
func postgresTables(_ url: String, summaries: Bool = true) -> String {
    var tables = ["meta": "id", "records": "seq", "event_versions": "event_seq, from_seq", "organizations": "slug",
                  "version_roles": "event_seq, from_seq, org, role"]
    if summaries { tables.merge(["subject_status": "first", "subject_targets": "first"]) { a, _ in a } }
    return tables.keys.sorted().map { t -> String in
        let columns = t == "meta" ? "schema_version, head_seq, head_sha256, head_length, head_recorded_at" : "*"
        let r = TestPostgres.psql(url, "SELECT \(columns) FROM milestones.\(t) ORDER BY \(tables[t]!)")
        return "== \(t)\n" + r.stdout + r.stderr
    }.joined()
}

/// Every subject's summaries in both tables of the read models in PostgreSQL, in order, however they are cut into rows
/// (as `summaryEntries` reads SQLite's), read through the store's own scan.
func postgresSummaryEntries(_ url: String) throws -> [String] {
    let store = try PostgresReadModels(try PostgresLocation(url: url, environment: [:]), readOnly: true)
    return try summaryLines { part, body in try store.scanSummaries(.all, with: part, body) }
}

/// Every subject's summaries in both tables of SQLite read models, in order, however they are cut into rows.
func sqliteSummaryEntries(_ models: ReadModels) throws -> [String] {
    try summaryLines { part, body in try models.scanSummaries(.all, with: part, body) }
}

func summaryLines(_ scan: (SubjectSummary.Part, (UnsafeBufferPointer<UInt8>, SubjectSummary.View) throws -> Void) throws -> Void) throws -> [String] {
    var out: [String] = []
    for part in [SubjectSummary.Part.announced, .targets] {
        try scan(part) { subject, view in
            func hex(_ b: SubjectSummary.View.Blob) -> String {
                UnsafeRawBufferPointer(start: b.base, count: b.count).map { String(format: "%02x", $0) }.joined()
            }
            out.append("\(part.table) \(String(decoding: subject, as: UTF8.self)) \(hex(view.lifecycle)) \(hex(view.other))")
        }
    }
    return out
}

/// Generated events (bench/generate.py names facilities `fac-0-…`, `fac-1-…` in the order they appear) with every
/// third facility renamed to sort before every subject named before it (`early-997-…` comes after `early-998-…`, and
/// before any `fac-`): catch-ups then meet new subjects before the first row of summaries too, not only in the middle and after.
func withEarlySubjects(_ events: String) -> String {
    var (out, k) = (events, 2)
    while k < 999, out.contains("\"fac-\(k)-") {
        out = out.replacingOccurrences(of: "\"fac-\(k)-", with: "\"early-\(999 - k)-")
        k += 3
    }
    return out
}

@Suite("read models on PostgreSQL", .enabled(if: TestPostgres.enabled, TestPostgres.reason))
struct PostgresTests {
    @Test("every query answers the same from PostgreSQL as from SQLite, for random ledgers caught up batch by batch, under the three clocks")
    func sameAnswers() throws {
        var rng = SplitMix64(seed: 25)
        for seed in 1...2 {
            let dir = TempDir()
            let pg = try TestPostgres.database()
            let ledger = dir.file("p.jsonl")
            #expect(cli(["init", "--name", "example.org/p", "--ledger", ledger], env: ["MILESTONES_NOW": "2015-01-01T00:00:00Z"]).code == 0)
            let lines = withEarlySubjects(generatedEvents(300, seed: seed)).split(separator: "\n")
            // Rows of 3 subjects in both stores: the 25 or so subjects fill several rows, which a catch-up rewrites and cuts.
            let group = ["MILESTONES_TEST_SUMMARY_GROUP": "3"]
            // Recorded in batches of 1 to 75 events at several times; PostgreSQL caught up after each (incremental
            // catch-ups: new subjects anywhere among the rows, one subject or many, corrections and retractions of earlier records).
            var (start, k) = (0, 0)
            while start < lines.count {
                let end = min(lines.count, start + [1, 3, 10, 40, 75].randomElement(using: &rng)!)
                let input = dir.write("b\(k).jsonl", lines[start..<end].joined(separator: "\n") + "\n")
                let now = "20\(20 + k / 6)-\(String(format: "%02d", k % 6 * 2 + 1))-01T00:00:00Z"
                let r = cli(["record", "-q", "--ledger", ledger, "--file", input], env: group.merging(["MILESTONES_NOW": now]) { a, _ in a })
                #expect(r.code == 0, "\(r.stderr)")
                let c = cli(["log", "--limit", "1", "--ledger", ledger, "--db", pg], env: group)
                #expect(c.code == 0, "\(c.stderr)")
                (start, k) = (end, k + 1)
            }
            #expect(Int(TestPostgres.psql(pg, "SELECT count(*) FROM milestones.subject_status").stdout.dropLast()) ?? 0 > 4)
            // A second database projected in one go holds the same rows as the one caught up batch by batch,
            // and the same summaries (perhaps cut into other rows).
            let fresh = try TestPostgres.database()
            #expect(cli(["log", "--limit", "1", "--ledger", ledger, "--db", fresh, "--rebuild"], env: group).code == 0)
            let tables = postgresTables(pg, summaries: false)
            #expect(tables == postgresTables(fresh, summaries: false))
            let summaries = try postgresSummaryEntries(pg)
            #expect(summaries == (try postgresSummaryEntries(fresh)))
            #expect(summaries.count > 40)
            #expect(tables.contains("event.corrected") && tables.contains("event.retracted"))
            // SQLite answers from a file of its own, not the working copy PostgreSQL's catch-up used.
            let sqlite = dir.file("other.sqlite")
            let ids = try #require(parseJSON(cli(["events", "--format", "json", "--ledger", ledger, "--db", sqlite], env: group).stdout) as? [[String: Any]])
            let subjects = Array(Set(ids.compactMap { $0["subject"] as? String })).sorted()
            #expect(subjects.count > 10)
            var queries: [[String]] = [["log"], ["log", "--limit", "7", "--since", "2021-01-01"], ["show", ids[ids.count / 2]["id"] as! String]]
            for _ in 0..<5 {
                let asOf = "20\(Int.random(in: 15...27, using: &rng))-0\(Int.random(in: 1...9, using: &rng))-1\(Int.random(in: 0...9, using: &rng))"
                let knownAt = "202\(Int.random(in: 0...3, using: &rng))-0\(Int.random(in: 1...9, using: &rng))-01"
                let subject = subjects.randomElement(using: &rng)!
                for clock in [["--as-of", asOf], ["--as-of", asOf, "--known-at", knownAt], ["--as-of", asOf, "--published-by", knownAt]] {
                    queries += [["status"] + clock, ["status", "--programs"] + clock, ["targets"] + clock, ["timeline"] + clock,
                                ["timeline", subject] + clock, ["events"] + clock, ["events", "--subject", subject] + clock]
                }
                queries += [["diff", "--from", knownAt, "--as-of", asOf], ["diff", "--from", knownAt, "--as-of", asOf, "--by", "published"]]
            }
            for q in queries {
                let format = ["--format", "json"]
                let a = cli(q + format + ["--ledger", ledger, "--db", sqlite], env: group)
                let b = cli(q + format + ["--ledger", ledger, "--db", pg], env: group)
                #expect(a.code == 0, "\(q): \(a.stderr)")
                #expect(a.code == b.code && a.stdout == b.stdout && a.stderr == b.stderr, "\(q), seed \(seed): \(b.stderr)")
                #expect(a.stdout.count > 2 || q[0] == "diff", "\(q) answered nothing")
            }
            // The same answer as a table too, and through MILESTONES_DB.
            #expect(cli(["status", "--ledger", ledger, "--db", sqlite]).stdout == cli(["status", "--ledger", ledger], env: ["MILESTONES_DB": pg]).stdout)
        }
    }

    @Test("after random incremental catch-ups, PostgreSQL holds each subject's summary once and as SQLite holds it, in rows of at most twice the group")
    func summariesAfterCatchUps() throws {
        var rng = SplitMix64(seed: 8)
        // Where the subjects that catch-ups touched lay among PostgreSQL's rows before them.
        var seen = Set<String>()
        for (seed, group) in [(3, 2), (4, 3), (6, 5)] {
            let dir = TempDir()
            let ledger = dir.file("s.jsonl")
            #expect(cli(["init", "--name", "example.org/s", "--ledger", ledger], env: ["MILESTONES_NOW": "2015-01-01T00:00:00Z"]).code == 0)
            #expect(cli(["record", "-q", "--ledger", ledger, "--file", dir.write("e.jsonl", withEarlySubjects(generatedEvents(400, seed: seed)))]).code == 0)
            // The ledger's line ends: where a catch-up may stop.
            let data = [UInt8](bytes(ledger))
            let ends = data.indices.filter { data[$0] == 0x0A }.map { $0 + 1 }
            let file = try LedgerFile.open(ledger, writable: false)
            let working = try ReadModels(path: dir.file("s.sqlite"))
            working.summaryGroup = group
            let url = try TestPostgres.database()
            let pg = try PostgresReadModels(try PostgresLocation(url: url, environment: [:]))
            var (line, keys, known) = (0, [String](), Set<String>())
            while line < ends.count {
                line = min(ends.count, line + [1, 1, 2, 5, 20, 60].randomElement(using: &rng)!)
                let before = try pg.head()?.seq ?? 0
                try pg.catchUp(file, upTo: ends[line - 1], working: working)
                let entries = try sqliteSummaryEntries(working)
                #expect(try postgresSummaryEntries(url) == entries, "seed \(seed), line \(line)")
                let subjects = Set(entries.map { String($0.split(separator: " ")[1]) })
                let touched = TestPostgres.psql(url, "SELECT DISTINCT subject FROM milestones.records WHERE seq > \(before) AND subject IS NOT NULL")
                    .stdout.split(separator: "\n").map(String.init)
                for t in touched where before > 0 && subjects.contains(t) {
                    let row = keys.lastIndex { !t.utf8.lexicographicallyPrecedes($0.utf8) }
                    let place = keys.isEmpty ? "into no rows" : row == nil ? "before the first row"
                        : row == keys.count - 1 ? "in the last row" : "in a row in the middle"
                    seen.insert((known.contains(t) ? "known, " : "new, ") + place)
                }
                // Both tables cut into the same rows, none empty nor past twice the group.
                let rows = TestPostgres.psql(url, """
                    SELECT s.first, s.subjects, t.subjects FROM milestones.subject_status s
                    FULL JOIN milestones.subject_targets t USING (first) ORDER BY first
                    """).stdout.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false) }
                #expect(rows.allSatisfy { $0.count == 3 && $0[1] == $0[2] && (1...2 * group).contains(Int($0[1]) ?? 0) }, "\(rows)")
                #expect(rows.reduce(0) { $0 + (Int($1[1]) ?? 0) } == subjects.count)
                keys = rows.map { String($0[0]) }
                known = subjects
                // And the same answers.
                let pov = PointOfView(asOf: CalendarDate(days: CalendarDate("2015-01-01")!.days + Int32.random(in: 0..<4200, using: &rng)),
                                      knownSeq: try working.head()!.seq)
                #expect(try pg.facilities(pov) == working.facilities(pov))
                #expect(try pg.targets(pov) == working.targets(pov))
            }
            #expect(keys.count >= 4, "seed \(seed): \(keys.count) rows")
        }
        #expect(seen.isSuperset(of: ["new, before the first row", "new, in a row in the middle", "new, in the last row",
                                     "known, in a row in the middle", "known, in the last row"]), "\(seen)")
    }

    @Test("concurrent catch-ups from several processes (each its own ledger copy and working file) apply each record once")
    func concurrentCatchUps() throws {
        let pg = try TestPostgres.database()
        let dirs = (0..<6).map { _ in TempDir() }
        let ledger = dirs[0].file("c.jsonl")
        #expect(cli(["init", "--name", "example.org/c", "--ledger", ledger]).code == 0)
        #expect(cli(["record", "-q", "--ledger", ledger, "--file", dirs[0].write("e.jsonl", generatedEvents(1500, seed: 7))]).code == 0)
        for d in dirs.dropFirst() { try FileManager.default.copyItem(atPath: ledger, toPath: d.file("c.jsonl")) }
        nonisolated(unsafe) var results = [Run?](repeating: nil, count: dirs.count)
        DispatchQueue.concurrentPerform(iterations: dirs.count) { i in
            results[i] = cli(["status", "--format", "json", "--ledger", dirs[i].file("c.jsonl"), "--db", pg])
        }
        let expected = cli(["status", "--format", "json", "--ledger", ledger, "--db", dirs[0].file("alone.sqlite")]).stdout
        for r in results {
            #expect(r?.code == 0, "\(r?.stderr ?? "")")
            #expect(r?.stdout == expected)
        }
        let records = try String(contentsOfFile: ledger, encoding: .utf8).split(separator: "\n").count
        #expect(TestPostgres.psql(pg, "SELECT count(*), count(DISTINCT seq), max(seq) FROM milestones.records").stdout
            == "\(records)|\(records)|\(records)\n")
        #expect(TestPostgres.psql(pg, "SELECT head_seq FROM milestones.meta").stdout == "\(records)\n")
    }

    @Test("--read-only answers from what is there, without the ledger, says which seq, and writes nothing")
    func readOnly() throws {
        let pg = try TestPostgres.database()
        // Nothing there yet: an error with the remedy, and no tables made.
        let empty = cli(["status", "--read-only", "--db", pg, "--ledger", "/nonexistent/x.jsonl"])
        #expect(empty.code == 69 && empty.stderr.contains("without --read-only"), "\(empty.stderr)")
        #expect(TestPostgres.psql(pg, "SELECT to_regnamespace('milestones') IS NULL").stdout == "t\n")
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let full = cli(["status", "--format", "json", "--ledger", ledger, "--db", pg])
        #expect(full.code == 0)
        // The first projection left every table analysed (PostgreSQL counts -1 tuples in one never analysed).
        #expect(TestPostgres.psql(pg, """
            SELECT string_agg(c.relname, ',') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'milestones' AND c.relkind = 'r' AND c.reltuples < 0 AND c.relname <> 'meta'
            """).stdout == "\n")
        let before = TestPostgres.psql(pg, "SELECT head_seq, updated_at FROM milestones.meta").stdout
        // More records in the ledger: a read-only reader still answers as of the old head, and says so.
        #expect(cli(["record", "-q", "--ledger", ledger, "--file", dir.write("m.jsonl", milestoneLines(ids: "ro-", 0..<3))]).code == 0)
        let r = cli(["status", "--format", "json", "--read-only", "--db", pg, "--ledger", "/nonexistent/x.jsonl"])
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout == full.stdout)
        #expect(r.stderr.contains("read-only: answering from the read models as of seq \(fixtureEventCount + 1) "), "\(r.stderr)")
        #expect(TestPostgres.psql(pg, "SELECT head_seq, updated_at FROM milestones.meta").stdout == before)
        #expect(cli(["status", "--read-only", "--rebuild", "--db", pg]).code == 64)
        #expect(cli(["record", "--read-only", "--db", pg, "--ledger", ledger, "--file", dir.write("n.jsonl", milestoneLines(ids: "ro2-", 0..<1))]).code == 64)
        // record with --db postgresql:// catches PostgreSQL up after appending.
        let rec = cli(["record", "-q", "--db", pg, "--ledger", ledger, "--file", dir.write("p.jsonl", milestoneLines(ids: "ro3-", 0..<2))])
        #expect(rec.code == 0, "\(rec.stderr)")
        #expect(TestPostgres.psql(pg, "SELECT head_seq FROM milestones.meta").stdout == "\(fixtureEventCount + 6)\n")
    }

    @Test("read models of an older layout (a meta without today's columns): --read-only says so; a command with the ledger builds them again")
    func olderLayout() throws {
        let pg = try TestPostgres.database()
        #expect(TestPostgres.psql(pg, """
            CREATE SCHEMA milestones; CREATE TABLE milestones.meta (id integer PRIMARY KEY, schema_version integer NOT NULL);
            INSERT INTO milestones.meta VALUES (1, 11002)
            """).code == 0)
        let ro = cli(["status", "--read-only", "--db", pg, "--ledger", "/nonexistent/x.jsonl"])
        #expect(ro.code == 69 && ro.stderr.contains("another layout (version 11002)"), "\(ro.stderr)")
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let rebuilt = cli(["status", "--format", "json", "--ledger", ledger, "--db", pg])
        let lite = cli(["status", "--format", "json", "--ledger", ledger])
        #expect(rebuilt.code == 0 && lite.code == 0 && rebuilt.stdout == lite.stdout && rebuilt.stdout.count > 100, "\(rebuilt.stderr)")
        #expect(TestPostgres.psql(pg, "SELECT schema_version FROM milestones.meta").stdout == "\(PostgresReadModels.schemaVersion)\n")
    }

    @Test("unreachable server, wrong password, missing database, bad URL: one line with the remedy, the exit code, never the password")
    func badConditions() throws {
        let pg = try TestPostgres.database()
        let (bare, password) = TestPostgres.split(pg)
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let port = Int(bare.split(separator: ":").last!.split(separator: "/").first!)!
        let host = "postgresql://postgres:\(password)@127.0.0.1"
        func check(_ url: String, env: [String: String] = [:], code: Int32, _ words: String) {
            let r = cli(["status", "--ledger", ledger, "--db", url], env: env)
            #expect(r.code == code, "\(url): \(r.stderr)")
            #expect(r.stderr.contains(words), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            #expect(!r.stderr.contains(password) && !r.stderr.contains("hunter2"), "\(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        let closed = freeLoopbackPort()
        check("\(host):\(closed)/x", code: 69, "cannot connect")
        check("postgresql://postgres:hunter2@127.0.0.1:\(port)/x", code: 77, "authentication failed for user postgres")
        check("\(host):\(port)/no_such_db", code: 69, "database no_such_db does not exist; create it")
        check("postgresql://postgres:hunter2@[::1", code: 64, "not a PostgreSQL URL")
        check(pg + "?sslmode=sometimes", code: 64, "sslmode=sometimes is not one of")
        check("\(host):\(noTLSServer())/x?sslmode=require", code: 69, "does not offer TLS")
        // No password anywhere: the server asks for one.
        check(bare, env: ["PGPASSFILE": "/nonexistent"], code: 77, "asks for a password")
        // The password from PGPASSWORD, and from a password file (only when others cannot read it).
        #expect(cli(["status", "--ledger", ledger, "--db", bare], env: ["PGPASSWORD": password]).code == 0)
        let pgpass = dir.write("pgpass", "# comment\n127.0.0.1:\(port):other:postgres:wrong\n127.0.0.1:\(port):*:postgres:\(password)\n")
        chmod(pgpass, 0o644)
        #expect(cli(["status", "--ledger", ledger, "--db", bare], env: ["PGPASSFILE": pgpass]).code == 77)
        chmod(pgpass, 0o600)
        let viaFile = cli(["status", "--ledger", ledger, "--db", bare], env: ["PGPASSFILE": pgpass])
        #expect(viaFile.code == 0, "\(viaFile.stderr)")
        #expect(cli(["status", "--ledger", ledger, "--db", pg + "?sslmode=disable"]).code == 0)
        #expect(cli(["status", "--ledger", ledger, "--db", pg + "?sslmode=prefer"]).code == 0)
    }

    @Test("sslmode against a server that offers TLS: require encrypts, verify-ca checks the certificate's CA, verify-full also its host",
          .enabled(if: TestPostgres.ca != nil || TestPostgres.required, "the server's CA: MILESTONES_TEST_PG_CA (make test sets it)"))
    func tls() throws {
        let ca = try #require(TestPostgres.ca, "MILESTONES_TEST_PG_CA is not set: scripts/with-postgres.sh sets it")
        let pg = try TestPostgres.database()
        let (bare, _) = TestPostgres.split(pg)
        let (port, db) = (bare.split(separator: ":").last!.split(separator: "/")[0], bare.split(separator: "/").last!)
        // A role that the server lets in over TLS only (scripts/with-postgres.sh's pg_hba.conf).
        #expect(TestPostgres.psql(pg, """
            DO $$ BEGIN CREATE ROLE tls_only LOGIN PASSWORD 'tls-only'; EXCEPTION WHEN duplicate_object THEN NULL; END $$
            """).code == 0)
        #expect(TestPostgres.psql(pg, "ALTER DATABASE \(db) OWNER TO tls_only").code == 0)
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        func status(_ host: String, _ query: String) -> Run {
            cli(["status", "--ledger", ledger, "--db", "postgresql://tls_only:tls-only@\(host):\(port)/\(db)?\(query)"])
        }
        func refused(_ r: Run, _ words: String) {
            #expect(r.code == 69 && r.stdout.isEmpty, "\(r.code): \(r.stderr)")
            #expect(r.stderr.contains(words) && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
        // Without TLS the server turns the role away (and says so: not a password problem); with it, every mode gets in.
        let plain = status("127.0.0.1", "sslmode=disable")
        #expect(plain.code == 77 && plain.stdout.isEmpty, "\(plain.stderr)")
        #expect(plain.stderr.contains("the server refuses this connection") && plain.stderr.contains("no encryption"), "\(plain.stderr)")
        let answers = cli(["status", "--ledger", ledger]).stdout
        for query in ["sslmode=require", "sslmode=prefer", "sslmode=verify-ca&sslrootcert=\(ca)", "sslmode=verify-full&sslrootcert=\(ca)"] {
            let r = status("127.0.0.1", query)
            #expect(r.code == 0 && r.stdout == answers, "\(query): \(r.stderr)")
        }
        // The certificate names 127.0.0.1, not 127.0.0.2 (where the server listens too): verify-full refuses
        // that address, verify-ca does not look at it. (localhost would pass: TLS here accepts a certificate
        // that names the address connected to, as docs/read-models.md says.)
        refused(status("127.0.0.2", "sslmode=verify-full&sslrootcert=\(ca)"), "TLS failed")
        #expect(status("127.0.0.2", "sslmode=verify-ca&sslrootcert=\(ca)").code == 0)
        // A certificate from another CA, or only the system's CAs to trust: refused.
        let other = dir.file("other.crt")
        #expect(run("/usr/bin/env", ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                                     "-keyout", dir.file("other.key"), "-out", other]).code == 0)
        refused(status("127.0.0.1", "sslmode=verify-ca&sslrootcert=\(other)"), "TLS failed")
        refused(status("127.0.0.1", "sslmode=verify-full"), "TLS failed")
    }

    @Test("a connection lost in the middle of a catch-up applies nothing; the next command catches up")
    func connectionLostMidCatchUp() throws {
        let pg = try TestPostgres.database()
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        // The catch-up pauses inside its transaction, rows copied; meanwhile its backend is ended, as a restart
        // would (only a backend idle in a transaction for a second: the pause, not a moment between two statements).
        let database = String(pg.split(separator: "/").last!)
        let base = TestPostgres.base! + "/postgres"
        nonisolated(unsafe) var killed = ""
        let killer = Thread {
            for _ in 0..<100 {
                Thread.sleep(forTimeInterval: 0.1)
                let r = TestPostgres.psql(base, """
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(database)' AND state = 'idle in transaction'
                      AND state_change < now() - interval '1 second'
                    """)
                if r.stdout.contains("t") { killed = r.stdout; return }
            }
        }
        killer.start()
        let r = cli(["status", "--ledger", ledger, "--db", pg], env: ["MILESTONES_TEST_PAUSE_IN_CATCHUP": "3"])
        while !killer.isFinished { Thread.sleep(forTimeInterval: 0.05) }
        #expect(killed.contains("t"))
        #expect(r.code == 69, "\(r.stderr)")
        #expect(r.stderr.contains("nothing of this command was applied") || r.stderr.contains("connection to the server was lost"), "\(r.stderr)")
        #expect(TestPostgres.psql(pg, "SELECT (SELECT count(*) FROM milestones.records), (SELECT head_seq FROM milestones.meta)").stdout == "0|0\n")
        let again = cli(["status", "--ledger", ledger, "--db", pg])
        #expect(again.code == 0, "\(again.stderr)")
        #expect(TestPostgres.psql(pg, "SELECT count(*) FROM milestones.records").stdout == "\(fixtureEventCount + 1)\n")
    }

    @Test("a ledger rewritten under the PostgreSQL read models is refused (exit 1), nothing written; --rebuild starts over")
    func changedLedger() throws {
        let pg = try TestPostgres.database()
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        #expect(cli(["status", "--ledger", ledger, "--db", pg]).code == 0)
        let before = postgresTables(pg)
        // Another ledger of the same length under the same name: the working copy is gone too (another machine).
        let other = TempDir()
        let rewritten = other.file("ai.jsonl")
        #expect(cli(["init", "--name", "example.org/other", "--ledger", rewritten]).code == 0)
        #expect(cli(["record", "-q", "--ledger", rewritten, "--file", Paths.fixture("nvidia-ai-factories.jsonl")]).code == 0)
        let r = cli(["status", "--ledger", rewritten, "--db", pg])
        #expect(r.code == 1, "\(r.stderr)")
        #expect(r.stderr.contains("no longer holds record") && r.stderr.contains("--rebuild"), "\(r.stderr)")
        #expect(postgresTables(pg) == before)
        // The ledger changed under the working copy beside it: refused as for SQLite.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: ledger))
        bytes[bytes.count - 40] = bytes[bytes.count - 40] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        try bytes.write(to: URL(fileURLWithPath: ledger))
        let tampered = cli(["status", "--ledger", ledger, "--db", pg])
        #expect(tampered.code == 1, "\(tampered.stderr)")
        #expect(postgresTables(pg) == before)
        let rebuilt = cli(["status", "--ledger", rewritten, "--db", pg, "--rebuild"])
        #expect(rebuilt.code == 0, "\(rebuilt.stderr)")
        #expect(TestPostgres.psql(pg, "SELECT count(*) FROM milestones.records WHERE type = 'ledger.created' AND event LIKE '%example.org/other%'").stdout == "1\n")
    }

    @Test("a query's rows reach the reading thread in order, many more than wait at once; a reader that stops ends the query and the connection goes on")
    func streamedRows() throws {
        let session = try PostgresSession(PostgresLocation(url: try TestPostgres.database()))
        var seen: [Int] = []
        try session.forEachRow("SELECT g, repeat(chr(64 + g % 26), 20000) FROM generate_series(1, 400) g") { row in
            let (n, text) = try row.decode((Int, String).self)
            #expect(text.utf8.count == 20000 && text.utf8.first == UInt8(64 + n % 26))
            seen.append(n)
        }
        #expect(seen == Array(1...400))
        struct Enough: Error {}
        var taken = 0
        #expect(throws: Enough.self) {
            try session.forEachRow("SELECT g FROM generate_series(1, 200000) g") { _ in
                taken += 1
                if taken == RowQueue.depth * 3 { throw Enough() }
            }
        }
        #expect(taken == RowQueue.depth * 3)
        #expect(try session.query("SELECT 42").first?.decode(Int.self) == 42)
        // The server's error after rows (about 6 MB of them, so they come in many reads before it), as one line; the connection goes on.
        var before = 0
        do {
            try session.forEachRow("SELECT g, repeat('x', 20000), 1 / (g - 300) FROM generate_series(1, 400) g") { _ in before += 1 }
            Issue.record("no error")
        } catch let error as ReadModelsServiceError {
            #expect(error.message.contains("division by zero") && !error.message.contains("\n"), "\(error.message)")
        }
        #expect(before > 0 && before < 300, "\(before) rows before the error")
        #expect(try session.query("SELECT 7").first?.decode(Int.self) == 7)
        // No rows at all; a reader that fails on the first row.
        try session.forEachRow("SELECT 1 WHERE false") { _ in Issue.record("a row") }
        #expect(throws: Enough.self) { try session.forEachRow("SELECT g FROM generate_series(1, 3) g") { _ in throw Enough() } }
        #expect(try session.query("SELECT 8").first?.decode(Int.self) == 8)
    }

    @Test("PostgreSQL URLs: libpq's defaults and password file; the password never in the description")
    func urls() throws {
        let l = try PostgresLocation(url: "postgresql://ann:s%3Acret@db.example:6543/reads?sslmode=verify-full&sslrootcert=/ca.pem",
                                     environment: [:])
        #expect(l.user == "ann" && l.password == "s:cret" && l.host == "db.example" && l.port == 6543 && l.database == "reads")
        #expect(l.sslMode == .verifyFull && l.sslRootCert == "/ca.pem")
        #expect(l.description == "postgresql://ann@db.example:6543/reads")
        let d = try PostgresLocation(url: "postgres://", environment: ["PGUSER": "bob", "PGHOST": "h", "PGPORT": "7000", "PGPASSWORD": "pw"])
        #expect(d.user == "bob" && d.host == "h" && d.port == 7000 && d.database == "bob" && d.password == "pw" && d.sslMode == .prefer)
        #expect(PostgresLocation.redacted("postgresql://u:topsecret@h/db") == "postgresql://u:***@h/db")
        #expect(throws: ReadModelsServiceError.self) { try PostgresLocation(url: "postgresql://h/db?sslmode=maybe", environment: [:]) }
        #expect(throws: ReadModelsServiceError.self) { try PostgresLocation(url: "postgresql://h/db?colour=red", environment: [:]) }
        if case .sqlite(let p) = try ReadModelsLocation(db: nil, ledger: "x.jsonl", environment: [:]) { #expect(p == "x.sqlite") } else { Issue.record("not sqlite") }
        if case .postgres = try ReadModelsLocation(db: nil, ledger: "x.jsonl", environment: ["MILESTONES_DB": "postgres://h/d"]) {} else { Issue.record("not postgres") }
    }
}

/// A server that answers a client's TLS request with "N", as a PostgreSQL server
/// without TLS does, and hangs up: its port.
func noTLSServer() -> Int {
    let (s, port) = loopbackSocket()
    listen(s, 8)
    Thread.detachNewThread {
        while true {
            let c = accept(s, nil, nil)
            guard c >= 0 else { return }
            var request = [UInt8](repeating: 0, count: 8)
            _ = read(c, &request, 8)
            _ = write(c, "N", 1)
            close(c)
        }
    }
    return port
}
