import CanonicalJSON
import Foundation
import MilestoneLedger
import MilestoneModel
import PostgresNIO

/// The rows the queries gather, read from PostgreSQL: the same SQL as
/// SQLite's (Queries.swift) in PostgreSQL's dialect, over the same tables.
extension PostgresReadModels: ReadModelStore {
    package func knownSeq(at time: Timestamp?) throws -> Int {
        if let time {
            return try session.query("""
                SELECT seq FROM records WHERE recorded_at <= $1 ORDER BY recorded_at DESC, seq DESC LIMIT 1
                """, PostgresReadModels.binds(time.description)).first?.decode(Int.self) ?? 0
        }
        return try session.query("SELECT max(seq) FROM records").first?.decode(Int?.self) ?? 0
    }

    package func replayRecords(upTo seq: Int) throws -> [ReplayRecord] {
        try session.query("SELECT seq, recorded_at, event FROM records WHERE seq <= $1 ORDER BY seq", PostgresReadModels.binds(seq)).map { row in
            let (seq, at, event) = try row.decode((Int, String, String).self)
            guard let ts = Timestamp(at), let object = try JSONReader.parse(event).objectValue else {
                throw ReadModelsServiceError(message: "\(name): records holds a record that is not an event (seq \(seq)); rebuild with --rebuild", exitCode: 1)
            }
            return ReplayRecord(seq: seq, recordedAt: ts, event: object)
        }
    }

    /// The rows whose first subject is in `range`, as SQLite's scan reads
    /// them (``SubjectSummary/scan(_:_:with:_:)``), decoded by the same code.
    package func scanSummaries(_ range: SubjectRange, with part: SubjectSummary.Part,
                               _ body: (UnsafeBufferPointer<UInt8>, SubjectSummary.View) throws -> Void) throws {
        let table = part.table
        let columns = "first, subjects, summaries FROM \(table)"
        let (sql, binds) = range.before == nil
            ? ("SELECT \(columns) WHERE first >= $1 ORDER BY first", PostgresReadModels.binds(range.from))
            : ("SELECT \(columns) WHERE first >= $1 AND first < $2 ORDER BY first", PostgresReadModels.binds(range.from, range.before))
        var last: [UInt8]?
        // Each row is worked on as it arrives (a table of summaries is megabytes).
        try session.forEachRow(sql, binds) { row in
            let cells = row.makeRandomAccess()
            guard let key = cells[0].bytes, let subjects = try? cells[1].decode(Int.self), let summaries = cells[2].bytes else {
                throw SubjectSummary.damaged(table, nil, first: cells[0].bytes.map { Array($0.readableBytesView) })
            }
            try key.withUnsafeReadableBytes { k in
                try summaries.withUnsafeReadableBytes { s in
                    try SubjectSummary.forEachEntry(key: k.bindMemory(to: UInt8.self), subjects: subjects, row: s, table: table, after: &last) {
                        subject, lifecycle, other in
                        let view = SubjectSummary.View(lifecycle: lifecycle, other: other, part: part)
                        guard view.isWellFormed else { throw SubjectSummary.damaged(table, Array(subject), first: Array(k.bindMemory(to: UInt8.self))) }
                        try body(subject, view)
                    }
                }
            }
        }
    }

    /// "This version is the one known at $1" (the point of view's seq).
    static func known(_ v: String) -> String {
        "\(v).from_seq <= $1 AND (\(v).to_seq IS NULL OR \(v).to_seq > $1)"
    }

    package func programRows(_ pov: PointOfView) throws -> [ProgramRow] {
        try session.query("""
            SELECT p.subject, p.name, p.sponsor, p.amount_value, p.amount_currency, p.amount_qualifier, p.horizon,
                   (SELECT i.amount_value || ' ' || i.amount_currency || ' ' || i.amount_qualifier FROM event_versions i
                    WHERE i.type = 'investment.committed' AND i.subject = p.subject AND i.date <= $2 AND \(PostgresReadModels.known("i"))
                    ORDER BY i.date DESC, i.event_seq DESC LIMIT 1)
            FROM event_versions p
            WHERE p.type = 'program.announced' AND p.date <= $2 AND \(PostgresReadModels.known("p"))
            ORDER BY p.subject
            """, PostgresReadModels.binds(pov.knownSeq, pov.asOf.description)).map { row in
            let c = try row.decode((String, String?, String?, Int64?, String?, String?, String?, String?).self)
            return ProgramRow(subject: c.0, name: c.1, sponsor: c.2, amountValue: c.3, amountCurrency: c.4, amountQualifier: c.5,
                              horizon: c.6, committed: c.7)
        }
    }

    package func timelineLines(_ pov: PointOfView, subject: String?) throws -> [EventLine] {
        var sql = """
            SELECT v.event_seq, r.recorded_at, COALESCE(v.event, r.event) FROM event_versions v JOIN records r ON r.seq = v.event_seq
            WHERE v.date <= $2 AND \(PostgresReadModels.known("v"))
            """
        var binds = PostgresReadModels.binds(pov.knownSeq, pov.asOf.description)
        if let subject {
            sql += " AND v.subject = $3"
            binds.append(subject)
        }
        sql += " ORDER BY v.date, v.event_seq"
        return try lines(session.query(sql, binds))
    }

