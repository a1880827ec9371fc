import CanonicalJSON
import Foundation
import TestSupport
import Testing
@testable import MilestoneModel

/// Verify's one-pass reading of plain events (`EventForm.plainFacts`) against
/// the full path (canonical parse, then `EventForm.facts(of:)`): whatever the
/// fast path takes, the full path takes with the same facts and subject.
@Suite struct PlainEventTests {
    typealias Reading = (facts: EventFacts, subject: String)

    /// The full path, nested as in a record line (depth 1).
    static func full(_ text: [UInt8]) -> Reading? {
        let tape = JSONTape()
        let ok = text.withUnsafeBytes { (try? tape.parse($0, mode: .canonical, copy: true, depth: 1)) != nil }
        guard ok, let facts = try? EventForm.facts(of: tape.root) else { return nil }
        return (facts, tape.root["subject"]?.string ?? "")
    }

    static func plain(_ text: [UInt8]) -> Reading? {
        text.withUnsafeBytes { b in
            EventForm.plainFacts(b, tape: JSONTape()).map { ($0.facts, String(decoding: b[$0.subject], as: UTF8.self)) }
        }
    }

    /// Canonical, normalised events as `record` writes them: the bench
    /// generator's (every type, non-ASCII names, corrections), the bundled
    /// ledger's, and a few with escapes and odd values.
    static let corpus: [[UInt8]] = inputs.map { line in
        let tape = JSONTape()
        try! tape.parse(Array(line.utf8))
        var out = ByteBuffer(capacity: 1024)
        _ = try! EventForm.validate(tape.root, appendingNormalizedTo: &out) { _ in "gen-id" }
        return Array(out.bytes(from: 0))
    }

    /// The corpus as input lines (a few without `id`).
    static let inputs: [String] = {
        var inputs: [String] = []
        inputs += generatedEvents(1500, seed: 21).split(separator: "\n").map(String.init)
        let ledger = try! String(contentsOfFile: Paths.fixture("golden/ledger.jsonl"), encoding: .utf8)
        for line in ledger.split(separator: "\n") {
            let v = try! JSONReader.parse(Array(line.utf8))
            inputs.append(JSONWriter.string(v.objectValue!["event"]!))
        }
        let s = #"[{"publisher":"Reuters","title":"A \"quoted\" title"}]"#
        inputs += [
            #"{"type":"construction.started","date":"2025-05-01","subject":"fab-x","id":"q1","sources":\#(s)}"#,
            #"{"type":"facility.paused","date":"2025-05-01","subject":"fab-x","id":"q2","summary":"two\nlines","sources":[{"publisher":"AP"}]}"#,
            #"{"type":"facility.paused","date":"2025-05-01","subject":"fab-x","id":"q3","reason":"a \\ backslash","sources":[{"publisher":"AP"}]}"#,
            #"{"type":"event.corrected","date":"2025-05-01","subject":"fab-x","id":"q4","corrects":"q1","reason":"r","changes":{"summary":"a\nb \"c\" }]{["},"sources":[{"publisher":"AP"}]}"#,
            #"{"type":"event.corrected","date":"2025-05-01","subject":"fab-x","id":"q5","corrects":"q1","reason":"r","changes":{"amount":{"value":5,"currency":"USD"},"precision":null},"sources":[{"publisher":"AP"}]}"#,
            #"{"type":"target.set","date":"2025-05-01","subject":"fab-x","id":"q6","milestone":"production.volume","due":{"earliest":"2026-01-01","latest":"2026-01-01"},"sources":[{"publisher":"AP","published":"2025-04-30","url":"https://example.com/a?b=c#d"}]}"#,
            #"{"type":"production.milestone","date":"2025-05-01","precision":"month","subject":"fab-x","id":"q7","milestone":"first wafer","quantity":0,"sources":[{"publisher":"AP"}]}"#,
            #"{"type":"facility.announced","date":"2025-01-01","precision":"quarter","subject":"fab-y","id":"q8","name":"Y","operator":"O","kind":"fab","location":{"country":"US"},"partners":[],"area_sqft":9007199254740991,"sources":[{"publisher":"AP"}]}"#,
        ]
        return inputs
    }()

    @Test("valid events: the one pass gives the full path's facts, and takes every event without an escape")
    func validEvents() throws {
        var taken = 0
        for text in Self.corpus {
            let f = try #require(Self.full(text), "\(String(decoding: text, as: UTF8.self))")
            let p = Self.plain(text)
            if let p {
                #expect(p.facts == f.facts && p.subject == f.subject, "\(String(decoding: text, as: UTF8.self))")
                taken += 1
            } else {
                // Only `ledger.created` and escapes (outside a correction's changes) send a valid event to the full path.
                let outside = text.withUnsafeBytes { b -> Bool in
                    let tape = JSONTape()
                    try! tape.parse(b, mode: .canonical)
                    let r = tape.root["changes"]?.byteRange
                    return text.indices.contains { text[$0] == UInt8(ascii: "\\") && !(r?.contains($0) ?? false) }
                }
                #expect(outside || f.facts.type == .ledgerCreated, "the fast path refused \(String(decoding: text, as: UTF8.self))")
            }
        }
        #expect(taken >= Self.corpus.count - 5)
        // Every domain type went through it.
        let types = Set(Self.corpus.compactMap { Self.plain($0)?.facts.type })
        #expect(types.count == EventType.allCases.count - 1)
    }

