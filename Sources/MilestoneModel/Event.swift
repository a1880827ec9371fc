import CanonicalJSON
#if canImport(Glibc)
import Glibc
#endif

/// The event types of docs/events.md.
public enum EventType: String, CaseIterable, Sendable, Codable, BitwiseCopyable {
    case ledgerCreated = "ledger.created"
    case programAnnounced = "program.announced"
    case investmentCommitted = "investment.committed"
    case facilityAnnounced = "facility.announced"
    case siteSecured = "site.secured"
    case constructionStarted = "construction.started"
    case constructionCompleted = "construction.completed"
    case productionStarted = "production.started"
    case productionVolume = "production.volume"
    case productionMilestone = "production.milestone"
    case facilityPaused = "facility.paused"
    case facilityResumed = "facility.resumed"
    case facilityCancelled = "facility.cancelled"
    case targetSet = "target.set"
    case targetRevised = "target.revised"
    case eventCorrected = "event.corrected"
    case eventRetracted = "event.retracted"

    /// The position of the type in `allCases`, for table lookups without hashing.
    public var ordinal: Int {
        switch self {
        case .ledgerCreated: 0
        case .programAnnounced: 1
        case .investmentCommitted: 2
        case .facilityAnnounced: 3
        case .siteSecured: 4
        case .constructionStarted: 5
        case .constructionCompleted: 6
        case .productionStarted: 7
        case .productionVolume: 8
        case .productionMilestone: 9
        case .facilityPaused: 10
        case .facilityResumed: 11
        case .facilityCancelled: 12
        case .targetSet: 13
        case .targetRevised: 14
        case .eventCorrected: 15
        case .eventRetracted: 16
        }
    }

    /// Pause, resume and cancel: the events whose latest overrides a facility's lifecycle phase.
    public var isControl: Bool { self == .facilityPaused || self == .facilityResumed || self == .facilityCancelled }

    /// Every type by ordinal (a stored table: `allCases` builds an array each call).
    public static let byOrdinal = StaticTable<EventType>(allCases)
    /// The names, as static text, by ordinal.
    static let names: StaticTable<StaticString> = [
        "ledger.created", "program.announced", "investment.committed", "facility.announced", "site.secured",
        "construction.started", "construction.completed", "production.started", "production.volume",
        "production.milestone", "facility.paused", "facility.resumed", "facility.cancelled", "target.set",
        "target.revised", "event.corrected", "event.retracted",
    ]

    /// The name, as static text (its `rawValue` without making a String).
    package var name: StaticString { EventType.names[ordinal] }

    /// The type whose name is these UTF-8 bytes (no String is made).
    ///
    /// The one name it can be is found by a hash of its length, first byte and
    /// fifth byte from the end (``slots``), then compared in full.
    public init?(utf8 name: UnsafeBufferPointer<UInt8>) {
        guard name.count >= 5, let p = name.baseAddress else { return nil }
        let slot = Int(EventType.slots[EventType.slot(p, name.count)])
        guard slot > 0 else { return nil }
        let n = EventType.names[slot - 1]
        guard n.utf8CodeUnitCount == name.count, memcmp(n.utf8Start, p, name.count) == 0 else { return nil }
        self = EventType.byOrdinal[slot - 1]
    }

    @inline(__always)
    static func slot(_ p: UnsafePointer<UInt8>, _ count: Int) -> Int { (count &+ Int(p[0]) &+ Int(p[count - 5])) & 63 }

    /// By ``slot(_:_:)`` of a name: its ordinal + 1 (0: no type). The names' slots all differ.
    static let slots: StaticTable<UInt8> = {
        var t = [UInt8](repeating: 0, count: 64)
        for (k, n) in names.enumerated() {
            let s = slot(n.utf8Start, n.utf8CodeUnitCount)
            precondition(t[s] == 0, "two event type names share a slot")
            t[s] = UInt8(k + 1)
        }
        return StaticTable(t)
    }()

    /// What the subject of an event of this type must be.
    public enum SubjectRule: Sendable {
        case none, newProgram, newFacility, programOrFacility, facility, sameAsReferenced
    }

    /// The kind of subject an announcement introduces (nil for other types).
    package var announces: SubjectKind? {
        switch self {
        case .programAnnounced: .program
        case .facilityAnnounced: .facility
        default: nil
        }
    }

    public var subjectRule: SubjectRule {
        switch self {
        case .ledgerCreated: .none
        case .programAnnounced: .newProgram
        case .facilityAnnounced: .newFacility
        case .investmentCommitted, .targetSet, .targetRevised: .programOrFacility
        case .eventCorrected, .eventRetracted: .sameAsReferenced
        default: .facility
        }
    }

