import CanonicalJSON

/// The form rules of docs/events.md: which fields each type has, and what each
/// field's value must look like. Referential rules are ``ReferenceIndex``'s.
package enum EventForm {
    /// The kinds of field value docs/events.md defines.
    enum Kind: Sendable, Equatable {
        case text  // one line, ≤ 2,000 characters
        case multilineText  // `summary`: newline and tab allowed
        case slug, date, precision, org, orgs, amount, location, due, sources, eventID, changes
        case facilityKind, targetMilestone, nonNegativeInteger, origin, format
        case typeName
    }

    /// A field of an event type. Its name is a `StaticString`: copying a
    /// field costs no reference counting, which matters a million times a verify.
    struct Field: Sendable {
        let key: StaticString
        let kind: Kind
        let required: Bool
        var name: String { key.description }
        var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount) }
        init(name: StaticString, kind: Kind, required: Bool) {
            key = name
            self.kind = kind
            self.required = required
        }
    }

    /// The most characters a text value may have (docs/events.md).
    package static let maxTextLength = 2000
    /// The milestones a target can promise.
    package static let targetMilestones: StaticTable<EventType> = [
        .siteSecured, .constructionStarted, .constructionCompleted, .productionStarted, .productionVolume,
    ]

    // Allowed values and member names as static text: compared with the
    // parsed bytes, no String made or reference counted (Strings only on error).
    static let precisionNames: StaticTable<StaticString> = DatePrecision.names
    static let facilityKindNames: StaticTable<StaticString> = ["fab", "packaging", "assembly", "datacenter", "other"]
    static let targetMilestoneNames = StaticTable<StaticString>(targetMilestones.map { EventType.names[$0.ordinal] })
    static let qualifiers: StaticTable<StaticString> = ["exact", "about", "up_to", "at_least"]
    /// The defaults normalisation writes out (docs/events.md), as JSON values:
    /// `precision` is `day`, an amount's `qualifier` is `exact`. Both the
    /// full path and record's one pass (``plainInput``) write these.
    static let defaultPrecision: StaticString = #""day""#
    static let defaultQualifier: StaticString = #""exact""#
    static let amountMembers: StaticTable<StaticString> = ["value", "currency", "qualifier"]
    static let locationMembers: StaticTable<StaticString> = ["city", "region", "country"]
    static let dueMembers: StaticTable<StaticString> = ["earliest", "latest"]
    static let sourceMembers: StaticTable<StaticString> = ["publisher", "url", "published", "title"]

    static let common: [Field] = [
        Field(name: "type", kind: .typeName, required: true),
        Field(name: "id", kind: .eventID, required: false),
        Field(name: "date", kind: .date, required: true),
        Field(name: "precision", kind: .precision, required: false),
        Field(name: "subject", kind: .slug, required: true),
        Field(name: "sources", kind: .sources, required: true),
        Field(name: "summary", kind: .multilineText, required: false),
    ]

    static func r(_ name: StaticString, _ kind: Kind) -> Field { Field(name: name, kind: kind, required: true) }
    static func o(_ name: StaticString, _ kind: Kind) -> Field { Field(name: name, kind: kind, required: false) }

    /// The fields each type adds to the common ones.
    static func extra(_ type: EventType) -> [Field] {
        switch type {
        case .ledgerCreated: []
        case .programAnnounced: [r("name", .text), r("sponsor", .org), o("amount", .amount), o("horizon", .date)]
        case .investmentCommitted: [r("amount", .amount)]
        case .facilityAnnounced:
            [r("name", .text), r("operator", .org), r("kind", .facilityKind), r("location", .location),
             o("program", .slug), o("partners", .orgs), o("area_sqft", .nonNegativeInteger), o("amount", .amount)]
        case .siteSecured: [o("area_sqft", .nonNegativeInteger)]
        case .constructionStarted, .constructionCompleted: []
        case .productionStarted, .productionVolume: [o("product", .text)]
        case .productionMilestone: [r("milestone", .text), o("product", .text), o("quantity", .nonNegativeInteger)]
        case .facilityPaused, .facilityResumed, .facilityCancelled: [o("reason", .text)]
        case .targetSet: [r("milestone", .targetMilestone), r("due", .due)]
        case .targetRevised: [r("milestone", .targetMilestone), r("due", .due), o("reason", .text)]
        case .eventCorrected: [r("corrects", .eventID), r("changes", .changes), r("reason", .text)]
        case .eventRetracted: [r("retracts", .eventID), r("reason", .text)]
        }
    }

    static let ledgerCreatedFields: [Field] = [
        r("type", .typeName), o("id", .eventID), r("name", .origin), r("format", .format), r("date", .date),
    ]

    /// Per type (by ordinal), its fields sorted by name: validation walks
    /// them side by side with the input's sorted members.
    static let fieldTables = StaticTable(EventType.allCases.map { type in
        StaticTable((type == .ledgerCreated ? ledgerCreatedFields : common + extra(type)).sorted { JSONObject.keyLess($0.name, $1.name) })
    })

    /// Every field of `type`, common ones included, sorted by name.
    static func fields(_ type: EventType) -> StaticTable<Field> { fieldTables[type.ordinal] }

    /// The names of the fields an event of `type` may have.
    package static func fieldNames(of type: EventType) -> [String] { fields(type).map(\.name) }

    // MARK: - The vocabulary, as `milestones types` shows it

    /// One field of a type as a person reads it: made from the same tables
    /// the validator walks, so the two cannot disagree.
    package struct FieldDescription: Sendable, Equatable {
        package let name: String
        package let required: Bool
        /// What its value must be, in words.
        package let form: String
    }

    /// Every field of `type` (common ones first, then the type's own), as ``FieldDescription``s.
    package static func describe(_ type: EventType) -> [FieldDescription] {
        let list = type == .ledgerCreated ? ledgerCreatedFields : common + extra(type)
        return list.map { FieldDescription(name: $0.name, required: $0.required, form: describe($0.kind, field: $0.name)) }
    }

    static func describe(_ kind: Kind, field: String) -> String {
        func names(_ t: StaticTable<StaticString>) -> String { t.map { $0.description }.joined(separator: ", ") }
        switch kind {
        case .typeName: return "the event type"
        case .text: return "text, one line, at most \(maxTextLength) characters"
        case .multilineText: return "text, at most \(maxTextLength) characters; newlines and tabs allowed"
        case .org: return "an organisation's display name (one line)"
        case .orgs: return "an array of organisation names"
        case .slug: return field == "subject" ? "a program or facility slug: [a-z0-9][a-z0-9-]{0,63}" : "the slug of an announced program"
        case .eventID: return "an event id: [A-Za-z0-9][A-Za-z0-9._:-]{0,127}"
        case .date: return "a calendar date, YYYY-MM-DD"
        case .precision: return "one of \(names(precisionNames)) (default day); a coarser date is the first day of its period"
        case .facilityKind: return "one of \(names(facilityKindNames))"
        case .targetMilestone: return "one of \(names(targetMilestoneNames))"
        case .nonNegativeInteger: return "an integer ≥ 0"
        case .amount: return "{value: whole currency units ≥ 0, currency: ISO 4217 code, qualifier: \(names(qualifiers)) (default exact)}"
        case .location: return "{city, region, country: ISO 3166-1 alpha-2 code (required)}"
        case .due: return "{earliest: date, latest: date}, earliest ≤ latest"
        case .sources: return "a non-empty array of {publisher (required), url: http(s), published: date, title}"
        case .changes: return "an object of replacement values for the corrected event's fields (not type, id or subject)"
        case .origin: return "the ledger's origin (checkpoint origin line): at most 255 characters, no spaces"
        case .format: return "1"
        }
    }

    // MARK: - Validation

    /// Checks an event against docs/events.md's forms, reading the parsed text
    /// directly (no tree is built), and returns its facts and names.
    ///
    ///     let tape = JSONTape()
    ///     try tape.parse(line)
    ///     let event = try EventForm.validate(tape.root)
    package static func validate(_ input: JSONView) throws(EventError) -> Event {
        names(of: input, facts: try facts(of: input))
    }

    /// Checks an event against docs/events.md's forms and returns what the rules
    /// need of it, making no String (``validate(_:)`` adds the names).
    package static func facts(of input: JSONView) throws(EventError) -> EventFacts {
        try withFields(of: input) { type, _, found throws(EventError) in try facts(type: type, found: found) }
    }

    /// Checks an event against docs/events.md's forms, as ``validate(_:)``, and
    /// appends its canonical bytes in their normalised form to `out`: what
    /// `record` writes. Normalised means the defaults written out
    /// (`precision: day`, an amount's `qualifier: exact`, in `changes` too),
    /// so a reader of the ledger needs no default rules. An event without an
    /// `id` is given `deriveID` of its bytes without one, and written with it.
    /// On error, `out` is as it was.
    package static func validate(_ input: JSONView, appendingNormalizedTo out: inout ByteBuffer,
                                deriveID: (UnsafeRawBufferPointer) -> String) throws(EventError) -> Event {
        try withFields(of: input) { type, table, found throws(EventError) in
            var event = names(of: input, facts: try facts(type: type, found: found))
            let start = out.count
            appendNormalized(type, table, found, id: nil, to: &out)
            if event.id == nil {
                event.assign(id: deriveID(out.bytes(from: start)))
                out.removeLast(from: start)
                appendNormalized(type, table, found, id: event.id, to: &out)
            }
            return event
        }
    }

    /// Checks each member of `input` against its field's form, and calls
    /// `body` with the event's type, its fields (sorted by name) and the
    /// value found for each (nil for one absent).
    static func withFields<R>(of input: JSONView,
                              _ body: (EventType, StaticTable<Field>, UnsafeMutableBufferPointer<JSONView?>) throws(EventError) -> R) throws(EventError) -> R {
        guard input.kind == .object else {
            throw EventError(field: "", "an event must be a JSON object, not \(input.kindName)")
        }
        // `type` sorts after every other field: look at the last member first.
        guard let typeValue = input.lastMember(named: "type") ?? input["type"] else {
            throw EventError(field: "type", "missing (required)")
        }
        guard typeValue.kind == .string else {
            throw EventError(field: "type", "must be a string, not \(typeValue.kindName)")
        }
        guard let type = typeValue.withUTF8({ EventType(utf8: $0) }) ?? nil else {
            let typeName = typeValue.string!
            let hint = suggestion(for: typeName, among: EventType.allCases.map(\.rawValue))
            throw EventError(field: "type", "unknown event type \(quoted(typeName))\(hint)")
        }
        let table = fields(type)
        // One pass over the members: each must be a field of the type; then
        // each field is checked from the view found for it.
        return try withUnsafeTemporaryAllocation(of: JSONView?.self, capacity: table.count) { (found: UnsafeMutableBufferPointer<JSONView?>) throws(EventError) -> R in
            found.initialize(repeating: nil)
            var next = 0  // members usually come sorted, like the table: walk both
            members: for (key, value) in input.members {
                var k = next
                while k < table.count, let order = key.compare(bytes: table[k].bytes), order >= 0 {
                    if order == 0 {
                        found[k] = value
                        next = k + 1
                        continue members
                    }
                    k += 1
                }
                guard let i = table.firstIndex(where: { key.equals(bytes: $0.bytes) }) else {
                    throw unknownField(key.string ?? "", type: type, table: table)
                }
                found[i] = value
            }
            for (i, f) in table.enumerated() {
                if let v = found[i] {
                    try check(v, f.kind, path: f.name)  // the name is made only on error
                } else if f.required {
                    throw EventError(field: f.name, "missing (required for \(type.rawValue))")
                }
            }
            return try body(type, table, found)
        }
    }

    /// The facts of an event whose fields (`found`, in its type's table) passed their checks.
    static func facts(type: EventType, found: UnsafeMutableBufferPointer<JSONView?>) throws(EventError) -> EventFacts {
        let at = positions[type.ordinal]
        return try facts(type: type) { k in at[k.rawValue].flatMap { found[$0] } }
    }

    /// The fields `facts` reads, and where each type's table has them.
    enum FactField: Int, CaseIterable {
        case date, precision, id, subject, corrects, retracts, milestone, program, changes
        var key: String { "\(self)" }
    }

    static let positions = StaticTable(EventType.allCases.map { type in
        StaticTable(FactField.allCases.map { k in fieldTables[type.ordinal].firstIndex { $0.name == k.key } })
    })

    /// The facts of an event whose fields passed their checks.
    static func facts(type: EventType, field: (FactField) -> JSONView?) throws(EventError) -> EventFacts {
        let date = field(.date)!.withUTF8 { CalendarDate(utf8: $0) }!!
        let precision = field(.precision).map(precision(of:)) ?? .day
        guard precision.admits(date) else {
            throw EventError(field: "date", "\(quoted(date.description)) is not the first day of its \(precision.rawValue), as \(precision.rawValue) precision requires")
        }
        var changes: ChangeFacts?
        if type == .eventCorrected {
            let c = field(.changes)!
            if c.count == 0 { throw EventError(field: "changes", "must name at least one field to change") }
            changes = changeFacts(c)
        }
        func key(_ v: JSONView?) -> UInt64? { v?.withUTF8(ReferenceIndex.fingerprint(utf8:)) }
        var milestone: UInt8?
        if type.isTarget, let m = field(.milestone) {
            milestone = targetMilestoneNames.firstIndex { m.equals($0) }.map(UInt8.init)
        }
        return EventFacts(type: type, date: date, precision: precision, id: key(field(.id)), subject: key(field(.subject)),
                          reference: key(field(.corrects) ?? field(.retracts)), program: key(field(.program)),
                          milestone: milestone, changes: changes)
    }

    /// The precision a present `precision` value names; `null` (in a
    /// correction's `changes`) resets it to the default, `day`.
    static func precision(of v: JSONView) -> DatePrecision {
        DatePrecision.names.firstIndex { v.equals($0) }.map { DatePrecision.byOrdinal[$0] } ?? .day
    }

    /// The names of a valid event (`facts` are its ``facts(of:)``).
    package static func names(of input: JSONView, facts: EventFacts) -> Event {
        Event(facts: facts, id: input["id"]?.string, subject: input["subject"]?.string,
              reference: facts.reference == nil ? nil : (input["corrects"] ?? input["retracts"])?.string,
              program: facts.program == nil ? nil : input["program"]?.string,
              changes: facts.changes == nil ? nil : input["changes"]?.value.objectValue)
    }

    /// Checks a value built in memory (e.g. from command-line options).
    package static func validate(_ value: JSONValue) throws(EventError) -> Event {
        let tape = JSONTape()
        do {
            try tape.parse(JSONWriter.bytes(value))
        } catch {
            throw EventError(field: "", "\(error)")
        }
        return try validate(tape.root)
    }

    static func unknownField(_ key: String, type: EventType, table: StaticTable<Field>) -> EventError {
        EventError(field: key, "not a field of \(type.rawValue)\(suggestion(for: key, among: table.map(\.name)))")
    }

    /// Appends the canonical bytes of a valid event in its normalised form,
    /// straight from the parsed text, its members in the order of its type's
    /// fields (which is key order); `id` is written in when given.
    static func appendNormalized(_ type: EventType, _ table: StaticTable<Field>, _ found: UnsafeMutableBufferPointer<JSONView?>,
                                 id: String?, to out: inout ByteBuffer) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for k in 0..<table.count {
            let field = table[k]
            if let value = found[k] {
                key(field, &first, &out)
                if field.kind == .amount || field.kind == .changes {
                    appendNormalized(value, amount: field.kind == .amount, to: &out)
                } else {
                    value.appendCanonical(to: &out)
                }
            } else if field.kind == .precision {
                key(field, &first, &out)
                out.append(defaultPrecision)
            } else if let id, k == idPosition[type.ordinal] {
                key(field, &first, &out)
                var text: [UInt8] = []
                JSONWriter.appendString(id, to: &text)
                out.append(text)
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Where each type's table has `id`.
    static let idPosition = StaticTable(EventType.allCases.map { positions[$0.ordinal][FactField.id.rawValue]! })

    /// Appends `"key":` (after a comma unless it is the first).
    @inline(__always)
    private static func key(_ field: Field, _ first: inout Bool, _ out: inout ByteBuffer) {
        out.reserve(field.bytes.count + 4)
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        out.append(field.bytes)
        out.append("\":")
    }

    /// Appends an amount (`amount`) or a correction's `changes` in normalised
    /// form: an amount gets its default qualifier, at the top and in `changes`.
    static func appendNormalized(_ value: JSONView, amount: Bool, to out: inout ByteBuffer) {
        guard value.kind == .object else {
            value.appendCanonical(to: &out)  // a null amount in `changes`
            return
        }
        var qualifier = amount && value["qualifier"] == nil
        out.append(UInt8(ascii: "{"))
        var first = true
        for (k, v) in value.members {
            if qualifier, k.sortsAfter("qualifier") {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                out.append(#""qualifier":"#)
                out.append(defaultQualifier)
                qualifier = false
            }
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            k.appendCanonical(to: &out)
            out.append(UInt8(ascii: ":"))
            if !amount, v.kind == .object, k.equals(StaticString("amount")) || k.equals(StaticString("changes")) {
                appendNormalized(v, amount: k.equals(StaticString("amount")), to: &out)
            } else {
                v.appendCanonical(to: &out)
            }
        }
        if qualifier {
            if !first { out.append(UInt8(ascii: ",")) }
            out.append(#""qualifier":"#)
            out.append(defaultQualifier)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Checks a correction's `changes` against the fields of the corrected
    /// event's type. `null` removes an optional field.
    package static func checkChanges(_ changes: JSONObject, for type: EventType) throws(EventError) {
        let tape = JSONTape()
        try? tape.parse(JSONWriter.bytes(.object(changes)))
        if let problem = changesFit(tape.root, explaining: type).problem { throw problem }
    }

    /// What a correction's `changes` do, for the rules: the types whose fields
    /// they fit, and the new date, precision and program.
    static func changeFacts(_ changes: JSONView) -> ChangeFacts {
        var facts = ChangeFacts(fits: changesFit(changes).fits)
        if let d = changes["date"] { facts.date = d.withUTF8 { CalendarDate(utf8: $0) } ?? nil }
        if let p = changes["precision"] {
            facts.precision = precision(of: p)
        }
        if let p = changes["program"] { facts.program = p.withUTF8(ReferenceIndex.fingerprint(utf8:)) }
        return facts
    }

    /// Every field name of the domain types: the types that have it, the
    /// types that require it, and its kinds with the types that give it each.
    struct ChangeableField {
        let key: StaticString
        let kinds: StaticTable<(kind: Kind, types: UInt32)>
        let required: UInt32
        let present: UInt32
    }

    /// Sorted by name (byte order), for a binary search.
    static let changeableFields: StaticTable<ChangeableField> = {
        var byName: [String: (key: StaticString, kinds: [(kind: Kind, types: UInt32)], required: UInt32, present: UInt32)] = [:]
        for type in EventType.allCases where type.isDomain {
            let bit = UInt32(1) << UInt32(type.ordinal)
            for f in fields(type) {
                var entry = byName[f.name] ?? (f.key, [], 0, 0)
                if let k = entry.kinds.firstIndex(where: { $0.kind == f.kind }) { entry.kinds[k].types |= bit } else { entry.kinds.append((f.kind, bit)) }
                entry.present |= bit
                if f.required { entry.required |= bit }
                byName[f.name] = entry
            }
        }
        return StaticTable(byName.keys.sorted(by: JSONObject.keyLess).map { name in
            let e = byName[name]!
            return ChangeableField(key: e.key, kinds: StaticTable(e.kinds), required: e.required, present: e.present)
        })
    }()

    /// The domain types, a bit per ordinal.
    static let domainTypes: UInt32 = EventType.allCases.filter(\.isDomain).reduce(0) { $0 | 1 << UInt32($1.ordinal) }

    static func changeableField(named key: JSONView) -> ChangeableField? {
        var (lo, hi) = (0, changeableFields.count)
        while lo < hi {
            let mid = (lo + hi) / 2
            let f = changeableFields[mid]
            guard let order = key.compare(bytes: UnsafeBufferPointer(start: f.key.utf8Start, count: f.key.utf8CodeUnitCount)) else { return nil }
            if order == 0 { return f }
            if order < 0 { hi = mid } else { lo = mid + 1 }
        }
        return nil
    }

    /// The domain types (bit per ordinal) whose fields a correction's
    /// `changes` fit (`null` removes an optional field), and, for the type
    /// `explaining`, the first problem when they do not fit it.
    static func changesFit(_ changes: JSONView, explaining: EventType? = nil) -> (fits: UInt32, problem: EventError?) {
        var fits = domainTypes
        var problem: EventError?
        func clear(_ types: UInt32, _ why: @autoclosure () -> EventError) {
            if let t = explaining, problem == nil, types & fits & 1 << UInt32(t.ordinal) != 0 { problem = why() }
            fits &= ~types
        }
        for (key, value) in changes.members {
            guard fits != 0 else { break }
            // Names and paths are made only for a message.
            func name() -> String { key.string ?? "" }
            func path() -> String { "changes.\(name())" }
            func notAField(of t: EventType) -> EventError {
                let names = fields(t).map(\.name).filter { !["type", "id", "subject"].contains($0) }
                return EventError(field: path(), "not a field of \(t.rawValue)\(suggestion(for: name(), among: names))")
            }
            if key.equals("type") || key.equals("id") || key.equals("subject") {
                clear(.max, EventError(field: path(), "a correction cannot change \(name())"))
                continue
            }
            guard let field = changeableField(named: key) else {
                clear(.max, notAField(of: explaining ?? .programAnnounced))
                continue
            }
            if let t = explaining, field.present & 1 << UInt32(t.ordinal) == 0 {
                clear(~field.present, notAField(of: t))
            }
            fits &= field.present
            if value.isNull {
                clear(field.required, EventError(field: path(), "cannot remove a required field of \(explaining?.rawValue ?? "")"))
                continue
            }
            // Each kind the field has among the types still fitting, checked once.
            for (kind, types) in field.kinds where fits & types != 0 {
                do throws(EventError) {
                    try check(value, kind, path: path())
                } catch {
                    clear(types, error)
                }
            }
        }
        return (fits, problem)
    }

    /// Applies a correction's `changes` to an event object: a merge patch at
    /// the top level (null removes; docs/events.md).
    package static func apply(_ changes: JSONObject, to object: JSONObject) -> JSONObject {
        object.mergingTopLevel(changes)
    }

    /// The same on parsed canonical JSON: appends the corrected event's
    /// canonical JSON to `out`; false if either is not an object.
    package static func apply(_ changes: JSONView, to event: JSONView, into out: inout ByteBuffer) -> Bool {
        event.mergingTopLevel(changes, into: &out)
    }

    // MARK: - Values

    static func check(_ v: JSONView, _ kind: Kind, path: @autoclosure () -> String) throws(EventError) {
        switch kind {
        case .typeName:
            return
        case .text, .org:
            try text(v, path: path(), multiline: false)
        case .multilineText:
            try text(v, path: path(), multiline: true)
        case .origin:
            try text(v, path: path(), multiline: false)
            let s = v.string!
            guard s.unicodeScalars.count <= 255, !s.unicodeScalars.contains(where: { $0.properties.isWhitespace }) else {
                throw EventError(field: path(), "must be at most 255 characters with no spaces (it is the checkpoint origin line)")
            }
        case .format:
            guard v.int == 1 else { throw EventError(field: path(), "must be 1 (the only ledger format)") }
        case .slug:
            try requireString(v, path: path())
            guard v.withUTF8(isSlug)! else { throw EventError(field: path(), "\(quoted(v.string!)) is not a slug ([a-z0-9][a-z0-9-]{0,63})") }
        case .eventID:
            try requireString(v, path: path())
            guard v.withUTF8(isID)! else { throw EventError(field: path(), "\(quoted(v.string!)) is not an id ([A-Za-z0-9][A-Za-z0-9._:-]{0,127})") }
        case .date:
            try requireString(v, path: path())
            guard v.withUTF8(CalendarDate.isValid)! else {
                throw EventError(field: path(), "\(quoted(v.string!)) is not a calendar date (YYYY-MM-DD)")
            }
        case .precision:
            try oneOf(v, precisionNames, path: path())
        case .facilityKind:
            try oneOf(v, facilityKindNames, path: path())
        case .targetMilestone:
            try oneOf(v, targetMilestoneNames, path: path())
        case .nonNegativeInteger:
            guard let i = v.int else { throw EventError(field: path(), "must be an integer, not \(v.kindName)") }
            guard i >= 0 else { throw EventError(field: path(), "must not be negative") }
        case .orgs:
            guard v.kind == .array else { throw EventError(field: path(), "must be an array of names, not \(v.kindName)") }
            try v.forEachElement { i, x throws(EventError) in try text(x, path: "\(path())[\(i)]", multiline: false) }
        case .amount:
            let m = try object(v, path: path(), allowed: amountMembers)
            guard let value = m[0] else { throw EventError(field: "\(path()).value", "missing (required)") }
            guard let n = value.int, n >= 0 else {
                throw EventError(field: "\(path()).value", "must be a whole number of currency units ≥ 0")
            }
            guard let c = m[1] else { throw EventError(field: "\(path()).currency", "missing (required)") }
            try requireString(c, path: "\(path()).currency")
            guard c.withUTF8(Codes.isCurrency) == true else {
                throw EventError(field: "\(path()).currency", "\(quoted(c.string!)) is not an ISO 4217 currency code")
            }
            if let q = m[2] { try oneOf(q, qualifiers, path: "\(path()).qualifier") }
        case .location:
            let m = try object(v, path: path(), allowed: locationMembers)
            guard let c = m[2] else { throw EventError(field: "\(path()).country", "missing (required)") }
            try requireString(c, path: "\(path()).country")
            guard c.withUTF8(Codes.isCountry) == true else {
                throw EventError(field: "\(path()).country", "\(quoted(c.string!)) is not an ISO 3166-1 alpha-2 country code")
            }
            if let x = m[0] { try text(x, path: "\(path()).city", multiline: false) }
            if let x = m[1] { try text(x, path: "\(path()).region", multiline: false) }
        case .due:
            let m = try object(v, path: path(), allowed: dueMembers)
            guard let e = m[0] else { throw EventError(field: "\(path()).earliest", "missing (required)") }
            let earliest = try date(e, path: "\(path()).earliest")
            guard let l = m[1] else { throw EventError(field: "\(path()).latest", "missing (required)") }
            let latest = try date(l, path: "\(path()).latest")
            guard earliest <= latest else {
                throw EventError(field: "\(path()).earliest", "\(earliest) is after latest \(latest)")
            }
        case .sources:
            guard v.kind == .array else { throw EventError(field: path(), "must be an array of sources, not \(v.kindName)") }
            guard v.count > 0 else { throw EventError(field: path(), "must name at least one source") }
            try v.forEachElement { i, s throws(EventError) in
                func p() -> String { "\(path())[\(i)]" }
                let m = try object(s, path: p(), allowed: sourceMembers)
                guard let pub = m[0] else { throw EventError(field: "\(p()).publisher", "missing (required)") }
                try text(pub, path: "\(p()).publisher", multiline: false)
                if let u = m[1] {
                    try requireString(u, path: "\(p()).url")
                    guard u.withUTF8(isHTTPURL)! else { throw EventError(field: "\(p()).url", "\(quoted(u.string!)) is not an http(s) URL") }
                }
                if let d = m[2] { try check(d, .date, path: "\(p()).published") }
                if let t = m[3] { try text(t, path: "\(p()).title", multiline: false) }
            }
        case .changes:
            // Checked against the corrected event's type by ReferenceIndex;
            // `amount` is an amount in every type, so it is checked here too.
            guard v.kind == .object else { throw EventError(field: path(), "must be an object of replacement values, not \(v.kindName)") }
            if let a = v["amount"], !a.isNull { try check(a, .amount, path: "\(path()).amount") }
        }
    }

    static func date(_ v: JSONView, path: @autoclosure () -> String) throws(EventError) -> CalendarDate {
        try check(v, .date, path: path())
        return v.withUTF8 { CalendarDate(utf8: $0) }!!
    }

    static func requireString(_ v: JSONView, path: @autoclosure () -> String) throws(EventError) {
        guard v.kind == .string else { throw EventError(field: path(), "must be a string, not \(v.kindName)") }
    }

    static func text(_ v: JSONView, path: @autoclosure () -> String, multiline: Bool) throws(EventError) {
        try requireString(v, path: path())
        // One pass over the UTF-8 bytes: count characters (scalars), find
        // control characters (C0, DEL, and C1 as C2 80–C2 9F), and see
        // whether anything but ASCII blanks is there.
        let (count, blank, bad) = v.withUTF8 { u -> (Int, Bool, UInt32?) in
            var count = 0
            var blank = true
            var previous: UInt8 = 0
            var bad: UInt32?
            var i = 0
            // Eight bytes at a time while they are printable ASCII (0x20–0x7E):
            // eight characters, none a control; blank only if all spaces.
            if let base = u.baseAddress {
                let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
                while i + 8 <= u.count {
                    let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
                    // Any byte ≥ 0x80, < 0x20, or 0x7F (0x7F + 1 = 0x80) sends the word to the byte loop.
                    guard (w | (w &+ ones)) & highs == 0, (w &- ones &* 0x20) & ~w & highs == 0 else { break }
                    if w != ones &* 0x20 { blank = false }
                    count += 8
                    previous = UInt8(truncatingIfNeeded: w >> 56)
                    i += 8
                }
            }
            for c in u[i...] {
                if c & 0xC0 != 0x80 { count += 1 }
                if c < 0x20 || c == 0x7F {
                    if !(multiline && (c == 0x0A || c == 0x09)) { bad = bad ?? UInt32(c) }
                } else if previous == 0xC2 && c >= 0x80 && c < 0xA0 {
                    bad = bad ?? UInt32(c)
                }
                if c != 0x20 && c != 0x09 && c != 0x0A && c != 0x0D { blank = false }
                previous = c
            }
            return (count, blank, bad)
        }!
        if let bad { throw EventError(field: path(), "contains a control character (U+\(hex4(bad)))") }
        if blank { throw EventError(field: path(), "must not be empty") }
        if count > maxTextLength { throw EventError(field: path(), "is \(count) characters long; at most \(maxTextLength)") }
    }

    static func oneOf(_ v: JSONView, _ allowed: StaticTable<StaticString>, path: @autoclosure () -> String) throws(EventError) {
        try requireString(v, path: path())
        guard !allowed.contains(where: { v.equals($0) }) else { return }  // small lists
        let s = v.string!
        let names = allowed.map(\.description)
        throw EventError(field: path(), "\(quoted(s)) is not one of \(names.joined(separator: ", "))\(suggestion(for: s, among: names))")
    }

    /// The members of a small object, found in one walk, by position in
    /// `allowed` (at most four).
    struct Members {
        var found: (JSONView?, JSONView?, JSONView?, JSONView?) = (nil, nil, nil, nil)
        subscript(k: Int) -> JSONView? {
            get {
                switch k {
                case 0: found.0
                case 1: found.1
                case 2: found.2
                default: found.3
                }
            }
            set {
                switch k {
                case 0: found.0 = newValue
                case 1: found.1 = newValue
                case 2: found.2 = newValue
                default: found.3 = newValue
                }
            }
        }
    }

    /// Checks that `v` is an object whose members are all in `allowed`, and returns them.
    @discardableResult
    static func object(_ v: JSONView, path: @autoclosure () -> String, allowed: StaticTable<StaticString>) throws(EventError) -> Members {
        guard v.kind == .object else { throw EventError(field: path(), "must be an object, not \(v.kindName)") }
        var unknown: String?
        var m = Members()
        for (k, value) in v.members {
            guard let i = allowed.firstIndex(where: { k.equals($0) }) else {
                unknown = k.string ?? ""
                break
            }
            m[i] = value
        }
        if let k = unknown {
            let names = allowed.map(\.description)
            throw EventError(field: "\(path()).\(k)", "not a field here (allowed: \(names.joined(separator: ", ")))\(suggestion(for: k, among: names))")
        }
        return m
    }

    // MARK: - Forms

    /// `[a-z0-9][a-z0-9-]{0,63}`
    package static func isSlug(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        guard (1...64).contains(u.count), u[0] != 0x2D else { return false }
        return allBytes(u) { w in ByteClass.within(w, 0x61, 0x7A) | ByteClass.within(w, 0x30, 0x39) | ByteClass.within(w, 0x2D, 0x2D) }
    }

    /// Whether every byte of `u` is in the classes `classes` marks (it sets
    /// the high bit of each byte of a word that is in them; see ``ByteClass``),
    /// eight bytes at a time, the last few in a zero-padded word.
    @inline(__always)
    static func allBytes(_ u: UnsafeBufferPointer<UInt8>, _ classes: (UInt64) -> UInt64) -> Bool {
        guard let base = u.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i &+ 8 <= u.count {
            let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            guard w & ByteClass.highs == 0, classes(w) == ByteClass.highs else { return false }
            i &+= 8
        }
        let rest = u.count &- i
        guard rest > 0 else { return true }
        var w: UInt64 = 0
        withUnsafeMutableBytes(of: &w) { $0.copyMemory(from: UnsafeRawBufferPointer(start: base + i, count: rest)) }
        w = UInt64(littleEndian: w)
        let used = (UInt64(1) << UInt64(rest &* 8)) &- 1  // rest < 8
        return w & ByteClass.highs == 0 && classes(w) & used == ByteClass.highs & used
    }

    package static func isSlug(_ s: String) -> Bool {
        var t = s
        return t.withUTF8(isSlug)
    }

    /// `[A-Za-z0-9][A-Za-z0-9._:-]{0,127}`
    package static func isID(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        guard (1...128).contains(u.count) else { return false }
        let c = u[0]
        guard (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) else { return false }
        // Letters, digits and `:` (0x30–0x3A), `-` and `.` (0x2D–0x2E), `_`.
        return allBytes(u) { w in
            ByteClass.within(w, 0x61, 0x7A) | ByteClass.within(w, 0x41, 0x5A) | ByteClass.within(w, 0x30, 0x3A)
                | ByteClass.within(w, 0x2D, 0x2E) | ByteClass.within(w, 0x5F, 0x5F)
        }
    }

    /// Byte ranges tested on eight ASCII bytes at once.
    enum ByteClass {
        static let ones: UInt64 = 0x0101_0101_0101_0101
        static let highs: UInt64 = 0x8080_8080_8080_8080

        /// The high bit of each byte of `w` that is in `lo...hi`; every byte
        /// of `w` must be below 0x80 (then adding at most 0x7F carries into
        /// no other byte).
        @inline(__always)
        static func within(_ w: UInt64, _ lo: UInt8, _ hi: UInt8) -> UInt64 {
            let atLeastLo = (w &+ ones &* UInt64(0x80 &- lo)) & highs
            let aboveHi = (w &+ ones &* UInt64(0x7F &- hi)) & highs
            return atLeastLo & ~aboveHi
        }
    }

    package static func isID(_ s: String) -> Bool {
        var t = s
        return t.withUTF8(isID)
    }

    /// `http://` or `https://`, a host, and no spaces or control characters.
    package static func isHTTPURL(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = u.baseAddress, u.count >= 8 else { return false }
        // The scheme, case-insensitively: "http://" or "https://".
        let head = UnsafeRawPointer(base).loadUnaligned(as: UInt64.self)
        let lowered = head | 0x0000_0000_2020_2020  // the letters of "http" (the first four bytes) to lower case
        var i: Int
        if lowered & 0x00FF_FFFF_FFFF_FFFF == 0x002F_2F3A_7074_7468 {  // "http://"
            i = 7
        } else if lowered | 0x0000_0020_0000_0000 == 0x2F2F_3A73_7074_7468 {  // "https://" (the s in either case)
            i = 8
        } else {
            return false
        }
        // A host: at least one byte before the first / ? #, not starting with : or @.
        guard i < u.count, u[i] != UInt8(ascii: "/"), u[i] != UInt8(ascii: "?"), u[i] != UInt8(ascii: "#"),
              u[i] != UInt8(ascii: ":"), u[i] != UInt8(ascii: "@")
        else { return false }
        // No space or control character; eight bytes at a time while they are
        // printable ASCII other than space (0x21–0x7E).
        var count = 0
        var ascii = true
        i = 0
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        while i + 8 <= u.count {
            let w = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
            // A byte ≥ 0x80, ≤ 0x20 or 0x7F sends the word to the byte loop.
            guard (w | (w &+ ones)) & highs == 0, (w &- ones &* 0x21) & ~w & highs == 0 else { break }
            count += 8
            i += 8
        }
        for c in u[i...] {
            if c & 0xC0 != 0x80 { count += 1 }
            if c <= 0x20 || c == 0x7F { return false }
            if c >= 0x80 { ascii = false }
        }
        guard count <= maxTextLength else { return false }
        if !ascii {
            let s = String(decoding: u, as: UTF8.self)
            // No C1 controls, spaces or invisible format characters (bidi overrides spoof a URL).
            if s.unicodeScalars.contains(where: {
                ($0.value >= 0x80 && $0.value < 0xA0) || $0.properties.isWhitespace || $0.properties.generalCategory == .format
            }) { return false }
        }
        return true
    }

    package static func isHTTPURL(_ s: String) -> Bool {
        var t = s
        return t.withUTF8(isHTTPURL)
    }

    /// An org's slug: lowercased, runs of non-alphanumerics folded to `-`.
    package static func slug(ofOrg name: String) -> String {
        var out = ""
        var dash = false
        for ch in name.lowercased().unicodeScalars {
            if ch.properties.isAlphabetic || ch.properties.numericType != nil {
                if dash && !out.isEmpty { out.append("-") }
                dash = false
                out.unicodeScalars.append(ch)
            } else {
                dash = true
            }
        }
        return out
    }
}

// MARK: - Messages

/// A value quoted for an error message (see ``JSONWriter/quotedForDisplay(_:)``).
package func quoted(_ s: String) -> String { JSONWriter.quotedForDisplay(s) }

func hex4(_ v: UInt32) -> String {
    let h = String(v, radix: 16, uppercase: false)
    return String(repeating: "0", count: max(0, 4 - h.count)) + h
}

/// ` (did you mean "x"?)` when a known name is within two edits.
func suggestion(for word: String, among names: [String]) -> String {
    var best: (String, Int)?
    for n in names {
        let d = editDistance(word, n)
        if d <= 2, d < (best?.1 ?? Int.max) { best = (n, d) }
    }
    if let (n, _) = best, n != word { return " (did you mean \(quoted(n))?)" }
    return ""
}

func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.unicodeScalars.prefix(64))
    let y = Array(b.unicodeScalars.prefix(64))
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count)
    var cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[y.count]
}
