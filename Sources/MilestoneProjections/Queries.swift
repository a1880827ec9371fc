import Foundation
import CanonicalJSON
import GRDB
import MilestoneLedger
import MilestoneModel

/// A point of view: the world as of a date (valid time), as known once the
/// records up to `knownSeq` were in (transaction time), and, when
/// `publishedBy` is set, as the public record had it by that date
/// (publication time; docs/events.md, "Publication time").
package struct PointOfView: Sendable, Equatable {
    package var asOf: CalendarDate
    package var knownSeq: Int
    package var publishedBy: CalendarDate?
    package init(asOf: CalendarDate, knownSeq: Int, publishedBy: CalendarDate? = nil) {
        self.asOf = asOf
        self.knownSeq = knownSeq
        self.publishedBy = publishedBy
    }
}

/// Text of a row read from a subject summary: UTF-8 bytes in SQLite's row,
/// valid only during the call the row is given to (no String is made).
package typealias RowText = UnsafeBufferPointer<UInt8>

/// A ``FacilityStatus`` as a summary scan finds it.
package struct FacilityRow {
    package let subject: RowText
    package let name, kind, operatorName, program: RowText?
    package let phase: FacilityPhase
    package let phaseDate: CalendarDate
    package let phasePrecision: DatePrecision

    package var status: FacilityStatus {
        func text(_ b: RowText?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }
        return FacilityStatus(subject: String(decoding: subject, as: UTF8.self), name: text(name), kind: text(kind),
                              operatorName: text(operatorName), program: text(program), phase: phase, phaseDate: phaseDate,
                              phasePrecision: phasePrecision)
    }

    /// Hands over `f` as a row (its texts as bytes, valid during the call).
    static func with(_ f: FacilityStatus, _ body: (FacilityRow) throws -> Void) rethrows {
        try withRowTexts([f.subject, f.name, f.kind, f.operatorName, f.program]) { t in
            try body(FacilityRow(subject: t[0]!, name: t[1], kind: t[2], operatorName: t[3], program: t[4], phase: f.phase,
                                 phaseDate: f.phaseDate, phasePrecision: f.phasePrecision))
        }
    }
}

/// Texts as one buffer's slices (nil stays nil), valid during the call.
func withRowTexts<R>(_ texts: [String?], _ body: ([RowText?]) throws -> R) rethrows -> R {
    var bytes: [UInt8] = []
    var ranges: [Range<Int>?] = []
    for t in texts {
        guard let t else { ranges.append(nil); continue }
        let start = bytes.count
        bytes += t.utf8
        ranges.append(start..<bytes.count)
    }
    // At least one byte, so that every slice has a base address.
    bytes.append(0)
    return try bytes.withUnsafeBufferPointer { b in try body(ranges.map { $0.map { RowText(rebasing: b[$0]) } }) }
}

/// A ``TargetStatus`` as a summary scan finds it.
package struct TargetRow {
    package let subject, milestone: RowText
    package let dueEarliest, dueLatest: CalendarDate
    package let actual: Rules.Actual?
    package let state: TargetState
    package let slipDays, slipFromOriginalDays: Int?
    package let revisions: Int

    package var status: TargetStatus {
        TargetStatus(subject: String(decoding: subject, as: UTF8.self), milestone: String(decoding: milestone, as: UTF8.self),
                     dueEarliest: dueEarliest, dueLatest: dueLatest, actual: actual, state: state, slipDays: slipDays,
                     slipFromOriginalDays: slipFromOriginalDays, revisions: revisions)
    }

    /// Hands over `t` as a row (its texts as bytes, valid during the call).
    static func with(_ t: TargetStatus, _ body: (TargetRow) throws -> Void) rethrows {
        try withRowTexts([t.subject, t.milestone]) { x in
            let actual = t.actualLatest.map { Rules.Actual(earliest: t.actual, latest: $0, impliedBy: t.impliedBy) }
            try body(TargetRow(subject: x[0]!, milestone: x[1]!, dueEarliest: t.dueEarliest, dueLatest: t.dueLatest, actual: actual,
                               state: t.state, slipDays: t.slipDays, slipFromOriginalDays: t.slipFromOriginalDays, revisions: t.revisions))
        }
    }
}

/// One line of `timeline` and `events`: the event as known in the point of
/// view (corrections applied), with its record's seq and time.
package struct EventLine: Sendable, Equatable {
    package var seq: Int
    package var recordedAt: String
    package var id: String
    package var type: String
    package var date: String
    package var precision: String
    package var subject: String?
    package var summary: String?
    /// Every field of the event (sources included).
    package var event: JSONObject

    package init(_ event: JSONObject, seq: Int, recordedAt: String) {
        self.seq = seq
        self.recordedAt = recordedAt
        self.event = event
        id = event["id"]?.stringValue ?? ""
        type = event["type"]?.stringValue ?? ""
        date = event["date"]?.stringValue ?? ""
        precision = event["precision"]?.stringValue ?? DatePrecision.day.rawValue
        subject = event["subject"]?.stringValue
        summary = event["summary"]?.stringValue
    }
}

