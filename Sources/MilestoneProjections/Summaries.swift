import Foundation
import GRDB
import GRDBSQLite
import MilestoneModel

/// Per-subject summaries (the tables `subject_status` and `subject_targets`):
/// for each subject, every version of its lifecycle and control events, of
/// its announcement (the names `status` shows) and of its targets, packed
/// into blobs: `status` reads the first table, `targets` the second.
///
/// `status` and `targets` read a few rows of summaries instead of several
/// index entries per event, and apply the rules of docs/events.md (``Rules``) in
/// Swift for any point of view: a version counts when it is known at the
/// chosen seq (`from ≤ s < to`) and dated on or before the chosen date.
///
/// A summary is derived wholly from `event_versions`, through the three
/// covering indexes `event_versions_lifecycle`, `_announced` and `_targets`:
/// a catch-up rewrites the summaries of the subjects its batch touched, in
/// the same transaction; a first projection in bulk rebuilds them all at the
/// end, with the indexes it set aside.
///
/// A scan is bound by what SQLite does per row (it steps, and copies each
/// value it returns): so a row holds the summaries of a group of about
/// ``groupSize`` consecutive subjects, keyed by the first, and each table
/// holds what one query reads, the lifecycle in both. Both tables are cut
/// into the same groups. Layout (little-endian; every length and count a
/// UInt32):
/// - a row: `first` (its first subject), `subjects` (how many), `summaries`:
///   for each subject in byte order, its name (length, UTF-8), its
///   `lifecycle` (length, bytes), and the table's other part (length, bytes);
/// - each part led by its count of versions. Seqs are UInt32 (UInt32.max: `to`
///   while the version is current);
/// - `lifecycle` versions: type ordinal (UInt8), date (Int32 days), event seq,
///   from seq, to seq, precision ordinal (UInt8);
/// - `announced` versions: from, to; name, kind, operator, program (each a
///   UInt32 length, UInt32.max for NULL, then UTF-8);
/// - `targets` by milestone, in byte order: the milestone (UInt32 length,
///   UTF-8), its version count (UInt32), then each version in (date, event
///   seq) order: date, due earliest, due latest (Int32 days), from, to.
package enum SubjectSummary {
    /// The name that marks the summaries for a rebuild in `pending_indexes`.
    static let marker = "subject_summaries"
    static let tables = Part.all.map(\.table)
    static let createSQL = """
        CREATE TABLE subject_status (first TEXT PRIMARY KEY, subjects INTEGER NOT NULL, summaries BLOB NOT NULL) WITHOUT ROWID;
        CREATE TABLE subject_targets (first TEXT PRIMARY KEY, subjects INTEGER NOT NULL, summaries BLOB NOT NULL) WITHOUT ROWID;
        """

    /// Subjects per row as a rebuild cuts them; a catch-up lets a row grow to
    /// twice as many before it cuts it again. At 64, a scan of 80,000
    /// subjects steps SQLite 1,250 times, and a catch-up that touches one
    /// subject rewrites about 25 KB.
    package static let groupSize = 64

    /// Whether versions of events of this type go into summaries.
    static func covers(_ type: EventType) -> Bool {
        FacilityPhase(reachedBy: type) != nil || type.isControl || type.isTarget
    }

    /// The largest seq a summary holds (UInt32.max stands for a version still current).
    static let maxSeq = Int64(UInt32.max) - 1

    // MARK: - Writing

    /// Rewrites the summaries of `subjects` from `event_versions`: each is
    /// rebuilt, then put in the row whose group it falls in (the last row
    /// whose first subject is not after it; the first row for a subject before
    /// them all). A row grown past twice ``groupSize`` subjects is cut again.
    static func refresh(_ db: Database, subjects: some Sequence<String>, groupSize: Int = groupSize) throws {
        let sources = try Sources(db, oneSubject: true)
        var fresh: [Entry] = []
        for subject in subjects {
            for s in sources.all {
                sqlite3_reset(s.handle)
                s.bind(1, subject)
            }
            try build(sources, db: db) { fresh.append($0) }
        }
        fresh.sort { $0.subject.lexicographicallyPrecedes($1.subject) }
        let rows = Rows(db)
        var i = 0
        while i < fresh.count {
            let key = try rows.first(atOrBefore: fresh[i].subject) ?? rows.first()
            let next = try key.flatMap { try rows.first(after: $0) }
            var j = i + 1
            while j < fresh.count, next.map({ fresh[j].subject.lexicographicallyPrecedes($0) }) ?? true { j += 1 }
            let old = try key.map { try rows.entries(first: $0) } ?? []
            if let key { try rows.delete(first: key) }
            // Both lists in subject order: a fresh entry replaces an old one of the same subject.
            var entries: [Entry] = []
            entries.reserveCapacity(old.count + j - i)
            var k = 0
            for f in fresh[i..<j] {
                while k < old.count, old[k].subject.lexicographicallyPrecedes(f.subject) {
                    entries.append(old[k])
                    k += 1
                }
                if k < old.count, old[k].subject == f.subject { k += 1 }
                entries.append(f)
            }
            entries += old[k...]
            for r in cut(entries.count, groupSize: groupSize) { try rows.insert(entries[r]) }
            i = j
        }
    }

    /// How a run of `count` consecutive entries is cut into rows: one row
    /// while it holds at most twice `groupSize`, else rows of `groupSize`
    /// (the last one the rest).
    static func cut(_ count: Int, groupSize: Int) -> [Range<Int>] {
        let size = count > 2 * groupSize ? groupSize : max(count, 1)
        return stride(from: 0, to: count, by: size).map { $0..<min(count, $0 + size) }
    }

    /// Rebuilds every summary from `event_versions`, in rows of ``groupSize`` subjects.
    static func rebuildAll(_ db: Database, groupSize: Int = groupSize) throws {
        for t in tables { try db.execute(sql: "DELETE FROM \(t)") }
        let rows = Rows(db)
        var group: [Entry] = []
        try build(try Sources(db, oneSubject: false), db: db) { entry in
            group.append(entry)
            if group.count == groupSize {
                try rows.insert(group[...])
                group.removeAll(keepingCapacity: true)
            }
        }
        if !group.isEmpty { try rows.insert(group[...]) }
        try storeSplit(db)
    }

    /// One subject's summary: its name, lifecycle, announcement and targets.
    struct Entry {
        var subject: [UInt8]
        var lifecycle: [UInt8]
        var announced: [UInt8]
        var targets: [UInt8]
    }

    /// A row's `summaries` in `part`'s table for `entries` (in subject
    /// order, at least one): its `first` is the first entry's subject, its
    /// `subjects` their count. Both stores write their rows with it.
    static func row(_ entries: ArraySlice<Entry>, _ part: Part) -> [UInt8] {
        var blob: [UInt8] = []
        blob.reserveCapacity(entries.reduce(0) { $0 + 12 + $1.subject.count + $1.lifecycle.count
                                                    + (part == .announced ? $1.announced.count : $1.targets.count) })
        for e in entries {
            for bytes in [e.subject, e.lifecycle, part == .announced ? e.announced : e.targets] {
                Builder.put(UInt32(bytes.count), &blob)
                blob += bytes
            }
        }
        return blob
    }

    /// The entries of the rows that `select` steps through in each table
    /// (columns `first`, `subjects`, `summaries`, in order of `first`; the
    /// same rows in both, as both are cut into the same groups), with their
    /// parts of both tables put together by subject. The statements are reset after.
    static func entries(_ db: Database, _ select: (Part) throws -> RawStatement) throws -> [Entry] {
        var out: [Entry] = []
        for part in Part.all {
            let s = try select(part)
            defer { sqlite3_reset(s.handle) }
            var k = 0
            var last: [UInt8]?
            while try s.step(db) {
                try forEachEntry(s, table: part.table, after: &last) { subject, lifecycle, other in
                    let (l, o) = (Array(UnsafeRawBufferPointer(start: lifecycle.base, count: lifecycle.count)),
                                  Array(UnsafeRawBufferPointer(start: other.base, count: other.count)))
                    if part == .announced {
                        out.append(Entry(subject: Array(subject), lifecycle: l, announced: o, targets: []))
                    } else {
                        guard k < out.count, out[k].subject.elementsEqual(subject), out[k].lifecycle == l else {
                            throw damaged(part.table, subject, row: s)
                        }
                        out[k].targets = o
                    }
                    k += 1
                }
            }
            guard k == out.count else { throw damaged(part.table, out.count > k ? out[k].subject : nil, first: nil) }
        }
        return out
    }

    /// The entries of the subjects from `from` (nil: the first) to `before`
    /// (exclusive; nil: to the last), from both tables, however their rows are cut.
    static func entries(_ db: Database, from: [UInt8]?, before: [UInt8]?) throws -> [Entry] {
        // The rows from the one `from` falls in (the first, if it is before them all).
        let start = try from.flatMap { try Rows(db).first(atOrBefore: $0) } ?? []
        let all = try entries(db) { part in
            let s = try rowsStatement(db, part, bounded: before != nil)
            start.withUnsafeBufferPointer { s.bind(1, bytes: $0) }
            before?.withUnsafeBufferPointer { s.bind(2, bytes: $0) }
            return s
        }
        // Bounds as a row's first subject: the first row may begin before `from`, the last end after `before`.
        let lower = from.map { f in all.firstIndex { !$0.subject.lexicographicallyPrecedes(f) } ?? all.count } ?? 0
        let upper = before.map { b in all.firstIndex { !$0.subject.lexicographicallyPrecedes(b) } ?? all.count } ?? all.count
        return Array(all[lower..<max(lower, upper)])
    }

    /// The statement that steps through a table's rows whose first subject is
    /// from parameter 1 (inclusive) to parameter 2 (exclusive, when `bounded`), in order.
    static func rowsStatement(_ db: Database, _ part: Part, bounded: Bool) throws -> RawStatement {
        // Both bounds as range constraints of the primary key (an `OR` would be tested row by row).
        let columns = "first, subjects, summaries FROM \(part.table)"
        return RawStatement(try db.cachedStatement(sql: bounded
            ? "SELECT \(columns) WHERE first >= ? AND first < ? ORDER BY first"
            : "SELECT \(columns) WHERE first >= ? ORDER BY first"))
    }

    /// The rows of both tables, cut into the same groups.
    struct Rows {
        let db: Database

        init(_ db: Database) {
            self.db = db
        }

        func first(atOrBefore subject: [UInt8]) throws -> [UInt8]? {
            try key("SELECT first FROM subject_status WHERE first <= ? ORDER BY first DESC LIMIT 1", subject)
        }

        func first(after subject: [UInt8]) throws -> [UInt8]? {
            try key("SELECT first FROM subject_status WHERE first > ? ORDER BY first LIMIT 1", subject)
        }

        func first() throws -> [UInt8]? {
            try key("SELECT first FROM subject_status ORDER BY first LIMIT 1", nil)
        }

        private func key(_ sql: String, _ subject: [UInt8]?) throws -> [UInt8]? {
            let s = RawStatement(try db.cachedStatement(sql: sql))
            defer { sqlite3_reset(s.handle) }
            if let subject { subject.withUnsafeBufferPointer { s.bind(1, bytes: $0) } }
            return try s.step(db) ? s.bytes(0).map(Array.init) : nil
        }

        /// The entries of the row that starts at `first`, from both tables.
        func entries(first: [UInt8]) throws -> [Entry] {
            let out = try SubjectSummary.entries(db) { part in
                let s = RawStatement(try db.cachedStatement(sql: "SELECT first, subjects, summaries FROM \(part.table) WHERE first = ?"))
                first.withUnsafeBufferPointer { s.bind(1, bytes: $0) }
                return s
            }
            guard !out.isEmpty else { throw SubjectSummary.damaged(SubjectSummary.Part.announced.table, nil, first: first) }
            return out
        }

        func delete(first: [UInt8]) throws {
            for t in SubjectSummary.tables {
                let s = RawStatement(try db.cachedStatement(sql: "DELETE FROM \(t) WHERE first = ?"))
                first.withUnsafeBufferPointer { s.bind(1, bytes: $0) }
                try s.run(db)
            }
        }

        /// One row in each table for `entries` (in subject order, at least one).
        func insert(_ entries: ArraySlice<Entry>) throws {
            for part in Part.all {
                let blob = SubjectSummary.row(entries, part)
                let insert = RawStatement(try db.cachedStatement(sql: "INSERT INTO \(part.table) (first, subjects, summaries) VALUES (?, ?, ?)"))
                sqlite3_reset(insert.handle)
                entries.first!.subject.withUnsafeBufferPointer { insert.bind(1, bytes: $0) }
                insert.bind(2, entries.count)
                blob.withUnsafeBytes { b in
                    _ = sqlite3_bind_blob(insert.handle, 3, b.baseAddress, Int32(b.count), RawStatement.transient)
                }
                try insert.run(db)
            }
        }
    }

    /// From this many summaries, `status` and `targets` scan two halves at once.
    package static let parallelFrom = 2_000

    /// The first subject of the row where the second half of the summaries starts.
    static func split(_ db: Database) throws -> String? {
        try String.fetchOne(db, sql: "SELECT summary_split FROM meta WHERE id = 1")
    }

    /// Each row's first subject, its count of subjects and its bytes in both tables, in order.
    static func rowSizes(_ db: Database) throws -> [Row] {
        try Row.fetchAll(db, sql: """
            SELECT s.first, s.subjects, length(s.summaries) + length(t.summaries)
            FROM subject_status s JOIN subject_targets t USING (first) ORDER BY s.first
            """)
    }

    /// The share of the summaries' bytes in the rows before `split`.
    static func share(_ db: Database, before split: String) throws -> Double? {
        let rows = try rowSizes(db)
        let total = rows.reduce(0) { $0 + ($1[2] as Int) }
        guard total > 0 else { return nil }
        return Double(rows.reduce(0) { $0 + (($1[0] as String).utf8.lexicographicallyPrecedes(split.utf8) ? $1[2] as Int : 0) }) / Double(total)
    }

    /// Stores the row that cuts the summaries into two halves of about as
    /// many bytes (about as much work each: the first row whose bytes before
    /// it make half), when there are enough subjects to be worth it. Worked out
    /// when the summaries are rebuilt, once a catch-up finds none stored, and
    /// again when catch-ups have moved the share of bytes before it out of 40–60%.
    static func storeSplit(_ db: Database, minimum: Int = parallelFrom) throws {
        var split: String?
        let rows = try rowSizes(db)
        if rows.count >= 2, rows.reduce(0, { $0 + ($1[1] as Int) }) >= minimum {
            let total = rows.reduce(0) { $0 + ($1[2] as Int) }
            var before = 0
            for r in rows {
                if before > 0, before * 2 >= total {
                    split = r[0]
                    break
                }
                before += r[2] as Int
            }
            split = split ?? rows.last![0]
        }
        try db.execute(sql: "UPDATE meta SET summary_split = ? WHERE id = 1", arguments: [split])
    }

    /// The three ordered scans a summary is made of.
    struct Sources {
        let all: [RawStatement]
        var lifecycle: RawStatement { all[0] }
        var announced: RawStatement { all[1] }
        var targets: RawStatement { all[2] }

        init(_ db: Database, oneSubject: Bool) throws {
            let only = oneSubject ? " AND subject = ?" : ""
            let lifecycle = RawStatement(try db.cachedStatement(sql: """
                SELECT subject, type, date, event_seq, from_seq, to_seq, precision FROM event_versions INDEXED BY event_versions_lifecycle
                WHERE (rank > 0 OR type IN ('facility.paused', 'facility.resumed', 'facility.cancelled'))\(only) ORDER BY subject
                """))
            let announced = RawStatement(try db.cachedStatement(sql: """
                SELECT subject, from_seq, to_seq, name, kind, operator, program FROM event_versions INDEXED BY event_versions_announced
                WHERE type = 'facility.announced'\(only) ORDER BY subject, from_seq
                """))
            let targets = RawStatement(try db.cachedStatement(sql: """
                SELECT subject, milestone, date, due_earliest, due_latest, event_seq, from_seq, to_seq
                FROM event_versions INDEXED BY event_versions_targets
                WHERE type IN ('target.set', 'target.revised')\(only) ORDER BY subject, milestone, date, event_seq
                """))
            all = [lifecycle, announced, targets]
        }
    }

    /// Merges the three scans by subject and hands over one summary per subject, in subject order.
    static func build(_ sources: Sources, db: Database, _ emit: (Entry) throws -> Void) throws {
        var rows = try sources.all.map { s in try s.step(db) }
        while true {
            // The smallest subject among the scans' current rows.
            var subject: [UInt8]?
            for (k, s) in sources.all.enumerated() where rows[k] {
                let t = s.bytes(0)!
                if subject == nil || t.lexicographicallyPrecedes(subject!) { subject = Array(t) }
            }
            guard let subject else { return }
            var builder = Builder()
            func at(_ k: Int) -> Bool { rows[k] && sources.all[k].bytes(0)!.elementsEqual(subject) }
            func seq(_ s: RawStatement, _ column: Int32) throws -> UInt32 {
                if s.isNull(column) { return .max }
                let v = s.int(column)
                guard v >= 0, v <= maxSeq else {
                    throw DatabaseError(resultCode: .SQLITE_TOOBIG, message: "subject summaries hold seqs up to \(maxSeq); this ledger has \(v)")
                }
                return UInt32(v)
            }
            let l = sources.lifecycle
            while at(0) {
                guard let precision = l.bytes(6).flatMap({ DatePrecision(rawValue: String(decoding: $0, as: UTF8.self)) }) else {
                    throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "event_versions holds an unknown precision")
                }
                try builder.addLifecycle(type: EventType(utf8: l.bytes(1)!).orCorrupt(), date: l.date(2, db), eventSeq: seq(l, 3),
                                         from: seq(l, 4), to: seq(l, 5), precision: precision)
                rows[0] = try l.step(db)
            }
            let a = sources.announced
            while at(1) {
                builder.addAnnouncement(from: try seq(a, 1), to: try seq(a, 2), names: [a.bytes(3), a.bytes(4), a.bytes(5), a.bytes(6)])
                rows[1] = try a.step(db)
            }
            let t = sources.targets
            while at(2) {
                try builder.addTarget(milestone: t.bytes(1) ?? UnsafeBufferPointer(start: nil, count: 0), date: t.date(2, db),
                                      earliest: t.date(3, db), latest: t.date(4, db), from: seq(t, 6), to: seq(t, 7))
                rows[2] = try t.step(db)
            }
            let parts = builder.finish()
            try emit(Entry(subject: subject, lifecycle: parts.lifecycle, announced: parts.announced, targets: parts.targets))
        }
    }

    struct Builder {
        var lifecycle: [UInt8] = [], lifecycleCount: UInt32 = 0
        var announced: [UInt8] = [], announcedCount: UInt32 = 0
        var targets: [UInt8] = [], groupCount: UInt32 = 0
        var milestone: [UInt8]?, versionsAt = 0

        mutating func addLifecycle(type: EventType, date: CalendarDate, eventSeq: UInt32, from: UInt32, to: UInt32,
                                   precision: DatePrecision) {
            lifecycle.append(UInt8(type.ordinal))
            Builder.put(date.days, &lifecycle)
            for v in [eventSeq, from, to] { Builder.put(v, &lifecycle) }
            lifecycle.append(UInt8(precision.ordinal))
            lifecycleCount += 1
        }

        mutating func addAnnouncement(from: UInt32, to: UInt32, names: [UnsafeBufferPointer<UInt8>?]) {
            Builder.put(from, &announced)
            Builder.put(to, &announced)
            for n in names { Builder.put(n, &announced) }
            announcedCount += 1
        }

        /// Versions come in (milestone, date, event seq) order.
        mutating func addTarget(milestone m: UnsafeBufferPointer<UInt8>, date: CalendarDate, earliest: CalendarDate, latest: CalendarDate,
                                from: UInt32, to: UInt32) {
            if milestone == nil || !m.elementsEqual(milestone!) {
                milestone = Array(m)
                Builder.put(m, &targets)
                versionsAt = targets.count
                Builder.put(UInt32(0), &targets)
                groupCount += 1
            }
            for d in [date, earliest, latest] { Builder.put(d.days, &targets) }
            for v in [from, to] { Builder.put(v, &targets) }
            targets.withUnsafeMutableBytes { b in
                let n = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: versionsAt, as: UInt32.self)) + 1
                b.storeBytes(of: n.littleEndian, toByteOffset: versionsAt, as: UInt32.self)
            }
        }

        func finish() -> (lifecycle: [UInt8], announced: [UInt8], targets: [UInt8]) {
            func counted(_ n: UInt32, _ bytes: [UInt8]) -> [UInt8] {
                var out: [UInt8] = []
                out.reserveCapacity(4 + bytes.count)
                Builder.put(n, &out)
                return out + bytes
            }
            return (counted(lifecycleCount, lifecycle), counted(announcedCount, announced), counted(groupCount, targets))
        }

        static func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
            withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
        }

        static func put(_ text: UnsafeBufferPointer<UInt8>?, _ out: inout [UInt8]) {
            guard let text else {
                put(UInt32.max, &out)
                return
            }
            put(UInt32(text.count), &out)
            out.append(contentsOf: text)
        }
    }

    // MARK: - Reading

    /// The sizes of a version in each column.
    static let lifecycleVersion = 18, targetVersion = 20

    /// What a query reads besides `lifecycle`: the column, and its table.
    package enum Part: String {
        case announced, targets
        static let all: [Part] = [.announced, .targets]
        var table: String { self == .announced ? "subject_status" : "subject_targets" }
    }

    /// One summary's `lifecycle` and one other column, read in place (the
    /// bytes belong to SQLite until its next step).
    package struct View {
        struct Blob {
            let base: UnsafeRawPointer
            let count: Int
            func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
            func i32(_ at: Int) -> Int32 { Int32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: Int32.self)) }
            /// A seq; a version still current (UInt32.max) as Int.max.
            func seq(_ at: Int) -> Int {
                let v = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                return v == .max ? .max : Int(v)
            }

            /// Text at `at` (nil for NULL) and the offset after it.
            func text(_ at: Int) -> (UnsafeBufferPointer<UInt8>?, Int) {
                let n = u32(at)
                if n == Int(UInt32.max) { return (nil, at + 4) }
                return (UnsafeBufferPointer(start: (base + at + 4).assumingMemoryBound(to: UInt8.self), count: n), at + 4 + n)
            }

            /// Skips a text at `at` if it lies within the blob.
            func skipText(_ at: inout Int) -> Bool {
                guard at + 4 <= count else { return false }
                let n = u32(at)
                at += 4
                if n == Int(UInt32.max) { return true }
                at += n
                return at <= count
            }
        }

        let lifecycle: Blob
        let other: Blob
        let part: Part

        /// A valid date's day count is `first` + at most `span` (years 0001–9999),
        /// so one unsigned comparison checks it.
        static let validDays = (CalendarDate.validDays.lowerBound,
                                UInt32(bitPattern: CalendarDate.validDays.upperBound &- CalendarDate.validDays.lowerBound))

        /// Whether every entry lies within its blob, as ``Builder`` writes
        /// them, with event types and lifecycle dates of years 0001–9999
        /// (checked once per summary, before any is read unchecked; target
        /// versions' dates as they are read, by ``Versions/forEach(_:)``).
        var isWellFormed: Bool {
            let l = lifecycle
            guard l.count >= 4, l.count == 4 + l.u32(0) * SubjectSummary.lifecycleVersion else { return false }
            // Each lifecycle version's type is read as an EventType: it must be one.
            let (types, (first, span)) = (EventType.byOrdinal.count, View.validDays)
            for at in stride(from: 4, to: l.count, by: SubjectSummary.lifecycleVersion)
            where Int(l.base.load(fromByteOffset: at, as: UInt8.self)) >= types || UInt32(bitPattern: l.i32(at + 1) &- first) > span
                || l.base.load(fromByteOffset: at + 17, as: UInt8.self) >= 4 {
                return false
            }
            let o = other
            guard o.count >= 4 else { return false }
            var at = 4
            switch part {
            case .announced:
                for _ in 0..<o.u32(0) {
                    at += 8
                    for _ in 0..<4 where !o.skipText(&at) { return false }
                }
            case .targets:
                for _ in 0..<o.u32(0) {
                    guard o.skipText(&at), at + 4 <= o.count else { return false }
                    at += 4 + o.u32(at) * SubjectSummary.targetVersion
                    guard at <= o.count else { return false }
                }
            }
            return at == o.count
        }

        /// Each lifecycle or control version: type, date, precision, event seq, from, to.
        @inline(__always)
        func forEachLifecycle(_ body: (EventType, CalendarDate, DatePrecision, Int, Int, Int) -> Void) {
            let l = lifecycle
            var at = 4
            for _ in 0..<l.u32(0) {
                body(unsafeBitCast(l.base.load(fromByteOffset: at, as: UInt8.self), to: EventType.self), CalendarDate(days: l.i32(at + 1)),
                     DatePrecision.byOrdinal[Int(l.base.load(fromByteOffset: at + 17, as: UInt8.self))],
                     l.seq(at + 5), l.seq(at + 9), l.seq(at + 13))
                at += SubjectSummary.lifecycleVersion
            }
        }

        /// The announcement version known at seq `s` (the last such, as
        /// `event_versions_announced` orders them): name, kind, operator, program.
        func announcement(knownAt s: Int) -> (UnsafeBufferPointer<UInt8>?, UnsafeBufferPointer<UInt8>?, UnsafeBufferPointer<UInt8>?,
                                              UnsafeBufferPointer<UInt8>?) {
            precondition(part == .announced)
            let a = other
            var at = 4
            var found: (UnsafeBufferPointer<UInt8>?, UnsafeBufferPointer<UInt8>?, UnsafeBufferPointer<UInt8>?, UnsafeBufferPointer<UInt8>?)
                = (nil, nil, nil, nil)
            for _ in 0..<a.u32(0) {
                let (from, to) = (a.seq(at), a.seq(at + 4))
                let (name, p) = a.text(at + 8)
                let (kind, q) = a.text(p)
                let (op, r) = a.text(q)
                let (program, next) = a.text(r)
                if from <= s, to > s { found = (name, kind, op, program) }
                at = next
            }
            return found
        }

        /// Each target milestone, with a reader of its versions in (date, event seq) order.
        @inline(__always)
        func forEachTarget(_ body: (UnsafeBufferPointer<UInt8>, Versions) throws -> Void) rethrows {
            precondition(part == .targets)
            let t = other
            var at = 4
            for _ in 0..<t.u32(0) {
                let (m, next) = t.text(at)
                let n = t.u32(next)
                try body(m ?? UnsafeBufferPointer(start: nil, count: 0), Versions(blob: t, start: next + 4, count: n))
                at = next + 4 + n * SubjectSummary.targetVersion
            }
        }

        struct Versions {
            let blob: Blob
            let start: Int
            let count: Int

            /// Each version: date, due earliest, due latest, from, to. False if
            /// any of its dates is outside years 0001–9999 (damage: the
            /// versions are read here only, so they are checked here).
            @inline(__always)
            func forEach(_ body: (CalendarDate, CalendarDate, CalendarDate, Int, Int) -> Void) -> Bool {
                let (first, span) = View.validDays
                var worst: UInt32 = 0
                var at = start
                for _ in 0..<count {
                    let (d, e, l) = (blob.i32(at), blob.i32(at + 4), blob.i32(at + 8))
                    worst = max(worst, UInt32(bitPattern: d &- first), UInt32(bitPattern: e &- first), UInt32(bitPattern: l &- first))
                    body(CalendarDate(days: d), CalendarDate(days: e), CalendarDate(days: l), blob.seq(at + 12), blob.seq(at + 16))
                    at += SubjectSummary.targetVersion
                }
                return worst <= span
            }
        }
    }

    /// Every summary in subject order: the rows from `range.from` (the first
    /// subject of a row) to `range.before`, each summary checked against its
    /// layout before it is read.
    static func scan(_ db: Database, _ range: SubjectRange, with other: Part, _ body: (UnsafeBufferPointer<UInt8>, View) throws -> Void) throws {
        let s = try rowsStatement(db, other, bounded: range.before != nil)
        defer { sqlite3_reset(s.handle) }
        s.bind(1, range.from)
        s.bind(2, range.before)
        var last: [UInt8]?
        while try s.step(db) {
            try forEachEntry(s, table: other.table, after: &last) { subject, lifecycle, blob in
                let view = View(lifecycle: lifecycle, other: blob, part: other)
                guard view.isWellFormed else { throw damaged(other.table, subject, row: s) }
                try body(subject, view)
            }
        }
    }

    /// Each entry of the row at `s` (columns `first`, `subjects`,
    /// `summaries`): see ``forEachEntry(key:subjects:row:table:after:_:)``.
    static func forEachEntry(_ s: RawStatement, table: String, after last: inout [UInt8]?,
                             _ body: (UnsafeBufferPointer<UInt8>, View.Blob, View.Blob) throws -> Void) throws {
        let count = Int(sqlite3_column_bytes(s.handle, 2))
        // An empty blob has no pointer; a row is never empty (it holds at least one subject).
        guard count > 0, let base = sqlite3_column_blob(s.handle, 2), let key = s.bytes(0) else { throw damaged(table, nil, row: s) }
        try forEachEntry(key: key, subjects: Int(s.int(1)), row: UnsafeRawBufferPointer(start: base, count: count), table: table,
                         after: &last, body)
    }

    /// Each entry of a row of summaries (its key `first`, its count of
    /// subjects, its bytes), whichever store read it: its subject and its two
    /// parts, their bounds checked (not their contents). The row's first
    /// subject must be its key, and every subject must come after the one
    /// before, `last` (the previous row's last, on entry; this row's, on return).
    static func forEachEntry(key: UnsafeBufferPointer<UInt8>, subjects n: Int, row bytes: UnsafeRawBufferPointer, table: String,
                             after last: inout [UInt8]?,
                             _ body: (UnsafeBufferPointer<UInt8>, View.Blob, View.Blob) throws -> Void) throws {
        let count = bytes.count
        guard n > 0, count > 0, let base = bytes.baseAddress else { throw damaged(table, nil, first: Array(key)) }
        let row = View.Blob(base: base, count: count)
        var at = 0
        /// The next length-led piece, if it lies within the row.
        func piece() -> View.Blob? {
            guard at + 4 <= count else { return nil }
            let length = row.u32(at)
            guard length <= count - at - 4 else { return nil }
            defer { at += 4 + length }
            return View.Blob(base: base + at + 4, count: length)
        }
        var previous: UnsafeBufferPointer<UInt8>?
        for k in 0..<n {
            guard let name = piece() else { throw damaged(table, previous.map(Array.init), first: Array(key)) }
            let subject = UnsafeBufferPointer(start: name.base.assumingMemoryBound(to: UInt8.self), count: name.count)
            let inOrder = k == 0 ? subject.elementsEqual(key) && (last.map { $0.lexicographicallyPrecedes(subject) } ?? true)
                                 : previous!.lexicographicallyPrecedes(subject)
            guard inOrder, let lifecycle = piece(), let other = piece() else { throw damaged(table, Array(subject), first: Array(key)) }
            try body(subject, lifecycle, other)
            previous = subject
        }
        guard at == count else { throw damaged(table, previous.map(Array.init), first: Array(key)) }
        last = previous.map(Array.init)
    }

    /// The error for a damaged summary: named by its subject when that reads
    /// as a slug, else by the row (`first`, column 0 of `row`).
    static func damaged(_ table: String, _ subject: UnsafeBufferPointer<UInt8>?, row: RawStatement) -> DatabaseError {
        damaged(table, subject.map(Array.init), first: row.bytes(0).map(Array.init))
    }

    static func damaged(_ table: String, _ subject: [UInt8]?, first: [UInt8]?) -> DatabaseError {
        func text(_ b: [UInt8]) -> String { quoted(String(decoding: b, as: UTF8.self)) }
        let what: String
        if let subject, subject.withUnsafeBufferPointer(EventForm.isSlug) {
            what = "the summary of \(text(subject)) is damaged"
        } else if let first, first.count <= 64 {
            what = "the row of summaries from \(text(first)) is damaged"
        } else {
            what = "a row of summaries is damaged"
        }
        return DatabaseError(resultCode: .SQLITE_CORRUPT, message: "\(table): \(what)")
    }
}

