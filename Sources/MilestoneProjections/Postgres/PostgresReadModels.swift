import CanonicalJSON
import Foundation
import GRDB
import GRDBSQLite
import MilestoneLedger
import MilestoneModel
import PostgresNIO

/// The read models in a PostgreSQL database, for many readers on many
/// machines (docs/read-models.md, "PostgreSQL").
///
/// They hold the rows that the one projector (``Projector``) writes into
/// the SQLite read models beside the ledger, which serve as the catch-up's
/// working copy: a catch-up brings that file up to date (checking the
/// ledger as ever), then copies into PostgreSQL, in one transaction under an
/// advisory lock, what changed since PostgreSQL's own head (seq and hash,
/// checked against the ledger). Queries read the same rows and summary bytes
/// and answer through the same code as SQLite's (``ReadModelStore``).
package final class PostgresReadModels {
    package let location: PostgresLocation
    let session: PostgresSession

    /// Connects; `readOnly` sessions never write (the server refuses them if they try).
    package init(_ location: PostgresLocation, readOnly: Bool = false) throws {
        self.location = location
        // Set in the startup message: two statements' round trips saved on every command.
        session = try PostgresSession(location, settings: [("search_path", "milestones")]
                                          + (readOnly ? [("default_transaction_read_only", "on")] : []))
    }

    var name: String { "\(location)" }

    // MARK: - Layout

    /// The layout's version in the database (nil: none there yet).
    func storedVersion() throws -> Int? {
        guard try session.query("SELECT to_regclass('milestones.meta') IS NOT NULL").first?.decode(Bool.self) == true else { return nil }
        return try session.query("SELECT schema_version FROM meta WHERE id = 1").first?.decode(Int.self)
    }

    /// The layout's version and the head, in one statement (outside a
    /// transaction); nil when there is no layout.
    func storedState() throws -> (version: Int, head: ChainHead?)? {
        let (rows, failed) = try session.query("SELECT schema_version, head_seq, head_sha256, head_length, head_recorded_at FROM meta WHERE id = 1",
                                               failingOnlyWith: ["42P01", "42703"])
        // No meta table: no layout. A meta without these columns: an older layout, whose version says so.
        if failed == "42P01" { return nil }
        if failed != nil { return try storedVersion().map { ($0, nil) } }
        guard let row = rows.first else { return nil }
        let (version, seq, sha, length, at) = try row.decode((Int, Int, String?, Int, String?).self)
        guard version == PostgresReadModels.schemaVersion else { return (version, nil) }
        return (version, PostgresReadModels.head(seq: seq, sha: sha, length: length, at: at))
    }

    /// Creates the layout when it is missing or another version (emptied, to be built again from the ledger).
    func ensureLayout() throws {
        if try storedState()?.version == PostgresReadModels.schemaVersion { return }
        try session.transaction {
            try session.query("SELECT pg_advisory_xact_lock(\(PostgresReadModels.lockKey))")
            let exists = try session.query("SELECT to_regnamespace('milestones') IS NOT NULL").first?.decode(Bool.self) == true
            let version = try storedVersion()
            if version == PostgresReadModels.schemaVersion { return }
            if exists {
                let objects = try session.query("""
                    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'milestones'
                    """).first?.decode(Int.self) ?? 0
                guard version != nil || objects == 0 else {
                    throw ReadModelsServiceError(message: "\(name): the schema milestones holds tables that are not milestones read models; name another database in --db", exitCode: 64)
                }
                try session.query("DROP SCHEMA milestones CASCADE")
            }
            try session.query("CREATE SCHEMA milestones")
            for sql in PostgresReadModels.tables + PostgresReadModels.indexes + PostgresReadModels.views { try session.query(sql) }
            try session.query("INSERT INTO meta (id, schema_version) VALUES (1, \(PostgresReadModels.schemaVersion))")
        }
    }

    // MARK: - Head

    package func head() throws -> ChainHead? {
        try storedState()?.head
    }

    static func head(of rows: [PostgresRow]) throws -> ChainHead? {
        guard let row = rows.first else { return nil }
        let (seq, sha, length, at) = try row.decode((Int, String?, Int, String?).self)
        return head(seq: seq, sha: sha, length: length, at: at)
    }

    static func head(seq: Int, sha: String?, length: Int, at: String?) -> ChainHead? {
        guard seq > 0, let sha, let digest = Digest(hex: sha), let at, let ts = Timestamp(at) else { return nil }
        return ChainHead(seq: seq, sha256: digest, recordedAt: ts, length: length)
    }

    /// For `--read-only`: the head the answers reflect; an error when there are no read models to answer from.
    package func requireHead() throws -> ChainHead {
        guard let (version, head) = try storedState() else {
            throw ReadModelsServiceError(message: "\(name): no read models in this database yet; run a command without --read-only where the ledger is, to project it", exitCode: 69)
        }
        guard version == PostgresReadModels.schemaVersion else {
            throw ReadModelsServiceError(message: "\(name): the read models there have another layout (version \(version)); run a command without --read-only where the ledger is, to rebuild them", exitCode: 69)
        }
        guard let head else {
            throw ReadModelsServiceError(message: "\(name): the read models there are empty; run a command without --read-only where the ledger is, to project it", exitCode: 69)
        }
        return head
    }

    // MARK: - Catch-up

    /// Brings these read models up to the ledger's first `size` bytes:
    /// `working` (the SQLite read models, the projection's working copy) is
    /// caught up first, which checks the ledger; then what PostgreSQL lacks
    /// is copied in one transaction, under an advisory lock, from the head
    /// found in that transaction (so concurrent catch-ups never apply a
    /// record twice, and a killed one applies nothing). The head stored here
    /// must be in the ledger with the same hash, or the ledger changed: that
    /// is refused (exit 1), unless `rebuild`.
    @discardableResult
    package func catchUp(_ ledger: LedgerFile, upTo size: Int, working: ReadModels, rebuild: Bool = false,
                        progress: ((Int, Int) -> Void)? = nil) throws -> ReadModels.CatchUp {
        try ensureLayout()
        let local = try working.catchUp(ledger, upTo: size, rebuild: rebuild, progress: progress)
        let localHead = try working.head()
        // Up to date already (the usual case for a reader): the stored head checked, no lock taken.
        let current = try PostgresReadModels.head(of: session.query("SELECT head_seq, head_sha256, head_length, head_recorded_at FROM meta WHERE id = 1"))
        if !rebuild, let current, let localHead, current.seq >= localHead.seq {
            try checkHead(current, ledger: ledger, size: size, working: working)
            return ReadModels.CatchUp(projected: 0, head: current, checkedIdentity: local.checkedIdentity)
        }
        return try session.transaction {
            try session.query("SELECT pg_advisory_xact_lock(\(PostgresReadModels.lockKey))")
            var head = try PostgresReadModels.head(of: session.query("SELECT head_seq, head_sha256, head_length, head_recorded_at FROM meta WHERE id = 1"))
            if rebuild, head != nil {
                try session.query("TRUNCATE records, event_versions, organizations, version_roles, subject_status, subject_targets")
                head = nil
            }
            if let head { try checkHead(head, ledger: ledger, size: size, working: working) }
            let from = head?.seq ?? 0
            guard let localHead, localHead.seq > from else { return ReadModels.CatchUp(projected: 0, head: head, checkedIdentity: local.checkedIdentity) }
            try working.db.read { db in try copyChanges(from: db, after: from, groupSize: working.summaryGroup) }
            // Tests stop here to cut the connection with the rows copied and not committed.
            if let pause = ProcessInfo.processInfo.environment["MILESTONES_TEST_PAUSE_IN_CATCHUP"].flatMap(Double.init) {
                Thread.sleep(forTimeInterval: pause)
            }
            try session.query("""
                UPDATE meta SET head_seq = $1, head_sha256 = $2, head_length = $3, head_recorded_at = $4,
                                checked_identity = $5, checked_length = $6, updated_at = now() WHERE id = 1
                """, PostgresReadModels.binds(localHead.seq, localHead.sha256.hex, localHead.length, localHead.recordedAt.description,
                                              local.checkedIdentity, size))
            return ReadModels.CatchUp(projected: localHead.seq - from, head: localHead, checkedIdentity: local.checkedIdentity)
        }
    }

    /// The ledger must still hold PostgreSQL's head record with its hash (exit 1 if not, as for SQLite).
    func checkHead(_ head: ChainHead, ledger: LedgerFile, size: Int, working: ReadModels) throws {
        do {
            try working.check(head, against: ledger, size: size)
        } catch let LedgerError.stale(_, reason) {
            throw LedgerError.stale(path: name, reason: reason.replacingOccurrences(of: "these read models", with: "the read models in PostgreSQL"))
        }
    }

    static func binds(_ values: (any PostgresDynamicTypeEncodable)?...) -> PostgresBindings {
        var b = PostgresBindings()
        for v in values {
            if let v { b.append(v) } else { b.appendNull() }
        }
        return b
    }

    /// Copies what the records after seq `after` changed in the SQLite read
    /// models `db`: their records, new event versions and roles, the versions
    /// they closed and the records they corrected or retracted (updated), new
    /// organisations, and the summaries of the subjects they touched.
    func copyChanges(from db: Database, after a: Int, groupSize: Int) throws {
        let first = a == 0
        // The records that corrections and retractions after `a` name, projected before it.
        let named = "SELECT t.seq FROM records c JOIN records t ON t.id = c.refers_to WHERE c.seq > \(a) AND t.seq <= \(a)"
        if first {
            // Into empty tables, without their secondary indexes: built once, after.
            for index in PostgresReadModels.indexes {
                try session.query("DROP INDEX IF EXISTS " + index.split(separator: " ")[2])
            }
        }
        try copy(db, """
            SELECT seq, id, type, subject, date, precision, recorded_at, sha256, offset, length, content, milestone, refers_to,
                   corrections, retracted_by, event FROM records WHERE seq > \(a) ORDER BY seq
            """, into: "records", PostgresReadModels.recordColumns)
        let versionColumns = PostgresReadModels.versionColumns.joined(separator: ", ")
        try copy(db, """
            SELECT \(versionColumns) FROM event_versions WHERE event_seq > \(a)
            UNION ALL SELECT \(versionColumns) FROM event_versions WHERE event_seq IN (\(named)) AND from_seq > \(a)
            """, into: "event_versions", PostgresReadModels.versionColumns)
        try copy(db, """
            SELECT event_seq, from_seq, org, role FROM version_roles WHERE event_seq > \(a)
            UNION ALL SELECT event_seq, from_seq, org, role FROM version_roles WHERE event_seq IN (\(named)) AND from_seq > \(a)
            """, into: "version_roles", ["event_seq", "from_seq", "org", "role"])
        if first {
            try copy(db, "SELECT slug, name FROM organizations", into: "organizations", ["slug", "name"])
        } else {
            try session.query("CREATE TEMP TABLE changed_organizations (slug text COLLATE \"C\", name text) ON COMMIT DROP")
            try copy(db, """
                SELECT DISTINCT o.slug, o.name FROM version_roles vr JOIN organizations o ON o.slug = vr.org
                WHERE vr.from_seq > \(a) AND (vr.event_seq > \(a) OR vr.event_seq IN (\(named)))
                """, into: "changed_organizations", ["slug", "name"])
            try session.query("INSERT INTO organizations SELECT slug, name FROM changed_organizations ON CONFLICT (slug) DO NOTHING")
            // Records corrected or retracted since, and the versions those closed.
            try session.query("CREATE TEMP TABLE changed_records (seq bigint, corrections integer, retracted_by bigint) ON COMMIT DROP")
            try copy(db, "SELECT seq, corrections, retracted_by FROM records WHERE seq IN (\(named))",
                     into: "changed_records", ["seq", "corrections", "retracted_by"])
            try session.query("""
                UPDATE records r SET corrections = c.corrections, retracted_by = c.retracted_by FROM changed_records c WHERE r.seq = c.seq
                """)
            try session.query("CREATE TEMP TABLE closed_versions (event_seq bigint, from_seq bigint, to_seq bigint) ON COMMIT DROP")
            try copy(db, "SELECT event_seq, from_seq, to_seq FROM event_versions WHERE event_seq IN (\(named)) AND from_seq <= \(a) AND to_seq > \(a)",
                     into: "closed_versions", ["event_seq", "from_seq", "to_seq"])
            try session.query("""
                UPDATE event_versions v SET to_seq = c.to_seq FROM closed_versions c WHERE v.event_seq = c.event_seq AND v.from_seq = c.from_seq
                """)
        }
        try copySummaries(db, after: a, groupSize: groupSize)
        if first {
            for index in PostgresReadModels.indexes { try session.query(index) }
            // Every table, the summaries' too: the planner's guess for a table never analysed comes from
            // its size on disk alone, and a wrong one can sort a whole table of summaries on disk.
            try session.query("ANALYZE records, event_versions, organizations, version_roles, subject_status, subject_targets")
        }
    }

    static let recordColumns = ["seq", "id", "type", "subject", "date", "precision", "recorded_at", "sha256", "offset", "length",
                                "content", "milestone", "refers_to", "corrections", "retracted_by", "event"]
    static let versionColumns = ["event_seq", "from_seq", "to_seq", "id", "type", "subject", "date", "precision", "rank", "name", "kind",
                                 "operator", "program", "sponsor", "milestone", "due_earliest", "due_latest", "amount_value",
                                 "amount_currency", "amount_qualifier", "horizon", "summary", "event"]

    /// The rows of summaries the records after `a` changed, grouped as
    /// SQLite groups them (``SubjectSummary``; the same row layout).
    ///
    /// From 0: SQLite's rows as they are. After `a` > 0, PostgreSQL's rows
    /// may be cut otherwise than SQLite's (each store cuts its rows as its
    /// own catch-ups went), so each store's keys are its own: the rows of
    /// PostgreSQL that a subject of those records falls in (``rowsTouched(keys:subjects:)``)
    /// are deleted and made again from SQLite's entries of the subjects
    /// they spanned, new subjects among them, cut into rows of `groupSize`
    /// as SQLite's catch-up cuts them. Every other subject is in a row not
    /// touched: its summary is the same in both stores (no record after `a`
    /// changed it).
    func copySummaries(_ db: Database, after a: Int, groupSize: Int) throws {
        let columns = ["first", "subjects", "summaries"]
        if a == 0 {
            for part in SubjectSummary.Part.all {
                try copy(db, "SELECT first, subjects, summaries FROM \(part.table) ORDER BY first", into: part.table, columns)
            }
            return
        }
        let subjects = try String.fetchAll(db, sql: "SELECT DISTINCT subject FROM records WHERE seq > ? AND subject IS NOT NULL", arguments: [a])
        guard !subjects.isEmpty else { return }
        let keys = try session.query("SELECT first FROM subject_status ORDER BY first").map { try Array($0.decode(String.self).utf8) }
        let runs = PostgresReadModels.rowsTouched(keys: keys, subjects: subjects.map { Array($0.utf8) })
        let gone = runs.flatMap { keys[$0] }.map { String(decoding: $0, as: UTF8.self) }
        for part in SubjectSummary.Part.all where !gone.isEmpty {
            try session.query("DELETE FROM \(part.table) WHERE first = ANY($1)", PostgresReadModels.binds(gone))
        }
        // Each table in turn: the rows of a run are cut from its entries, the same in both tables.
        for part in SubjectSummary.Part.all {
            try session.copy(into: part.table, columns: columns) { emit in
                var out = CopyText()
                for run in runs {
                    let entries = try SubjectSummary.entries(db, from: run.lowerBound == 0 ? nil : keys[run.lowerBound],
                                                             before: run.upperBound == keys.count ? nil : keys[run.upperBound])
                    for r in SubjectSummary.cut(entries.count, groupSize: groupSize) {
                        entries[r.lowerBound].subject.withUnsafeBufferPointer { out.text($0) }
                        out.tab()
                        out.int(Int64(r.count))
                        out.tab()
                        SubjectSummary.row(entries[r], part).withUnsafeBytes { out.bytea($0) }
                        out.newline()
                        if out.buffer.readableBytes >= CopyText.chunk { try emit(&out.buffer) }
                    }
                }
                if out.buffer.readableBytes > 0 { try emit(&out.buffer) }
            }
        }
    }

    /// The rows (by index in `keys`, their first subjects in byte order)
    /// that any of `subjects` falls in, as runs of consecutive rows: a
    /// subject falls in the last row whose first subject is not after it, or
    /// in the first row when it is before them all; a run from the first
    /// row spans every subject before it, and one to the last row every
    /// subject after it. No rows: one run, empty, that spans every subject.
    static func rowsTouched(keys: [[UInt8]], subjects: [[UInt8]]) -> [Range<Int>] {
        guard !keys.isEmpty else { return subjects.isEmpty ? [] : [0..<0] }
        var touched = Set<Int>()
        for s in subjects {
            // The first row whose first subject is after s; s falls in the one before it.
            var (low, high) = (0, keys.count)
            while low < high {
                let mid = (low + high) / 2
                if s.lexicographicallyPrecedes(keys[mid]) { high = mid } else { low = mid + 1 }
            }
            touched.insert(max(low - 1, 0))
        }
        var runs: [Range<Int>] = []
        for i in touched.sorted() {
            if let last = runs.last, last.upperBound == i {
                runs[runs.count - 1] = last.lowerBound..<(i + 1)
            } else {
                runs.append(i..<(i + 1))
            }
        }
        return runs
    }

    /// COPY of a SQLite query's rows into `table` (text format: integers as
    /// decimals, text escaped, NULL as \N), streamed a chunk at a time.
    func copy(_ db: Database, _ sql: String, into table: String, _ columns: [String]) throws {
        let s = RawStatement(try db.makeStatement(sql: sql))
        let n = sqlite3_column_count(s.handle)
        try session.copy(into: table, columns: columns) { emit in
            var out = CopyText()
            while try s.step(db) {
                for i in 0..<n {
                    if i > 0 { out.tab() }
                    switch sqlite3_column_type(s.handle, i) {
                    case SQLITE_NULL: out.null()
                    case SQLITE_INTEGER: out.int(s.int(i))
                    case SQLITE_BLOB: out.bytea(UnsafeRawBufferPointer(start: sqlite3_column_blob(s.handle, i), count: Int(sqlite3_column_bytes(s.handle, i))))
                    default: out.text(s.bytes(i)!)
                    }
                }
                out.newline()
                if out.buffer.readableBytes >= CopyText.chunk { try emit(&out.buffer) }
            }
            if out.buffer.readableBytes > 0 { try emit(&out.buffer) }
        }
    }
}

