import CanonicalJSON
import MilestoneCrypto
import Foundation
import GRDB
import GRDBSQLite
import MilestoneLedger
import MilestoneModel

/// The SQLite read models of a ledger (`X.jsonl` → `X.sqlite`): every record,
/// every event's versions as corrections and retractions became known, and
/// views for the current knowledge (docs/read-models.md).
///
/// Any reading command brings them up to date with ``catchUp(_:upTo:rebuild:progress:)``,
/// incrementally from the stored head, after checking that the ledger still
/// holds that head. Deleting the file loses nothing.
package final class ReadModels {
    package let path: String
    package let db: DatabaseQueue
    let lookups = Protected(Lookups())
    /// Subjects per row of summaries as this connection writes them, and a
    /// PostgreSQL catch-up from it (``SubjectSummary/groupSize``; tests set
    /// fewer, so that a few dozen subjects fill several rows, in-process or,
    /// for the commands, with `MILESTONES_TEST_SUMMARY_GROUP`).
    package var summaryGroup = ProcessInfo.processInfo.environment["MILESTONES_TEST_SUMMARY_GROUP"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil }
        ?? SubjectSummary.groupSize

    /// Where the read models of `ledger` live by default.
    package static func path(forLedger ledger: String) -> String {
        (ledger.hasSuffix(".jsonl") ? String(ledger.dropLast(6)) : ledger) + ".sqlite"
    }

    package init(path: String) throws {
        self.path = path
        db = try ReadModels.open(path, readOnly: false)
    }

    /// Read models as they are, for reading only (`--read-only`): never caught up, never written.
    package init(readingOnly path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw LedgerError.missing(path: path) }
        self.path = path
        db = try ReadModels.open(path, readOnly: true)
    }

    /// Another connection to the same read models, for reading only (on
    /// another thread); they must be up to date already.
    package init(readerOf other: ReadModels) throws {
        path = other.path
        db = try ReadModels.open(path, readOnly: true)
    }

    static func open(_ path: String, readOnly: Bool) throws -> DatabaseQueue {
        var config = Configuration()
        config.readonly = readOnly
        // Several processes share the file: wait for each other rather than fail.
        config.busyMode = .timeout(30)
        config.prepareDatabase { db in
            // A large page cache keeps index maintenance in memory during a
            // long catch-up (the default 2 MB makes it go to disk for every row).
            if !readOnly { try db.execute(sql: "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL") }
            try db.execute(sql: "PRAGMA cache_size = -262144; PRAGMA temp_store = MEMORY")
            // Reads map the file instead of copying its pages (status and targets scan tens of MB).
            try db.execute(sql: "PRAGMA mmap_size = 4294967296")
        }
        do {
            let db = try DatabaseQueue(path: path, configuration: config)
            if !readOnly, try db.read({ db in try Int.fetchOne(db, sql: "PRAGMA user_version") }) != schemaVersion {
                // Only a file of ours (or an empty one) is rebuilt: --db naming someone else's database is refused.
                guard try db.read(ReadModels.isOurs) else {
                    throw LedgerError.io(path: path, operation: "open read models (the file holds other tables: it is not a milestones read-model file; name another --db)", errno: EEXIST)
                }
                try db.write { db in try ReadModels.create(db) }
            }
            return db
        } catch let e as DatabaseError {
            throw LedgerError.io(path: path, operation: "open read models (\(e.message ?? "SQLite error \(e.resultCode)"))", errno: EIO)
        }
    }

    /// The layout of the read models (docs/read-models.md). They are a cache of
    /// the ledger: a file of any other layout (older, newer, or none: a new
    /// file) is emptied and built again from the ledger by the next catch-up,
    /// in one transaction, rather than migrated. Raise it whenever the layout
    /// changes, even only a blob's.
    package static let schemaVersion = 11

    /// Marks a read-model file in its header (SQLite's `application_id`): "MLST".
    static let applicationID: Int32 = 0x4D4C_5354

    /// Whether the file is empty, or read models of this or an earlier layout.
    static func isOurs(_ db: Database) throws -> Bool {
        if try Int32.fetchOne(db, sql: "PRAGMA application_id") == applicationID { return true }
        let tables = Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
        // Files from before the mark: their meta and records tables say what they are.
        return tables.isEmpty || (tables.contains("meta") && tables.contains("records") && tables.contains("event_versions"))
    }

    /// Drops whatever the file holds and creates the current layout, empty.
    static func create(_ db: Database) throws {
        let objects = try Row.fetchAll(db, sql: "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND type IN ('view', 'table')")
        for o in objects where (o[0] as String) == "view" { try db.execute(sql: "DROP VIEW \(o[1] as String)") }
        for o in objects where (o[0] as String) == "table" { try db.execute(sql: "DROP TABLE \(o[1] as String)") }
        try db.execute(sql: ReadModels.schema)
        try db.execute(sql: ReadModels.statusIndexes)
        try db.execute(sql: SubjectSummary.createSQL)
        try db.execute(sql: "UPDATE meta SET schema_version = \(schemaVersion) WHERE id = 1")
        try db.execute(sql: "PRAGMA user_version = \(schemaVersion)")
        try db.execute(sql: "PRAGMA application_id = \(applicationID)")
    }

    /// The stored head: the last record the read models have projected.
    package typealias Head = ChainHead

    package func head() throws -> Head? {
        try db.read { db in try ReadModels.readHead(db) }
    }

    static func readHead(_ db: Database) throws -> Head? {
        guard let row = try Row.fetchOne(db, sql: "SELECT head_seq, head_sha256, head_length, head_recorded_at FROM meta WHERE id = 1"),
              let seq: Int = row[0], seq > 0, let sha: String = row[1], let digest = Digest(hex: sha),
              let length: Int = row[2], let at: String = row[3], let ts = Timestamp(at)
        else { return nil }
        return Head(seq: seq, sha256: digest, recordedAt: ts, length: length)
    }

    // MARK: - Catch-up

    package struct CatchUp: Sendable {
        package var projected: Int
        package var head: Head?
        /// The ledger file's identity, when the records it holds up to the
        /// catch-up's size are known to be the ones verified (nil: it changed
        /// while being checked; the next command checks it again).
        package var checkedIdentity: String? = nil
    }

    /// Projects the records between the stored head and `size`.
    ///
    /// The record at the stored head must still be in the ledger with the
    /// same hash; if not, the ledger was rewritten: that is reported (exit 1),
    /// never papered over, unless `rebuild` asks to start over. New lines are
    /// checked (their own hash, their link to the previous record, their
    /// event's form); one transaction per batch of records, so a crash leaves
    /// usable read models that the next command continues.
    @discardableResult
    package func catchUp(_ ledger: LedgerFile, upTo size: Int, rebuild: Bool = false,
                        batch: Int = 20_000, bulkLoadAbove: Int = ReadModels.bulkLoadBytes,
                        progress: ((Int, Int) -> Void)? = nil) throws -> CatchUp {
        lookups.withLock { $0 = Lookups() }
        // The read models never answer for a changed ledger (docs/cli.md): a file
        // whose identity is not the one last checked is verified whole first.
        let identity = try ledger.identity()
        let recheck = try db.read { db in try String.fetchOne(db, sql: "SELECT checked_identity FROM meta WHERE id = 1") } != identity
        if recheck { _ = try LedgerReader.verify(ledger, upTo: size) }
        if rebuild { try db.write { db in try ReadModels.clear(db) } }
        try restoreIndexes()  // after a first projection that did not finish
        var head = try self.head()
        let startSeq = head?.seq ?? 0
        if let h = head { try check(h, against: ledger, size: size) }
        let start = head?.length ?? 0
        guard start < size else {
            try ensureSplit()
            let checked = recheck ? try markChecked(ledger, identity: identity, size: size) : true
            return CatchUp(projected: 0, head: head, checkedIdentity: checked ? identity : nil)
        }
        // A first projection of a large ledger loads the tables without their
        // secondary indexes and builds those at the end (sorted, in one pass
        // each), instead of inserting into them a row at a time in random order.
        var bulk = false
        if head == nil, size - start > bulkLoadAbove {
            try setIndexesAside()
            bulk = true
        }
        defer { try? restoreIndexes() }
        var pending: [(line: [UInt8], offset: Int, isFinal: Bool)] = []
        var projected = 0
        var failure: Error?
        func flush() throws {
            guard !pending.isEmpty else { return }
            let lines = pending
            pending.removeAll(keepingCapacity: true)
            try db.write { db in
                // Another process may have projected some of these lines since
                // we read the head: continue from the head as it is now.
                let current = try ReadModels.readHead(db)
                var projector = try Projector(db: db, head: current)
                for (line, offset, isFinal) in lines where offset >= (current?.length ?? 0) {
                    guard offset == (projector.head?.length ?? 0) else {
                        throw LedgerError.stale(path: path, reason: "the read models' head moved under this catch-up; run the command again")
                    }
                    try projector.project(line: line, offset: offset, isFinal: isFinal, ledger: ledger.path)
                }
                // In bulk, the summaries are rebuilt at the end with the indexes.
                if !bulk { try SubjectSummary.refresh(db, subjects: projector.touched, groupSize: summaryGroup) }
                head = projector.head
                try projector.saveHead()
            }
            projected += lines.count
        }
        try ledger.forEachChunk(from: start, upTo: size, { chunk, spans in
            guard failure == nil else { return }
            for s in spans {
                guard s.kind == .complete else {
                    let line = (head?.seq ?? 0) + pending.count + 1
                    failure = LedgerError.notIntact(s.kind == .unterminated ? .unterminated(line: line, offset: s.offset, length: s.length)
                                                                            : .tooLong(line: line, offset: s.offset), path: ledger.path)
                    return
                }
                pending.append((Array(chunk[s.start..<(s.start + s.length)]), s.offset, s.isFinal))
                if pending.count >= batch {
                    do { try flush() } catch { failure = error; return }
                }
            }
        }, progress: progress.map { p in { p($0, size) } })
        if let failure {
            try? flush()
            throw failure
        }
        try flush()
        try restoreIndexes()
        try ensureSplit(projectedFrom: startSeq, to: head?.seq ?? 0)
        let checked = recheck ? try markChecked(ledger, identity: identity, size: size) : true
        return CatchUp(projected: projected, head: head, checkedIdentity: checked ? identity : nil)
    }

    /// Notes that the ledger, as it is now (`identity`, when given, as it was
    /// read before checking it), has been checked whole up to `size`: the
    /// next command need not verify it again while its identity stays. A
    /// writer that appended onto what it had checked, under the lock, says so
    /// here after its append.
    @discardableResult
    package func markChecked(_ ledger: LedgerFile, identity: String? = nil, size: Int? = nil) throws -> Bool {
        let now = try ledger.identity()
        let length = try ledger.size()
        // A file that changed between the check and now is checked again next time.
        guard identity == nil || identity == now, size == nil || size == length else { return false }
        try db.write { db in
            try db.execute(sql: "UPDATE meta SET checked_identity = ?, checked_length = ? WHERE id = 1", arguments: [now, length])
        }
        return true
    }

    /// Stores where to cut the subject summaries in two: if none is stored
    /// and there are enough of them (read models of a ledger grown by small
    /// catch-ups); or if catch-ups have left less than 40% or more than 60%
    /// of the summaries' bytes before the split. That check reads every row's
    /// length, so it is made when the records
    /// projected cross a multiple of a 32nd of the ledger (at least 64):
    /// about 32 times while a ledger doubles, however it is caught up.
    func ensureSplit(projectedFrom before: Int = 0, to after: Int = 0) throws {
        let stride = max(64, after / 32)
        let due = before / stride != after / stride
        let needed = try db.read { db in
            guard let split = try SubjectSummary.split(db) else {
                return Int(try Double.fetchOne(db, sql: "SELECT TOTAL(subjects) FROM subject_status") ?? 0) >= SubjectSummary.parallelFrom
            }
            guard due, let share = try SubjectSummary.share(db, before: split) else { return false }
            return !(0.4...0.6).contains(share)
        }
        if needed { try db.write { db in try SubjectSummary.storeSplit(db) } }
    }

    /// Above this many bytes to project into empty read models, the secondary
    /// indexes are built after the load rather than during it.
    package static let bulkLoadBytes = 32 << 20

    /// Drops the secondary indexes of `records` and `event_versions`, keeping
    /// their definitions in `pending_indexes` (in the same transaction, so a
    /// crash loses none: the next catch-up rebuilds them first), and marks the
    /// subject summaries for a rebuild after them.
    func setIndexesAside() throws {
        try db.write { db in
            let indexes = try Row.fetchAll(db, sql: """
                SELECT name, sql FROM sqlite_master
                WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('records', 'event_versions')
                """)
            for index in indexes {
                try db.execute(sql: "INSERT INTO pending_indexes (name, sql) VALUES (?, ?)", arguments: [index[0], index[1]])
                try db.execute(sql: "DROP INDEX \(index[0] as String)")
            }
            try db.execute(sql: "INSERT OR IGNORE INTO pending_indexes (name, sql) VALUES (?, '')", arguments: [SubjectSummary.marker])
        }
    }

    /// Builds every index set aside, if any, then the summaries if marked.
    func restoreIndexes() throws {
        guard try db.read({ db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pending_indexes") ?? 0 }) > 0 else { return }
        try db.write { db in
            for index in try Row.fetchAll(db, sql: "SELECT name, sql FROM pending_indexes WHERE name <> ?", arguments: [SubjectSummary.marker]) {
                try db.execute(sql: index[1] as String)
                try db.execute(sql: "DELETE FROM pending_indexes WHERE name = ?", arguments: [index[0]])
            }
            if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM pending_indexes WHERE name = ?)", arguments: [SubjectSummary.marker]) == true {
                try SubjectSummary.rebuildAll(db, groupSize: summaryGroup)
                try db.execute(sql: "DELETE FROM pending_indexes WHERE name = ?", arguments: [SubjectSummary.marker])
            }
        }
    }

    /// The line that ends at `head.length` must be the stored head record.
    func check(_ head: Head, against ledger: LedgerFile, size: Int) throws {
        let stale = LedgerError.stale(
            path: path,
            reason: "the ledger no longer holds record \(head.seq) as these read models saw it (sha256 \(head.sha256.hex)): it was rewritten or truncated. Run `milestones verify`; rebuild the read models with --rebuild only if the ledger is the one you trust")
        guard head.length <= size, try ledger.start(ofRecord: head.seq, sha256: head.sha256, endingAt: head.length) != nil else { throw stale }
    }

    static func clear(_ db: Database) throws {
        for table in ["records", "event_versions", "organizations", "version_roles"] + SubjectSummary.tables {
            try db.execute(sql: "DELETE FROM \(table)")
        }
        try db.execute(sql: "UPDATE meta SET head_seq = 0, head_sha256 = NULL, head_length = 0, head_recorded_at = NULL, summary_split = NULL WHERE id = 1")
    }
}

