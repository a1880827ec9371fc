import CanonicalJSON
import MilestoneSupport

/// What the referential rules need to know of a recorded event.
package struct ReferenceEntry: Sendable, Equatable {
    package var type: EventType
    package var subject: String?
    package var retracted: Bool
    /// The event's date and precision as corrected so far (for the
    /// date/precision rule when a later correction changes one of them).
    package var date: CalendarDate
    package var precision: DatePrecision
    /// A digest of the event's canonical bytes (first 8 bytes of its
    /// SHA-256), to tell an idempotent retry from a clash; 0 when unknown.
    package var content: UInt64

    package init(type: EventType, subject: String?, retracted: Bool, date: CalendarDate, precision: DatePrecision, content: UInt64) {
        self.type = type
        self.subject = subject
        self.retracted = retracted
        self.date = date
        self.precision = precision
        self.content = content
    }
}

package enum SubjectKind: String, Sendable { case program, facility }

/// Where recorded events are looked up: the in-memory ``ReferenceIndex``
/// (verify), or the SQLite read models (record on a large ledger).
package protocol ReferenceState {
    func entry(id: String) throws -> ReferenceEntry?
    /// Many lookups at once (a store can answer them in one query).
    func entries(ids: [String]) throws -> [String: ReferenceEntry]
    func subjectKind(_ subject: String) throws -> SubjectKind?
    func hasTarget(subject: String, milestone: String) throws -> Bool
}

extension ReferenceState {
    package func entries(ids: [String]) throws -> [String: ReferenceEntry] {
        var out: [String: ReferenceEntry] = [:]
        for id in ids { if let e = try entry(id: id) { out[id] = e } }
        return out
    }
}

