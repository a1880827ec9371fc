import CanonicalJSON

/// The form rules of events.md: which fields each type has, and what each
/// field's value must look like. Referential rules are ``ReferenceIndex``'s.
public enum EventForm {
    /// The kinds of field value events.md defines.
    enum Kind: Sendable {
        case text  // one line, ≤ 2,000 characters
        case multilineText  // `summary`: newline and tab allowed
        case slug, date, precision, org, orgs, amount, location, due, sources, eventID, changes
        case facilityKind, targetMilestone, nonNegativeInteger, origin, format
        case typeName
    }

    struct Field: Sendable {
        let name: String
        let kind: Kind
        let required: Bool
    }

    static let maxTextLength = 2000
    public static let facilityKinds = ["fab", "packaging", "assembly", "datacenter", "other"]
    /// The milestones a target can promise.
    public static let targetMilestones: [EventType] = [
        .siteSecured, .constructionStarted, .constructionCompleted, .productionStarted, .productionVolume,
    ]

    static let precisionNames = DatePrecision.allCases.map(\.rawValue)
    static let targetMilestoneNames = targetMilestones.map(\.rawValue)
    static let qualifiers = ["exact", "about", "up_to", "at_least"]

    static let common: [Field] = [
        Field(name: "type", kind: .typeName, required: true),
        Field(name: "id", kind: .eventID, required: false),
        Field(name: "date", kind: .date, required: true),
        Field(name: "precision", kind: .precision, required: false),
        Field(name: "subject", kind: .slug, required: true),
        Field(name: "sources", kind: .sources, required: true),
        Field(name: "summary", kind: .multilineText, required: false),
    ]

    static func r(_ name: String, _ kind: Kind) -> Field { Field(name: name, kind: kind, required: true) }
    static func o(_ name: String, _ kind: Kind) -> Field { Field(name: name, kind: kind, required: false) }

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
    static let fieldTables: [[Field]] = EventType.allCases.map { type in
        (type == .ledgerCreated ? ledgerCreatedFields : common + extra(type)).sorted { JSONObject.keyLess($0.name, $1.name) }
    }

    /// Every field of `type`, common ones included, sorted by name.
    static func fields(_ type: EventType) -> [Field] { fieldTables[type.ordinal] }

    /// The names of the fields an event of `type` may have.
    public static func fieldNames(of type: EventType) -> [String] { fields(type).map(\.name) }

    // MARK: - Validation

    /// Checks an input event against events.md's forms and returns it normalised.
    ///
    ///     let e = try EventForm.validate(try JSONReader.parse(line))
    public static func validate(_ value: JSONValue) throws(EventError) -> Event {
        guard case .object(let input) = value else {
            throw EventError(field: "", "an event must be a JSON object, not \(value.kindName)")
        }
        guard let typeValue = input["type"] else { throw EventError(field: "type", "missing (required)") }
        guard let typeName = typeValue.stringValue else {
            throw EventError(field: "type", "must be a string, not \(typeValue.kindName)")
        }
        guard let type = EventType(rawValue: typeName) else {
            let hint = suggestion(for: typeName, among: EventType.allCases.map(\.rawValue))
            throw EventError(field: "type", "unknown event type \(quoted(typeName))\(hint)")
        }
        let table = fields(type)
        var members: [JSONObject.Member] = []
        members.reserveCapacity(input.count + 1)
        var i = 0  // into input.members; both sorted by key
        for f in table {
            while i < input.members.count, JSONObject.keyLess(input.members[i].key, f.name) {
                throw unknownField(input.members[i].key, type: type, table: table)
            }
            if i < input.members.count, input.members[i].key == f.name {
                members.append(JSONObject.Member(key: f.name, value: try check(input.members[i].value, f.kind, path: f.name)))
                i += 1
            } else if f.name == "precision", type != .ledgerCreated {
                members.append(JSONObject.Member(key: "precision", value: "day"))
            } else if f.required {
                throw EventError(field: f.name, "missing (required for \(type.rawValue))")
            }
        }
        if i < input.members.count { throw unknownField(input.members[i].key, type: type, table: table) }
        let out = JSONObject(sortedMembers: members)
        return try event(from: out, type: type)
    }

    static func unknownField(_ key: String, type: EventType, table: [Field]) -> EventError {
        EventError(field: key, "not a field of \(type.rawValue)\(suggestion(for: key, among: table.map(\.name)))")
    }