/// The rows of summaries whose first subject is from `from` (inclusive) to
/// `before` (exclusive; nil: to the end), in byte order: the subjects of
/// those rows.
package struct SubjectRange: Sendable {
    package var from: String
    package var before: String?
    package static let all = SubjectRange(from: "", before: nil)
    package init(from: String, before: String?) {
        self.from = from
        self.before = before
    }

    /// Whether `subject` falls in the range (byte order, as the rows are keyed).
    package func contains(_ subject: String) -> Bool {
        !subject.utf8.lexicographicallyPrecedes(from.utf8) && (before.map { subject.utf8.lexicographicallyPrecedes($0.utf8) } ?? true)
    }
}

extension ReadModels {
    /// The subjects cut into two halves (one range when there are fewer than
    /// `minimum`, or one row of them), for scanning them in parallel: at the
    /// stored split, else (another minimum) at the middle row.
    package func halves(minimum: Int = SubjectSummary.parallelFrom) throws -> [SubjectRange] {
        let middle = try db.read { db -> String? in
            if minimum >= SubjectSummary.parallelFrom, let split = try SubjectSummary.split(db) { return split }
            guard let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), TOTAL(subjects) FROM subject_status") else { return nil }
            let (rows, subjects) = (row[0] as Int, Int(row[1] as Double))
            guard rows >= 2, subjects >= max(minimum, 2) else { return nil }
            return try String.fetchOne(db, sql: "SELECT first FROM subject_status ORDER BY first LIMIT 1 OFFSET ?", arguments: [rows / 2])
        }
        guard let middle else { return [.all] }
        return [SubjectRange(from: "", before: middle), SubjectRange(from: middle, before: nil)]
    }
}