/// Projects record lines into the tables, within one transaction.
struct Projector: ~Copyable {
    let db: Database
    var head: ReadModels.Head?
    let tape = JSONTape()
    var hasher = SHA256()
    /// The subjects whose summaries this transaction changed.
    var touched: Set<String> = []

    init(db: Database, head: ReadModels.Head?) throws {
        self.db = db
        self.head = head
    }

    mutating func project(line: [UInt8], offset: Int, isFinal: Bool, ledger: String) throws {
        let seq = (head?.seq ?? 0) + 1
        func fail(_ reason: String) -> LedgerError {
            .notIntact(VerifyFailure(seq: seq, line: seq, offset: offset, reason: reason, isTornTail: false), path: ledger)
        }
        // The line's own hash, its link to the record before, its seq and time.
        let (hashes, tail) = line.withUnsafeBytes { b in (RecordLine.hashes(of: b, hasher: &hasher), RecordLine.tail(of: b)) }
        guard let hashes, hashes.claimed == hashes.computed, let tail else {
            if isFinal {
                throw LedgerError.notIntact(.lastLineFailsHash(line: seq, offset: offset, length: line.count), path: ledger)
            }
            throw fail("the record fails its hash; run `milestones verify`")
        }
        guard tail.seq == seq, tail.prev == (head?.sha256 ?? .zero), tail.recordedAt >= (head?.recordedAt ?? Timestamp(seconds: .min)) else {
            throw fail("the record does not follow the one before (seq, prev or recorded_at); run `milestones verify`")
        }
        do {
            try tape.parse(line, mode: .canonical)
        } catch {
            throw fail("not canonical JSON: \(error.message)")
        }
        guard let eventView = tape.root["event"], eventView.kind == .object else { throw fail("no event") }
        let facts: Event
        do {
            facts = try EventForm.validate(eventView)
        } catch {
            throw fail("event: \(error)")
        }
        let content = line.withUnsafeBytes { b in
            RecordLine.contentDigest(UnsafeRawBufferPointer(rebasing: b[eventView.byteRange!]), hasher: &hasher)
        }
        let insert = RawStatement(try db.cachedStatement(sql: """
            INSERT INTO records (seq, id, type, subject, date, precision, recorded_at, sha256, offset, length, content,
                                 milestone, refers_to, event)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """))
        insert.bind(1, seq)
        insert.bind(2, facts.id)
        insert.bind(3, facts.type.rawValue)
        insert.bind(4, facts.subject)
        insert.bind(5, eventView["date"])
        insert.bind(6, facts.precision.rawValue)
        insert.bind(7, tape.root["recorded_at"])
        insert.bind(8, tape.root["sha256"])
        insert.bind(9, offset)
        insert.bind(10, line.count)
        insert.bind(11, Int(Int64(bitPattern: content)))
        insert.bind(12, facts.milestone)
        insert.bind(13, facts.reference)
        // The line is canonical: the event's own bytes are its canonical JSON.
        line.withUnsafeBufferPointer { insert.bind(14, bytes: UnsafeBufferPointer(rebasing: $0[eventView.byteRange!])) }
        try insert.run(db)
        switch facts.type {
        case .ledgerCreated:
            break
        case .eventCorrected, .eventRetracted:
            guard let ref = facts.reference,
                  let target = try Row.fetchOne(try db.cachedStatement(sql: """
                      SELECT v.event_seq, v.from_seq, COALESCE(v.event, r.event), r.type FROM event_versions v JOIN records r ON r.seq = v.event_seq
                      WHERE r.id = ? AND v.to_seq IS NULL
                      """), arguments: [ref])
            else { throw fail("\(facts.type == .eventCorrected ? "corrects" : "retracts") names no current event; run `milestones verify`") }
            let targetSeq: Int = target[0]
            let targetType = EventType(rawValue: target[3] as String)!
            if SubjectSummary.covers(targetType), let s = facts.subject { touched.insert(s) }
            try db.cachedStatement(sql: "UPDATE event_versions SET to_seq = ? WHERE event_seq = ? AND to_seq IS NULL").execute(arguments: [seq, targetSeq])
            if facts.type == .eventCorrected {
                let before = try JSONReader.parse(target[2] as String).objectValue!
                let after = JSONWriter.bytes(.object(EventForm.apply(facts.changes!, to: before)))
                let corrected = JSONTape()
                do {
                    try corrected.parse(after)
                } catch {
                    throw fail("the corrected event is not JSON: \(error.message)")
                }
                try insertVersion(eventSeq: targetSeq, from: seq, type: targetType, corrected.root,
                                  stored: after)
                try db.cachedStatement(sql: "UPDATE records SET corrections = corrections + 1 WHERE seq = ?").execute(arguments: [targetSeq])
            } else {
                try db.cachedStatement(sql: "UPDATE records SET retracted_by = ? WHERE seq = ?").execute(arguments: [seq, targetSeq])
            }
        default:
            try insertVersion(eventSeq: seq, from: seq, type: facts.type, eventView, stored: nil)
            if SubjectSummary.covers(facts.type), let s = facts.subject { touched.insert(s) }
        }
        head = ReadModels.Head(seq: seq, sha256: hashes.claimed, recordedAt: tail.recordedAt, length: offset + line.count + 1)
    }

