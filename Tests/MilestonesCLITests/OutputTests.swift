import CanonicalJSON
import Foundation
import TestSupport
import Testing
@testable import MilestoneModel
@testable import MilestonesCLI

/// What a RowStream writes, read back from a file.
func streamed(_ columns: [String], _ format: QueryFormat, then next: (() -> RowStream)? = nil,
              _ body: (inout RowStream) -> Void) -> String {
    let dir = TempDir()
    let path = dir.file("out")
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0)
    var stream = RowStream(columns: columns, format: format, fd: fd)
    body(&stream)
    stream.finish(followedBy: next?())
    close(fd)
    return String(decoding: FileManager.default.contents(atPath: path)!, as: UTF8.self)
}

@Suite("query output")
struct OutputTests {
    static let columns = ["subject", "name", "phase_date", "count", "actual", "Zeta", "a"]

    /// Random rows with text that needs escapes, non-ASCII text, nulls, dates and integers.
    static func rows(_ n: Int, seed: UInt64) -> [[Cell]] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            columns.indices.map { _ -> Cell in
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: .null
                case 1: .string(texts[Int.random(in: 0..<texts.count, using: &rng)])
                case 4: .utf8(OutputTests.bytes[Int.random(in: 0..<texts.count, using: &rng)])
                case 2: .int(Int64.random(in: -99_999...99_999, using: &rng) * (Bool.random(using: &rng) ? 1 : 1_000_000_000))
                default: .date(CalendarDate(days: Int32.random(in: -800_000...2_900_000, using: &rng)))
                }
            }
        }
    }

    /// The same texts as bytes that live as long as the tests (as a summary row's do during a scan).
    nonisolated(unsafe) static let bytes: [UnsafeBufferPointer<UInt8>] = texts.map { t in
        let b = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: t.utf8.count)
        _ = b.initialize(from: t.utf8)
        return UnsafeBufferPointer(b)
    }
    static let texts = ["fac-1-us", "", "Wistron \"Fort Worth\"", "naïve, café", "line\nbreak", "tab\there", "back\\slash",
                        "ctl\u{1}x", "漢字 plant 2", "a,b", "\u{7F}del", String(repeating: "long text ", count: 9)]

    static func json(_ c: Cell) -> JSONValue {
        switch c {
        case .null: .null
        case .string(let s): .string(s)
        case .utf8(let b): .string(String(decoding: b, as: UTF8.self))
        case .int(let i): .int(i)
        case .date(let d): .string(d.description)
        }
    }

    @Test("JSON rows are the canonical JSON of one object per row, keys sorted once for all rows")
    func jsonRows() {
        for n in [0, 1, 2, 300] {
            let rows = OutputTests.rows(n, seed: UInt64(n))
            let got = streamed(OutputTests.columns, .json) { s in for r in rows { s.add(r) } }
            let objects: [JSONValue] = rows.map { r in
                var o = JSONObject()
                for (c, v) in zip(OutputTests.columns, r) { o[c] = OutputTests.json(v) }
                return .object(o)
            }
            #expect(got == JSONWriter.string(.array(objects)) + "\n", "\(n) rows")
        }
    }

    @Test("CSV rows: a header, CRLF, fields quoted only when they hold a comma, quote or line break")
    func csvRows() {
        let rows: [[Cell]] = [[.string("a,b"), .string("say \"hi\""), .date(CalendarDate("2025-04-14")!), .int(-12), .null,
                               .string("x\ny"), .string("plain")]]
        let got = streamed(OutputTests.columns, .csv) { s in for r in rows { s.add(r) } }
        #expect(got == "subject,name,phase_date,count,actual,Zeta,a\r\n\"a,b\",\"say \"\"hi\"\"\",2025-04-14,-12,,\"x\ny\",plain\r\n")
    }

    @Test("a stream continued by another (the second half of a parallel scan) reads as one stream", arguments: [
        (0, 0), (0, 3), (3, 0), (2, 5),
    ])
    func continued(_ counts: (Int, Int)) {
        let rows = OutputTests.rows(counts.0 + counts.1, seed: 7)
        for format in [QueryFormat.json, .csv] {
            let whole = streamed(OutputTests.columns, format) { s in for r in rows { s.add(r) } }
            let joined = streamed(OutputTests.columns, format, then: { () -> RowStream in
                var second = RowStream(columns: OutputTests.columns, format: format, fd: -1, continuing: true)
                for r in rows[counts.0...] { second.add(r) }
                return second
            }) { s in for r in rows[..<counts.0] { s.add(r) } }
            #expect(joined == whole, "\(format) \(counts)")
        }
    }

    @Test("integers read as Swift writes them, at every width and both ends of Int64")
    func integers() {
        var values: [Int64] = [0, 1, 9, 10, 99, 100, 101, 999, Int64.max, Int64.min, Int64.min + 1]
        var p: Int64 = 1
        for _ in 0..<18 {
            p *= 10
            values += [p - 1, p, p + 1]
        }
        values += values.filter { $0 != .min }.map { -$0 }
        for format in [QueryFormat.json, .csv] {
            let got = streamed(["n"], format) { s in for v in values { s.add([.int(v)]) } }
            let want = format == .json ? "[" + values.map { "{\"n\":\($0)}" }.joined(separator: ",") + "]\n"
                                       : "n\r\n" + values.map { "\($0)\r\n" }.joined()
            #expect(got == want, "\(format)")
        }
    }

    @Test("the eight-bytes-at-a-time escape check agrees with a byte-by-byte one, for every byte value at every position")
    func escapeCheck() {
        func reference(_ b: [UInt8]) -> Bool { b.contains { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C } }
        for length in 1...19 {
            for position in 0..<length {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = UInt8(value)
                    let got = bytes.withUnsafeBufferPointer { JSONWriter.needsEscape($0) }
                    #expect(got == reference(bytes), "length \(length), byte \(value) at \(position)")
                }
            }
        }
        #expect(!"".utf8.withContiguousStorageIfAvailable { JSONWriter.needsEscape($0) }!)
    }

    @Test("dates read YYYY-MM-DD across the calendar, as their components say")
    func dateText() {
        func pad(_ v: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(v).count)) + String(v) }
        for days in stride(from: Int32(-719_468), through: 2_932_896, by: 97) {
            let d = CalendarDate(days: days)
            let (y, m, dd) = d.components
            #expect(d.description == "\(pad(y, 4))-\(pad(m, 2))-\(pad(dd, 2))")
            if y >= 1 { #expect(CalendarDate(d.description) == d) }
        }
    }
}
