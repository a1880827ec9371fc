import CanonicalJSON
import Foundation
import GRDB
import MilestoneLedger
import MilestoneModel

/// The read models as the queries see them, whichever store holds them: the
/// SQLite file beside the ledger (``ReadModels``) or a PostgreSQL database
/// (``PostgresReadModels``).
///
/// Both hold the same rows, made by the one projector (``Projector``): the
/// records, the event versions and the subject summaries, byte for byte. A
/// store only reads its rows its own way (the requirements below: SQL and
/// the driver); everything that makes an answer out of them — the rules of
/// docs/events.md (``Rules``), the summary layout (``SubjectSummary/View``),
/// the publication clock's replay (``Replay``) — is in the extension below,
/// once, for both.
package protocol ReadModelStore: AnyObject {
    /// The last record the read models hold.
    func head() throws -> ChainHead?
    /// The seq of the last record recorded at or before `time` (all, when nil).
    func knownSeq(at time: Timestamp?) throws -> Int
    /// Every record up to `seq`, for an in-memory replay.
    func replayRecords(upTo seq: Int) throws -> [ReplayRecord]
    /// Each subject's summary in `range`, in subject (byte) order, each checked against its layout.
    func scanSummaries(_ range: SubjectRange, with part: SubjectSummary.Part,
                       _ body: (UnsafeBufferPointer<UInt8>, SubjectSummary.View) throws -> Void) throws
    /// The programs announced by the point of view's date, known then, with the latest commitment.
    func programRows(_ pov: PointOfView) throws -> [ProgramRow]
    /// The dated versions known in `pov`, dated on or before its date, in (date, seq) order.
    func timelineLines(_ pov: PointOfView, subject: String?) throws -> [EventLine]
    /// Known events, corrections and retractions dated on or before the date, filtered, in seq order.
    func eventLines(_ pov: PointOfView, subjects: [String], types: [String], since: CalendarDate?, until: CalendarDate?) throws -> [EventLine]
    /// The recorded time of each seq in the span of `seqs`.
    func recordedAt(seqs: [Int]) throws -> [Int: String]
    func log(since: Timestamp?, until: Timestamp?, limit: Int?, newestFirst: Bool) throws -> [ReadModels.LogEntry]
    func subjects() throws -> [String]
    func event(id: String) throws -> ReadModels.EventDetail?
    /// The subjects cut in two for scanning on two threads (one range: not worth it).
    func halves(minimum: Int) throws -> [SubjectRange]
    /// Another connection, for reading on another thread.
    func reader() throws -> any ReadModelStore
}

/// A program as `status` reads it, before the totals.
package struct ProgramRow {
    var subject: String
    var name: String?
    var sponsor: String?
    var amountValue: Int64?
    var amountCurrency: String?
    var amountQualifier: String?
    var horizon: String?
    /// The latest investment committed: "value currency qualifier".
    var committed: String?
}

extension ReadModelStore {
    /// What `each` hands over, in a list.
    func collect<T>(_ each: ((T) throws -> Void) throws -> Void) rethrows -> [T] {
        var out: [T] = []
        try each { out.append($0) }
        return out
    }

    /// `status`: every facility that appears as of D, with its phase and since when.
    ///
    /// One scan of the subject summaries: each subject's lifecycle and control
    /// versions known at the point of view and dated on or before D go through
    /// ``Rules/PhaseInputs`` (the rule, in the model layer); its names come
    /// from the announcement version known then.
    package func facilities(_ pov: PointOfView) throws -> [FacilityStatus] {
        try collect { body in try forEachFacility(pov) { try body($0.status) } }
    }

