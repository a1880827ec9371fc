import CanonicalJSON
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport
@testable import MilestoneModel
import MilestoneSupport

@Suite struct ModelTests {
    @Test("an event type is found by its name, and only by its exact name")
    func eventTypeNames() {
        func lookup(_ bytes: [UInt8]) -> EventType? { bytes.withUnsafeBufferPointer { EventType(utf8: $0) } }
        for t in EventType.allCases {
            let name = Array(t.rawValue.utf8)
            #expect(lookup(name) == t)
            // Every one-byte change, a byte more or less, another type's name cut or padded to this length.
            for i in name.indices {
                for v in [0, 0x2E, 0x61, 0x7A, 0xFF] as [UInt8] where v != name[i] {
                    var b = name
                    b[i] = v
                    #expect(lookup(b) == nil, "\(b)")
                }
            }
            #expect(lookup(Array(name.dropLast())) == nil)
            #expect(lookup(Array(name.dropFirst())) == nil)
            #expect(lookup(name + [0x73]) == nil)
            for other in EventType.allCases where other != t {
                let o = Array(other.rawValue.utf8)
                let same = Array((o + [UInt8](repeating: 0x61, count: name.count)).prefix(name.count))
                #expect(lookup(same) == (same == o ? other : nil))
            }
        }
        for short in ["", "a", "site", "event"] { #expect(lookup(Array(short.utf8)) == nil) }
    }

    @Test("URL checks (eight bytes at a time) agree with a byte-by-byte reference")
    func urlChecks() {
        // The rule as first written: scheme case-insensitive, a host, no space or control character.
        func reference(_ s: String) -> Bool {
            let u = Array(s.utf8)
            func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }
            var i = 0
            for c in "http".utf8 {
                guard i < u.count, lower(u[i]) == c else { return false }
                i += 1
            }
            if i < u.count, lower(u[i]) == UInt8(ascii: "s") { i += 1 }
            for c in "://".utf8 {
                guard i < u.count, u[i] == c else { return false }
                i += 1
            }
            guard i < u.count, !"/?#:@".utf8.contains(u[i]) else { return false }
            guard u.allSatisfy({ $0 > 0x20 && $0 != 0x7F }), s.unicodeScalars.count <= EventForm.maxTextLength else { return false }
            return !s.unicodeScalars.contains {
                ($0.value >= 0x80 && $0.value < 0xA0) || $0.properties.isWhitespace || $0.properties.generalCategory == .format
            }
        }
        var cases = ["http://a", "https://a", "HTTP://A", "HtTpS://x.y/z", "http:/a", "http//a", "httpx://a", "https:/", "http://",
                     "https://", "ftp://a", "http://:a", "http://@a", "http:///a", "https://?a", "https://#a", "http://a b",
                     "http://a\u{7F}", "http://a\u{85}", "http://ä.de/ü", "http://a\u{202E}b", "http://a\u{3000}b", "httpS://a",
                     "https://" + String(repeating: "x", count: 1992), "https://" + String(repeating: "x", count: 1993), "h", "",
                     "http://a\t", "https://exa mple.com", "https://example.com/path?q=1#f"]
        var rng = SystemRandomNumberGenerator()
        let pieces = ["http", "HTTP", "https", "s", "S", ":", "/", "//", "a", "é", " ", "\u{1}", "\u{7F}", "?", "#", "@", "x.y", "\u{A0}", "0123456789"]
        for _ in 0..<5000 { cases.append((0..<Int.random(in: 1...8, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()) }
        for c in cases { #expect(EventForm.isHTTPURL(c) == reference(c), "\(c.debugDescription)") }
    }

    @Test("slug and id checks (eight bytes at a time) agree with a byte-by-byte reading of their patterns")
    func slugAndIDChecks() {
        func slug(_ u: [UInt8]) -> Bool {
            (1...64).contains(u.count) && u.enumerated().allSatisfy { i, c in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || (i > 0 && c == 0x2D)
            }
        }
        func id(_ u: [UInt8]) -> Bool {
            (1...128).contains(u.count) && u.enumerated().allSatisfy { i, c in
                (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
                    || (i > 0 && [0x2E, 0x5F, 0x3A, 0x2D].contains(c))
            }
        }
        // Every byte next to a class's edges, and some far from them.
        let edges: [UInt8] = [0x00, 0x20, 0x2C, 0x2D, 0x2E, 0x2F, 0x30, 0x39, 0x3A, 0x3B, 0x40, 0x41, 0x5A, 0x5B, 0x5E, 0x5F,
                              0x60, 0x61, 0x7A, 0x7B, 0x7F, 0x80, 0xAD, 0xC3, 0xE1, 0xFF]
        var rng = SplitMix64(seed: 0x51A6)
        var agreedTrue = 0
        for n in 0..<20_000 {
            let length = n < 140 ? n : Int.random(in: 0...140, using: &rng)
            var u = (0..<length).map { _ in Bool.random(using: &rng) ? UInt8(ascii: "a") : UInt8(ascii: "7") }
            for _ in 0..<Int.random(in: 0...2, using: &rng) where !u.isEmpty {
                u[Int.random(in: 0..<u.count, using: &rng)] = Bool.random(using: &rng)
                    ? edges.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            let (s, i) = u.withUnsafeBufferPointer { (EventForm.isSlug($0), EventForm.isID($0)) }
            #expect(s == slug(u), "slug \(u)")
            #expect(i == id(u), "id \(u)")
            if s && i { agreedTrue += 1 }
        }
        #expect(agreedTrue > 1000)
    }

    @Test("a correction's changes fit exactly the types a member-by-member reading of docs/events.md allows")
    func changesFit() throws {
        // The rule, member by member, for one type.
        func reference(_ changes: JSONView, _ type: EventType) -> Bool {
            var ok = true
            changes.forEachMember { key, value in
                guard let name = key.string, !["type", "id", "subject"].contains(name),
                      let f = EventForm.fields(type).first(where: { $0.name == name })
                else { ok = false; return }
                if value.isNull { ok = ok && !f.required } else { ok = ok && (try? EventForm.check(value, f.kind, path: name)) != nil }
            }
            return ok
        }
        let values = [#""2025-01-01""#, #""2025-02-30""#, #""x""#, #""""#, "null", "5", "-1", #"{"value":1,"currency":"USD"}"#,
                      #"{"value":1,"currency":"usd"}"#, #"{"country":"US"}"#, #"["a"]"#, #""fab""#, #""month""#,
                      #""construction.started""#, #""program-x""#, #"{"earliest":"2025-01-01","latest":"2025-02-01"}"#,
                      #"[{"publisher":"Reuters"}]"#, #""line\none""#]
        var keys = Set(["type", "id", "subject", "bogus"])
        for t in EventType.allCases { keys.formUnion(EventForm.fields(t).map(\.name)) }
        let names = keys.sorted()
        var rng = SystemRandomNumberGenerator()
        let tape = JSONTape()
        for _ in 0..<3000 {
            var members: [String: String] = [:]
            for _ in 0..<Int.random(in: 1...3, using: &rng) { members[names.randomElement(using: &rng)!] = values.randomElement(using: &rng)! }
            let text = "{" + members.keys.sorted().map { "\"\($0)\":\(members[$0]!)" }.joined(separator: ",") + "}"
            try tape.parse(Array(text.utf8))
            let fits = EventForm.changesFit(tape.root).fits
            for t in EventType.allCases where t.isDomain {
                let expected = reference(tape.root, t)
                #expect((fits & 1 << UInt32(t.ordinal) != 0) == expected, "\(text) for \(t.rawValue)")
                // The message for the type is there exactly when the changes do not fit it.
                #expect((EventForm.changesFit(tape.root, explaining: t).problem == nil) == expected, "\(text) for \(t.rawValue)")
            }
        }
    }

    @Test("text checks (eight bytes at a time) agree with a character-by-character reference: controls, blanks, length")
    func textChecks() throws {
        // The rule of docs/events.md, one scalar at a time.
        func reference(_ s: String, multiline: Bool) -> String? {
            for u in s.unicodeScalars where u.value < 0x20 || (u.value >= 0x7F && u.value < 0xA0) {
                if multiline && (u == "\n" || u == "\t") { continue }
                return "control"
            }
            if s.unicodeScalars.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) { return "empty" }
            if s.unicodeScalars.count > EventForm.maxTextLength { return "long" }
            return nil
        }
        let pieces = ["a", "Z", " ", "~", "\t", "\n", "\r", "\u{7F}", "\u{80}", "\u{9F}", "\u{A0}", "é", "漢", "🏭", "\u{1}", "\"", "\\"]
        var rng = SplitMix64(seed: 11)
        for n in 0..<1500 {
            let length = n < 40 ? n : Int.random(in: 0..<40, using: &rng)
            var s = ""
            for _ in 0..<length {
                // Mostly plain ASCII, so that whole words of eight take the fast path.
                s += Int.random(in: 0..<4, using: &rng) > 0 ? (Bool.random(using: &rng) ? "x" : " ") : pieces[Int.random(in: 0..<pieces.count, using: &rng)]
            }
            for long in [false, true] {
                let text = long ? String(repeating: s.isEmpty ? "y" : s, count: 2001 / max(1, s.unicodeScalars.count) + 1) : s
                for multiline in [false, true] {
                    let tape = JSONTape()
                    try tape.parse(JSONWriter.bytes(.string(text)))
                    var got: String?
                    do throws(EventError) {
                        try EventForm.text(tape.root, path: "f", multiline: multiline)
                    } catch {
                        let m = "\(error)"
                        got = m.contains("control") ? "control" : m.contains("empty") ? "empty" : m.contains("long") ? "long" : m
                    }
                    #expect(got == reference(text, multiline: multiline), "\(JSONWriter.string(.string(text)))")
                }
            }
        }
    }

    @Test("the packed id entry keeps every field, at the ends of the date range too")
    func packedEntry() {
        for type in EventType.allCases {
            for precision in DatePrecision.allCases {
                for date in [CalendarDate(year: 1, month: 1, day: 1)!, CalendarDate(year: 9999, month: 12, day: 31)!, CalendarDate("2025-04-14")!] {
                    for retracted in [false, true] {
                        var e = ReferenceIndex.IdEntry(type: type, subject: .max - 1, retracted: retracted, date: date, precision: precision)
                        #expect(e.type == type && e.precision == precision && e.date == date && e.retracted == retracted && e.subject == .max - 1)
                        e.retracted.toggle()
                        e.date = CalendarDate("2000-02-29")!
                        #expect(e.retracted != retracted && e.date == CalendarDate("2000-02-29")! && e.type == type)
                    }
                }
            }
        }
    }

    @Test("calendar dates: days round trip, leap years, real dates only")
    func dates() {
        var d = CalendarDate(year: 1, month: 1, day: 1)!
        while d < CalendarDate(year: 2401, month: 1, day: 1)! {
            #expect(CalendarDate(d.description) == d)
            d = d.adding(days: 13)
        }
        #expect(CalendarDate("2024-02-29") != nil)
        #expect(CalendarDate("2023-02-29") == nil)
        #expect(CalendarDate("1900-02-29") == nil)
        #expect(CalendarDate("2000-02-29") != nil)
        #expect(CalendarDate("2025-04-31") == nil)
        #expect(Timestamp("2025-04-14T23:59:59Z")?.description == "2025-04-14T23:59:59Z")
        #expect(Timestamp("2025-04-14T24:00:00Z") == nil)
        #expect(Timestamp.endOfDay(CalendarDate("2025-04-14")!).description == "2025-04-14T23:59:59Z")
    }

}

@Suite("the fingerprint of names")
struct FingerprintTests {
    @Test("fingerprints: the same name the same, every name of a large set its own, and keyed (not SipHash with key 0)")
    func fingerprints() {
        var seen = Set<UInt64>()
        var stable = true
        for i in 0..<200_000 {
            let id = "e\(i)-\(i % 977)"
            let f = ReferenceIndex.fingerprint(id)
            stable = stable && f == ReferenceIndex.fingerprint(String(id.utf8.map { Character(UnicodeScalar($0)) }))
            seen.insert(f)
        }
        #expect(stable)
        #expect(seen.count == 200_000)
        #expect(ReferenceIndex.fingerprint("fac-0-tw") != 18_296_071_624_576_442_758)
    }
}