    /// Inserts one version of an event, its fields read straight from its
    /// parsed JSON in one walk and bound by position; `stored` is the version's
    /// JSON when a correction made it (the record holds the others).
    func insertVersion(eventSeq: Int, from: Int, type: EventType, _ e: JSONView, stored: [UInt8]?) throws {
        let insert = RawStatement(try db.cachedStatement(sql: """
            INSERT INTO event_versions (event_seq, from_seq, id, type, subject, date, precision, rank, name, kind, operator,
                program, sponsor, milestone, due_earliest, due_latest, amount_value, amount_currency, amount_qualifier,
                horizon, summary, event)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """))
        insert.bind(1, eventSeq)
        insert.bind(2, from)
        insert.bind(4, type.rawValue)
        insert.bind(7, DatePrecision.day.rawValue)  // unless the event says otherwise (below)
        insert.bind(8, FacilityPhase(reachedBy: type)?.rank ?? 0)
        var (sponsor, operatorName, partners): (String?, String?, [String]) = (nil, nil, [])
        e.forEachMember { key, value in
            if key.equals("id") { insert.bind(3, value) }
            else if key.equals("subject") { insert.bind(5, value) }
            else if key.equals("date") { insert.bind(6, value) }
            else if key.equals("precision") { insert.bind(7, value) }
            else if key.equals("name") { insert.bind(9, value) }
            else if key.equals("kind") { insert.bind(10, value) }
            else if key.equals("operator") {
                insert.bind(11, value)
                operatorName = value.string
            } else if key.equals("program") { insert.bind(12, value) }
            else if key.equals("sponsor") {
                insert.bind(13, value)
                sponsor = value.string
            } else if key.equals("milestone") { insert.bind(14, value) }
            else if key.equals("due") {
                insert.bind(15, value["earliest"])
                insert.bind(16, value["latest"])
            } else if key.equals("amount") {
                if let v = value["value"]?.int { insert.bind(17, Int(v)) }
                insert.bind(18, value["currency"])
                insert.bind(19, value["qualifier"])
            } else if key.equals("horizon") { insert.bind(20, value) }
            else if key.equals("summary") { insert.bind(21, value) }
            else if key.equals("partners") {
                value.forEachElement { _, p in if let s = p.string { partners.append(s) } }
            }
        }
        if let stored { stored.withUnsafeBufferPointer { insert.bind(22, bytes: $0) } }
        try insert.run(db)
        // Sponsor, operator, then partners: the first name seen for an organisation's slug is the one kept.
        let roles = [sponsor.map { ($0, "sponsor") }, operatorName.map { ($0, "operator") }].compactMap { $0 }
            + partners.map { ($0, "partner") }
        for (name, role) in roles {
            let slug = EventForm.slug(ofOrg: name)
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO organizations (slug, name) VALUES (?, ?)").execute(arguments: [slug, name])
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO version_roles (event_seq, from_seq, org, role) VALUES (?, ?, ?, ?)")
                .execute(arguments: [eventSeq, from, slug, role])
        }
    }