    /// ``facilities(_:)`` one at a time, in subject order, their texts as bytes.
    package func forEachFacility(_ pov: PointOfView, subjects: SubjectRange = .all, _ body: (FacilityRow) throws -> Void) throws {
        if pov.publishedBy != nil {
            for f in Replay.facilities(try knownEvents(pov), asOf: pov.asOf) where subjects.contains(f.subject) { try FacilityRow.with(f, body) }
            return
        }
        let s = pov.knownSeq
        try scanSummaries(subjects, with: .announced) { subject, summary in
            var inputs = Rules.PhaseInputs()
            summary.forEachLifecycle { type, date, precision, seq, from, to in
                if date <= pov.asOf, from <= s, to > s { inputs.add(type, date: date, precision: precision, seq: seq) }
            }
            guard let (phase, since, precision) = inputs.phase else { return }
            let (name, kind, op, program) = summary.announcement(knownAt: s)
            try body(FacilityRow(subject: subject, name: name, kind: kind, operatorName: op, program: program, phase: phase,
                                 phaseDate: since, phasePrecision: precision))
        }
    }

    /// The events known in `pov`, replayed in memory from the records
    /// (``Replay/known(_:upTo:publishedBy:)``): what the publication clock
    /// needs, since a correction may count before the corrections recorded ahead of it.
    package func knownEvents(_ pov: PointOfView) throws -> [KnownEvent] {
        Replay.known(try replayRecords(upTo: pov.knownSeq), upTo: pov.knownSeq, publishedBy: pov.publishedBy)
    }

    /// `status`: every program announced on or before D, with its totals.
    package func programs(_ pov: PointOfView, facilities: [FacilityStatus]) throws -> [ProgramStatus] {
        if pov.publishedBy != nil { return Replay.programs(try knownEvents(pov), asOf: pov.asOf) }
        var counts: [String: [FacilityPhase: Int]] = [:]
        for f in facilities { if let p = f.program { counts[p, default: [:]][f.phase, default: 0] += 1 } }
        return try programRows(pov).map { row in
            let announced = ReadModels.amount(row.amountValue, row.amountCurrency, row.amountQualifier)
            let latest = row.committed?.split(separator: " ").map(String.init)
            let committed = latest.flatMap { l in ReadModels.amount(Int64(l[0]), l[1], l[2]) } ?? announced
            return ProgramStatus(subject: row.subject, name: row.name, sponsor: row.sponsor, announced: announced, committed: committed,
                                 horizon: row.horizon.flatMap(CalendarDate.init), facilities: counts[row.subject] ?? [:])
        }
    }

    /// `targets`: every (subject, milestone) with a target dated on or before D.
    ///
    /// One scan of the subject summaries. A subject's target versions come by
    /// milestone, then by date and seq: of those known and dated on or before
    /// D, the first is the original promise and the last the current one; the
    /// milestone's actual date is the first lifecycle event that reached it
    /// (known, on or before D). ``Rules/target(actual:dueLatest:originalLatest:asOf:)`` runs here.
    package func targets(_ pov: PointOfView) throws -> [TargetStatus] {
        try collect { body in try forEachTarget(pov) { try body($0.status) } }
    }

    /// ``targets(_:)`` one at a time, by subject then milestone, their texts as bytes.
    package func forEachTarget(_ pov: PointOfView, subjects: SubjectRange = .all, _ body: (TargetRow) throws -> Void) throws {
        if pov.publishedBy != nil {
            for t in Replay.targets(try knownEvents(pov), asOf: pov.asOf) where subjects.contains(t.subject) { try TargetRow.with(t, body) }
            return
        }
        let s = pov.knownSeq
        // When each milestone was first reached (reset for each subject).
        var evidence = Rules.MilestoneEvidence()
        try scanSummaries(subjects, with: .targets) { subject, summary in
            evidence.reset()
            summary.forEachLifecycle { type, date, precision, seq, from, to in
                if date <= pov.asOf, from <= s, to > s { evidence.add(type, date: date, precision: precision, seq: seq) }
            }
            try summary.forEachTarget { milestone, versions in
                var first: CalendarDate?
                var current: (earliest: CalendarDate, latest: CalendarDate)?
                var count = 0
                let valid = versions.forEach { date, earliest, latest, from, to in
                    guard date <= pov.asOf, from <= s, to > s else { return }
                    if first == nil { first = latest }
                    current = (earliest, latest)
                    count += 1
                }
                guard valid else { throw SubjectSummary.damaged(SubjectSummary.Part.targets.table, Array(subject), first: nil) }
                guard let current, let first else { return }
                let actual = EventType(utf8: milestone).flatMap(evidence.actual(of:))
                let rule = Rules.target(actual: actual, dueLatest: current.latest, originalLatest: first, asOf: pov.asOf)
                try body(TargetRow(subject: subject, milestone: milestone, dueEarliest: current.earliest, dueLatest: current.latest,
                                   actual: actual, state: rule.state, slipDays: rule.slipDays,
                                   slipFromOriginalDays: rule.slipFromOriginalDays, revisions: count - 1))
            }
        }
    }

