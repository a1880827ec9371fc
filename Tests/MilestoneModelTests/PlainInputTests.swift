import CanonicalJSON
import Foundation
import TestSupport
import Testing
@testable import MilestoneModel

/// `record`'s one-pass reading of plain input events (`EventForm.plainInput`)
/// against the full path (input parse, then
/// `EventForm.validate(_:appendingNormalizedTo:deriveID:)`): whatever the fast
/// path takes, the full path takes, writing the same bytes and giving the
/// same event; and it takes every valid event without an escape.
@Suite struct PlainInputTests {
    typealias Reading = (bytes: [UInt8], event: Event)

    /// Any function of the bytes will do, the same for both paths.
    static func derive(_ b: UnsafeRawBufferPointer) -> String {
        "d-" + String(b.reduce(UInt64(0xCBF2_9CE4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }, radix: 16)
    }

    static func full(_ line: [UInt8]) -> Reading? {
        let tape = JSONTape()
        guard (try? tape.parse(line)) != nil else { return nil }
        var out = ByteBuffer(capacity: 64)
        guard let event = try? EventForm.validate(tape.root, appendingNormalizedTo: &out, deriveID: derive) else { return nil }
        return (Array(out.bytes(from: 0)), event)
    }

    /// The fast path, appending after bytes already there, which it must
    /// leave alone (and add nothing to when it refuses the line).
    static func fast(_ line: [UInt8]) -> Reading? {
        var out = ByteBuffer(capacity: 16)
        out.append("before")
        var scratch = ByteBuffer(capacity: 16)
        let tape = JSONTape()
        let event = line.withUnsafeBytes { EventForm.plainInput($0, appendingNormalizedTo: &out, scratch: &scratch, tape: tape, deriveID: derive) }
        #expect(Array(out.bytes(from: 0).prefix(6)) == Array("before".utf8))
        guard let event else {
            #expect(out.count == 6, "a refused line left bytes: \(String(decoding: line, as: UTF8.self))")
            return nil
        }
        return (Array(out.bytes(from: 6)), event)
    }

    /// Both paths on `line`: nil when the fast path refused it; fails when it
    /// took it and the full path did not, or wrote or gave anything else.
    @discardableResult
    static func compare(_ line: [UInt8]) -> Reading? {
        guard let p = fast(line) else { return nil }
        let f = full(line)
        #expect(f != nil && f!.bytes == p.bytes && f!.event == p.event,
                "\(String(decoding: line, as: UTF8.self))\n fast: \(String(decoding: p.bytes, as: UTF8.self))\n full: \(f.map { String(decoding: $0.bytes, as: UTF8.self) } ?? "refused")")
        return p
    }

    /// A value as a person or another tool might write it: members in
    /// random order, whitespace (space, tab, CR) between tokens.
    static func scrambled(_ v: JSONValue, _ rng: inout SplitMix64) -> String {
        let spaces = ["", "", " ", "\t", "  ", "\r "]
        switch v {
        case .object(let o):
            var parts: [String] = []
            for m in o.members.shuffled(using: &rng) {
                let (a, b, c, d) = (spaces.randomElement(using: &rng)!, spaces.randomElement(using: &rng)!,
                                    spaces.randomElement(using: &rng)!, spaces.randomElement(using: &rng)!)
                parts.append(a + JSONWriter.string(.string(m.key)) + b + ":" + c + scrambled(m.value, &rng) + d)
            }
            return "{" + parts.joined(separator: ",") + "}"
        case .array(let elements):
            var parts: [String] = []
            for e in elements {
                let (a, b) = (spaces.randomElement(using: &rng)!, spaces.randomElement(using: &rng)!)
                parts.append(a + scrambled(e, &rng) + b)
            }
            return "[" + parts.joined(separator: ",") + "]"
        default:
            return JSONWriter.string(v)
        }
    }