    /// Builds the typed view of an already normalised object, checking the
    /// rules that tie fields together.
    static func event(from out: JSONObject, type: EventType) throws(EventError) -> Event {
        let date = CalendarDate(out["date"]!.stringValue!)!
        let precision = out["precision"].flatMap { $0.stringValue.flatMap(DatePrecision.init) } ?? .day
        guard precision.admits(date) else {
            throw EventError(field: "date", "\(quoted(date.description)) is not the first day of its \(precision.rawValue), as \(precision.rawValue) precision requires")
        }
        if type == .eventCorrected, out["changes"]!.objectValue!.isEmpty {
            throw EventError(field: "changes", "must name at least one field to change")
        }
        return Event(object: out, type: type, id: out["id"]?.stringValue, subject: out["subject"]?.stringValue,
                     date: date, precision: precision)
    }

    /// Checks the `changes` of a correction against the fields of the
    /// corrected event's type, and returns them normalised. `null` removes an
    /// optional field.
    public static func checkChanges(_ changes: JSONObject, for type: EventType) throws(EventError) -> JSONObject {
        let table = fields(type)
        var out = JSONObject()
        for m in changes.members {
            let path = "changes.\(m.key)"
            if ["type", "id", "subject"].contains(m.key) {
                throw EventError(field: path, "a correction cannot change \(m.key)")
            }
            guard let f = table.first(where: { $0.name == m.key }) else {
                let hint = suggestion(for: m.key, among: table.map(\.name).filter { !["type", "id", "subject"].contains($0) })
                throw EventError(field: path, "not a field of \(type.rawValue)\(hint)")
            }
            if m.value == .null {
                if f.required { throw EventError(field: path, "cannot remove a required field of \(type.rawValue)") }
                out[m.key] = .null
            } else {
                out[m.key] = try check(m.value, f.kind, path: path)
            }
        }
        return out
    }

    /// Applies a correction's `changes` to an event object (null removes).
    public static func apply(_ changes: JSONObject, to object: JSONObject) -> JSONObject {
        var o = object
        for m in changes.members { o[m.key] = m.value == .null ? nil : m.value }
        return o
    }

    // MARK: - Values