    @Test("changed events: whatever the one pass takes, the full path takes with the same facts")
    func mutations() {
        Self.mutations(of: Self.corpus, seed: 0xFA57) { t in
            let p = Self.plain(t), f = Self.full(t)
            guard let p else { return f == nil ? false : nil }
            #expect(f != nil && f!.facts == p.facts && f!.subject == p.subject, "\(String(decoding: t, as: UTF8.self))")
            return true
        }
    }

    /// 40,000 texts of `corpus`, each changed by ``mutate(_:using:)``;
    /// `body` checks one and says whether the fast path took it (true), both
    /// paths refused it (false), or neither. Both outcomes must be common.
    static func mutations(of corpus: [[UInt8]], seed: UInt64, _ body: ([UInt8]) -> Bool?) {
        var rng = SplitMix64(seed: seed)
        var taken = 0, refused = 0
        for n in 0..<40_000 {
            var t = corpus[n % corpus.count]
            mutate(&t, using: &rng)
            switch body(t) {
            case true?: taken += 1
            case false?: refused += 1
            case nil: break
            }
        }
        #expect(taken > 2000 && refused > 2000)
    }

    /// One to three random changes: bytes replaced, removed, inserted, a piece repeated.
    static func mutate(_ t: inout [UInt8], using rng: inout SplitMix64) {
        let alphabet: [UInt8] = Array(#""\{}[],:09-a .eE/"#.utf8) + [0x7F, 0xC2, 0x80, 0x9F, 0xA0, 0xE0, 0xED, 0xA0, 0xF4, 0x90, 0xFF, 0x00, 0x1F]
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            let i = Int.random(in: 0..<t.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: t[i] = alphabet.randomElement(using: &rng)!
            case 1: t[i] = UInt8.random(in: 0...255, using: &rng)
            case 2: t.remove(at: i)
            case 3: t.insert(alphabet.randomElement(using: &rng)!, at: i)
            case 4:  // a letter or digit changed: mostly still valid
                if t[i] >= 0x61 && t[i] <= 0x7A { t[i] = UInt8.random(in: 0x61...0x7A, using: &rng) }
                if t[i] >= 0x30 && t[i] <= 0x39 { t[i] = UInt8.random(in: 0x30...0x39, using: &rng) }
            default:  // a piece repeated
                let j = Int.random(in: i..<min(t.count, i + 40), using: &rng)
                t.insert(contentsOf: t[i...j], at: j + 1)
            }
            if t.isEmpty { t = [UInt8(ascii: "{")] }
        }
    }

    @Test("every field's value swapped for edge cases: the one pass takes a value only when the full path does")
    func values() throws {
        var taken = 0
        for text in Self.corpus.prefix(120) {
            guard case .object(let event) = try JSONReader.parse(text) else { continue }
            Self.withEdgeValues(event) { changed in
                if let p = Self.plain(changed) {
                    taken += 1
                    let f = Self.full(changed)
                    #expect(f != nil && f!.facts == p.facts && f!.subject == p.subject, "\(String(decoding: changed, as: UTF8.self))")
                }
            }
        }
        #expect(taken > 500)
    }

