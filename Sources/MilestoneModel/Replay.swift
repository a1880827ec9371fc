import CanonicalJSON

/// Facility phases (docs/events.md, "Facilities and their lifecycle").
package enum FacilityPhase: String, CaseIterable, Sendable, Comparable {
    case announced
    case siteSecured = "site_secured"
    case underConstruction = "under_construction"
    case built
    case producing
    case volumeProduction = "volume_production"
    case paused
    case cancelled

    /// Lifecycle order; 0 for paused and cancelled.
    package var rank: Int {
        switch self {
        case .announced: 1
        case .siteSecured: 2
        case .underConstruction: 3
        case .built: 4
        case .producing: 5
        case .volumeProduction: 6
        case .paused, .cancelled: 0
        }
    }

    /// The lifecycle phase an event type reaches, if any.
    package init?(reachedBy type: EventType) {
        switch type {
        case .facilityAnnounced: self = .announced
        case .siteSecured: self = .siteSecured
        case .constructionStarted: self = .underConstruction
        case .constructionCompleted: self = .built
        case .productionStarted: self = .producing
        case .productionVolume: self = .volumeProduction
        default: return nil
        }
    }

    package static func < (a: FacilityPhase, b: FacilityPhase) -> Bool { a.rank < b.rank }
}

/// A target's state as of a date (docs/events.md, "Targets").
public enum TargetState: String, Sendable, CaseIterable {
    case met, missed, undetermined, overdue, pending
}

extension CalendarDate {
    /// The last day of the interval that a date reported at `precision`
    /// covers: the day itself, or the end of its month, quarter or year
    /// (the date is the first day of that period; docs/events.md).
    package func end(at precision: DatePrecision) -> CalendarDate {
        // Computed within the period itself (the next one may be past year 9999).
        let (y, m, _) = components
        let last = switch precision {
        case .day: m
        case .month: m
        case .quarter: (m - 1) / 3 * 3 + 3
        case .year: 12
        }
        guard precision != .day else { return self }
        return CalendarDate(year: y, month: last, day: CalendarDate.daysIn(month: last, year: y)) ?? self
    }

    /// The date as precisely as it is known: `2026`, `2026-Q1`, `2026-03`, `2026-03-05`.
    package func label(at precision: DatePrecision) -> String {
        let (y, m, _) = components
        switch precision {
        case .day: return description
        case .month: return String(description.prefix(7))
        case .quarter: return pad(y, 4) + "-Q\((m - 1) / 3 + 1)"
        case .year: return pad(y, 4)
        }
    }
}

