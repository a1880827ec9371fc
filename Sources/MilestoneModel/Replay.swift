import CanonicalJSON

/// Facility phases (events.md, "Facilities and their lifecycle").
public enum FacilityPhase: String, CaseIterable, Sendable, Comparable {
    case announced
    case siteSecured = "site_secured"
    case underConstruction = "under_construction"
    case built
    case producing
    case volumeProduction = "volume_production"
    case paused
    case cancelled

    /// Lifecycle order; 0 for paused and cancelled.
    public var rank: Int {
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
    public init?(reachedBy type: EventType) {
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

    public static func < (a: FacilityPhase, b: FacilityPhase) -> Bool { a.rank < b.rank }
}

/// A target's state as of a date (events.md, "Targets").
public enum TargetState: String, Sendable, CaseIterable {
    case met, missed, overdue, pending
}

/// The rules that turn what is known about a facility or a target into its
/// state: one definition, used by the in-memory replay and by the SQL read
/// models alike (the SQL only gathers their inputs).
public enum Rules {
    /// A facility's phase as of D: its most advanced lifecycle phase reached
    /// by an event dated on or before D (`top`, first reached on `reached`),
    /// unless the latest pause/resume/cancel dated on or before D (`control`)
    /// is a pause or a cancel.
    public static func phase(top: FacilityPhase, reached: CalendarDate,
                             control: (type: EventType, date: CalendarDate)?) -> (phase: FacilityPhase, since: CalendarDate) {
        switch control?.type {
        case .facilityPaused?: (.paused, control!.date)
        case .facilityCancelled?: (.cancelled, control!.date)
        default: (top, reached)
        }
    }

    /// The inputs of ``phase(top:reached:control:)`` gathered from one
    /// facility's events dated on or before D, in any order: the read models
    /// feed it from an index scan, the in-memory replay from its lists.
    public struct PhaseInputs {
        var top: FacilityPhase?
        var reached = CalendarDate(days: 0)
        var control: (type: EventType, date: CalendarDate, seq: Int)?

        public init() {}

        public mutating func add(_ type: EventType, date: CalendarDate, seq: Int) {
            if let p = FacilityPhase(reachedBy: type) {
                if top == nil || p > top! {
                    (top, reached) = (p, date)
                } else if p == top!, date < reached {
                    reached = date
                }
            } else if type.isControl {
                if control == nil || (date, seq) > (control!.date, control!.seq) { control = (type, date, seq) }
            }
        }

        /// Nil when no lifecycle event was seen: the facility does not appear as of D.
        public var phase: (phase: FacilityPhase, since: CalendarDate)? {
            top.map { Rules.phase(top: $0, reached: reached, control: control.map { ($0.type, $0.date) }) }
        }
    }

    /// A target's state as of D, given the date the milestone was first
    /// reached on or before D, the current `due.latest`, and the first target's.
    public static func target(actual: CalendarDate?, dueLatest: CalendarDate, originalLatest: CalendarDate,
                              asOf: CalendarDate) -> (state: TargetState, slipDays: Int?, slipFromOriginalDays: Int?) {
        // Differences of days as Int: no two Int32 day counts can overflow it.
        func days(_ a: CalendarDate, _ b: CalendarDate) -> Int { Int(a.days) - Int(b.days) }
        if let actual {
            return (actual <= dueLatest ? .met : .missed, days(actual, dueLatest), days(actual, originalLatest))
        }
        if asOf > dueLatest {
            return (.overdue, days(asOf, dueLatest), days(asOf, originalLatest))
        }
        return (.pending, nil, nil)
    }
}

/// An event as known at some moment: its fields with every correction known
/// by then applied (retracted events are simply absent).
public struct KnownEvent: Sendable, Equatable {
    public var seq: Int
    public var id: String
    public var type: EventType
    public var subject: String
    public var date: CalendarDate
    public var precision: DatePrecision
    /// The effective event object.
    public var object: JSONObject

    public init(seq: Int, object: JSONObject) {
        self.seq = seq
        self.object = object
        id = object["id"]?.stringValue ?? ""
        type = EventType(rawValue: object["type"]?.stringValue ?? "") ?? .ledgerCreated
        subject = object["subject"]?.stringValue ?? ""
        date = object["date"]?.stringValue.flatMap(CalendarDate.init) ?? CalendarDate(days: 0)
        precision = object["precision"]?.stringValue.flatMap(DatePrecision.init) ?? .day
    }

    public var name: String? { object["name"]?.stringValue }
}

/// One record as the read side replays it.
public struct ReplayRecord: Sendable {
    public var seq: Int
    public var recordedAt: Timestamp
    public var event: JSONObject
    public init(seq: Int, recordedAt: Timestamp, event: JSONObject) {
        self.seq = seq
        self.recordedAt = recordedAt
        self.event = event
    }
}

public struct FacilityStatus: Sendable, Equatable {
    public var subject: String
    public var name: String?
    public var kind: String?
    public var operatorName: String?
    public var program: String?
    public var phase: FacilityPhase
    public var phaseDate: CalendarDate

    public init(subject: String, name: String?, kind: String?, operatorName: String?, program: String?, phase: FacilityPhase, phaseDate: CalendarDate) {
        self.subject = subject
        self.name = name
        self.kind = kind
        self.operatorName = operatorName
        self.program = program
        self.phase = phase
        self.phaseDate = phaseDate
    }
}

public struct ProgramStatus: Sendable, Equatable {
    public var subject: String
    public var name: String?
    public var sponsor: String?
    /// The amount as announced.
    public var announced: JSONObject?
    /// The latest `investment.committed` dated on or before D, else the announced amount.
    public var committed: JSONObject?
    public var horizon: CalendarDate?
    /// Facilities of the program by phase (only those that appear as of D).
    public var facilities: [FacilityPhase: Int]

    public init(subject: String, name: String?, sponsor: String?, announced: JSONObject?, committed: JSONObject?, horizon: CalendarDate?, facilities: [FacilityPhase: Int]) {
        self.subject = subject
        self.name = name
        self.sponsor = sponsor
        self.announced = announced
        self.committed = committed
        self.horizon = horizon
        self.facilities = facilities
    }
}

public struct TargetStatus: Sendable, Equatable {
    public var subject: String
    public var milestone: String
    public var dueEarliest: CalendarDate
    public var dueLatest: CalendarDate
    public var actual: CalendarDate?
    public var state: TargetState
    public var slipDays: Int?
    public var slipFromOriginalDays: Int?
    public var revisions: Int

    public init(subject: String, milestone: String, dueEarliest: CalendarDate, dueLatest: CalendarDate, actual: CalendarDate?, state: TargetState, slipDays: Int?, slipFromOriginalDays: Int?, revisions: Int) {
        self.subject = subject
        self.milestone = milestone
        self.dueEarliest = dueEarliest
        self.dueLatest = dueLatest
        self.actual = actual
        self.state = state
        self.slipDays = slipDays
        self.slipFromOriginalDays = slipFromOriginalDays
        self.revisions = revisions
    }
}

/// The rules of events.md, as plain functions over known events: the one
/// definition that the SQL read models are tested against.
public enum Replay {
    /// The events known once records up to `knownSeq` are in: corrections
    /// applied in record order, retracted events removed.
    public static func known(_ records: [ReplayRecord], upTo knownSeq: Int = .max) -> [KnownEvent] {
        var events: [String: KnownEvent] = [:]
        var order: [String] = []
        for r in records where r.seq <= knownSeq {
            guard let type = r.event["type"]?.stringValue.flatMap(EventType.init), type != .ledgerCreated else { continue }
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
                order.append(e.id)
            }
        }
        return order.compactMap { events[$0] }
    }

    /// The seq of the last record recorded at or before `time`.
    public static func knownSeq(_ records: [ReplayRecord], at time: Timestamp) -> Int {
        records.last { $0.recordedAt <= time }?.seq ?? 0
    }

    static func byDateThenSeq(_ a: KnownEvent, _ b: KnownEvent) -> Bool {
        a.date != b.date ? a.date < b.date : a.seq < b.seq
    }

    /// Every facility that appears as of `asOf`, with its phase and since when.
    public static func facilities(_ events: [KnownEvent], asOf: CalendarDate) -> [FacilityStatus] {
        var bySubject: [String: [KnownEvent]] = [:]
        for e in events where e.date <= asOf { bySubject[e.subject, default: []].append(e) }
        var announcements: [String: KnownEvent] = [:]
        for e in events where e.type == .facilityAnnounced { announcements[e.subject] = e }
        var out: [FacilityStatus] = []
        for (subject, list) in bySubject {
            var inputs = Rules.PhaseInputs()
            for e in list { inputs.add(e.type, date: e.date, seq: e.seq) }
            guard let (phase, phaseDate) = inputs.phase else { continue }
            let a = announcements[subject]
            out.append(FacilityStatus(subject: subject, name: a?.name, kind: a?.object["kind"]?.stringValue,
                                      operatorName: a?.object["operator"]?.stringValue, program: a?.object["program"]?.stringValue,
                                      phase: phase, phaseDate: phaseDate))
        }
        return out.sorted { $0.subject < $1.subject }
    }

    /// Every program announced on or before `asOf`, with its totals.
    public static func programs(_ events: [KnownEvent], asOf: CalendarDate) -> [ProgramStatus] {
        let facilities = facilities(events, asOf: asOf)
        var out: [ProgramStatus] = []
        for p in events where p.type == .programAnnounced && p.date <= asOf {
            let investment = events.filter { $0.type == .investmentCommitted && $0.subject == p.subject && $0.date <= asOf }
                .sorted(by: byDateThenSeq).last
            var counts: [FacilityPhase: Int] = [:]
            for f in facilities where f.program == p.subject { counts[f.phase, default: 0] += 1 }
            out.append(ProgramStatus(subject: p.subject, name: p.name, sponsor: p.object["sponsor"]?.stringValue,
                                     announced: p.object["amount"]?.objectValue,
                                     committed: investment?.object["amount"]?.objectValue ?? p.object["amount"]?.objectValue,
                                     horizon: p.object["horizon"]?.stringValue.flatMap(CalendarDate.init), facilities: counts))
        }
        return out.sorted { $0.subject < $1.subject }
    }

    /// Every target (subject, milestone) with a target event dated on or before `asOf`.
    public static func targets(_ events: [KnownEvent], asOf: CalendarDate) -> [TargetStatus] {
        var groups: [String: [KnownEvent]] = [:]
        for e in events where e.type.isTarget && e.date <= asOf {
            groups[e.subject + "\u{0}" + (e.object["milestone"]?.stringValue ?? ""), default: []].append(e)
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
            let actual = events.filter { $0.subject == current.subject && $0.type.rawValue == milestone && $0.date <= asOf }
                .map(\.date).min()
            let (state, slip, slipOriginal) = Rules.target(actual: actual, dueLatest: latest, originalLatest: originalLatest, asOf: asOf)
            out.append(TargetStatus(subject: current.subject, milestone: milestone, dueEarliest: earliest, dueLatest: latest,
                                    actual: actual, state: state, slipDays: slip, slipFromOriginalDays: slipOriginal,
                                    revisions: sorted.count - 1))
        }
        return out.sorted { ($0.subject, $0.milestone) < ($1.subject, $1.milestone) }
    }

    /// The dated milestones (every domain event) as of `asOf`, in date order.
    public static func timeline(_ events: [KnownEvent], asOf: CalendarDate, subject: String? = nil) -> [KnownEvent] {
        events.filter { $0.date <= asOf && (subject == nil || $0.subject == subject) }.sorted(by: byDateThenSeq)
    }
}