    /// Calls `body` with the event's canonical text with each member (each
    /// field name of any type, and a few that are none) set to each edge-case
    /// value or removed.
    static func withEdgeValues(_ event: JSONObject, _ body: ([UInt8]) -> Void) {
        let values: [JSONValue] = [
            "2025-01-01", "2025-02-29", "2024-02-29", "2025-13-01", "2025-04-01", "", " ", "  x", "x", "fab", "month",
            "quarter", "day", "year", "production.volume", "first wafer", "Program-X", "program-x", "-x", "a.b:c-d",
            "USD", "usd", "US", "https://example.com", "ftp://x", "https://exa mple.com", "é", "\u{80}", "\u{9F}", "\u{7F}",
            .string(String(repeating: "a", count: 2000)), .string(String(repeating: "a", count: 2001)),
            .string(String(repeating: "é", count: 1000)), 0, 1, 5, -1, 9_007_199_254_740_991, .null, .bool(true), [], ["x"], [""],
            [[:] as JSONValue], ["AP", "é"],
            ["publisher": "AP"], ["publisher": " "], ["publisher": "AP", "url": "http://a"], ["url": "http://a"],
            [["publisher": "AP", "published": "2025-01-32"]], [["publisher": "AP", "title": "t", "url": "https://a.b/c"]],
            [["publisher": "AP", "extra": 1]],
            ["value": 1, "currency": "USD"], ["value": 1, "currency": "XXQ"], ["value": -1, "currency": "USD"],
            ["value": 1, "currency": "USD", "qualifier": "up_to"], ["value": 1, "currency": "USD", "qualifier": "upto"],
            ["currency": "USD"], ["country": "US"], ["country": "USA"], ["city": "", "country": "US"], ["city": "Łódź", "country": "PL"],
            ["earliest": "2025-01-01", "latest": "2025-01-01"], ["earliest": "2025-02-01", "latest": "2025-01-01"],
            ["earliest": "2025-01-01"], ["date": "2025-01-01"], ["date": "x"], [:], ["amount": ["value": -1, "currency": "USD"]],
            ["subject": "x"], ["precision": .null], ["name": .null],
        ]
        var keys = event.members.map(\.key) + ["bogus", "format", "origin"]
        for t in EventType.allCases { keys += EventForm.fieldNames(of: t) }
        for key in Set(keys).sorted() {
            for v in values.map(Optional.some) + [nil] {  // nil: the member removed
                var e = event
                e[key] = v
                body(JSONWriter.bytes(.object(e)))
            }
        }
    }

    @Test("numbers in forms the writer never makes (leading zeros, -0, fractions, exponents, too large): taken only as the full path takes them")
    func numberForms() {
        let forms = ["0", "7", "00", "01", "0123", "-0", "-1", "1.0", "1e3", "1E3", "9007199254740991", "9007199254740992", "0x1", "1 "]
        var seen = 0
        for text in Self.corpus {
            let line = String(decoding: text, as: UTF8.self)
            for key in [#""value":"#, #""area_sqft":"#, #""quantity":"#] {
                guard let r = line.range(of: key) else { continue }
                let digits = line[r.upperBound...].prefix { $0.isNumber }
                for form in forms {
                    let changed = Array((line[..<r.upperBound] + form + line[digits.endIndex...]).utf8)
                    let p = Self.plain(changed), f = Self.full(changed)
                    #expect((p == nil) == (f == nil) && (p == nil || p!.facts == f!.facts), "\(String(decoding: changed, as: UTF8.self))")
                    seen += 1
                }
            }
        }
        #expect(seen > 1000)
    }

    @Test("the pass reads structured members by the kinds the field tables give them")
    func kinds() {
        // plainFacts reads these members as these kinds; the tables must agree for every domain type.
        let structured: [(EventForm.PlainKey, EventForm.Kind)] = [
            (.amount, .amount), (.location, .location), (.due, .due), (.sources, .sources), (.partners, .orgs),
            (.changes, .changes), (.areaSqft, .nonNegativeInteger), (.quantity, .nonNegativeInteger),
        ]
        for (key, kind) in structured {
            for case let t? in EventForm.plainTypes {
                if let k = t.kinds[key.rawValue] { #expect(k == kind, "\(EventForm.plainKeys[key.rawValue])") }
            }
        }
        // Keys are exactly the field tables' names (ledger.created aside), sorted as canonical member order
        // needs, one PlainKey each.
        let names = EventForm.plainKeys.map(\.description)
        let fieldNames = Set(EventType.allCases.filter { $0 != .ledgerCreated }.flatMap { EventForm.fieldNames(of: $0) })
        #expect(Set(names) == fieldNames && names.count == fieldNames.count)
        #expect(EventForm.PlainKey.allCases.count == names.count)
        #expect(names[EventForm.PlainKey.operator_.rawValue] == "operator" && names[EventForm.PlainKey.areaSqft.rawValue] == "area_sqft")
        #expect(names == names.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) })
        for table in [EventForm.plainAmount, EventForm.plainLocation, EventForm.plainDue, EventForm.plainSource] {
            let n = table.map(\.description)
            #expect(n == n.sorted())
        }
        #expect(EventForm.plainTypes.compactMap { $0 }.count == EventType.allCases.count - 1)
        // Every string key with no one kind is checked once the type is known; today that is `milestone` only.
        let varying = (0..<EventForm.plainKeys.count).filter { EventForm.plainKinds[$0] == nil && !EventForm.PlainKey(rawValue: $0)!.isStructured }
        #expect(varying == [EventForm.PlainKey.milestone.rawValue])
        #expect(EventForm.plainTables.pointee.typeDependent == 1 << UInt32(EventForm.PlainKey.milestone.rawValue))
        // The pass's own code reads exactly the structured keys.
        #expect(Set(structured.map(\.0.rawValue)) == Set((0..<EventForm.plainKeys.count).filter { EventForm.PlainKey(rawValue: $0)!.isStructured }))
    }
}