/// The rules that turn what is known about a facility or a target into its
/// state: one definition, used by the in-memory replay and by the SQL read
/// models alike (the SQL only gathers their inputs).
package enum Rules {
    /// A facility's phase as of D: its most advanced lifecycle phase reached
    /// by an event dated on or before D (`top`, first reached on `reached`),
    /// unless the latest pause/resume/cancel dated on or before D (`control`)
    /// is a pause or a cancel. The date comes with its event's precision.
    package static func phase(top: FacilityPhase, reached: (CalendarDate, DatePrecision),
                             control: (type: EventType, date: CalendarDate, precision: DatePrecision)?)
        -> (phase: FacilityPhase, since: CalendarDate, precision: DatePrecision) {
        switch control?.type {
        case .facilityPaused?: (.paused, control!.date, control!.precision)
        case .facilityCancelled?: (.cancelled, control!.date, control!.precision)
        default: (top, reached.0, reached.1)
        }
    }

    /// The inputs of ``phase(top:reached:control:)`` gathered from one
    /// facility's events dated on or before D, in any order: the read models
    /// feed it from an index scan, the in-memory replay from its lists.
    package struct PhaseInputs {
        var top: FacilityPhase?
        /// The first event (by date, then seq) that reached `top`.
        var reached = (date: CalendarDate(days: 0), seq: 0, precision: DatePrecision.day)
        var control: (type: EventType, date: CalendarDate, seq: Int, precision: DatePrecision)?

        package init() {}

        package mutating func add(_ type: EventType, date: CalendarDate, precision: DatePrecision, seq: Int) {
            if let p = FacilityPhase(reachedBy: type) {
                if top == nil || p > top! {
                    top = p
                    reached = (date, seq, precision)
                } else if p == top!, (date, seq) < (reached.date, reached.seq) {
                    reached = (date, seq, precision)
                }
            } else if type.isControl {
                if control == nil || (date, seq) > (control!.date, control!.seq) { control = (type, date, seq, precision) }
            }
        }

        /// Nil when no lifecycle event was seen: the facility does not appear as of D.
        package var phase: (phase: FacilityPhase, since: CalendarDate, precision: DatePrecision)? {
            top.map { Rules.phase(top: $0, reached: (reached.date, reached.precision),
                                  control: control.map { ($0.type, $0.date, $0.precision) }) }
        }
    }

    /// What one subject's lifecycle events dated on or before D say about
    /// when each target milestone happened: for each lifecycle phase, the
    /// first event (by date, then seq) that reached it.
    package struct MilestoneEvidence {
        /// By phase rank (2 site secured … 6 volume production).
        var first = [(date: CalendarDate, seq: Int, precision: DatePrecision)?](repeating: nil, count: 7)

        package init() {}

        package mutating func reset() { for k in first.indices { first[k] = nil } }

        package mutating func add(_ type: EventType, date: CalendarDate, precision: DatePrecision, seq: Int) {
            guard let rank = FacilityPhase(reachedBy: type)?.rank, rank >= 2 else { return }
            if let f = first[rank], (f.date, f.seq) <= (date, seq) { return }
            first[rank] = (date, seq, precision)
        }

        /// The milestone's actual interval, or what a later milestone implies.
        package func actual(of milestone: EventType) -> Actual? {
            guard let rank = FacilityPhase(reachedBy: milestone)?.rank, rank >= 2 else { return nil }
            if let f = first[rank] { return Actual(earliest: f.date, latest: f.date.end(at: f.precision), impliedBy: nil) }
            // The earliest (by date, then seq) event of a later milestone.
            var best: (date: CalendarDate, seq: Int, precision: DatePrecision, rank: Int)?
            for r in (rank + 1)..<first.count {
                if let f = first[r], best == nil || (f.date, f.seq) < (best!.date, best!.seq) { best = (f.date, f.seq, f.precision, r) }
            }
            guard let best else { return nil }
            return Actual(earliest: nil, latest: best.date.end(at: best.precision), impliedBy: Rules.milestoneTypes[best.rank])
        }
    }

    /// The event type that reaches each phase rank (nil for rank 0 and 1: no target milestone).
    static let milestoneTypes: [EventType?] = [nil, nil, .siteSecured, .constructionStarted, .constructionCompleted,
                                                .productionStarted, .productionVolume]

    /// When a milestone happened, as an interval: `earliest` (nil when only
    /// implied by a later milestone) … `latest`.
    package struct Actual: Sendable, Equatable {
        package var earliest: CalendarDate?
        package var latest: CalendarDate
        package var impliedBy: EventType?
        package init(earliest: CalendarDate?, latest: CalendarDate, impliedBy: EventType?) {
            self.earliest = earliest
            self.latest = latest
            self.impliedBy = impliedBy
        }
    }

    /// A target's state as of D, given when the milestone happened (or what
    /// implies it), the current `due.latest`, and the first target's. Slips
    /// are certain bounds: nil when the state is undetermined or pending.
    package static func target(actual: Actual?, dueLatest: CalendarDate, originalLatest: CalendarDate,
                              asOf: CalendarDate) -> (state: TargetState, slipDays: Int?, slipFromOriginalDays: Int?) {
        // Differences of days as Int: no two Int32 day counts can overflow it.
        func days(_ a: CalendarDate, _ b: CalendarDate) -> Int { Int(a.days) - Int(b.days) }
        if let actual {
            if actual.latest <= dueLatest {
                return (.met, days(actual.latest, dueLatest), days(actual.latest, originalLatest))
            }
            if let earliest = actual.earliest, earliest > dueLatest {
                return (.missed, days(earliest, dueLatest), days(earliest, originalLatest))
            }
            return (.undetermined, nil, nil)
        }
        if asOf > dueLatest {
            return (.overdue, days(asOf, dueLatest), days(asOf, originalLatest))
        }
        return (.pending, nil, nil)
    }

    /// An event's publication date (docs/events.md, "Publication time"): the
    /// earliest `published` among its sources, else the day it was recorded.
    package static func publicationDate(of event: JSONObject, recordedAt: Timestamp) -> CalendarDate {
        var earliest: CalendarDate?
        for s in event["sources"]?.arrayValue ?? [] {
            if let d = s.objectValue?["published"]?.stringValue.flatMap(CalendarDate.init), earliest == nil || d < earliest! { earliest = d }
        }
        return earliest ?? recordedAt.date
    }
}

