import CanonicalJSON
import MilestoneModel
import Foundation
import TestSupport
import Testing
@testable import MilestoneLedger

@Suite struct RecordLineTests {
    /// What the whole-line parse makes of a line: the record's values when it
    /// is canonical JSON with exactly the record's members (the reference).
    static func whole(_ line: [UInt8]) -> (event: [UInt8], prev: Digest, time: Timestamp, seq: Int)? {
        let tape = JSONTape()
        guard (try? tape.parse(line, mode: .canonical)) != nil,
              let (e, p, t, s) = tape.root.members(exactly: RecordLine.members, { ($0[0], $0[1], $0[2], $0[3]) }),
              e.kind == .object, let seq = s.int, seq >= 1,
              let prev = p.withUTF8({ Digest(hex: UnsafeRawBufferPointer($0)) }) ?? nil,
              let time = t.withUTF8({ Timestamp(utf8: $0) }) ?? nil
        else { return nil }
        return (Array(line[(e.byteRange!.lowerBound - 1)...e.byteRange!.upperBound]).dropFirst().dropLast() + [], prev, time, Int(seq))
    }

    /// What verify's shortcut makes of it: the tail checked in place, the event parsed alone.
    static func shortcut(_ line: [UInt8]) -> (event: [UInt8], prev: Digest, time: Timestamp, seq: Int)? {
        line.withUnsafeBytes { b in
            var hasher = SHA256()
            guard RecordLine.hashes(of: b, hasher: &hasher) != nil, let parts = RecordLine.canonicalParts(b) else { return nil }
            let text = UnsafeRawBufferPointer(rebasing: b[parts.event])
            let tape = JSONTape()
            guard (try? tape.parse(text, mode: .canonical, depth: 1)) != nil, tape.root.kind == .object else { return nil }
            return (Array(text), parts.prev, parts.recordedAt, parts.seq)
        }
    }