extension ReadModels {
    /// The seq of the last record recorded at or before `time` (all, when nil).
    package func knownSeq(at time: Timestamp?) throws -> Int {
        try db.read { db in
            if let time {
                // recorded_at never decreases along seq: the answer is the last
                // entry of the time index's range (MAX(seq) would walk the table back).
                return try Int.fetchOne(db, sql: """
                    SELECT seq FROM records INDEXED BY records_recorded_at WHERE recorded_at <= ?
                    ORDER BY recorded_at DESC, seq DESC LIMIT 1
                    """, arguments: [time.description]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM records") ?? 0
        }
    }

    /// SQL for "this version is the one known at :s".
    static func known(_ v: String = "") -> String {
        let p = v.isEmpty ? "" : v + "."
        return "\(p)from_seq <= :s AND (\(p)to_seq IS NULL OR \(p)to_seq > :s)"
    }

    /// "Any event type", in a form that lets SQLite search `event_versions_known`
    /// (type, subject, date, …) by subject: one range per type instead of a scan.
    static let anyType = "type IN (" + EventType.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"

    static func args(_ pov: PointOfView) -> StatementArguments {
        ["s": pov.knownSeq, "d": pov.asOf.description]
    }

    /// Every record up to `seq`, for an in-memory replay.
    package func replayRecords(upTo seq: Int) throws -> [ReplayRecord] {
        try db.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT seq, recorded_at, event FROM records WHERE seq <= ? ORDER BY seq", arguments: [seq])
            var out: [ReplayRecord] = []
            while let r = try rows.next() {
                guard let at = Timestamp(r[1] as String), let event = try JSONReader.parse(r[2] as String).objectValue else {
                    throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "records holds a record that is not an event")
                }
                out.append(ReplayRecord(seq: r[0], recordedAt: at, event: event))
            }
            return out
        }
    }

    /// `status`'s programs announced on or before D, with the latest investment committed (SQLite's rows).
    package func programRows(_ pov: PointOfView) throws -> [ProgramRow] {
        let sql = """
            SELECT p.subject, p.name, p.sponsor, p.amount_value, p.amount_currency, p.amount_qualifier, p.horizon,
                   (SELECT i.amount_value || ' ' || i.amount_currency || ' ' || i.amount_qualifier FROM event_versions i
                    WHERE i.type = 'investment.committed' AND i.subject = p.subject AND i.date <= :d AND \(ReadModels.known("i"))
                    ORDER BY i.date DESC, i.event_seq DESC LIMIT 1)
            FROM event_versions p
            WHERE p.type = 'program.announced' AND p.date <= :d AND \(ReadModels.known("p"))
            ORDER BY p.subject
            """
        return try db.read { db in
            try Row.fetchAll(db, sql: sql, arguments: ReadModels.args(pov)).map { row -> ProgramRow in
                let subject: String = row[0], name: String? = row[1], sponsor: String? = row[2], value: Int64? = row[3]
                let currency: String? = row[4], qualifier: String? = row[5], horizon: String? = row[6], committed: String? = row[7]
                return ProgramRow(subject: subject, name: name, sponsor: sponsor, amountValue: value, amountCurrency: currency,
                                  amountQualifier: qualifier, horizon: horizon, committed: committed)
            }
        }
    }

    static func amount(_ value: Int64?, _ currency: String?, _ qualifier: String?) -> JSONObject? {
        guard let value, let currency else { return nil }
        var o = JSONObject()
        o["value"] = .int(value)
        o["currency"] = .string(currency)
        o["qualifier"] = .string(qualifier ?? "exact")
        return o
    }

    /// `timeline`'s rows (SQLite): the dated events (as known) on or before D, in date order.
    package func timelineLines(_ pov: PointOfView, subject: String?) throws -> [EventLine] {
        var sql = """
            SELECT v.event_seq, r.recorded_at, COALESCE(v.event, r.event) FROM event_versions v JOIN records r ON r.seq = v.event_seq
            WHERE v.date <= :d AND \(ReadModels.known("v"))
            """
        var args = ReadModels.args(pov)
        if let subject {
            sql += " AND v.subject = :subject AND v.\(ReadModels.anyType)"
            args += ["subject": subject]
        }
        sql += " ORDER BY v.date, v.event_seq"
        return try db.read { db in try Row.fetchAll(db, sql: sql, arguments: args).map(ReadModels.line) }
    }