    /// Input lines: the corpus as written, scrambled, and without `id`; and
    /// the bundled fixture's events.
    static let lines: [[UInt8]] = {
        var rng = SplitMix64(seed: 0x1A9)
        var lines: [[UInt8]] = []
        let fixture = try! String(contentsOfFile: Paths.root.appendingPathComponent("fixtures/nvidia-ai-factories.jsonl").path, encoding: .utf8)
        for line in PlainEventTests.inputs + fixture.split(separator: "\n").map(String.init) {
            lines.append(Array(line.utf8))
            let value = try! JSONReader.parse(Array(line.utf8))
            lines.append(Array(scrambled(value, &rng).utf8))
            var withoutID = value.objectValue!
            withoutID["id"] = nil
            lines.append(JSONWriter.bytes(.object(withoutID)))
            lines.append(Array(scrambled(.object(withoutID), &rng).utf8))
        }
        return lines
    }()

    @Test("valid events, written any way: the one pass writes the full path's bytes and gives its event, and takes all without an escape")
    func validEvents() throws {
        var taken = 0
        for line in Self.lines {
            let f = try #require(Self.full(line), "\(String(decoding: line, as: UTF8.self))")
            let p = Self.compare(line)
            if p != nil { taken += 1 }
            if f.event.type == .ledgerCreated {
                #expect(p == nil, "the fast path took ledger.created")
            } else if !line.contains(UInt8(ascii: "\\")) {
                #expect(p != nil, "the fast path refused \(String(decoding: line, as: UTF8.self))")
            }
        }
        #expect(taken > Self.lines.count * 9 / 10)
        // Every domain type, with and without id, went through it.
        let types = Set(Self.lines.compactMap { Self.fast($0)?.event.type })
        #expect(types.count == EventType.allCases.count - 1)
    }

    @Test("changed input lines: whatever the one pass takes, the full path takes, with the same bytes and event")
    func mutations() {
        PlainEventTests.mutations(of: Self.lines, seed: 0x1A5) { line in
            if Self.compare(line) != nil { return true }
            return Self.full(line) == nil ? false : nil
        }
    }

    @Test("every field's value swapped for edge cases, in written and scrambled lines: the one pass takes only what the full path takes")
    func values() throws {
        var rng = SplitMix64(seed: 0x1A7)
        var taken = 0
        for line in PlainEventTests.inputs.prefix(80) {
            guard case .object(let event) = try JSONReader.parse(Array(line.utf8)) else { continue }
            PlainEventTests.withEdgeValues(event) { changed in
                if Self.compare(changed) != nil { taken += 1 }
                let again = Self.scrambled(try! JSONReader.parse(changed), &rng)
                if Self.compare(Array(again.utf8)) != nil { taken += 1 }
            }
        }
        #expect(taken > 1000)
    }

    @Test("numbers in forms the writer never makes, and JSON the fast path leaves alone: taken only as the full path takes them")
    func forms() {
        let forms = ["0", "7", "00", "01", "-0", "-1", "1.0", "1e3", "9007199254740991", "9007199254740992", "true", "null", "\"5\""]
        var seen = 0
        for line in PlainEventTests.inputs.prefix(400) {
            for key in [#""value":"#, #""area_sqft":"#, #""quantity":"#] {
                guard let r = line.range(of: key) else { continue }
                let digits = line[r.upperBound...].prefix { $0.isNumber }
                for form in forms {
                    Self.compare(Array((line[..<r.upperBound] + form + line[digits.endIndex...]).utf8))
                    seen += 1
                }
            }
        }
        #expect(seen > 500)
        // Duplicate members, at the top and in a small object; an empty object; a trailing comma; text after the object.
        let base = #"{"type":"investment.committed","date":"2025-01-01","subject":"fab-x","amount":{"value":1,"currency":"USD"},"sources":[{"publisher":"AP"}]}"#
        #expect(Self.compare(Array(base.utf8)) != nil)
        for bad in [
            base.replacingOccurrences(of: #""subject":"fab-x""#, with: #""subject":"fab-x","subject":"fab-y""#),
            base.replacingOccurrences(of: #""value":1"#, with: #""value":1,"value":2"#),
            base.replacingOccurrences(of: #""currency":"USD""#, with: #""currency":"USD","#),
            base.replacingOccurrences(of: #"{"value":1,"currency":"USD"}"#, with: "{}"),
            base + " x", base + "}", "{}", "[]", "",
        ] {
            #expect(Self.fast(Array(bad.utf8)) == nil && Self.full(Array(bad.utf8)) == nil, "\(bad)")
        }
    }
}
