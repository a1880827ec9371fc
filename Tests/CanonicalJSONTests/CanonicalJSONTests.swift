import Foundation
import TestSupport
import Testing
@testable import CanonicalJSON

struct CanonicalCases: Decodable {
    struct Accept: Decodable, Sendable, CustomTestStringConvertible {
        var input: String
        var canonical: String
        var testDescription: String { String(input.prefix(40)) }
    }
    struct Reject: Decodable, Sendable, CustomTestStringConvertible {
        var input: String?
        var input_hex: String?
        var code: String
        var bytes: [UInt8] {
            if let h = input_hex {
                let u = Array(h.utf8)
                return stride(from: 0, to: u.count, by: 2).map { UInt8(String(decoding: u[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
            }
            return Array(input!.utf8)
        }
        var testDescription: String { input.map { String($0.prefix(40)) } ?? "hex \(input_hex!)" }
    }
    var accept: [Accept]
    var reject: [Reject]
    var not_canonical: [String]

    static let all: CanonicalCases = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Paths.fixture("canonical-json.json")))
        return try! JSONDecoder().decode(CanonicalCases.self, from: data)
    }()
}

func code(_ c: JSONError.Code) -> String { "\(c)" }

@Suite struct CanonicalJSONTests {
    @Test("input is written in its exact canonical bytes", arguments: CanonicalCases.all.accept)
    func accepts(_ c: CanonicalCases.Accept) throws {
        let v = try JSONReader.parse(c.input)
        #expect(JSONWriter.string(v) == c.canonical)
        // The canonical text is accepted as a record line and reads back to the same value.
        #expect(try JSONReader.parse(c.canonical, mode: .canonical) == v)
    }