    func lines(_ rows: [PostgresRow]) throws -> [EventLine] {
        try rows.map { row in
            let (seq, at, event) = try row.decode((Int, String, String).self)
            guard let e = try JSONReader.parse(event).objectValue else {
                throw ReadModelsServiceError(message: "\(name): records holds a record that is not an event (seq \(seq)); rebuild with --rebuild", exitCode: 1)
            }
            return EventLine(e, seq: seq, recordedAt: at)
        }
    }

    package func eventLines(_ pov: PointOfView, subjects: [String], types: [String], since: CalendarDate?, until: CalendarDate?) throws -> [EventLine] {
        var binds = PostgresReadModels.binds(pov.knownSeq, pov.asOf.description)
        func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        let only = subjects.isEmpty ? "" : " AND subject = ANY(\(bind(subjects)))"
        var sql = """
            SELECT seq, recorded_at, event FROM (
              SELECT v.event_seq AS seq, r.recorded_at, COALESCE(v.event, r.event) AS event, v.type, v.date
              FROM event_versions v JOIN records r ON r.seq = v.event_seq
              WHERE \(PostgresReadModels.known("v"))\(subjects.isEmpty ? "" : " AND v.subject = ANY($3)")
              UNION ALL
              SELECT seq, recorded_at, event, type, date FROM records
              WHERE type IN ('event.corrected', 'event.retracted') AND seq <= $1\(only)) AS e
            WHERE date <= $2
            """
        if !types.isEmpty { sql += " AND type = ANY(\(bind(types)))" }
        if let since { sql += " AND date >= \(bind(since.description))" }
        if let until { sql += " AND date <= \(bind(until.description))" }
        sql += " ORDER BY seq"
        return try lines(session.query(sql, binds))
    }

    package func recordedAt(seqs: [Int]) throws -> [Int: String] {
        guard let low = seqs.min(), let high = seqs.max() else { return [:] }
        var out: [Int: String] = [:]
        for row in try session.query("SELECT seq, recorded_at FROM records WHERE seq BETWEEN $1 AND $2", PostgresReadModels.binds(low, high)) {
            let (seq, at) = try row.decode((Int, String).self)
            out[seq] = at
        }
        return out
    }

    package func log(since: Timestamp?, until: Timestamp?, limit: Int?, newestFirst: Bool) throws -> [ReadModels.LogEntry] {
        var sql = "SELECT seq, recorded_at, type, subject, id, event::json ->> 'summary' FROM records WHERE true"
        var binds = PostgresBindings()
        if let since {
            binds.append(since.description)
            sql += " AND recorded_at >= $\(binds.count)"
        }
        if let until {
            binds.append(until.description)
            sql += " AND recorded_at <= $\(binds.count)"
        }
        sql += " ORDER BY seq DESC"
        if let limit { sql += " LIMIT \(limit)" }
        let rows = try session.query(sql, binds).map { row in
            let c = try row.decode((Int, String, String, String?, String, String?).self)
            return ReadModels.LogEntry(seq: c.0, recordedAt: c.1, type: c.2, subject: c.3, id: c.4, summary: c.5)
        }
        return newestFirst ? rows : rows.reversed()
    }

    package func subjects() throws -> [String] {
        try session.query("SELECT subject FROM records WHERE type IN ('program.announced', 'facility.announced') ORDER BY subject").map {
            try $0.decode(String.self)
        }
    }

    package func event(id: String) throws -> ReadModels.EventDetail? {
        guard let r = try session.query("SELECT seq, recorded_at, sha256, event FROM records WHERE id = $1", PostgresReadModels.binds(id)).first
        else { return nil }
        let (seq, at, sha, event) = try r.decode((Int, String, String, String).self)
        let current = try session.query("""
            SELECT COALESCE(v.event, r.event) FROM event_versions v JOIN records r ON r.seq = v.event_seq
            WHERE v.event_seq = $1 AND v.to_seq IS NULL
            """, PostgresReadModels.binds(seq)).first?.decode(String.self)
        func parsed(_ s: String) -> JSONValue { (try? JSONReader.parse(s)) ?? .null }
        var detail = ReadModels.EventDetail(seq: seq, recordedAt: at, sha256: sha, recorded: parsed(event), current: current.map(parsed),
                                            corrections: [], retraction: nil)
        for x in try session.query("SELECT seq, id, recorded_at, event, type FROM records WHERE refers_to = $1 ORDER BY seq",
                                   PostgresReadModels.binds(id)) {
            let c = try x.decode((Int, String, String, String, String).self)
            let entry = (seq: c.0, id: c.1, recordedAt: c.2, event: parsed(c.3))
            if c.4 == EventType.eventRetracted.rawValue { detail.retraction = entry } else { detail.corrections.append(entry) }
        }
        return detail
    }

    /// One scan, on this connection: two halves would take a second
    /// connection (and its authentication) for each command.
    package func halves(minimum: Int) throws -> [SubjectRange] { [.all] }

    package func reader() throws -> any ReadModelStore { try PostgresReadModels(location, readOnly: true) }
}