    static func same(_ a: (event: [UInt8], prev: Digest, time: Timestamp, seq: Int)?, _ b: (event: [UInt8], prev: Digest, time: Timestamp, seq: Int)?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case let (x?, y?): x.event == y.event && x.prev == y.prev && x.time == y.time && x.seq == y.seq
        default: false
        }
    }

    @Test("verify sizes its id table from the first lines, but never for more records than the file could hold")
    func expectedRecords() {
        // A ledger like the bench's: 2 MiB of about 550-byte lines foretell a 552 MB file's records, and 1% more.
        let n = LedgerReader.expectedRecords(size: 552_000_000, sampleBytes: 2 << 20, sampleLines: (2 << 20) / 552)
        #expect(n > 1_000_000 && n < 1_020_000)
        // A first chunk of empty lines (damage, or no ledger) would foretell one record per byte: capped.
        let capped = LedgerReader.expectedRecords(size: 1_600_000_000, sampleBytes: 2 << 20, sampleLines: 1 << 20)
        #expect(capped <= 1_600_000_000 / 200 + 1)
        #expect(LedgerReader.expectedRecords(size: 300, sampleBytes: 300, sampleLines: 1) >= 1)
    }

    @Test("what verify's shortcut takes (the tail read in place, the event parsed alone), the whole parse takes, with the same values; records take the shortcut")
    func shortcutAgrees() throws {
        let ledger = try String(contentsOfFile: Paths.fixture("tampered/base.jsonl"), encoding: .utf8)
        let lines = ledger.split(separator: "\n").map { Array($0.utf8) }
        let alphabet = Array(#"0019aAfZ-:T"\{}[], u.eE+"#.utf8)
        var rng = SystemRandomNumberGenerator()
        var accepted = 0
        for line in lines {
            // The shortcut takes every record but the shortest (ledger.created); the others go the long way.
            #expect(Self.shortcut(line) != nil || line.count < 200)
            #expect(Self.same(Self.whole(line), Self.shortcut(line)) || Self.shortcut(line) == nil)
            for _ in 0..<400 {
                var l = line
                // Mostly the fixed parts (the first 10 and the last 200 bytes), sometimes anywhere.
                let at = Int.random(in: 0..<4, using: &rng) == 0 ? Int.random(in: 0..<l.count, using: &rng)
                    : Bool.random(using: &rng) ? Int.random(in: 0..<10, using: &rng) : l.count - 1 - Int.random(in: 0..<200, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: l[at] = alphabet.randomElement(using: &rng)!
                case 1: l.insert(alphabet.randomElement(using: &rng)!, at: at)
                default: l.remove(at: at)
                }
                let (w, s) = (Self.whole(l), Self.shortcut(l))
                // What the shortcut takes, the whole parse takes, with the same values.
                #expect(s == nil || Self.same(w, s), "\(String(decoding: l, as: UTF8.self))")
                if w != nil { accepted += 1 }
            }
        }
        #expect(accepted > 0)  // some mutations keep a canonical record (a digit for a digit)
        // Seq: leading zeros, zero, the largest integer and one beyond, more digits than any seq.
        let tail = #","prev":"\#(String(repeating: "0", count: 64))","recorded_at":"2025-01-01T00:00:00Z","seq":"#
        let sha = #","sha256":"\#(String(repeating: "a", count: 64))"}"#
        for seq in ["1", "01", "0", "9007199254740991", "9007199254740992", "12345678901234567890", "-1"] {
            let l = Array(#"{"event":{"a":1}"#.utf8) + Array((tail + seq + sha).utf8)
            #expect(Self.same(Self.whole(l), Self.shortcut(l)), "seq \(seq)")
        }
        // Nesting at the limit and one beyond, counted from the line.
        for depth in [JSONTape.maxDepth - 2, JSONTape.maxDepth - 1, JSONTape.maxDepth] {
            let nested = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let l = Array(#"{"event":{"a":\#(nested)}"#.utf8) + Array((tail + "7" + sha).utf8)
            #expect(Self.same(Self.whole(l), Self.shortcut(l)), "depth \(depth)")
        }
    }
}

@Suite struct ChunkTests {
    /// Every line `forEachChunk` hands out: kind, file offset, length, final, bytes.
    static func lines(_ path: String, chunk: Int, readAhead: Bool) throws -> [String] {
        let file = try LedgerFile.open(path, writable: false)
        let size = try file.size()
        var out: [String] = []
        try file.forEachChunk(upTo: size, chunkSize: chunk, readAhead: readAhead, { bytes, spans in
            for s in spans {
                let text = s.kind == .complete ? String(decoding: bytes[s.start..<(s.start + s.length)], as: UTF8.self) : ""
                out.append("\(s.kind) \(s.offset) \(s.length) \(s.isFinal) \(text)")
            }
        })
        return out
    }

    @Test("reading ahead hands out the same lines as reading in turn: short and long lines, over-long ones, a last line without LF")
    func readAheadAgrees() throws {
        let dir = TempDir()
        var rng = SystemRandomNumberGenerator()
        for round in 0..<40 {
            var text = ""
            for _ in 0..<Int.random(in: 1...60, using: &rng) {
                let n = [0, 1, 5, 40, 300, 3000].randomElement(using: &rng)! + Int.random(in: 0...9, using: &rng)
                text += String(repeating: "x", count: n) + "\n"
            }
            if round % 3 == 0 { text += String(repeating: "y", count: Int.random(in: 1...500, using: &rng)) }  // no LF at the end
            if round % 5 == 0 {  // a line longer than any record may be, in the middle
                text = "a\n" + String(repeating: "z", count: LedgerReader.maxLineLength + 10) + "\nb\n" + text
            }
            let path = dir.write("chunks-\(round).txt", text)
            let chunk = [64, 1000, 4096].randomElement(using: &rng)!
            let inTurn = try Self.lines(path, chunk: chunk, readAhead: false)
            #expect(try Self.lines(path, chunk: chunk, readAhead: true) == inTurn, "round \(round), chunk \(chunk)")
            // And both agree with the lines as split here.
            let complete = inTurn.filter { $0.hasPrefix("complete") }.count
            let expected = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().filter { $0.utf8.count <= LedgerReader.maxLineLength }.count
            #expect(complete == expected, "round \(round)")
        }
    }
}