    func saveHead() throws {
        guard let head else { return }
        try db.cachedStatement(sql: """
            UPDATE meta SET head_seq = ?, head_sha256 = ?, head_length = ?, head_recorded_at = ? WHERE id = 1
            """).execute(arguments: [head.seq, head.sha256.hex, head.length, head.recordedAt.description])
    }
}

/// A cached statement bound and stepped through SQLite's C API. On a long
/// catch-up GRDB's argument arrays (an existential per value, an array per
/// row) cost more than SQLite's own work; this binds text straight from the
/// parsed line. Parameters not bound are NULL.
struct RawStatement {
    let statement: Statement
    var handle: SQLiteStatement { statement.sqliteStatement }

    init(_ statement: Statement) {
        self.statement = statement
        sqlite3_reset(statement.sqliteStatement)
        sqlite3_clear_bindings(statement.sqliteStatement)
    }

    /// SQLite copies the bytes before the call returns.
    static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
    static let empty: StaticString = ""

    func bind(_ i: Int32, _ v: Int) { sqlite3_bind_int64(handle, i, Int64(v)) }

    func bind(_ i: Int32, bytes: UnsafeBufferPointer<UInt8>) {
        // A nil pointer would bind NULL, not the empty string.
        let p = bytes.baseAddress.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(RawStatement.empty.utf8Start)
        sqlite3_bind_text(handle, i, p.assumingMemoryBound(to: CChar.self), Int32(bytes.count), RawStatement.transient)
    }

    func bind(_ i: Int32, _ s: String?) {
        guard var s else { return }
        s.withUTF8 { bind(i, bytes: $0) }
    }

    /// A string value's decoded text; anything else is left NULL.
    func bind(_ i: Int32, _ v: JSONView?) {
        _ = v?.withUTF8 { bind(i, bytes: $0) }
    }

    func run(_ db: Database) throws {
        let rc = sqlite3_step(handle)
        defer { sqlite3_reset(handle) }
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }
}