/// An event as known at some moment: its fields with every correction known
/// by then applied (retracted events are simply absent).
package struct KnownEvent: Sendable, Equatable {
    package var seq: Int
    package var id: String
    package var type: EventType
    package var subject: String
    package var date: CalendarDate
    package var precision: DatePrecision
    /// The effective event object.
    package var object: JSONObject

    package init(seq: Int, object: JSONObject) {
        self.seq = seq
        self.object = object
        id = object["id"]?.stringValue ?? ""
        type = EventType(rawValue: object["type"]?.stringValue ?? "") ?? .ledgerCreated
        subject = object["subject"]?.stringValue ?? ""
        date = object["date"]?.stringValue.flatMap(CalendarDate.init) ?? CalendarDate(days: 0)
        precision = object["precision"]?.stringValue.flatMap(DatePrecision.init) ?? .day
    }

    package var name: String? { object["name"]?.stringValue }
}

/// One record as the read side replays it.
package struct ReplayRecord: Sendable {
    package var seq: Int
    package var recordedAt: Timestamp
    package var event: JSONObject
    package init(seq: Int, recordedAt: Timestamp, event: JSONObject) {
        self.seq = seq
        self.recordedAt = recordedAt
        self.event = event
    }
}

package struct FacilityStatus: Sendable, Equatable {
    package var subject: String
    package var name: String?
    package var kind: String?
    package var operatorName: String?
    package var program: String?
    package var phase: FacilityPhase
    package var phaseDate: CalendarDate
    package var phasePrecision: DatePrecision

    package init(subject: String, name: String?, kind: String?, operatorName: String?, program: String?, phase: FacilityPhase,
                phaseDate: CalendarDate, phasePrecision: DatePrecision) {
        self.subject = subject
        self.name = name
        self.kind = kind
        self.operatorName = operatorName
        self.program = program
        self.phase = phase
        self.phaseDate = phaseDate
        self.phasePrecision = phasePrecision
    }
}

package struct ProgramStatus: Sendable, Equatable {
    package var subject: String
    package var name: String?
    package var sponsor: String?
    /// The amount as announced.
    package var announced: JSONObject?
    /// The latest `investment.committed` dated on or before D, else the announced amount.
    package var committed: JSONObject?
    package var horizon: CalendarDate?
    /// Facilities of the program by phase (only those that appear as of D).
    package var facilities: [FacilityPhase: Int]

    package init(subject: String, name: String?, sponsor: String?, announced: JSONObject?, committed: JSONObject?, horizon: CalendarDate?, facilities: [FacilityPhase: Int]) {
        self.subject = subject
        self.name = name
        self.sponsor = sponsor
        self.announced = announced
        self.committed = committed
        self.horizon = horizon
        self.facilities = facilities
    }
}