    static func line(_ row: Row) throws -> EventLine {
        guard let e = try JSONReader.parse(row[2] as String).objectValue else {
            throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "records holds a record that is not an event")
        }
        return EventLine(e, seq: row[0], recordedAt: row[1])
    }

    package func recordedAt(seqs: [Int]) throws -> [Int: String] {
        guard !seqs.isEmpty else { return [:] }
        return try db.read { db in
            var out: [Int: String] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT seq, recorded_at FROM records WHERE seq BETWEEN ? AND ?",
                                      arguments: [seqs.min()!, seqs.max()!]) { out[r[0]] = r[1] }
            return out
        }
    }

    /// `events`' rows (SQLite): every event known and every correction and
    /// retraction, dated on or before D, in record order, filtered.
    package func eventLines(_ pov: PointOfView, subjects: [String], types: [String],
                            since: CalendarDate?, until: CalendarDate?) throws -> [EventLine] {
        var args = ReadModels.args(pov)
        func list(_ name: String, _ values: [String]) -> String {
            for (k, v) in values.enumerated() { args += ["\(name)\(k)": v] }
            return "(" + values.indices.map { ":\(name)\($0)" }.joined(separator: ", ") + ")"
        }
        // Subjects: searched in the indexes by subject (in both halves), not scanned.
        let subjectList = subjects.isEmpty ? "" : list("subject", subjects)
        let only = subjects.isEmpty ? "" : " AND subject IN " + subjectList
        var sql = """
            SELECT seq, recorded_at, event FROM (
              SELECT v.event_seq AS seq, r.recorded_at, COALESCE(v.event, r.event) AS event, v.type, v.date
              FROM event_versions v JOIN records r ON r.seq = v.event_seq
              WHERE \(ReadModels.known("v"))\(subjects.isEmpty ? "" : " AND v.subject IN " + subjectList + " AND v." + ReadModels.anyType)
              UNION ALL
              SELECT seq, recorded_at, event, type, date FROM records
              WHERE type IN ('event.corrected', 'event.retracted') AND seq <= :s\(only))
            WHERE date <= :d
            """
        if !types.isEmpty { sql += " AND type IN " + list("type", types) }
        if let since {
            sql += " AND date >= :since"
            args += ["since": since.description]
        }
        if let until {
            sql += " AND date <= :until"
            args += ["until": until.description]
        }
        sql += " ORDER BY seq"
        return try db.read { db in try Row.fetchAll(db, sql: sql, arguments: args).map(ReadModels.line) }
    }

    /// One record as `log` lists it.
    package struct LogEntry: Sendable {
        package var seq: Int
        package var recordedAt: String
        package var type: String
        package var subject: String?
        package var id: String
        package var summary: String?
    }

    /// `log`: the records appended between two times (both inclusive), newest first unless asked.
    package func log(since: Timestamp?, until: Timestamp?, limit: Int?, newestFirst: Bool) throws -> [LogEntry] {
        var sql = "SELECT seq, recorded_at, type, subject, id, json_extract(event, '$.summary') FROM records WHERE 1"
        var args: [any DatabaseValueConvertible] = []
        if let since {
            sql += " AND recorded_at >= ?"
            args.append(since.description)
        }
        if let until {
            sql += " AND recorded_at <= ?"
            args.append(until.description)
        }
        sql += " ORDER BY seq DESC"
        if let limit { sql += " LIMIT \(limit)" }
        let rows = try db.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map {
                LogEntry(seq: $0[0], recordedAt: $0[1], type: $0[2], subject: $0[3], id: $0[4], summary: $0[5])
            }
        }
        return newestFirst ? rows : rows.reversed()
    }

    /// Every subject (program or facility) the ledger has announced.
    package func subjects() throws -> [String] {
        try db.read { db in
            try String.fetchAll(db, sql: "SELECT subject FROM records WHERE type IN ('program.announced', 'facility.announced') ORDER BY subject")
        }
    }

    /// `show`: one event's record, its effective content now, its corrections.
    package struct EventDetail: Sendable {
        package var seq: Int
        package var recordedAt: String
        package var sha256: String
        package var recorded: JSONValue
        /// Its content with every correction applied; nil when retracted.
        package var current: JSONValue?
        package var corrections: [(seq: Int, id: String, recordedAt: String, event: JSONValue)]
        package var retraction: (seq: Int, id: String, recordedAt: String, event: JSONValue)?
    }

    package func event(id: String) throws -> EventDetail? {
        try db.read { db in
            guard let r = try Row.fetchOne(db, sql: "SELECT seq, recorded_at, sha256, event FROM records WHERE id = ?", arguments: [id])
            else { return nil }
            let seq: Int = r[0]
            let current = try String.fetchOne(db, sql: """
                SELECT COALESCE(v.event, r.event) FROM event_versions v JOIN records r ON r.seq = v.event_seq
                WHERE v.event_seq = ? AND v.to_seq IS NULL
                """, arguments: [seq])
            let refs = try Row.fetchAll(db, sql: "SELECT seq, id, recorded_at, event, type FROM records WHERE refers_to = ? ORDER BY seq", arguments: [id])
            func parsed(_ s: String) -> JSONValue { (try? JSONReader.parse(s)) ?? .null }
            var detail = EventDetail(seq: seq, recordedAt: r[1], sha256: r[2], recorded: parsed(r[3]),
                                     current: current.map(parsed), corrections: [], retraction: nil)
            for x in refs {
                let entry = (seq: x[0] as Int, id: x[1] as String, recordedAt: x[2] as String, event: parsed(x[3]))
                if (x[4] as String) == EventType.eventRetracted.rawValue { detail.retraction = entry } else { detail.corrections.append(entry) }
            }
            return detail
        }
    }
}

