import CanonicalJSON

/// What changed in the answers between two states of knowledge about the
/// world as of one date (`milestones diff`, docs/cli.md): events added,
/// corrected (field by field) or retracted, and the `status` and `targets`
/// rows whose values changed. Both sides are replays of the same rules
/// (``Replay``), so a diff never disagrees with the queries.
package struct KnowledgeDiff: Sendable, Equatable {
    package enum Change: String, Sendable {
        case added, corrected, retracted, changed, removed
    }

    /// One field's value before and after (nil: absent on that side).
    package struct FieldChange: Sendable, Equatable {
        package let field: String
        package let before: JSONValue?
        package let after: JSONValue?
    }

    /// An event known on one side only, or known on both with other content.
    package struct EventChange: Sendable, Equatable {
        package let change: Change
        package let id: String
        package let type: String
        package let subject: String
        /// The fields that differ (for `corrected`), or the whole event (added, retracted).
        package let fields: [FieldChange]
    }

    /// A `status` or `targets` row that appeared, disappeared or changed.
    package struct RowChange: Sendable, Equatable {
        package let change: Change
        package let subject: String
        /// The target's milestone (nil for a status row).
        package let milestone: String?
        package let fields: [FieldChange]
    }

    package var events: [EventChange] = []
    package var status: [RowChange] = []
    package var targets: [RowChange] = []

    package var isEmpty: Bool { events.isEmpty && status.isEmpty && targets.isEmpty }

    /// The difference between what `before` and `after` know about the world as of `asOf`.
    package static func between(_ before: [KnownEvent], _ after: [KnownEvent], asOf: CalendarDate) -> KnowledgeDiff {
        var diff = KnowledgeDiff()
        let old = Dictionary(before.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        let new = Dictionary(after.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        // In record order: the events of `after`, then those only `before` knew.
        for e in after where e.date <= asOf || (old[e.id].map { $0.date <= asOf } ?? false) {
            if let o = old[e.id] {
                let fields = changes(o.object, e.object)
                if !fields.isEmpty { diff.events.append(EventChange(change: .corrected, id: e.id, type: e.type.rawValue, subject: e.subject, fields: fields)) }
            } else {
                diff.events.append(EventChange(change: .added, id: e.id, type: e.type.rawValue, subject: e.subject, fields: changes(JSONObject(), e.object)))
            }
        }
        for o in before where new[o.id] == nil && o.date <= asOf {
            diff.events.append(EventChange(change: .retracted, id: o.id, type: o.type.rawValue, subject: o.subject, fields: changes(o.object, JSONObject())))
        }
        diff.status = rows(Replay.facilities(before, asOf: asOf).map { ($0.subject, nil, $0.row) },
                           Replay.facilities(after, asOf: asOf).map { ($0.subject, nil, $0.row) })
        diff.targets = rows(Replay.targets(before, asOf: asOf).map { ($0.subject, $0.milestone, $0.row) },
                            Replay.targets(after, asOf: asOf).map { ($0.subject, $0.milestone, $0.row) })
        return diff
    }

    /// Field-by-field differences of two objects, in key order.
    static func changes(_ a: JSONObject, _ b: JSONObject) -> [FieldChange] {
        let keys = Set(a.members.map(\.key)).union(b.members.map(\.key)).sorted(by: JSONObject.keyLess)
        return keys.compactMap { k in a[k] == b[k] ? nil : FieldChange(field: k, before: a[k], after: b[k]) }
    }

    static func rows(_ a: [(String, String?, JSONObject)], _ b: [(String, String?, JSONObject)]) -> [RowChange] {
        func key(_ r: (String, String?, JSONObject)) -> String { r.0 + "\u{0}" + (r.1 ?? "") }
        let old = Dictionary(a.map { (key($0), $0) }, uniquingKeysWith: { $1 })
        let new = Dictionary(b.map { (key($0), $0) }, uniquingKeysWith: { $1 })
        var out: [RowChange] = []
        for k in Set(old.keys).union(new.keys).sorted() {
            switch (old[k], new[k]) {
            case let (o?, n?):
                let f = changes(o.2, n.2)
                if !f.isEmpty { out.append(RowChange(change: .changed, subject: n.0, milestone: n.1, fields: f)) }
            case let (nil, n?): out.append(RowChange(change: .added, subject: n.0, milestone: n.1, fields: changes(JSONObject(), n.2)))
            case let (o?, nil): out.append(RowChange(change: .removed, subject: o.0, milestone: o.1, fields: changes(o.2, JSONObject())))
            case (nil, nil): break
            }
        }
        return out
    }
}

extension FacilityStatus {
    /// The columns of `status` (docs/cli.md, "Output"), in order: the one list the CLI, the diff and the report use.
    package static let columns = ["subject", "name", "kind", "operator", "program", "phase", "phase_date", "phase_precision"]

    /// The row's values, in the order of ``columns``.
    package var values: [JSONValue] {
        func text(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        return [.string(subject), text(name), text(kind), text(operatorName), text(program), .string(phase.rawValue),
                .string(phaseDate.description), .string(phasePrecision.rawValue)]
    }

    /// The row as `status --format json` writes it.
    package var row: JSONObject { JSONObject(dictionary: Dictionary(uniqueKeysWithValues: zip(FacilityStatus.columns, values))) }
}

extension TargetStatus {
    /// The columns of `targets` (docs/cli.md, "Output"), in order: the one list the CLI, the diff and the report use.
    package static let columns = ["subject", "milestone", "due_earliest", "due_latest", "actual", "actual_latest", "implied_by", "state",
                                 "slip_days", "slip_from_original_days", "revisions"]

    /// The row's values, in the order of ``columns``.
    package var values: [JSONValue] {
        func date(_ d: CalendarDate?) -> JSONValue { d.map { .string($0.description) } ?? .null }
        func int(_ i: Int?) -> JSONValue { i.map { .int(Int64($0)) } ?? .null }
        return [.string(subject), .string(milestone), date(dueEarliest), date(dueLatest), date(actual), date(actualLatest),
                impliedBy.map { .string($0.rawValue) } ?? .null, .string(state.rawValue), int(slipDays), int(slipFromOriginalDays),
                .int(Int64(revisions))]
    }

    /// The row as `targets --format json` writes it.
    package var row: JSONObject { JSONObject(dictionary: Dictionary(uniqueKeysWithValues: zip(TargetStatus.columns, values))) }
}