package struct TargetStatus: Sendable, Equatable {
    package var subject: String
    package var milestone: String
    package var dueEarliest: CalendarDate
    package var dueLatest: CalendarDate
    /// When the milestone happened: `actual` … `actualLatest` (docs/events.md, "Targets").
    package var actual: CalendarDate?
    package var actualLatest: CalendarDate?
    /// The later milestone that implies this one, when none of its own is known.
    package var impliedBy: EventType?
    package var state: TargetState
    package var slipDays: Int?
    package var slipFromOriginalDays: Int?
    package var revisions: Int

    package init(subject: String, milestone: String, dueEarliest: CalendarDate, dueLatest: CalendarDate, actual: Rules.Actual?,
                state: TargetState, slipDays: Int?, slipFromOriginalDays: Int?, revisions: Int) {
        self.subject = subject
        self.milestone = milestone
        self.dueEarliest = dueEarliest
        self.dueLatest = dueLatest
        self.actual = actual?.earliest
        self.actualLatest = actual?.latest
        self.impliedBy = actual?.impliedBy
        self.state = state
        self.slipDays = slipDays
        self.slipFromOriginalDays = slipFromOriginalDays
        self.revisions = revisions
    }
}

/// The rules of docs/events.md, as plain functions over known events: the one
/// definition that the SQL read models are tested against.
package enum Replay {
    /// The events known once records up to `knownSeq` are in: corrections
    /// applied in record order, retracted events removed.
    ///
    /// With `publishedBy` (docs/events.md, "Publication time"), only what had
    /// been published by then counts: a correction or retraction by its own
    /// sources, an event by its sources as corrected in this view.
    package static func known(_ records: [ReplayRecord], upTo knownSeq: Int = .max, publishedBy: CalendarDate? = nil) -> [KnownEvent] {
        var events: [String: KnownEvent] = [:]
        var recordedAt: [String: Timestamp] = [:]
        var order: [String] = []
        for r in records where r.seq <= knownSeq {
            guard let type = r.event["type"]?.stringValue.flatMap(EventType.init), type != .ledgerCreated else { continue }
            if let publishedBy, type == .eventCorrected || type == .eventRetracted,
               Rules.publicationDate(of: r.event, recordedAt: r.recordedAt) > publishedBy { continue }
            switch type {
            case .eventCorrected:
                guard let target = r.event["corrects"]?.stringValue, var e = events[target],
                      let changes = r.event["changes"]?.objectValue else { continue }
                e = KnownEvent(seq: e.seq, object: EventForm.apply(changes, to: e.object))
                events[target] = e
            case .eventRetracted:
                if let target = r.event["retracts"]?.stringValue { events[target] = nil }
            default:
                let e = KnownEvent(seq: r.seq, object: r.event)
                events[e.id] = e
                recordedAt[e.id] = r.recordedAt
                order.append(e.id)
            }
        }
        return order.compactMap { id in
            guard let e = events[id] else { return nil }
            if let publishedBy, Rules.publicationDate(of: e.object, recordedAt: recordedAt[id]!) > publishedBy { return nil }
            return e
        }
    }

    /// The seq of the last record recorded at or before `time`.
    package static func knownSeq(_ records: [ReplayRecord], at time: Timestamp) -> Int {
        records.last { $0.recordedAt <= time }?.seq ?? 0
    }

    static func byDateThenSeq(_ a: KnownEvent, _ b: KnownEvent) -> Bool {
        a.date != b.date ? a.date < b.date : a.seq < b.seq
    }

    /// Every facility that appears as of `asOf`, with its phase and since when.
    package static func facilities(_ events: [KnownEvent], asOf: CalendarDate) -> [FacilityStatus] {
        var bySubject: [String: [KnownEvent]] = [:]
        for e in events where e.date <= asOf { bySubject[e.subject, default: []].append(e) }
        var announcements: [String: KnownEvent] = [:]
        for e in events where e.type == .facilityAnnounced { announcements[e.subject] = e }
        var out: [FacilityStatus] = []
        for (subject, list) in bySubject {
            var inputs = Rules.PhaseInputs()
            for e in list { inputs.add(e.type, date: e.date, precision: e.precision, seq: e.seq) }
            guard let (phase, phaseDate, precision) = inputs.phase else { continue }
            let a = announcements[subject]
            out.append(FacilityStatus(subject: subject, name: a?.name, kind: a?.object["kind"]?.stringValue,
                                      operatorName: a?.object["operator"]?.stringValue, program: a?.object["program"]?.stringValue,
                                      phase: phase, phaseDate: phaseDate, phasePrecision: precision))
        }
        return out.sorted { $0.subject < $1.subject }
    }

    /// Every program announced on or before `asOf`, with its totals.
    package static func programs(_ events: [KnownEvent], asOf: CalendarDate) -> [ProgramStatus] {
        // One pass each (not one per program): the latest investment by subject, the facilities by program.
        var latestInvestment: [String: KnownEvent] = [:]
        for e in events where e.type == .investmentCommitted && e.date <= asOf {
            if let l = latestInvestment[e.subject], !byDateThenSeq(l, e) { continue }
            latestInvestment[e.subject] = e
        }
        var countsByProgram: [String: [FacilityPhase: Int]] = [:]
        for f in facilities(events, asOf: asOf) { if let p = f.program { countsByProgram[p, default: [:]][f.phase, default: 0] += 1 } }
        var out: [ProgramStatus] = []
        for p in events where p.type == .programAnnounced && p.date <= asOf {
            let investment = latestInvestment[p.subject]
            let counts = countsByProgram[p.subject] ?? [:]
            out.append(ProgramStatus(subject: p.subject, name: p.name, sponsor: p.object["sponsor"]?.stringValue,
                                     announced: p.object["amount"]?.objectValue,
                                     committed: investment?.object["amount"]?.objectValue ?? p.object["amount"]?.objectValue,
                                     horizon: p.object["horizon"]?.stringValue.flatMap(CalendarDate.init), facilities: counts))
        }
        return out.sorted { $0.subject < $1.subject }
    }

    /// Every target (subject, milestone) with a target event dated on or before `asOf`.
    package static func targets(_ events: [KnownEvent], asOf: CalendarDate) -> [TargetStatus] {
        var groups: [String: [KnownEvent]] = [:]
        for e in events where e.type.isTarget && e.date <= asOf {
            groups[e.subject + "\u{0}" + (e.object["milestone"]?.stringValue ?? ""), default: []].append(e)
        }
        // Each subject's milestones, gathered in one pass (not one pass per target).
        var evidenceBySubject: [String: Rules.MilestoneEvidence] = [:]
        for e in events where e.date <= asOf && FacilityPhase(reachedBy: e.type) != nil {
            evidenceBySubject[e.subject, default: Rules.MilestoneEvidence()].add(e.type, date: e.date, precision: e.precision, seq: e.seq)
        }
        var out: [TargetStatus] = []
        for (_, list) in groups {
            let sorted = list.sorted(by: byDateThenSeq)
            let first = sorted.first!
            let current = sorted.last!
            let milestone = current.object["milestone"]!.stringValue!
            let due = current.object["due"]!.objectValue!
            let earliest = CalendarDate(due["earliest"]!.stringValue!)!
            let latest = CalendarDate(due["latest"]!.stringValue!)!
            let originalLatest = CalendarDate(first.object["due"]!.objectValue!["latest"]!.stringValue!)!
            let evidence = evidenceBySubject[current.subject] ?? Rules.MilestoneEvidence()
            let actual = EventType(rawValue: milestone).flatMap(evidence.actual(of:))
            let (state, slip, slipOriginal) = Rules.target(actual: actual, dueLatest: latest, originalLatest: originalLatest, asOf: asOf)
            out.append(TargetStatus(subject: current.subject, milestone: milestone, dueEarliest: earliest, dueLatest: latest,
                                    actual: actual, state: state, slipDays: slip, slipFromOriginalDays: slipOriginal,
                                    revisions: sorted.count - 1))
        }
        return out.sorted { ($0.subject, $0.milestone) < ($1.subject, $1.milestone) }
    }

    /// The dated milestones (every domain event) as of `asOf`, in date order.
    package static func timeline(_ events: [KnownEvent], asOf: CalendarDate, subject: String? = nil) -> [KnownEvent] {
        events.filter { $0.date <= asOf && (subject == nil || $0.subject == subject) }.sorted(by: byDateThenSeq)
    }
}