/// The read models answer the referential rules for `record`, so recording
/// on a large ledger does not rescan the log. Lookups use cached statements
/// outside any transaction (a batch makes one or more per event), and subject
/// answers are memoised for the batch.
extension ReadModels: ReferenceState {
    package func entry(id: String) throws -> ReferenceEntry? {
        try db.inDatabase { db in
            guard let r = try Row.fetchOne(try db.cachedStatement(sql: """
                SELECT r.type, r.subject, r.content, r.retracted_by, v.date, v.precision, r.date, r.precision
                FROM records r LEFT JOIN event_versions v ON v.event_seq = r.seq AND v.to_seq IS NULL WHERE r.id = ?
                """), arguments: [id])
            else { return nil }
            let type = EventType(rawValue: r[0])!
            let date = CalendarDate((r[4] as String?) ?? r[6])!
            let precision = DatePrecision(rawValue: (r[5] as String?) ?? r[7]) ?? .day
            return ReferenceEntry(type: type, subject: r[1], retracted: (r[3] as Int?) != nil, date: date, precision: precision,
                                  content: UInt64(bitPattern: r[2] as Int64))
        }
    }

    package func entries(ids: [String]) throws -> [String: ReferenceEntry] {
        var out: [String: ReferenceEntry] = [:]
        for start in stride(from: 0, to: ids.count, by: 500) {
            let part = Array(ids[start..<min(ids.count, start + 500)])
            let marks = Array(repeating: "?", count: part.count).joined(separator: ",")
            try db.inDatabase { db in
                let rows = try Row.fetchAll(db, sql: """
                    SELECT r.id, r.type, r.subject, r.content, r.retracted_by, v.date, v.precision, r.date, r.precision
                    FROM records r LEFT JOIN event_versions v ON v.event_seq = r.seq AND v.to_seq IS NULL WHERE r.id IN (\(marks))
                    """, arguments: StatementArguments(part))
                for r in rows {
                    out[r[0]] = ReferenceEntry(type: EventType(rawValue: r[1])!, subject: r[2], retracted: (r[4] as Int?) != nil,
                                               date: CalendarDate((r[5] as String?) ?? r[7])!,
                                               precision: DatePrecision(rawValue: (r[6] as String?) ?? r[8]) ?? .day,
                                               content: UInt64(bitPattern: r[3] as Int64))
                }
            }
        }
        return out
    }

    package func subjectKind(_ subject: String) throws -> SubjectKind? {
        if let known = lookups.withLock({ $0.kinds[subject] }) { return known }
        let kind = try db.inDatabase { db in
            try String.fetchOne(try db.cachedStatement(sql: """
                SELECT type FROM records WHERE subject = ? AND type IN ('program.announced', 'facility.announced') LIMIT 1
                """), arguments: [subject]).map { $0 == "program.announced" ? SubjectKind.program : .facility }
        }
        lookups.withLock { $0.kinds[subject] = .some(kind) }
        return kind
    }

    package func hasTarget(subject: String, milestone: String) throws -> Bool {
        let key = subject + "\u{0}" + milestone
        if let known = lookups.withLock({ $0.targets[key] }) { return known }
        let found = try db.inDatabase { db in
            try Bool.fetchOne(try db.cachedStatement(sql: """
                SELECT EXISTS (SELECT 1 FROM records WHERE subject = ? AND type = 'target.set' AND milestone = ?)
                """), arguments: [subject, milestone]) ?? false
        }
        lookups.withLock { $0.targets[key] = found }
        return found
    }
}

/// Memoised subject lookups (cleared by every catch-up).
struct Lookups {
    var kinds: [String: SubjectKind?] = [:]
    var targets: [String: Bool] = [:]
}

final class Protected<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func withLock<R>(_ body: (inout T) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
