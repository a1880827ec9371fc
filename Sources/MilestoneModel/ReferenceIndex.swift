import CanonicalJSON

/// What the referential rules need to know of a recorded event.
public struct ReferenceEntry: Sendable, Equatable {
    public var type: EventType
    public var subject: String?
    public var retracted: Bool
    /// The event's date and precision as corrected so far (for the
    /// date/precision rule when a later correction changes one of them).
    public var date: CalendarDate
    public var precision: DatePrecision
    /// A digest of the event's canonical bytes (first 8 bytes of its
    /// SHA-256), to tell an idempotent retry from a clash; 0 when unknown.
    public var content: UInt64

    public init(type: EventType, subject: String?, retracted: Bool, date: CalendarDate, precision: DatePrecision, content: UInt64) {
        self.type = type
        self.subject = subject
        self.retracted = retracted
        self.date = date
        self.precision = precision
        self.content = content
    }
}

public enum SubjectKind: String, Sendable { case program, facility }

/// Where recorded events are looked up: the in-memory ``ReferenceIndex``
/// (verify), or the SQLite read models (record on a large ledger).
public protocol ReferenceState {
    func entry(id: String) throws -> ReferenceEntry?
    /// Many lookups at once (a store can answer them in one query).
    func entries(ids: [String]) throws -> [String: ReferenceEntry]
    func subjectKind(_ subject: String) throws -> SubjectKind?
    func hasTarget(subject: String, milestone: String) throws -> Bool
}

extension ReferenceState {
    public func entries(ids: [String]) throws -> [String: ReferenceEntry] {
        var out: [String: ReferenceEntry] = [:]
        for id in ids { if let e = try entry(id: id) { out[id] = e } }
        return out
    }
}

/// The referential rules of events.md, checked event by event in record
/// order: what an event may name depends only on the events before it.
///
/// `record` and `verify` both use this one implementation. In memory it
/// remembers only what the rules need — per id a fixed-size entry keyed by a
/// 64-bit keyed hash of the id, per subject its kind, per (subject,
/// milestone) whether a target was set — so memory grows with the number of
/// ids and subjects, never with the ledger's bytes. With a `base`, lookups it
/// cannot answer fall through to it (the read models), and it holds only the
/// events added since (a batch).
public struct ReferenceIndex {
    /// What the rules remember of an id, packed into 8 bytes so that a
    /// million ids cost about 16 MB (key and entry) in the dictionary:
    /// subject index (bits 32–63) | date in days + 2^22 (bits 8–30: years
    /// 0001–9999) | type (3–7) | precision (1–2) | retracted (0). Content digests, needed only by
    /// `record`, live in a dictionary of their own.
    struct IdEntry {
        var bits: UInt64

        init(type: EventType, subject: UInt32, retracted: Bool, date: CalendarDate, precision: DatePrecision) {
            let days = UInt64(Int64(date.days) + (1 << 22)) & 0x7F_FFFF
            let p = UInt64(precision.ordinal)
            bits = UInt64(subject) << 32 | days << 8 | UInt64(type.ordinal) << 3 | p << 1 | (retracted ? 1 : 0)
        }

        init(bits: UInt64) { self.bits = bits }

        var subject: UInt32 { UInt32(bits >> 32) }
        var date: CalendarDate {
            get { CalendarDate(days: Int32(Int64(bits >> 8 & 0x7F_FFFF) - (1 << 22))) }
            set { self = IdEntry(type: type, subject: subject, retracted: retracted, date: newValue, precision: precision) }
        }
        var type: EventType { EventType.byOrdinal[Int(bits >> 3 & 0x1F)] }
        var precision: DatePrecision {
            get { DatePrecision.byOrdinal[Int(bits >> 1 & 0x3)] }
            set { self = IdEntry(type: type, subject: subject, retracted: retracted, date: date, precision: newValue) }
        }
        var retracted: Bool {
            get { bits & 1 == 1 }
            set { bits = newValue ? bits | 1 : bits & ~1 }
        }
    }

    /// Subjects by the fingerprint of their slug.
    private var subjects: [UInt64: (index: UInt32, kind: SubjectKind)] = [:]
    private var subjectNames: [String] = []
    private var ids: IdTable
    private var contents: [UInt64: UInt64] = [:]
    private var targets: Set<UInt64> = []
    private let base: (any ReferenceState)?
    /// Base answers fetched ahead for a batch (nil: known absent).
    private var prefetched: [String: ReferenceEntry?] = [:]

    public init(base: (any ReferenceState)? = nil, expectedEvents: Int = 0) {
        self.base = base
        ids = IdTable(expected: expectedEvents)
    }

    public var eventCount: Int { ids.count }
    /// Whether another state (the read models) answers for what came before.
    public var hasBase: Bool { base != nil }
    public var subjectCount: Int { subjects.count }