    /// `timeline`: the dated events (as known) on or before D, in date order.
    package func timeline(_ pov: PointOfView, subject: String? = nil) throws -> [EventLine] {
        if pov.publishedBy != nil {
            return try lines(Replay.timeline(try knownEvents(pov), asOf: pov.asOf, subject: subject))
        }
        return try timelineLines(pov, subject: subject)
    }

    /// Known events as lines, with their records' times.
    func lines(_ events: [KnownEvent]) throws -> [EventLine] {
        let times = try recordedAt(seqs: events.map(\.seq))
        return events.map { EventLine($0.object, seq: $0.seq, recordedAt: times[$0.seq] ?? "") }
    }

    /// `events`: every event known (corrections applied, retracted ones left
    /// out) and every correction and retraction, dated on or before D, in
    /// record order. A filter given several values keeps any of them.
    package func events(_ pov: PointOfView, subjects: [String] = [], types: [String] = [],
                        since: CalendarDate? = nil, until: CalendarDate? = nil) throws -> [EventLine] {
        guard let publishedBy = pov.publishedBy else {
            return try eventLines(pov, subjects: subjects, types: types, since: since, until: until)
        }
        let records = try replayRecords(upTo: pov.knownSeq)
        var lines = try self.lines(Replay.known(records, upTo: pov.knownSeq, publishedBy: publishedBy))
        for r in records where [EventType.eventCorrected.rawValue, EventType.eventRetracted.rawValue].contains(r.event["type"]?.stringValue)
            && Rules.publicationDate(of: r.event, recordedAt: r.recordedAt) <= publishedBy {
            lines.append(EventLine(r.event, seq: r.seq, recordedAt: r.recordedAt.description))
        }
        return lines.filter { l in
            guard let d = CalendarDate(l.date), d <= pov.asOf else { return false }
            return (subjects.isEmpty || subjects.contains(l.subject ?? "")) && (types.isEmpty || types.contains(l.type))
                && since.map { d >= $0 } ?? true && until.map { d <= $0 } ?? true
        }.sorted { $0.seq < $1.seq }
    }

    /// Scans the subjects' summaries in two halves at once, when there are
    /// enough of them (`minimum`; the publication clock, which replays in
    /// memory, is never split): `first` runs on this thread over the first
    /// half (or over all), `rest` on another thread, through a connection of
    /// its own, over the second half, and its result is returned (nil when
    /// there was one part only). The caller puts the two together in order.
    package func inHalves<T>(_ pov: PointOfView, minimum: Int = SubjectSummary.parallelFrom,
                             first: (any ReadModelStore, SubjectRange) throws -> Void,
                             rest: @escaping (any ReadModelStore, SubjectRange) throws -> T) throws -> T? {
        let parts = pov.publishedBy != nil ? [.all] : try halves(minimum: minimum)
        guard parts.count == 2 else {
            try first(self, .all)
            return nil
        }
        let reader = try self.reader()
        let job = BackgroundJob { try rest(reader, parts[1]) }
        try first(self, parts[0])
        return try job.result()
    }
}

extension ReadModels: ReadModelStore {
    package func scanSummaries(_ range: SubjectRange, with part: SubjectSummary.Part,
                               _ body: (UnsafeBufferPointer<UInt8>, SubjectSummary.View) throws -> Void) throws {
        try db.read { db in try SubjectSummary.scan(db, range, with: part, body) }
    }

    package func reader() throws -> any ReadModelStore { try ReadModels(readerOf: self) }
}
