import CanonicalJSON

/// The referential rules of events.md, checked event by event in record
/// order: what an event may name depends only on the events before it.
///
/// `record` and `verify` both use this one implementation. It remembers only
/// what the rules need — per id a fixed-size entry keyed by a 64-bit keyed
/// hash of the id, per subject its kind, per (subject, milestone) whether a
/// target was set — so memory grows with the number of ids and subjects,
/// never with the ledger's bytes.
public struct ReferenceIndex: Sendable {
    public enum SubjectKind: UInt8, Sendable { case program, facility }

    struct IdEntry: Sendable {
        var type: EventType
        var subject: UInt32
        var retracted: Bool
        /// The event's date and precision as corrected so far (for the
        /// date/precision rule when a later correction changes one of them).
        var date: CalendarDate
        var precision: DatePrecision
        /// A digest of the event's canonical bytes, to tell an idempotent
        /// retry from a clash (0 when not remembered).
        var digest: UInt64
    }

    private var subjects: [String: (index: UInt32, kind: SubjectKind)] = [:]
    private var subjectNames: [String] = []
    private var ids: [UInt64: IdEntry] = [:]
    private var targets: Set<UInt64> = []
    /// Keyed per process (SipHash with a random seed), so nobody can craft ids
    /// that collide; at a million ids a false match has odds of about 3e-8.
    public let seed: Hasher = Hasher()

    public init() {}

    public var eventCount: Int { ids.count }
    public var subjectCount: Int { subjects.count }

    public func kind(of subject: String) -> SubjectKind? { subjects[subject]?.kind }

    func fingerprint(_ id: String) -> UInt64 {
        var h = seed
        h.combine(id)
        return UInt64(bitPattern: Int64(h.finalize()))
    }

    func targetKey(_ subject: UInt32, _ milestone: String) -> UInt64 {
        let m = EventForm.targetMilestones.firstIndex { $0.rawValue == milestone } ?? 0xFF
        return UInt64(subject) << 8 | UInt64(m)
    }

    /// Whether an event with this id is already recorded, and whether with the same content.
    public enum Presence: Sendable { case new, sameContent }

    /// Checks `event`, the next event in record order, against the rules.
    /// With a `content` digest (of the event's canonical bytes), an id already
    /// recorded with the same digest is an idempotent retry (`.sameContent`);
    /// otherwise any repeat of an id is an error.
    public func check(_ event: Event, content: UInt64? = nil) throws(EventError) -> Presence {
        if let id = event.id, let existing = ids[fingerprint(id)] {
            if let content, existing.digest != 0, existing.digest == content | 1 { return .sameContent }
            let allowRepeat = content != nil
            throw EventError(field: "id", "\(quoted(id)) is already recorded\(allowRepeat ? " with other content" : "")")
        }
        if event.type == .ledgerCreated { return .new }
        let subject = event.subject!
        let known = subjects[subject]
        switch event.type.subjectRule {
        case .none:
            break
        case .newProgram, .newFacility:
            if let k = known {
                throw EventError(field: "subject", "\(quoted(subject)) is already announced as a \(k.kind)")
            }
        case .programOrFacility:
            guard known != nil else {
                throw EventError(field: "subject", "\(quoted(subject)) is not announced: record its program.announced or facility.announced first")
            }
        case .facility:
            guard let k = known else {
                throw EventError(field: "subject", "\(quoted(subject)) is not announced: record its facility.announced first")
            }
            guard k.kind == .facility else {
                throw EventError(field: "subject", "\(quoted(subject)) is a program; \(event.type.rawValue) is about a facility")
            }
        case .sameAsReferenced:
            try checkReference(event, subject: subject)
        }
        if event.type == .facilityAnnounced, let program = event.program {
            try requireProgram(program, field: "program")
        }
        if event.type == .targetRevised {
            let milestone = event.milestone!
            guard let k = known, targets.contains(targetKey(k.index, milestone)) else {
                throw EventError(field: "milestone", "no target.set for \(quoted(subject)) and \(milestone) is recorded before this revision")
            }
        }
        return .new
    }

    private func requireProgram(_ program: String, field: String) throws(EventError) {
        guard let p = subjects[program] else {
            throw EventError(field: field, "\(quoted(program)) is not an announced program")
        }
        guard p.kind == .program else {
            throw EventError(field: field, "\(quoted(program)) is a facility, not a program")
        }
    }

    private func checkReference(_ event: Event, subject: String) throws(EventError) {
        let field = event.type == .eventCorrected ? "corrects" : "retracts"
        let ref = event.reference!
        guard let target = ids[fingerprint(ref)] else {
            throw EventError(field: field, "no event \(quoted(ref)) is recorded before this one")
        }
        guard target.type.isDomain else {
            throw EventError(field: field, "\(quoted(ref)) is a \(target.type.rawValue) event, which cannot be \(field == "corrects" ? "corrected" : "retracted")")
        }
        guard !target.retracted else {
            throw EventError(field: field, "\(quoted(ref)) is retracted")
        }
        let targetSubject = subjectNames[Int(target.subject)]
        guard targetSubject == subject else {
            throw EventError(field: "subject", "must be \(quoted(targetSubject)), the subject of \(quoted(ref))")
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

    /// Remembers `event` (which passed ``check(_:content:)``) as recorded,
    /// with the digest of its content when idempotent retries must be recognised.
    public mutating func add(_ event: Event, content: UInt64? = nil) {
        let digest = content.map { $0 | 1 } ?? 0
        var subjectIndex: UInt32 = .max
        if let subject = event.subject {
            if let s = subjects[subject] {
                subjectIndex = s.index
            } else {
                subjectIndex = UInt32(subjectNames.count)
                subjects[subject] = (subjectIndex, event.type == .programAnnounced ? .program : .facility)
                subjectNames.append(subject)
            }
        }
        if let id = event.id {
            ids[fingerprint(id)] = IdEntry(type: event.type, subject: subjectIndex, retracted: false,
                                           date: event.date, precision: event.precision, digest: digest)
        }
        switch event.type {
        case .targetSet:
            targets.insert(targetKey(subjectIndex, event.milestone!))
        case .eventRetracted:
            ids[fingerprint(event.reference!)]?.retracted = true
        case .eventCorrected:
            let key = fingerprint(event.reference!)
            let changes = event.changes!
            if let d = changes["date"]?.stringValue.flatMap(CalendarDate.init) { ids[key]?.date = d }
            if let p = changes["precision"] { ids[key]?.precision = p.stringValue.flatMap(DatePrecision.init) ?? .day }
        default:
            break
        }
    }
}