/// Rows in COPY's text format.
struct CopyText {
    static let chunk = 1 << 20
    var buffer = ByteBufferAllocator().buffer(capacity: CopyText.chunk + 64 << 10)

    mutating func tab() { buffer.writeInteger(UInt8(ascii: "\t")) }
    mutating func newline() { buffer.writeInteger(UInt8(ascii: "\n")) }
    mutating func null() { buffer.writeStaticString("\\N") }
    mutating func int(_ v: Int64) { buffer.writeString(String(v)) }

    /// Text with backslash, tab, newline and carriage return escaped.
    mutating func text(_ bytes: UnsafeBufferPointer<UInt8>) {
        var start = 0
        for (i, b) in bytes.enumerated() where b == 0x5C || b == 0x09 || b == 0x0A || b == 0x0D {
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start..<i]))
            switch b {
            case 0x09: buffer.writeStaticString("\\t")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            default: buffer.writeStaticString("\\\\")
            }
            start = i + 1
        }
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start...]))
    }

    /// Bytes as bytea's hex form (`\x…`, its backslash escaped).
    mutating func bytea(_ bytes: UnsafeRawBufferPointer) {
        buffer.writeStaticString("\\\\x")
        let hex: StaticString = "0123456789abcdef"
        let digits = hex.utf8Start
        buffer.reserveCapacity(minimumWritableBytes: bytes.count * 2)
        for b in bytes {
            buffer.writeInteger(digits[Int(b >> 4)])
            buffer.writeInteger(digits[Int(b & 15)])
        }
    }
}