    /// `target.set` and `target.revised`: a promise with a milestone and a due range.
    public var isTarget: Bool { self == .targetSet || self == .targetRevised }

    /// Types a correction or retraction may name (docs/events.md, referential rules).
    public var isDomain: Bool {
        switch self {
        case .ledgerCreated, .eventCorrected, .eventRetracted: false
        default: true
        }
    }
}

/// How much of an event's `date` the sources support.
public enum DatePrecision: String, CaseIterable, Sendable, Codable, BitwiseCopyable {
    case day, month, quarter, year

    public var ordinal: Int {
        switch self {
        case .day: 0
        case .month: 1
        case .quarter: 2
        case .year: 3
        }
    }
    public static let byOrdinal: StaticTable<DatePrecision> = [.day, .month, .quarter, .year]
    static let names: StaticTable<StaticString> = ["day", "month", "quarter", "year"]
    /// The name, as static text (its `rawValue` without making a String).
    package var name: StaticString { DatePrecision.names[ordinal] }

    /// Whether `date` is the first day of its period, as docs/events.md requires.
    public func admits(_ date: CalendarDate) -> Bool {
        if self == .day { return true }  // most events: no calendar arithmetic
        let (_, m, d) = date.components
        switch self {
        case .day: return true
        case .month: return d == 1
        case .quarter: return d == 1 && (m - 1) % 3 == 0
        case .year: return d == 1 && m == 1
        }
    }
}

/// What the rules need to know of an event that passed the form checks of
/// docs/events.md, with no text: its type, valid time, and the fingerprints
/// (``ReferenceIndex/fingerprint(_:)``) of the names it carries. Plain
/// values only, so that `verify` hands a million of them from the workers
/// that check lines to the in-order checks without allocating or counting
/// references; the names themselves (``Event``) are made only when an
/// error message or a store needs them.
package struct EventFacts: Sendable, Equatable, BitwiseCopyable {
    package var type: EventType
    package var date: CalendarDate
    package var precision: DatePrecision
    package var id: UInt64?
    /// `nil` only for `ledger.created`.
    package var subject: UInt64?
    /// The id named by `corrects` or `retracts`.
    package var reference: UInt64?
    /// A facility's `program`.
    package var program: UInt64?
    /// A target's milestone, as its position in ``EventForm/targetMilestones``.
    package var milestone: UInt8?
    /// What a correction's `changes` do, as far as the rules need to know.
    package var changes: ChangeFacts?
}

/// A correction's `changes`, checked against every type's fields when the
/// event is read (the corrected event's type is known only in record order).
package struct ChangeFacts: Sendable, Equatable, BitwiseCopyable {
    /// Bit `t` set: the changes are valid for an event whose type has ordinal `t`.
    package var fits: UInt32
    /// The new `date`, when changed.
    package var date: CalendarDate?
    /// The new precision, when `precision` is changed (`null` resets it to `day`).
    package var precision: DatePrecision?
    /// The fingerprint of the new `program`, when changed to one.
    package var program: UInt64?

    package func fits(_ type: EventType) -> Bool { fits & 1 << UInt32(type.ordinal) != 0 }
}

/// An event that passed the form checks of docs/events.md: its ``EventFacts``
/// and the names they fingerprint.
package struct Event: Sendable, Equatable {
    package private(set) var facts: EventFacts
    /// `nil` only for an input event that has not been given one yet.
    package private(set) var id: String?
    /// `nil` only for `ledger.created`.
    package let subject: String?
    /// The id named by `corrects` or `retracts`.
    package let reference: String?
    /// A facility's `program`.
    package let program: String?
    /// A correction's `changes`.
    package let changes: JSONObject?

    package init(facts: EventFacts, id: String?, subject: String?, reference: String?, program: String?, changes: JSONObject?) {
        self.facts = facts
        self.id = id
        self.subject = subject
        self.reference = reference
        self.program = program
        self.changes = changes
    }

    package var type: EventType { facts.type }
    package var date: CalendarDate { facts.date }
    package var precision: DatePrecision { facts.precision }
    /// A target's milestone (`target.set`, `target.revised`).
    package var milestone: String? { facts.milestone.map { EventForm.targetMilestones[Int($0)].rawValue } }

    /// Gives an input event its id.
    package mutating func assign(id: String) {
        self.id = id
        facts.id = ReferenceIndex.fingerprint(id)
    }
}

/// A rejected event: the field (a path such as `sources[0].url`) and why.
package struct EventError: Error, Equatable, Sendable, CustomStringConvertible {
    package var field: String
    package var message: String

    package init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    package var description: String { field.isEmpty ? message : "\(field): \(message)" }
}