    static func check(_ v: JSONValue, _ kind: Kind, path: @autoclosure () -> String) throws(EventError) -> JSONValue {
        switch kind {
        case .typeName:
            return v
        case .text, .org:
            return .string(try text(v, path: path(), multiline: false))
        case .multilineText:
            return .string(try text(v, path: path(), multiline: true))
        case .origin:
            let s = try text(v, path: path(), multiline: false)
            guard s.unicodeScalars.count <= 255, !s.unicodeScalars.contains(where: { $0.properties.isWhitespace }) else {
                throw EventError(field: path(), "must be at most 255 characters with no spaces (it is the checkpoint origin line)")
            }
            return v
        case .format:
            guard v == .int(1) else { throw EventError(field: path(), "must be 1 (the only ledger format)") }
            return v
        case .slug:
            let s = try string(v, path: path())
            guard isSlug(s) else { throw EventError(field: path(), "\(quoted(s)) is not a slug ([a-z0-9][a-z0-9-]{0,63})") }
            return v
        case .eventID:
            let s = try string(v, path: path())
            guard isID(s) else { throw EventError(field: path(), "\(quoted(s)) is not an id ([A-Za-z0-9][A-Za-z0-9._:-]{0,127})") }
            return v
        case .date:
            let s = try string(v, path: path())
            guard CalendarDate(s) != nil else { throw EventError(field: path(), "\(quoted(s)) is not a calendar date (YYYY-MM-DD)") }
            return v
        case .precision:
            return try oneOf(v, precisionNames, path: path())
        case .facilityKind:
            return try oneOf(v, facilityKinds, path: path())
        case .targetMilestone:
            return try oneOf(v, targetMilestoneNames, path: path())
        case .nonNegativeInteger:
            guard case .int(let i) = v else { throw EventError(field: path(), "must be an integer, not \(v.kindName)") }
            guard i >= 0 else { throw EventError(field: path(), "must not be negative") }
            return v
        case .orgs:
            guard case .array(let a) = v else { throw EventError(field: path(), "must be an array of names, not \(v.kindName)") }
            var out: [JSONValue] = []
            for (i, x) in a.enumerated() { out.append(.string(try text(x, path: "\(path())[\(i)]", multiline: false))) }
            return .array(out)
        case .amount:
            let o = try object(v, path: path(), allowed: ["value", "currency", "qualifier"])
            guard let value = o["value"] else { throw EventError(field: "\(path()).value", "missing (required)") }
            guard case .int(let n) = value, n >= 0 else {
                throw EventError(field: "\(path()).value", "must be a whole number of currency units ≥ 0")
            }
            guard let c = o["currency"] else { throw EventError(field: "\(path()).currency", "missing (required)") }
            let code = try string(c, path: "\(path()).currency")
            guard Codes.currencies.contains(code) else {
                throw EventError(field: "\(path()).currency", "\(quoted(code)) is not an ISO 4217 currency code")
            }
            var out = o
            out["qualifier"] = try oneOf(o["qualifier"] ?? "exact", qualifiers, path: "\(path()).qualifier")
            return .object(out)
        case .location:
            let o = try object(v, path: path(), allowed: ["city", "region", "country"])
            guard let c = o["country"] else { throw EventError(field: "\(path()).country", "missing (required)") }
            let code = try string(c, path: "\(path()).country")
            guard Codes.countries.contains(code) else {
                throw EventError(field: "\(path()).country", "\(quoted(code)) is not an ISO 3166-1 alpha-2 country code")
            }
            for k in ["city", "region"] {
                if let x = o[k] { _ = try text(x, path: "\(path()).\(k)", multiline: false) }
            }
            return v
        case .due:
            let o = try object(v, path: path(), allowed: ["earliest", "latest"])
            var dates: [CalendarDate] = []
            for k in ["earliest", "latest"] {
                guard let x = o[k] else { throw EventError(field: "\(path()).\(k)", "missing (required)") }
                _ = try check(x, .date, path: "\(path()).\(k)")
                dates.append(CalendarDate(x.stringValue!)!)
            }
            guard dates[0] <= dates[1] else {
                throw EventError(field: "\(path()).earliest", "\(dates[0]) is after latest \(dates[1])")
            }
            return v
        case .sources:
            guard case .array(let a) = v else { throw EventError(field: path(), "must be an array of sources, not \(v.kindName)") }
            guard !a.isEmpty else { throw EventError(field: path(), "must name at least one source") }
            for (i, s) in a.enumerated() {
                func p() -> String { "\(path())[\(i)]" }
                let o = try object(s, path: p(), allowed: ["publisher", "url", "published", "title"])
                guard let pub = o["publisher"] else { throw EventError(field: "\(p()).publisher", "missing (required)") }
                _ = try text(pub, path: "\(p()).publisher", multiline: false)
                if let u = o["url"] {
                    let s = try string(u, path: "\(p()).url")
                    guard isHTTPURL(s) else { throw EventError(field: "\(p()).url", "\(quoted(s)) is not an http(s) URL") }
                }
                if let d = o["published"] { _ = try check(d, .date, path: "\(p()).published") }
                if let t = o["title"] { _ = try text(t, path: "\(p()).title", multiline: false) }
            }
            return v
        case .changes:
            // Checked against the corrected event's type by ReferenceIndex;
            // `amount` is an amount in every type, so it is normalised here.
            guard case .object(var o) = v else { throw EventError(field: path(), "must be an object of replacement values, not \(v.kindName)") }
            if let a = o["amount"], a != .null { o["amount"] = try check(a, .amount, path: "\(path()).amount") }
            return .object(o)
        }
    }

    static func string(_ v: JSONValue, path: @autoclosure () -> String) throws(EventError) -> String {
        guard case .string(let s) = v else { throw EventError(field: path(), "must be a string, not \(v.kindName)") }
        return s
    }

    static func text(_ v: JSONValue, path: @autoclosure () -> String, multiline: Bool) throws(EventError) -> String {
        let s = try string(v, path: path())
        // One pass over the UTF-8 bytes: count characters (scalars), find
        // control characters (C0, DEL, and C1 as C2 80–C2 9F), and see
        // whether anything but ASCII blanks is there.
        var count = 0
        var blank = true
        var previous: UInt8 = 0
        var bad: UInt32?
        for c in s.utf8 {
            if c & 0xC0 != 0x80 { count += 1 }
            if c < 0x20 || c == 0x7F {
                if !(multiline && (c == 0x0A || c == 0x09)) { bad = bad ?? UInt32(c) }
            } else if previous == 0xC2 && c >= 0x80 && c < 0xA0 {
                bad = bad ?? UInt32(c)
            }
            if c != 0x20 && c != 0x09 && c != 0x0A && c != 0x0D { blank = false }
            previous = c
        }
        if let bad { throw EventError(field: path(), "contains a control character (U+\(hex4(bad)))") }
        if blank { throw EventError(field: path(), "must not be empty") }
        if count > maxTextLength { throw EventError(field: path(), "is \(count) characters long; at most \(maxTextLength)") }
        return s
    }