    /// A 64-bit fingerprint of an id or a slug: SipHash keyed per process
    /// (Swift's `Hasher`, randomly seeded at start), so nobody can craft names
    /// that collide; at a million ids a false match has odds of about 3e-8.
    /// The same in every thread of a process, so workers compute an event's
    /// ``EventKeys`` in parallel and the in-order checks only look them up.
    public static func fingerprint(_ name: String) -> UInt64 {
        var h = Hasher()
        h.combine(name)
        return UInt64(bitPattern: Int64(h.finalize()))
    }

    func fingerprint(_ name: String) -> UInt64 { ReferenceIndex.fingerprint(name) }

    func targetKey(_ subject: UInt32, _ milestone: String) -> UInt64 {
        let m = EventForm.targetMilestones.firstIndex { $0.rawValue == milestone } ?? 0xFF
        return UInt64(subject) << 8 | UInt64(m)
    }

    public func entry(id: String) throws -> ReferenceEntry? { try entry(id: id, key: fingerprint(id)) }

    func entry(id: String, key: UInt64) throws -> ReferenceEntry? {
        if let e = ids[key] {
            return ReferenceEntry(type: e.type, subject: e.subject == .max ? nil : subjectNames[Int(e.subject)],
                                  retracted: e.retracted, date: e.date, precision: e.precision, content: contents[key] ?? 0)
        }
        guard let base else { return nil }
        if !prefetched.isEmpty, let known = prefetched[id] { return known }
        return try base.entry(id: id)
    }

    /// Asks the base about these ids in one go, so that checking a batch
    /// does not query it event by event.
    public mutating func prefetch(ids: [String]) throws {
        guard let base, !ids.isEmpty else { return }
        prefetched.removeAll(keepingCapacity: true)
        let found = try base.entries(ids: ids)
        for id in ids { prefetched[id] = .some(found[id]) }
    }

    public func subjectKind(_ subject: String) throws -> SubjectKind? { try subjectKind(subject, key: fingerprint(subject)) }

    func subjectKind(_ subject: String, key: UInt64) throws -> SubjectKind? {
        if let s = subjects[key] { return s.kind }
        return try base?.subjectKind(subject)
    }

    public func hasTarget(subject: String, milestone: String) throws -> Bool {
        try hasTarget(subject: subject, key: fingerprint(subject), milestone: milestone)
    }

    func hasTarget(subject: String, key: UInt64, milestone: String) throws -> Bool {
        if let s = subjects[key], targets.contains(targetKey(s.index, milestone)) { return true }
        return try base?.hasTarget(subject: subject, milestone: milestone) ?? false
    }

    /// Whether an event with this id is already recorded, and whether with the same content.
    public enum Presence: Sendable { case new, sameContent }

    /// Checks `event`, the next event in record order, against the rules.
    /// With a `content` digest (of the event's canonical bytes), an id already
    /// recorded with the same digest is an idempotent retry (`.sameContent`);
    /// otherwise any repeat of an id is an error.
    ///
    /// `keys` are the event's fingerprints (``EventKeys/init(_:)``), when a
    /// worker computed them already.
    public func check(_ event: Event, content: UInt64? = nil, keys: EventKeys? = nil) throws -> Presence {
        let keys = keys ?? EventKeys(event)
        if let id = event.id, let existing = try entry(id: id, key: keys.id) {
            if let content, existing.content != 0, existing.content == content { return .sameContent }
            throw EventError(field: "id", "\(quoted(id)) is already recorded\(content != nil ? " with other content" : "")")
        }
        if event.type == .ledgerCreated { return .new }
        let subject = event.subject!
        let known = try subjectKind(subject, key: keys.subject)
        switch event.type.subjectRule {
        case .none:
            break
        case .newProgram, .newFacility:
            if let k = known {
                throw EventError(field: "subject", "\(quoted(subject)) is already announced as a \(k.rawValue)")
            }
        case .programOrFacility:
            guard known != nil else {
                throw EventError(field: "subject", "\(quoted(subject)) is not announced: record its program.announced or facility.announced first")
            }
        case .facility:
            guard let k = known else {
                throw EventError(field: "subject", "\(quoted(subject)) is not announced: record its facility.announced first")
            }
            guard k == .facility else {
                throw EventError(field: "subject", "\(quoted(subject)) is a program; \(event.type.rawValue) is about a facility")
            }
        case .sameAsReferenced:
            try checkReference(event, subject: subject, key: keys.reference)
        }
        if event.type == .facilityAnnounced, let program = event.program {
            try requireProgram(program, field: "program", key: keys.program)
        }
        if event.type == .targetRevised {
            let milestone = event.milestone!
            guard known != nil, try hasTarget(subject: subject, key: keys.subject, milestone: milestone) else {
                throw EventError(field: "milestone", "no target.set for \(quoted(subject)) and \(milestone) is recorded before this revision")
            }
        }
        return .new
    }