extension Optional where Wrapped == EventType {
    func orCorrupt() throws -> EventType {
        guard let self else { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "event_versions holds an unknown event type") }
        return self
    }
}

extension RawStatement {
    /// Steps: true with a row, false when done.
    func step(_ db: Database) throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }

    func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }
    func int(_ i: Int32) -> Int64 { sqlite3_column_int64(handle, i) }

    /// The column's text (nil for NULL), valid until the next step.
    func bytes(_ i: Int32) -> UnsafeBufferPointer<UInt8>? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        return UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i)))
    }

    func date(_ i: Int32, _ db: Database) throws -> CalendarDate {
        guard let b = bytes(i), let d = CalendarDate(utf8: b) else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "event_versions holds a date that is not YYYY-MM-DD")
        }
        return d
    }
}

/// Work on another thread, and its result when it is done.
final class BackgroundJob<T>: @unchecked Sendable {
    private var outcome: Result<T, Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping () throws -> T) {
        // The work and its captures are this job's alone until `result()`.
        nonisolated(unsafe) let work = work
        Thread.detachNewThread { [self] in
            outcome = Result(catching: work)
            done.signal()
        }
    }

    /// Waits for the work (its writes are seen once the semaphore is passed).
    func result() throws -> T {
        done.wait()
        return try outcome!.get()
    }
}