    static func oneOf(_ v: JSONValue, _ allowed: [String], path: @autoclosure () -> String) throws(EventError) -> JSONValue {
        let s = try string(v, path: path())
        guard allowed.contains(s) else {
            throw EventError(field: path(), "\(quoted(s)) is not one of \(allowed.joined(separator: ", "))\(suggestion(for: s, among: allowed))")
        }
        return v
    }

    static func object(_ v: JSONValue, path: @autoclosure () -> String, allowed: [String]) throws(EventError) -> JSONObject {
        guard case .object(let o) = v else { throw EventError(field: path(), "must be an object, not \(v.kindName)") }
        for m in o.members where !allowed.contains(m.key) {
            let k = m.key
            throw EventError(field: "\(path()).\(k)", "not a field here (allowed: \(allowed.joined(separator: ", ")))\(suggestion(for: k, among: allowed))")
        }
        return o
    }

    // MARK: - Forms

    /// `[a-z0-9][a-z0-9-]{0,63}`
    public static func isSlug(_ s: String) -> Bool {
        let u = s.utf8
        guard (1...64).contains(u.count) else { return false }
        for (i, c) in u.enumerated() {
            let ok = (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || (i > 0 && c == 0x2D)
            if !ok { return false }
        }
        return true
    }

    /// `[A-Za-z0-9][A-Za-z0-9._:-]{0,127}`
    public static func isID(_ s: String) -> Bool {
        let u = s.utf8
        guard (1...128).contains(u.count) else { return false }
        for (i, c) in u.enumerated() {
            let alnum = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
            let punct = c == 0x2E || c == 0x5F || c == 0x3A || c == 0x2D
            if !(alnum || (i > 0 && punct)) { return false }
        }
        return true
    }

    /// `http://` or `https://`, a host, and no spaces or control characters.
    public static func isHTTPURL(_ s: String) -> Bool {
        var text = s
        let (ok, ascii) = text.withUTF8 { u -> (Bool, Bool) in
            func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
            var i = 0
            for c in "http".utf8 {
                guard i < u.count, lower(u[i]) == c else { return (false, true) }
                i += 1
            }
            if i < u.count, lower(u[i]) == UInt8(ascii: "s") { i += 1 }
            for c in "://".utf8 {
                guard i < u.count, u[i] == c else { return (false, true) }
                i += 1
            }
            // A host: at least one byte before the first / ? #, not starting with : or @.
            guard i < u.count, u[i] != UInt8(ascii: "/"), u[i] != UInt8(ascii: "?"), u[i] != UInt8(ascii: "#"),
                  u[i] != UInt8(ascii: ":"), u[i] != UInt8(ascii: "@")
            else { return (false, true) }
            var count = 0
            var ascii = true
            for c in u {
                if c & 0xC0 != 0x80 { count += 1 }
                if c <= 0x20 || c == 0x7F { return (false, true) }
                if c >= 0x80 { ascii = false }
            }
            return (count <= maxTextLength, ascii)
        }
        guard ok else { return false }
        if !ascii, s.unicodeScalars.contains(where: { ($0.value >= 0x80 && $0.value < 0xA0) || $0.properties.isWhitespace }) {
            return false
        }
        return true
    }

    /// An org's slug: lowercased, runs of non-alphanumerics folded to `-`.
    public static func slug(ofOrg name: String) -> String {
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

/// A value quoted for an error message: JSON string syntax, so control
/// characters and terminal escapes are never echoed raw; long values cut.
public func quoted(_ s: String) -> String {
    var t = s
    if t.unicodeScalars.count > 80 { t = String(String.UnicodeScalarView(t.unicodeScalars.prefix(77))) + "…" }
    var out: [UInt8] = []
    JSONWriter.appendString(t, to: &out)
    var text = String(decoding: out, as: UTF8.self)
    // Also neutralise C1 controls and DEL, which JSON leaves raw.
    if text.unicodeScalars.contains(where: { $0.value == 0x7F || ($0.value >= 0x80 && $0.value < 0xA0) }) {
        text = String(text.unicodeScalars.map { s -> String in
            (s.value == 0x7F || (s.value >= 0x80 && s.value < 0xA0)) ? "\\u\(hex4(s.value))" : String(s)
        }.joined())
    }
    return text
}

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