    private func requireProgram(_ program: String, field: String, key: UInt64? = nil) throws {
        guard let p = try subjectKind(program, key: key ?? fingerprint(program)) else {
            throw EventError(field: field, "\(quoted(program)) is not an announced program")
        }
        guard p == .program else {
            throw EventError(field: field, "\(quoted(program)) is a facility, not a program")
        }
    }

    private func checkReference(_ event: Event, subject: String, key: UInt64) throws {
        let field = event.type == .eventCorrected ? "corrects" : "retracts"
        let ref = event.reference!
        guard let target = try entry(id: ref, key: key) else {
            throw EventError(field: field, "no event \(quoted(ref)) is recorded before this one")
        }
        guard target.type.isDomain else {
            throw EventError(field: field, "\(quoted(ref)) is a \(target.type.rawValue) event, which cannot be \(field == "corrects" ? "corrected" : "retracted")")
        }
        guard !target.retracted else {
            throw EventError(field: field, "\(quoted(ref)) is retracted")
        }
        guard target.subject == subject else {
            throw EventError(field: "subject", "must be \(quoted(target.subject ?? "")), the subject of \(quoted(ref))")
        }
        if event.type == .eventCorrected {
            let changes = event.changes!
            try EventForm.checkChanges(changes, for: target.type)
            if let p = changes["program"]?.stringValue { try requireProgram(p, field: "changes.program") }
            let date = changes["date"]?.stringValue.flatMap(CalendarDate.init) ?? target.date
            let precision = changes["precision"].map { $0.stringValue.flatMap(DatePrecision.init) ?? .day } ?? target.precision
            guard precision.admits(date) else {
                throw EventError(field: changes["date"] != nil ? "changes.date" : "changes.precision",
                                 "\(date) is not the first day of its \(precision.rawValue), as \(precision.rawValue) precision requires")
            }
        }
    }

    private mutating func subjectIndex(_ subject: String, key: UInt64, kind: () throws -> SubjectKind) rethrows -> UInt32 {
        if let s = subjects[key] { return s.index }
        let i = UInt32(subjectNames.count)
        subjects[key] = (i, try kind())
        subjectNames.append(subject)
        return i
    }

    /// Remembers `event` (which passed ``check(_:content:keys:)``) as recorded,
    /// with the digest of its content when idempotent retries must be recognised.
    public mutating func add(_ event: Event, content: UInt64? = nil, keys: EventKeys? = nil) throws {
        let keys = keys ?? EventKeys(event)
        let base = self.base
        var index: UInt32 = .max
        if let subject = event.subject {
            let type = event.type
            index = try subjectIndex(subject, key: keys.subject) {
                type == .programAnnounced ? .program : type == .facilityAnnounced ? .facility
                    : (try base?.subjectKind(subject) ?? .facility)
            }
        }
        if event.id != nil {
            ids[keys.id] = IdEntry(type: event.type, subject: index, retracted: false, date: event.date, precision: event.precision)
            if let content { contents[keys.id] = content }
        }
        switch event.type {
        case .targetSet:
            targets.insert(targetKey(index, event.milestone!))
        case .eventRetracted, .eventCorrected:
            // Bring the referenced entry here (from the base if need be), then update it.
            let ref = event.reference!
            let key = keys.reference
            if ids[key] == nil, let e = try base?.entry(id: ref) {
                let s = try e.subject.map { name in
                    try subjectIndex(name, key: fingerprint(name)) { (try base?.subjectKind(name)) ?? .facility }
                } ?? .max
                ids[key] = IdEntry(type: e.type, subject: s, retracted: e.retracted, date: e.date, precision: e.precision)
                if e.content != 0 { contents[key] = e.content }
            }
            if event.type == .eventRetracted {
                ids[key]?.retracted = true
            } else if let changes = event.changes {
                if let d = changes["date"]?.stringValue.flatMap(CalendarDate.init) { ids[key]?.date = d }
                if let p = changes["precision"] { ids[key]?.precision = p.stringValue.flatMap(DatePrecision.init) ?? .day }
            }
        default:
            break
        }
    }
}

extension ReferenceIndex: ReferenceState {}

/// The fingerprints (``ReferenceIndex/fingerprint(_:)``) of the names an
/// event carries: computed once, by whichever worker prepared the event.
public struct EventKeys: Sendable {
    public var id: UInt64 = 0
    public var subject: UInt64 = 0
    public var reference: UInt64 = 0
    public var program: UInt64 = 0

    public init(_ event: Event) {
        if let id = event.id { self.id = ReferenceIndex.fingerprint(id) }
        if let subject = event.subject { self.subject = ReferenceIndex.fingerprint(subject) }
        if let reference = event.reference { self.reference = ReferenceIndex.fingerprint(reference) }
        if let program = event.program { self.program = ReferenceIndex.fingerprint(program) }
    }
}
