import CanonicalJSON
import MilestoneCrypto
import Foundation
import GRDB
import CSQLiteTuning
import GRDBSQLite
import MilestoneLedger
import MilestoneModel
import MilestoneSupport

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

    /// Made once, before SQLite's first use in the process (see CSQLiteTuning).
    static let tuned: Void = { _ = milestones_sqlite_memstatus_off() }()

    static func open(_ path: String, readOnly: Bool) throws -> DatabaseQueue {
        ReadModels.tuned
        var config = Configuration()
        config.readonly = readOnly
        // Several processes share the file: wait for each other rather than fail.
        config.busyMode = .timeout(30)
        config.prepareDatabase { db in
            // A new file's page size (an existing file keeps its own): fewer, larger pages
            // make a large first projection faster, and no query slower
            // (bench/results/first-projection-2026-12-07.md).
            if !readOnly { try db.execute(sql: "PRAGMA page_size = \(ReadModels.pageSize)") }
            // A large page cache keeps index maintenance in memory during a
            // long catch-up (the default 2 MB makes it go to disk for every row).
            // (WAL mode is the file's own, set when it is made and after a bulk load:
            // an open that set it would switch a file in the middle of one back.)
            if !readOnly { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            try db.execute(sql: "PRAGMA cache_size = -\(ReadModels.cacheKiB); PRAGMA temp_store = MEMORY")
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
                try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
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
    package static let schemaVersion = 12

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
        // whose identity is not the one last checked is verified whole before
        // this returns (first, or alongside a first projection's bulk load).
        let identity = try ledger.identity()
        // Nothing to do, the usual case for a reader: no lock, so that readers never queue.
        if !rebuild, let h = try upToDate(identity: identity, size: size) {
            try check(h, against: ledger, size: size)
            try ensureSplit()
            return CatchUp(projected: 0, head: h, checkedIdentity: identity)
        }
        // Else one catch-up at a time, across processes: the others wait, then
        // find (most of) the work done.
        let lock = try CatchUpLock(path)
        defer { lock.release() }
        if try db.read({ db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }) != "wal" {
            // (A bulk load killed before it set WAL mode back.)
            try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
        }
        try forgetUnfinishedUnsyncedLoad()
        let recheck = try db.read { db in try String.fetchOne(db, sql: "SELECT checked_identity FROM meta WHERE id = 1") } != identity
        // A first projection of a large ledger verifies it alongside, not
        // before: on a thread of its own at idle priority, it takes the time
        // that the thread writing the rows leaves the other cores. It must pass
        // before the indexes are built; if it fails, nothing projected is kept.
        var verification: Verification?
        if recheck {
            if size > bulkLoadAbove, try rebuild || head() == nil {
                verification = Verification(ledger, upTo: size)
            } else {
                _ = try LedgerReader.verify(ledger, upTo: size)
            }
        }
        // Whatever ends the catch-up, the verification has ended before it returns.
        defer { _ = verification?.wait() }
        /// The verification's failure, if any, once the rows projected are gone.
        func verified() throws {
            guard let failure = verification?.wait() else { return }
            try? db.write { db in try ReadModels.clear(db) }
            throw failure
        }
        if rebuild { try db.write { db in try ReadModels.clear(db) } }
        try restoreIndexes()  // after a first projection that did not finish
        var head = try self.head()
        let startSeq = head?.seq ?? 0
        if let h = head { try check(h, against: ledger, size: size) }
        let start = head?.length ?? 0
        guard start < size else {
            try verified()
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
            // Into a new file, a rollback journal holds next to nothing (new
            // pages are not journalled), where the write-ahead log would hold
            // every page once more, to be copied into the file after. Each
            // batch is still one atomic transaction; a crash leaves a hot
            // journal that SQLite rolls back on the next open. If another
            // connection holds the file, the switch fails and WAL stays.
            try? db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            // Nor is the file synced at each batch (the syncs took a fifth of a first
            // projection's time): a mark, synced, says so first, and is cleared in the
            // last transaction, which syncs the whole file (``restoreIndexes()``). A
            // mark found by the next catch-up (which waits for this one's lock) means
            // the load never finished: its rows are not trusted
            // (``forgetUnfinishedUnsyncedLoad()``). Only in the rollback journal, whose
            // commits sync the file itself (no other process switches it back to WAL
            // meanwhile: opens leave the journal mode alone, and catch-ups wait for the lock).
            if try db.read({ db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }) == "delete" {
                try db.write { db in try db.execute(sql: "UPDATE meta SET unsynced_load = 1 WHERE id = 1") }
                try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = OFF") }
            }
        }
        defer {
            try? restoreIndexes()
            // Back to WAL (which every writing open also asks for), so that readers never wait for a writer.
            if bulk { try? db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = WAL") } }
        }
        // A batch's lines, one after another in one buffer (not an array each).
        var pending = PendingLines()
        var projected = 0
        var failure: Error?
        func flush() throws {
            guard !pending.isEmpty else { return }
            defer { pending.removeAll() }
            if let failure = verification?.failure { throw failure }
            try db.write { db in
                // Another process may have projected some of these lines since
                // we read the head: continue from the head as it is now.
                let current = try ReadModels.readHead(db)
                var projector = try Projector(db: db, head: current, tracksSubjects: !bulk)
                try pending.forEachInspected { line, offset, isFinal, inspected, tape in
                    guard offset >= (current?.length ?? 0) else { return }
                    guard offset == (projector.head?.length ?? 0) else {
                        throw LedgerError.stale(path: path, reason: "the read models' head moved under this catch-up; run the command again")
                    }
                    try projector.project(inspected, tape: tape, line: line, offset: offset, isFinal: isFinal, ledger: ledger.path)
                }
                // In bulk, the summaries are rebuilt at the end with the indexes.
                if !bulk { try SubjectSummary.refresh(db, subjects: projector.touched, groupSize: summaryGroup) }
                // Tests kill the process here: a bulk load's transaction in flight, its rollback journal hot.
                if bulk, let pause = ProcessInfo.processInfo.environment["MILESTONES_TEST_PAUSE_IN_BULK_LOAD"].flatMap(Double.init) {
                    Thread.sleep(forTimeInterval: pause)
                }
                head = projector.head
                try projector.saveHead()
            }
            projected += pending.count
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
                pending.append(UnsafeRawBufferPointer(rebasing: chunk[s.start..<(s.start + s.length)]), offset: s.offset, isFinal: s.isFinal)
                if pending.count >= batch {
                    do { try flush() } catch { failure = error; return }
                }
            }
        }, progress: progress.map { p in { p($0, size) } })
        if let failure {
            try verified()  // its failure first: the first record that fails
            try? flush()
            throw failure
        }
        try flush()
        try verified()
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
    /// indexes are built after the load rather than during it. (Tests of the
    /// command set fewer with `MILESTONES_TEST_BULK_LOAD_BYTES`.)
    package static let bulkLoadBytes = ProcessInfo.processInfo.environment["MILESTONES_TEST_BULK_LOAD_BYTES"].flatMap(Int.init) ?? 32 << 20

    /// Indexes kept during a bulk load: their entries come in key order (a
    /// ledger's times never go back) or seldom (corrections and retractions),
    /// so keeping them costs less than scanning the whole table again to build them.
    static let keptInBulk = ["records_recorded_at", "records_refers_to"]

    /// Drops the secondary indexes of `records` and `event_versions` (but
    /// ``keptInBulk``), keeping their definitions in `pending_indexes` (in the
    /// same transaction, so a crash loses none: the next catch-up rebuilds
    /// them first), and marks the subject summaries for a rebuild after them.
    func setIndexesAside() throws {
        try db.write { db in
            let kept = ReadModels.keptInBulk.map { "'\($0)'" }.joined(separator: ", ")
            let indexes = try Row.fetchAll(db, sql: """
                SELECT name, sql FROM sqlite_master
                WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('records', 'event_versions') AND name NOT IN (\(kept))
                """)
            for index in indexes {
                try db.execute(sql: "INSERT INTO pending_indexes (name, sql) VALUES (?, ?)", arguments: [index[0], index[1]])
                try db.execute(sql: "DROP INDEX \(index[0] as String)")
            }
            try db.execute(sql: "INSERT OR IGNORE INTO pending_indexes (name, sql) VALUES (?, '')", arguments: [SubjectSummary.marker])
        }
    }

    /// The page size of a new read-model file (bytes).
    static let pageSize = 8_192
    /// The page cache of a connection that writes (KiB).
    static let cacheKiB = 262_144
    /// The page cache while the indexes set aside are built (KiB): the size
    /// of each sorted run of their keys (see ``restoreIndexes()``).
    static let sortRunKiB = 8_192

    /// Builds every index set aside, if any, then the summaries if marked, and
    /// clears the mark of a load written without syncing: in one transaction,
    /// whose commit (in a rollback journal) syncs the whole file first.
    func restoreIndexes() throws {
        guard try db.read({ db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM pending_indexes") ?? 0 }) > 0 else { return }
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        // Each index's rows are sorted before it is built, on every core. SQLite's
        // sorter uses its worker threads only when its temporary files are files
        // (with temp_store = MEMORY it keeps to one thread), and hands a sorted
        // run to a worker each time its list in memory reaches the page cache's
        // size: with a small cache, many runs are sorted on the other cores while
        // this one reads the table, then merged. The runs go to temporary files
        // (SQLITE_TMPDIR, TMPDIR or /var/tmp), about the size of the index keys (docs/read-models.md).
        try db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA temp_store = FILE") }
        defer { try? db.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA temp_store = MEMORY") } }
        try db.write { db in
            try db.execute(sql: "PRAGMA threads = \(min(4, max(1, activeProcessorCount()))); PRAGMA cache_size = -\(ReadModels.sortRunKiB)")
            defer { try? db.execute(sql: "PRAGMA threads = 0; PRAGMA cache_size = -\(ReadModels.cacheKiB)") }
            for index in try Row.fetchAll(db, sql: "SELECT name, sql FROM pending_indexes WHERE name <> ?", arguments: [SubjectSummary.marker]) {
                try db.execute(sql: index[1] as String)
                try db.execute(sql: "DELETE FROM pending_indexes WHERE name = ?", arguments: [index[0]])
            }
            try db.execute(sql: "PRAGMA cache_size = -\(ReadModels.cacheKiB)")
            if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM pending_indexes WHERE name = ?)", arguments: [SubjectSummary.marker]) == true {
                try SubjectSummary.rebuildAll(db, groupSize: summaryGroup)
                try db.execute(sql: "DELETE FROM pending_indexes WHERE name = ?", arguments: [SubjectSummary.marker])
            }
            try db.execute(sql: "UPDATE meta SET unsynced_load = 0 WHERE id = 1")
        }
    }

    /// The head, if the read models hold the ledger's first `size` bytes as
    /// checked (`identity`), in WAL mode, with no load unfinished or running.
    func upToDate(identity: String, size: Int) throws -> Head? {
        try db.read { db in
            guard try String.fetchOne(db, sql: "PRAGMA journal_mode") == "wal",
                  let row = try Row.fetchOne(db, sql: "SELECT checked_identity, unsynced_load, (SELECT COUNT(*) FROM pending_indexes) FROM meta WHERE id = 1"),
                  row[0] as String? == identity, row[1] as Int == 0, row[2] as Int == 0,
                  let head = try ReadModels.readHead(db), head.length >= size
            else { return nil }
            return head
        }
    }

    /// Rows of a first projection written without syncing whose load never
    /// finished (the process was killed, or the machine went down) may be
    /// lost or torn on the disk: they are deleted (the indexes set aside stay
    /// pending, to be built again), and the projection starts again from the
    /// first record. Called under the catch-up lock: no load is running.
    func forgetUnfinishedUnsyncedLoad() throws {
        guard try db.read({ db in try Int.fetchOne(db, sql: "SELECT unsynced_load FROM meta WHERE id = 1") }) == 1 else { return }
        try db.write { db in
            try ReadModels.clear(db)
            try db.execute(sql: "UPDATE meta SET unsynced_load = 0, checked_identity = NULL, checked_length = 0 WHERE id = 1")
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

/// The lock that makes catch-ups (and writing opens) of one read-model file
/// take turns across processes: an exclusive `flock` on `X.sqlite-lock`
/// beside it, released when the process ends, however it ends. Not on the
/// file itself: closing any descriptor of a file drops every `fcntl` lock
/// the process holds on it, SQLite's included.
final class CatchUpLock {
    private let fd: Int32

    init(_ database: String) throws {
        let path = database + "-lock"
        fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LedgerError.io(path: path, operation: "open to lock", errno: errno) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let e = errno
                close(fd)
                throw LedgerError.io(path: path, operation: "flock", errno: e)
            }
        }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// A whole ledger verified on a thread of its own, at idle priority (it runs
/// only on a core nothing else wants), while the caller goes on.
final class Verification: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Protected<Error?>(nil)

    init(_ ledger: LedgerFile, upTo size: Int) {
        let file = UncheckedSendable(ledger)
        Thread.detachNewThread { [self] in
            runAtIdlePriority()
            do {
                _ = try LedgerReader.verify(file.value, upTo: size, onThisThread: true)
            } catch {
                outcome.withLock { $0 = error }
            }
            done.signal()
        }
    }

    /// Its failure so far, without waiting.
    var failure: Error? { outcome.withLock { $0 } }

    /// Waits for the end; its failure, if any.
    func wait() -> Error? {
        done.wait()
        done.signal()  // for any later wait
        return failure
    }
}

/// A batch of ledger lines waiting for their transaction: their bytes one
/// after another in one buffer, and where each starts.
struct PendingLines {
    private var bytes: [UInt8] = []
    private var lines: [(start: Int, count: Int, offset: Int, isFinal: Bool)] = []

    var isEmpty: Bool { lines.isEmpty }
    var count: Int { lines.count }

    mutating func append(_ line: UnsafeRawBufferPointer, offset: Int, isFinal: Bool) {
        lines.append((bytes.count, line.count, offset, isFinal))
        bytes.append(contentsOf: line)
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        lines.removeAll(keepingCapacity: true)
    }

    /// Lines inspected a window ahead of the one being written.
    static let window = 256

    /// Each line in order (valid during the call), its offset in the ledger,
    /// whether it is the ledger's last, and what it says on its own
    /// (``Projector/Inspected``, parsed into the tape passed with it). With
    /// more than one core and enough lines, the lines are inspected on another
    /// thread, a window ahead: while `body` writes one window's lines, the
    /// next window's are hashed, parsed and validated. Each window has its
    /// own tapes, handed back when `body` is done with them.
    func forEachInspected(_ body: (UnsafeBufferPointer<UInt8>, Int, Bool, Projector.Inspected, JSONTape) throws -> Void) throws {
        let n = lines.count, window = PendingLines.window
        try bytes.withUnsafeBufferPointer { all in
            let spans = UncheckedSendable((all, lines))
            @Sendable func line(_ k: Int) -> UnsafeBufferPointer<UInt8> {
                let l = spans.value.1[k]
                return UnsafeBufferPointer(rebasing: spans.value.0[l.start..<(l.start + l.count)])
            }
            guard n >= 2 * window, activeProcessorCount() > 1 else {
                let tape = JSONTape()
                var hasher = SHA256()
                for k in 0..<n {
                    try body(line(k), lines[k].offset, lines[k].isFinal, Projector.Inspected(line(k), into: tape, hasher: &hasher), tape)
                }
                return
            }
            // Two windows of slots: the producer fills one while `body` reads the other.
            let slots = 2 * window
            let tapes = UncheckedSendable((0..<slots).map { _ in JSONTape() })
            let results = UncheckedSendable(UnsafeMutablePointer<Projector.Inspected?>.allocate(capacity: slots))
            results.value.initialize(repeating: nil, count: slots)
            defer {
                results.value.deinitialize(count: slots)
                results.value.deallocate()
            }
            let ready = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
            // Made at 0 and signalled, not made at 1: libdispatch traps when a
            // semaphore is freed below its initial value, as one may be after a failure.
            let free = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
            free.0.signal()
            free.1.signal()
            let finished = DispatchSemaphore(value: 0)
            let stop = UncheckedSendable(StopFlag())
            let windows = (n + window - 1) / window
            Thread.detachNewThread {
                var hasher = SHA256()
                for w in 0..<windows {
                    (w % 2 == 0 ? free.0 : free.1).wait()
                    // Set before the semaphore was signalled, so seen after it.
                    if stop.value.stopped { break }
                    for k in (w * window)..<min(n, (w + 1) * window) {
                        let slot = k % slots
                        results.value[slot] = Projector.Inspected(line(k), into: tapes.value[slot], hasher: &hasher)
                    }
                    (w % 2 == 0 ? ready.0 : ready.1).signal()
                }
                finished.signal()
            }
            defer {
                // Normally the producer is done; after a failure it is told to stop, and waited for.
                stop.value.stopped = true
                free.0.signal()
                free.1.signal()
                finished.wait()
            }
            for w in 0..<windows {
                (w % 2 == 0 ? ready.0 : ready.1).wait()
                for k in (w * window)..<min(n, (w + 1) * window) {
                    let slot = k % slots
                    try body(line(k), lines[k].offset, lines[k].isFinal, results.value[slot]!, tapes.value[slot])
                }
                (w % 2 == 0 ? free.0 : free.1).signal()
            }
        }
    }
}

/// Tells a producer thread to stop (read after a semaphore the writer signalled).
final class StopFlag: @unchecked Sendable {
    var stopped = false
}

/// Projects record lines into the tables, within one transaction.
struct Projector: ~Copyable {
    let db: Database
    var head: ReadModels.Head?
    /// The subjects whose summaries this transaction changed (kept only
    /// when `tracksSubjects`: a bulk load rebuilds every summary at its end).
    var touched: Set<String> = []
    let tracksSubjects: Bool
    /// The slug of each organisation name seen in this transaction (whose
    /// row is then in `organizations`): a slug takes thousands of
    /// instructions, and a ledger names few organisations many times.
    var slugs: [String: String] = [:]
    /// Prepared once per transaction (a statement cache's lookup hashes the whole SQL text).
    let recordRow: RawStatement, versionRow: RawStatement, organizationRow: RawStatement, roleRow: RawStatement
    /// A correction's or retraction's: its target's current version, then what changes.
    let currentVersion: RawStatement, closeVersion: RawStatement, countCorrection: RawStatement, markRetracted: RawStatement
    /// A correction's target event, and the corrected event, parsed (tapes reused).
    let before = JSONTape(), corrected = JSONTape()

    init(db: Database, head: ReadModels.Head?, tracksSubjects: Bool = true) throws {
        self.tracksSubjects = tracksSubjects
        let recordRow = RawStatement(try db.cachedStatement(sql: """
            INSERT INTO records (seq, id, type, subject, date, precision, recorded_at, sha256, offset, length, content,
                                 milestone, refers_to, event)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """))
        let versionRow = RawStatement(try db.cachedStatement(sql: """
            INSERT INTO event_versions (event_seq, from_seq, id, type, subject, date, precision, rank, name, kind, operator,
                program, sponsor, milestone, due_earliest, due_latest, amount_value, amount_currency, amount_qualifier,
                horizon, summary, event)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """))
        let organizationRow = RawStatement(try db.cachedStatement(sql: "INSERT OR IGNORE INTO organizations (slug, name) VALUES (?, ?)"))
        let roleRow = RawStatement(try db.cachedStatement(sql: "INSERT OR IGNORE INTO version_roles (event_seq, from_seq, org, role) VALUES (?, ?, ?, ?)"))
        let currentVersion = RawStatement(try db.cachedStatement(sql: """
            SELECT v.event_seq, r.type, COALESCE(v.event, r.event) FROM event_versions v JOIN records r ON r.seq = v.event_seq
            WHERE r.id = ? AND v.to_seq IS NULL
            """))
        let closeVersion = RawStatement(try db.cachedStatement(sql: "UPDATE event_versions SET to_seq = ? WHERE event_seq = ? AND to_seq IS NULL"))
        let countCorrection = RawStatement(try db.cachedStatement(sql: "UPDATE records SET corrections = corrections + 1 WHERE seq = ?"))
        let markRetracted = RawStatement(try db.cachedStatement(sql: "UPDATE records SET retracted_by = ? WHERE seq = ?"))
        (self.currentVersion, self.closeVersion, self.countCorrection, self.markRetracted) = (currentVersion, closeVersion, countCorrection, markRetracted)
        self.db = db
        self.head = head
        (self.recordRow, self.versionRow, self.organizationRow, self.roleRow) = (recordRow, versionRow, organizationRow, roleRow)
    }

    /// What a line says on its own, found without the database (so on
    /// another core while the lines before it are written): its hashes and
    /// tail, and its event parsed into `tape` and validated, or why not.
    struct Inspected {
        enum Problem { case hash, notCanonical(String), noEvent, invalid(String) }
        var hashes: (claimed: Digest, computed: Digest)?
        var tail: RecordLine.Tail?
        var problem: Problem?
        var facts: Event?
        var event: JSONView?
        var content: UInt64 = 0
        /// Where the rows' values are in the parsed line, found here so
        /// that the thread writing the rows only binds them.
        var values = ColumnValues()
        var recordedAt: JSONView?, sha256: JSONView?

        init(_ line: UnsafeBufferPointer<UInt8>, into tape: JSONTape, hasher: inout SHA256) {
            let bytes = UnsafeRawBufferPointer(line)
            (hashes, tail) = (RecordLine.hashes(of: bytes, hasher: &hasher), RecordLine.tail(of: bytes))
            guard let hashes, hashes.claimed == hashes.computed, tail != nil else {
                problem = .hash
                return
            }
            do {
                // The views read the line in place: it outlives every statement stepped with them.
                try tape.parse(bytes, mode: .canonical, copy: false)
            } catch {
                problem = .notCanonical(error.message)
                return
            }
            guard let event = tape.root["event"], event.kind == .object else {
                problem = .noEvent
                return
            }
            do {
                facts = try EventForm.validate(event)
            } catch {
                problem = .invalid("\(error)")
                return
            }
            self.event = event
            values = ColumnValues(event)
            (recordedAt, sha256) = (tape.root["recorded_at"], tape.root.lastMember(named: "sha256"))
            content = RecordLine.contentDigest(UnsafeRawBufferPointer(rebasing: bytes[event.byteRange!]), hasher: &hasher)
        }
    }

    /// Writes an inspected line (`tape` holds its parse), after checking
    /// what needs the record before: its seq, its link and its time.
    mutating func project(_ inspected: Inspected, tape: JSONTape, line: UnsafeBufferPointer<UInt8>, offset: Int, isFinal: Bool,
                          ledger: String) throws {
        let seq = (head?.seq ?? 0) + 1
        func fail(_ reason: String) -> LedgerError {
            .notIntact(VerifyFailure(seq: seq, line: seq, offset: offset, reason: reason, isTornTail: false), path: ledger)
        }
        // The line's own hash, its link to the record before, its seq and time.
        guard let hashes = inspected.hashes, let tail = inspected.tail, hashes.claimed == hashes.computed else {
            if isFinal {
                throw LedgerError.notIntact(.lastLineFailsHash(line: seq, offset: offset, length: line.count), path: ledger)
            }
            throw fail("the record fails its hash; run `milestones verify`")
        }
        guard tail.seq == seq, tail.prev == (head?.sha256 ?? .zero), tail.recordedAt >= (head?.recordedAt ?? Timestamp(seconds: .min)) else {
            throw fail("the record does not follow the one before (seq, prev or recorded_at); run `milestones verify`")
        }
        switch inspected.problem {
        case .hash: throw fail("the record fails its hash; run `milestones verify`")
        case .notCanonical(let message): throw fail("not canonical JSON: \(message)")
        case .noEvent: throw fail("no event")
        case .invalid(let message): throw fail("event: \(message)")
        case nil: break
        }
        // The event's facts, not the event (whose names a copy would count references to).
        let (facts, eventView, content) = (inspected.facts!.facts, inspected.event!, inspected.content)
        let eventBytes = UnsafeBufferPointer(rebasing: line[eventView.byteRange!])
        let insert = recordRow
        insert.clear()
        insert.bind(1, seq)
        let values = inspected.values
        insert.bind(2, values.version[ColumnValues.id])
        insert.bind(3, facts.type.name)
        insert.bind(4, values.version[ColumnValues.subject])
        insert.bind(5, values.version[ColumnValues.date])
        insert.bind(6, facts.precision.name)
        insert.bind(7, inspected.recordedAt)
        insert.bind(8, inspected.sha256)
        insert.bind(9, offset)
        insert.bind(10, line.count)
        insert.bind(11, Int(Int64(bitPattern: content)))
        // A target's milestone (validated: one of the names).
        insert.bind(12, facts.type.isTarget ? values.version[ColumnValues.milestone] : nil)
        insert.bind(13, values.reference)
        // The line is canonical: the event's own bytes are its canonical JSON.
        insert.bind(14, bytes: eventBytes, inPlace: true)
        try insert.run(db)
        switch facts.type {
        case .ledgerCreated:
            break
        case .eventCorrected, .eventRetracted:
            // The target's current version: its seq, type and event (read only for a correction).
            currentVersion.clear()
            currentVersion.bind(1, values.reference)
            let found = try currentVersion.first(db) { row -> (seq: Int, type: EventType?, event: [UInt8])? in
                (row.int(0), EventType(rawValue: row.text(1)), facts.type == .eventCorrected ? Array(row.bytes(2)) : [])
            }
            guard let target = found ?? nil, let targetType = target.type
            else { throw fail("\(facts.type == .eventCorrected ? "corrects" : "retracts") names no current event; run `milestones verify`") }
            let targetSeq = target.seq
            if tracksSubjects, SubjectSummary.covers(targetType), let s = inspected.facts!.subject { touched.insert(s) }
            closeVersion.clear()
            closeVersion.bind(1, seq)
            closeVersion.bind(2, targetSeq)
            try closeVersion.run(db)
            if facts.type == .eventCorrected {
                // The target's canonical JSON, corrected without a tree of values.
                var merged = ByteBuffer(capacity: target.event.count + eventBytes.count)
                let unread = target.event.withUnsafeBytes { text -> JSONError? in
                    do throws(JSONError) { try before.parse(text, mode: .canonical) } catch { return error }
                    return nil
                }
                if let unread { throw fail("the corrected event is not canonical JSON: \(unread.message)") }
                guard let changes = eventView["changes"], EventForm.apply(changes, to: before.root, into: &merged) else {
                    throw fail("the corrected event or the changes are not objects")
                }
                let after = Array(merged.bytes(from: 0).assumingMemoryBound(to: UInt8.self))
                do {
                    try corrected.parse(after, mode: .canonical)  // (merged from canonical texts: no sort)
                } catch {
                    throw fail("the corrected event is not JSON: \(error.message)")
                }
                try insertVersion(eventSeq: targetSeq, from: seq, type: targetType, ColumnValues(corrected.root), stored: after)
                countCorrection.clear()
                countCorrection.bind(1, targetSeq)
                try countCorrection.run(db)
            } else {
                markRetracted.clear()
                markRetracted.bind(1, seq)
                markRetracted.bind(2, targetSeq)
                try markRetracted.run(db)
            }
        default:
            try insertVersion(eventSeq: seq, from: seq, type: facts.type, values, stored: nil)
            if tracksSubjects, SubjectSummary.covers(facts.type), let s = inspected.facts!.subject { touched.insert(s) }
        }
        head = ReadModels.Head(seq: seq, sha256: hashes.claimed, recordedAt: tail.recordedAt, length: offset + line.count + 1)
    }

    /// The event members that a row has a column for, in byte order (the
    /// order of a canonical object's members), and where each goes.
    static let eventColumns: StaticTable<(key: StaticString, column: EventColumn)> = [
        ("amount", .amount), ("corrects", .reference), ("date", .at(6)), ("due", .due), ("horizon", .at(20)), ("id", .at(3)),
        ("kind", .at(10)), ("milestone", .at(14)), ("name", .at(9)), ("operator", .operator), ("partners", .partners),
        ("precision", .at(7)), ("program", .at(12)), ("retracts", .reference), ("sponsor", .sponsor), ("subject", .at(5)),
        ("summary", .at(21)),
    ]

    enum EventColumn {
        /// A string member bound as it is to this parameter of ``versionRow``.
        case at(Int)
        case amount, due, `operator`, partners, sponsor, reference
    }

    /// An event's values where its parsed line holds them: by the parameter
    /// of ``versionRow`` that takes each, and the few others a row needs.
    /// Found in one walk of the event's members, on the thread that parses
    /// the line; views are plain values (no references to count).
    struct ColumnValues {
        /// Index: the parameter − 1. The amount's `value` (an integer) is at
        /// ``amountValue``. Nil: the event has no such member (NULL).
        var version = InlineArray<22, JSONView?>(repeating: nil)
        var sponsor: JSONView?, operatorName: JSONView?, partners: JSONView?
        /// What `corrects` or `retracts` names.
        var reference: JSONView?

        static let id = 2, subject = 4, date = 5, precision = 6, milestone = 13, amountValue = 16

        init() {}

        /// The members and the columns, both in byte order, walked together
        /// (every event the projector reads is canonical: its keys are sorted).
        init(_ e: JSONView) {
            var version = InlineArray<22, JSONView?>(repeating: nil)
            var (sponsor, operatorName, partners, reference): (JSONView?, JSONView?, JSONView?, JSONView?) = (nil, nil, nil, nil)
            let columns = Projector.eventColumns
            var c = 0
            e.forEachMember { key, value in
                while c < columns.count, key.sortsAfter(columns[c].key) { c += 1 }
                guard c < columns.count, key.equals(columns[c].key) else { return }
                switch columns[c].column {
                case .at(let i): version[i - 1] = value
                case .sponsor:
                    version[12] = value
                    sponsor = value
                case .operator:
                    version[10] = value
                    operatorName = value
                case .due:
                    version[14] = value["earliest"]
                    version[15] = value["latest"]
                case .amount:
                    version[ColumnValues.amountValue] = value["value"]
                    version[17] = value["currency"]
                    version[18] = value["qualifier"]
                case .partners: partners = value
                case .reference: reference = value
                }
            }
            self.version = version
            (self.sponsor, self.operatorName, self.partners, self.reference) = (sponsor, operatorName, partners, reference)
        }
    }

    /// Inserts one version of an event, its values found before (``ColumnValues``)
    /// and bound by position; `stored` is the version's JSON when a correction
    /// made it (the record holds the others).
    mutating func insertVersion(eventSeq: Int, from: Int, type: EventType, _ values: ColumnValues, stored: [UInt8]?) throws {
        let insert = versionRow
        insert.clear()
        insert.bind(1, eventSeq)
        insert.bind(2, from)
        insert.bind(4, type.name)
        insert.bind(7, DatePrecision.day.name)  // unless the event says otherwise (below)
        insert.bind(8, FacilityPhase(reachedBy: type)?.rank ?? 0)
        // Read in place: indexing the inline array one by one copied it whole each time.
        let version = values.version.span
        for p in 0..<version.count {
            guard let v = version[p] else { continue }
            if p == ColumnValues.amountValue {
                if let n = v.int { insert.bind(Int32(p + 1), Int(n)) }
            } else {
                insert.bind(Int32(p + 1), v)
            }
        }
        if let stored { stored.withUnsafeBufferPointer { insert.bind(22, bytes: $0) } }
        try insert.run(db)
        // Sponsor, operator, then partners: the first name seen for an organisation's slug is the one kept.
        if let sponsor = values.sponsor { try role(sponsor, "sponsor", eventSeq: eventSeq, from: from) }
        if let operatorName = values.operatorName { try role(operatorName, "operator", eventSeq: eventSeq, from: from) }
        try values.partners?.forEachElement { _, p in try role(p, "partner", eventSeq: eventSeq, from: from) }
    }

    /// An organisation's role in a version (and its row in `organizations`, unless this transaction made it).
    private mutating func role(_ name: JSONView, _ role: StaticString, eventSeq: Int, from: Int) throws {
        guard let name = name.string else { return }
        let slug: String
        if let known = slugs[name] {
            slug = known
        } else {
            slug = EventForm.slug(ofOrg: name)
            slugs[name] = slug
            organizationRow.clear()
            organizationRow.bind(1, slug)
            organizationRow.bind(2, name)
            try organizationRow.run(db)
        }
        roleRow.clear()
        roleRow.bind(1, eventSeq)
        roleRow.bind(2, from)
        roleRow.bind(3, slug)
        roleRow.bind(4, role)
        try roleRow.run(db)
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

    /// SQLite reads the bytes when the statement is stepped: they must outlive that.
    static let inPlace: sqlite3_destructor_type? = nil

    func bind(_ i: Int32, _ v: Int) { sqlite3_bind_int64(handle, i, Int64(v)) }

    /// Unbinds every parameter (NULL), for a statement kept and used again.
    func clear() { sqlite3_clear_bindings(handle) }


    /// Text, copied by SQLite; or, `inPlace`, not copied: then `bytes` must
    /// stay valid until the statement is stepped and reset.
    func bind(_ i: Int32, bytes: UnsafeBufferPointer<UInt8>, inPlace: Bool = false) {
        // A nil pointer would bind NULL, not the empty string.
        let p = bytes.baseAddress.map(UnsafeRawPointer.init) ?? UnsafeRawPointer(RawStatement.empty.utf8Start)
        sqlite3_bind_text(handle, i, p.assumingMemoryBound(to: CChar.self), Int32(bytes.count),
                          inPlace ? RawStatement.inPlace : RawStatement.transient)
    }

    /// Static text, bound in place (it lives as long as the program).
    func bind(_ i: Int32, _ s: StaticString) {
        bind(i, bytes: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount), inPlace: true)
    }

    func bind(_ i: Int32, _ s: String?) {
        guard var s else { return }
        s.withUTF8 { bind(i, bytes: $0) }
    }

    /// A string value's decoded text; anything else is left NULL. Text
    /// without escapes is bound in place, from the parsed line: the tape and
    /// its text must outlive the step (each statement here is stepped before
    /// the next line is parsed).
    func bind(_ i: Int32, _ v: JSONView?) {
        guard let v else { return }
        if let raw = v.unescapedUTF8 { return bind(i, bytes: raw, inPlace: true) }
        _ = v.withUTF8 { bind(i, bytes: $0) }
    }

    func run(_ db: Database) throws {
        let rc = sqlite3_step(handle)
        defer { sqlite3_reset(handle) }
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }

    /// Steps a query to its first row and reads it with `body` (whose
    /// views of the row are valid only during the call); nil without a row.
    func first<T>(_ db: Database, _ body: (Columns) throws -> T) throws -> T? {
        let rc = sqlite3_step(handle)
        defer { sqlite3_reset(handle) }
        switch rc {
        case SQLITE_ROW: return try body(Columns(handle: handle))
        case SQLITE_DONE: return nil
        default: throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }

    /// The current row's columns, by index from 0.
    struct Columns {
        let handle: SQLiteStatement
        func int(_ i: Int32) -> Int { Int(sqlite3_column_int64(handle, i)) }
        /// The text's bytes (empty for NULL), valid until the statement moves on.
        func bytes(_ i: Int32) -> UnsafeBufferPointer<UInt8> {
            guard let p = sqlite3_column_text(handle, i) else { return UnsafeBufferPointer(start: nil, count: 0) }
            return UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i)))
        }
        func text(_ i: Int32) -> String { String(decoding: bytes(i), as: UTF8.self) }
    }
}