/// The referential rules of docs/events.md, checked event by event in record
/// order: what an event may name depends only on the events before it.
///
/// `record` and `verify` both use this one implementation. In memory it
/// remembers only what the rules need — per id a fixed-size entry keyed by a
/// 64-bit keyed hash of the id, per subject its kind, per (subject,
/// milestone) whether a target was set — so memory grows with the number of
/// ids and subjects, never with the ledger's bytes. With a `base`, lookups it
/// cannot answer fall through to it (the read models), and it holds only the
/// events added since (a batch).
package struct ReferenceIndex {
    /// What the rules remember of an id, packed into 8 bytes (a slot of the
    /// id table is this and the id's fingerprint): subject index (bits 32–63;
    /// see ``SubjectEntry``) | date in days + 2^22 (bits 8–30: years
    /// 0001–9999) | type (3–7) | precision (1–2) | retracted (0). Content
    /// digests, needed only by `record`, live in a table of their own.
    struct IdEntry: PackedValue {
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

    /// A subject: where its name starts in `subjectNames` (bits 0–31), its
    /// kind (bit 32: a program), and which milestones have a target.set
    /// (bits 33–37, by position in ``EventForm/targetMilestones``).
    struct SubjectEntry: PackedValue {
        var bits: UInt64
        init(bits: UInt64) { self.bits = bits }
        init(index: UInt32, kind: SubjectKind) { bits = UInt64(index) | (kind == .program ? 1 << 32 : 0) }
        var index: UInt32 { UInt32(truncatingIfNeeded: bits) }
        var kind: SubjectKind { bits >> 32 & 1 == 1 ? .program : .facility }
        func hasTarget(_ milestone: UInt8) -> Bool { bits >> (33 + UInt64(milestone)) & 1 == 1 }
        mutating func setTarget(_ milestone: UInt8) { bits |= 1 << (33 + UInt64(milestone)) }
    }

    /// An event's content digest.
    struct ContentEntry: PackedValue {
        var bits: UInt64
    }

    /// Subjects by the fingerprint of their slug.
    private var subjects = FingerprintTable<SubjectEntry>()
    /// The subjects' slugs, each a length byte (slugs run to 64 bytes) then
    /// its UTF-8: a subject's index is where it starts. One buffer rather
    /// than a `String` each: memory grows with the subjects by their bytes.
    private var subjectNames = GrowableBytes()
    private var ids: FingerprintTable<IdEntry>
    /// Content digests by id fingerprint (only `record` keeps them).
    private var contents = FingerprintTable<ContentEntry>()
    /// In a box: copying the existential itself, as the checks of every
    /// event did, cost value-witness calls on every event.
    private let baseBox: BaseBox?
    private final class BaseBox {
        let state: any ReferenceState
        init(_ state: any ReferenceState) { self.state = state }
    }
    private var base: (any ReferenceState)? { baseBox?.state }
    /// Base answers fetched ahead for a batch (nil: known absent).
    private var prefetched: [String: ReferenceEntry?] = [:]

    package init(base: (any ReferenceState)? = nil) {
        baseBox = base.map(BaseBox.init)
        ids = FingerprintTable<IdEntry>()
    }

    package var eventCount: Int { ids.count }
    /// How many more ids fit before the id table grows.
    package var idRoom: Int { ids.room }
    /// Whether another state (the read models) answers for what came before.
    package var hasBase: Bool { baseBox != nil }
    package var subjectCount: Int { subjects.count }

    /// Makes room for about `events` more events (their ids, and contents
    /// when kept) and `subjects` more subjects, so that the tables are not
    /// copied again and again as they fill.
    package mutating func reserve(events: Int, subjects more: Int = 0, contents withContents: Bool) {
        ids.reserve(events)
        if more > 0 { subjects.reserve(more) }
        if withContents { contents.reserve(events) }
    }

    /// Brings what checking `count` events will look up (their ids, the ids
    /// they name, their subjects) into the cache, all at once (see
    /// ``FingerprintTable/warm(_:)``), before they are checked one by one.
    /// `facts(k)` gives the k-th event's facts, nil for one not to be checked.
    package func warm(_ count: Int, facts: (Int) -> EventFacts?) {
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2 * count) { ids in
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: count) { subjects in
                var (i, s) = (0, 0)
                for k in 0..<count {
                    guard let f = facts(k) else { continue }
                    if let id = f.id { ids[i] = id; i += 1 }
                    if let r = f.reference { ids[i] = r; i += 1 }
                    if let subject = f.subject { subjects[s] = subject; s += 1 }
                }
                self.ids.warm(ids[..<i])
                if contents.count > 0 { contents.warm(ids[..<i]) }
                self.subjects.warm(subjects[..<s])
            }
        }
    }

    /// The events to warm before checking event `i` of `count` in order: every
    /// 32 events, those 32 to 64 ahead (the first 64 at the start). Farther
    /// ahead, what is read in between would push them out of the cache again.
    @inlinable package static func warmAhead(_ i: Int, of count: Int) -> Range<Int>? {
        guard i % 32 == 0 else { return nil }
        return (i == 0 ? 0 : min(count, i + 32))..<min(count, i + 64)
    }

    /// A 64-bit fingerprint of an id or a slug: SipHash-1-3 (the function of
    /// Swift's `Hasher`) over its UTF-8 bytes, keyed at random for each
    /// process, so nobody can craft names that collide; at a million ids a
    /// false match has odds of about 3e-8. The same in every thread of a
    /// process, so workers compute an event's ``EventFacts`` in parallel and
    /// the in-order checks only look them up. (`Hasher` itself, through its
    /// buffered interface, cost more.)
    package static func fingerprint(utf8 name: UnsafeBufferPointer<UInt8>) -> UInt64 {
        SipHash.hash(UnsafeRawBufferPointer(name), key: fingerprintKey, compression: 1, finalization: 3)
    }

    /// This process's fingerprint key.
    static let fingerprintKey = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))

    package static func fingerprint(_ name: String) -> UInt64 {
        var s = name
        return s.withUTF8(fingerprint(utf8:))
    }

    /// What is recorded of an id: in memory (with its subject's index), or
    /// from the base (with its subject's name).
    private struct Recorded {
        var type: EventType
        var retracted: Bool
        var date: CalendarDate
        var precision: DatePrecision
        var content: UInt64
        var subjectIndex: UInt32?
        var subjectName: String?
    }

    private func recorded(_ key: UInt64, name: () -> String) throws -> Recorded? {
        if let e = ids[key] {
            return Recorded(type: e.type, retracted: e.retracted, date: e.date, precision: e.precision,
                            content: contents.count == 0 ? 0 : contents[key]?.bits ?? 0, subjectIndex: e.subject, subjectName: nil)
        }
        guard let base = baseBox?.state else { return nil }
        let id = name()
        let found: ReferenceEntry?
        if !prefetched.isEmpty, let known = prefetched[id] { found = known } else { found = try base.entry(id: id) }
        return found.map {
            Recorded(type: $0.type, retracted: $0.retracted, date: $0.date, precision: $0.precision, content: $0.content,
                     subjectIndex: nil, subjectName: $0.subject)
        }
    }

    private func name(at i: Int) -> String {
        String(decoding: subjectNames.bytes(from: i + 1, count: Int(subjectNames[i])), as: UTF8.self)
    }

    private func subjectName(of r: Recorded) -> String? {
        if let i = r.subjectIndex { return i == .max ? nil : name(at: Int(i)) }
        return r.subjectName
    }

    package func entry(id: String) throws -> ReferenceEntry? {
        try recorded(ReferenceIndex.fingerprint(id), name: { id }).map {
            ReferenceEntry(type: $0.type, subject: subjectName(of: $0), retracted: $0.retracted, date: $0.date,
                           precision: $0.precision, content: $0.content)
        }
    }

    /// Asks the base about these ids in one go, so that checking a batch
    /// does not query it event by event.
    package mutating func prefetch(ids: [String]) throws {
        guard let base, !ids.isEmpty else { return }
        prefetched.removeAll(keepingCapacity: true)
        let found = try base.entries(ids: ids)
        for id in ids { prefetched[id] = .some(found[id]) }
    }

    package func subjectKind(_ subject: String) throws -> SubjectKind? {
        try subjectKind(ReferenceIndex.fingerprint(subject), name: { subject })
    }

    func subjectKind(_ key: UInt64, name: () -> String) throws -> SubjectKind? {
        if let s = subjects[key] { return s.kind }
        return try base?.subjectKind(name())
    }

    package func hasTarget(subject: String, milestone: String) throws -> Bool {
        guard let m = EventForm.targetMilestones.firstIndex(where: { $0.rawValue == milestone }) else { return false }
        return try hasTarget(ReferenceIndex.fingerprint(subject), milestone: UInt8(m), names: { (subject, milestone) })
    }

    func hasTarget(_ subject: UInt64, milestone: UInt8, names: () -> (String, String)) throws -> Bool {
        if let s = subjects[subject], s.hasTarget(milestone) { return true }
        guard let base else { return false }
        let (name, m) = names()
        return try base.hasTarget(subject: name, milestone: m)
    }

    /// Whether an event with this id is already recorded, and whether with the same content.
    package enum Presence: Sendable { case new, sameContent }

    /// Checks an event, the next in record order, by its facts against the
    /// rules; `names` gives the event with its names, called only for an
    /// error message or a question to the base. With `content` (the event's
    /// content digest, asked for only when its id was recorded before), an
    /// id already recorded with the same digest is an idempotent retry
    /// (`.sameContent`); otherwise any repeat of an id is an error. `earlier`
    /// gives the digest of an event remembered without one (a batch's own,
    /// whose digests are made only when needed).
    package func check(_ facts: EventFacts, content: (() -> UInt64)? = nil, earlier: ((UInt64) -> UInt64?)? = nil,
                      names: () -> Event) throws -> Presence {
        if let id = facts.id, let existing = try recorded(id, name: { names().id! }) {
            if let content {
                let before = existing.content != 0 ? existing.content : earlier?(id) ?? 0
                if before != 0, before == content() { return .sameContent }
            }
            throw EventError(field: "id", "\(quoted(names().id!)) is already recorded\(content != nil ? " with other content" : "")")
        }
        if facts.type == .ledgerCreated { return .new }
        let subject = facts.subject!
        func name() -> String { names().subject! }
        let known = try subjectKind(subject, name: name)
        switch facts.type.subjectRule {
        case .none:
            break
        case .newProgram, .newFacility:
            if let k = known {
                throw EventError(field: "subject", "\(quoted(name())) is already announced as a \(k.rawValue)")
            }
        case .programOrFacility:
            guard known != nil else {
                throw EventError(field: "subject", "\(quoted(name())) is not announced: record its program.announced or facility.announced first")
            }
        case .facility:
            guard let k = known else {
                throw EventError(field: "subject", "\(quoted(name())) is not announced: record its facility.announced first")
            }
            guard k == .facility else {
                throw EventError(field: "subject", "\(quoted(name())) is a program; \(facts.type.rawValue) is about a facility")
            }
        case .sameAsReferenced:
            try checkReference(facts, names: names)
        }
        if facts.type == .facilityAnnounced, let program = facts.program {
            try requireProgram(program, field: "program", name: { names().program! })
        }
        if facts.type == .targetRevised {
            guard known != nil, try hasTarget(subject, milestone: facts.milestone!, names: { (name(), names().milestone!) }) else {
                throw EventError(field: "milestone", "no target.set for \(quoted(name())) and \(names().milestone!) is recorded before this revision")
            }
        }
        return .new
    }

    private func requireProgram(_ program: UInt64, field: String, name: () -> String) throws {
        guard let p = try subjectKind(program, name: name) else {
            throw EventError(field: field, "\(quoted(name())) is not an announced program")
        }
        guard p == .program else {
            throw EventError(field: field, "\(quoted(name())) is a facility, not a program")
        }
    }

    private func checkReference(_ facts: EventFacts, names: () -> Event) throws {
        let field = facts.type == .eventCorrected ? "corrects" : "retracts"
        func ref() -> String { names().reference! }
        guard let target = try recorded(facts.reference!, name: ref) else {
            throw EventError(field: field, "no event \(quoted(ref())) is recorded before this one")
        }
        guard target.type.isDomain else {
            throw EventError(field: field, "\(quoted(ref())) is a \(target.type.rawValue) event, which cannot be \(field == "corrects" ? "corrected" : "retracted")")
        }
        guard !target.retracted else {
            throw EventError(field: field, "\(quoted(ref())) is retracted")
        }
        let sameSubject = if let i = target.subjectIndex { subjects[facts.subject!]?.index == i } else { target.subjectName == names().subject }
        guard sameSubject else {
            throw EventError(field: "subject", "must be \(quoted(subjectName(of: target) ?? "")), the subject of \(quoted(ref()))")
        }
        if let changes = facts.changes {
            guard changes.fits(target.type) else {
                try EventForm.checkChanges(names().changes!, for: target.type)
                throw EventError(field: "changes", "do not fit a \(target.type.rawValue) event")  // checkChanges names the field
            }
            if let p = changes.program {
                try requireProgram(p, field: "changes.program", name: { names().changes!["program"]!.stringValue! })
            }
            let date = changes.date ?? target.date
            let precision = changes.precision ?? target.precision
            guard precision.admits(date) else {
                throw EventError(field: changes.date != nil ? "changes.date" : "changes.precision",
                                 "\(date) is not the first day of its \(precision.rawValue), as \(precision.rawValue) precision requires")
            }
        }
    }

    private mutating func subjectIndex(_ key: UInt64, name: () -> String, kind: () throws -> SubjectKind) rethrows -> UInt32 {
        if let s = subjects[key] { return s.index }
        guard let i = UInt32(exactly: subjectNames.count), i < .max else { preconditionFailure("more than 4 GiB of subject names") }
        subjects[key] = SubjectEntry(index: i, kind: try kind())
        var slug = name()
        slug.withUTF8 { b in
            precondition(b.count <= UInt8.max, "a subject is a slug of at most 64 bytes")
            withUnsafeBytes(of: UInt8(b.count)) { subjectNames.append($0) }
            subjectNames.append(UnsafeRawBufferPointer(b))
        }
        return i
    }

    /// Remembers `event` (which passed ``check(_:content:earlier:names:)``) as recorded,
    /// with the digest of its content when idempotent retries must be recognised.
    package mutating func add(_ event: Event, content: UInt64? = nil) throws {
        try add(event.facts, content: content, names: { event })
    }

    /// Remembers an event by its facts; `names` is called for a subject not
    /// seen before (its name is kept) and for questions to the base.
    package mutating func add(_ facts: EventFacts, content: UInt64? = nil, names: () -> Event) throws {
        let box = baseBox
        var index: UInt32 = .max
        if let subject = facts.subject {
            let type = facts.type
            index = try subjectIndex(subject, name: { names().subject! }) {
                try type.announces ?? box?.state.subjectKind(names().subject!) ?? .facility
            }
        }
        if let id = facts.id {
            ids[id] = IdEntry(type: facts.type, subject: index, retracted: false, date: facts.date, precision: facts.precision)
            if let content { contents[id] = ContentEntry(bits: content) }
        }
        switch facts.type {
        case .targetSet:
            subjects[facts.subject!]!.setTarget(facts.milestone!)
        case .eventRetracted, .eventCorrected:
            // Bring the referenced entry here (from the base if need be), then update it.
            let key = facts.reference!
            if ids[key] == nil, let base = box?.state, let e = try base.entry(id: names().reference!) {
                let s = try e.subject.map { name in
                    try subjectIndex(ReferenceIndex.fingerprint(name), name: { name }) { (try base.subjectKind(name)) ?? .facility }
                } ?? .max
                ids[key] = IdEntry(type: e.type, subject: s, retracted: e.retracted, date: e.date, precision: e.precision)
                if e.content != 0 { contents[key] = ContentEntry(bits: e.content) }
            }
            if facts.type == .eventRetracted {
                ids[key]?.retracted = true
            } else if let changes = facts.changes {
                if let d = changes.date { ids[key]?.date = d }
                if let p = changes.precision { ids[key]?.precision = p }
            }
        default:
            break
        }
    }
}

extension ReferenceIndex: ReferenceState {}