    @Test("invalid input is rejected with the right reason, in both modes", arguments: CanonicalCases.all.reject)
    func rejects(_ c: CanonicalCases.Reject) {
        for mode in [JSONReader.Mode.input, .canonical] {
            do {
                _ = try JSONReader.parse(c.bytes, mode: mode)
                Issue.record("accepted \(c.testDescription) in \(mode) mode")
            } catch {
                // In canonical mode a whitespace or ordering complaint may come first.
                if mode == .input { #expect(code(error.code) == c.code, "\(error)") }
            }
        }
    }

    @Test("valid input that is not canonical is refused as a record line", arguments: CanonicalCases.all.not_canonical)
    func notCanonical(_ text: String) throws {
        _ = try JSONReader.parse(text)
        #expect(throws: JSONError.self) { try JSONReader.parse(text, mode: .canonical) }
    }

    @Test("Python's json.dumps(sort_keys, ensure_ascii=False, compact) writes the same bytes")
    func agreesWithPython() throws {
        let cases = CanonicalCases.all.accept
        let script = """
            import json, sys
            for line in sys.stdin.read().split("\\n")[:-1]:
                v = json.loads(json.loads(line))
                print(json.dumps(json.dumps(v, ensure_ascii=False, separators=(",", ":"), sort_keys=True), ensure_ascii=False))
            """
        let input = cases.map { JSONWriter.string(.string($0.input)) + "\n" }.joined()
        let r = run("/usr/bin/env", ["python3", "-c", script], stdin: Data(input.utf8))
        #expect(r.code == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == cases.count)
        for (c, line) in zip(cases, lines) {
            let python = try JSONReader.parse(String(line)).stringValue!
            #expect(python == c.canonical, "python wrote \(python) for \(c.input)")
        }
    }

    @Test("encode → decode → encode is the identity, for random values")
    func roundTrip() throws {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<2000 {
            let v = randomValue(&rng, depth: 0)
            let bytes = JSONWriter.bytes(v)
            let back = try JSONReader.parse(bytes, mode: .canonical)
            #expect(back == v)
            #expect(JSONWriter.bytes(back) == bytes)
        }
    }

    @Test("members written in any order are read back sorted, as the canonical writer sorts them (keys of 0 to 12 characters, escaped or not)")
    func inputOrderSorted() throws {
        var rng = SplitMix64(seed: 0x50F7)
        let tape = JSONTape()
        for _ in 0..<2000 {
            var o = JSONObject()
            for _ in 0..<Int.random(in: 1...9, using: &rng) { o[randomString(&rng)] = randomValue(&rng, depth: 1) }
            // The members in a random order (the values as the writer writes them).
            var text: [UInt8] = [UInt8(ascii: "{")]
            for (n, m) in o.members.shuffled(using: &rng).enumerated() {
                if n > 0 { text.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(m.key, to: &text)
                text.append(UInt8(ascii: ":"))
                JSONWriter.append(m.value, to: &text)
            }
            text.append(UInt8(ascii: "}"))
            try tape.parse(text)
            var again: [UInt8] = []
            JSONWriter.append(tape.root.value, to: &again)
            let sorted = again == JSONWriter.bytes(.object(o))
            #expect(sorted, "\(String(decoding: text, as: UTF8.self))")
        }
    }

    @Test("a top-level merge patch of canonical texts writes what the value model writes: replaced, added, and null-removed members, keys escaped or not")
    func mergeTopLevel() throws {
        var rng = SplitMix64(seed: 0x3E76E)
        let (a, b) = (JSONTape(), JSONTape())
        for _ in 0..<2000 {
            var object = JSONObject(), patch = JSONObject()
            var keys: [String] = []
            for _ in 0..<Int.random(in: 0...7, using: &rng) {
                let k = randomString(&rng)
                keys.append(k)
                object[k] = randomValue(&rng, depth: 1)
            }
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                // Half the patch's keys are the object's (to replace or remove), half new.
                let k = !keys.isEmpty && Bool.random(using: &rng) ? keys.randomElement(using: &rng)! : randomString(&rng)
                patch[k] = Int.random(in: 0...3, using: &rng) == 0 ? .null : randomValue(&rng, depth: 1)
            }
            let expected = object.mergingTopLevel(patch)
            try a.parse(JSONWriter.bytes(.object(object)), mode: .canonical)
            try b.parse(JSONWriter.bytes(.object(patch)), mode: .canonical)
            var out = ByteBuffer(capacity: 16)
            #expect(a.root.mergingTopLevel(b.root, into: &out))
            let merged = Array(out.bytes(from: 0).assumingMemoryBound(to: UInt8.self))
            #expect(merged == JSONWriter.bytes(.object(expected)), "\(JSONWriter.bytes(.object(object))) + \(JSONWriter.bytes(.object(patch)))")
        }
        // The rule itself, on one case: replaced, removed by null, added.
        try a.parse(Array(#"{"a":1,"b":"x","d":[]}"#.utf8), mode: .canonical)
        try b.parse(Array(#"{"a":2,"b":null,"c":null,"e":true}"#.utf8), mode: .canonical)
        var one = ByteBuffer(capacity: 16)
        #expect(a.root.mergingTopLevel(b.root, into: &one))
        #expect(String(decoding: one.bytes(from: 0), as: UTF8.self) == #"{"a":2,"d":[],"e":true}"#)
        #expect(JSONWriter.bytes(.object(a.root.value.objectValue!.mergingTopLevel(b.root.value.objectValue!))) == Array(#"{"a":2,"d":[],"e":true}"#.utf8))
        try a.parse(Array("[1]".utf8))
        var out = ByteBuffer(capacity: 16)
        #expect(!a.root.mergingTopLevel(b.root, into: &out) && out.count == 0)
    }

    @Test func objectKeepsMembersSortedAndUnique() {
        var o = JSONObject()
        o["b"] = 1
        o["a"] = 2
        o["b"] = 3
        o["c"] = .null
        #expect(o.keys == ["a", "b", "c"])
        #expect(o["b"] == .int(3))
        #expect(o["c"] == .null)
        #expect(o["d"] == nil)
        o["a"] = nil
        #expect(o.keys == ["b", "c"])
    }
}

func randomString(_ rng: inout SplitMix64) -> String {
    let pool: [Unicode.Scalar] = ["a", "z", "\"", "\\", "/", "\u{0}", "\u{8}", "\u{9}", "\u{A}", "\u{1F}", "\u{7F}", "é", "—", "日", "😀", "\u{2028}", " "]
    let n = Int.random(in: 0...12, using: &rng)
    var s = String.UnicodeScalarView()
    for _ in 0..<n { s.append(pool.randomElement(using: &rng)!) }
    return String(s)
}

func randomValue(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
    switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &rng) {
    case 0: return .null
    case 1: return .bool(Bool.random(using: &rng))
    case 2: return .int(Int64.random(in: -JSONValue.maxInteger...JSONValue.maxInteger, using: &rng))
    case 3: return .string(randomString(&rng))
    case 4: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(&rng, depth: depth + 1) })
    default:
        var o = JSONObject()
        for _ in 0..<Int.random(in: 0...5, using: &rng) { o[randomString(&rng)] = randomValue(&rng, depth: depth + 1) }
        return .object(o)
    }
}
