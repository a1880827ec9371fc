#if canImport(Glibc)
import Glibc
import MilestoneCrypto
#endif
import CanonicalJSON
import MilestoneModel

/// The head of a chain: what the next record chains onto.
public struct ChainHead: Sendable, Equatable {
    public var seq: Int
    public var sha256: Digest
    package var recordedAt: Timestamp
    /// The byte length of the ledger up to and including this record's LF.
    public var length: Int

    package init(seq: Int, sha256: Digest, recordedAt: Timestamp, length: Int) {
        self.seq = seq
        self.sha256 = sha256
        self.recordedAt = recordedAt
        self.length = length
    }

    /// Before record 1.
    public static let genesis = ChainHead(seq: 0, sha256: .zero, recordedAt: Timestamp(seconds: .min), length: 0)
}

/// One line of the ledger (docs/ledger-format.md, "Records").
package enum RecordLine {
    /// The fixed text between a record's values.
    enum Pieces {
        // StaticString: no reference counting on the hot path.
        static let eventKey: StaticString = #"{"event":"#
        static let seqKey: StaticString = #","seq":"#
        static let prevKey: StaticString = #","prev":""#
        static let recordedAtKey: StaticString = #"","recorded_at":""#
        static let shaKey: StaticString = #","sha256":""#
    }

    /// A record's members, in canonical order.
    package static let members: StaticTable<StaticString> = ["event", "prev", "recorded_at", "seq", "sha256"]

    /// `,"sha256":"` + 64 hex + `"}`: the fixed tail every record line ends with.
    package static let shaTailLength = 77

    /// Appends the record line (with its LF) for `event` (its canonical
    /// bytes) after `prev`, stamped `recordedAt` (the 20-character UTC form,
    /// as bytes: a batch formats its time once), and returns its hash.
    @discardableResult
    package static func append(event: [UInt8], seq: Int, prev: Digest, recordedAt: [UInt8],
                              to out: inout [UInt8], hasher: inout SHA256) -> Digest {
        let start = out.count
        let n = length(event: event.count, seq: seq)
        out.append(contentsOf: repeatElement(0, count: n))
        return event.withUnsafeBytes { e in
            recordedAt.withUnsafeBytes { t in
                out.withUnsafeMutableBytes { write(event: e, seq: seq, prev: prev, recordedAt: t, into: $0.baseAddress! + start, hasher: &hasher) }
            }
        }
    }

    /// The longest record line `record` writes, without its LF: a tlog-tiles
    /// entry bundle gives each line a big-endian uint16 length.
    package static let maxLength = 65_535

    /// The length of a record line (with its LF) for an event of `event` bytes.
    package static func length(event: Int, seq: Int) -> Int {
        Pieces.eventKey.utf8CodeUnitCount + event + Pieces.prevKey.utf8CodeUnitCount + 64
            + Pieces.recordedAtKey.utf8CodeUnitCount + 20 + 1 + Pieces.seqKey.utf8CodeUnitCount + digits(seq) + shaTailLength + 1
    }

    static func digits(_ n: Int) -> Int {
        var (count, rest) = (1, n)
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }

    /// Writes the record line (with its LF), ``length(event:seq:)`` bytes,
    /// at `out`, and returns its hash. The bytes hashed are the canonical
    /// record without `sha256`; since the members are sorted and `sha256`
    /// sorts last, the line is those bytes with `,"sha256":"…"` inserted
    /// before the closing brace.
    @discardableResult
    package static func write(event: UnsafeRawBufferPointer, seq: Int, prev: Digest, recordedAt: UnsafeRawBufferPointer,
                             into out: UnsafeMutableRawPointer, hasher: inout SHA256) -> Digest {
        precondition(recordedAt.count == 20 && seq >= 1)
        var p = out
        func put(_ s: StaticString) {
            p.copyMemory(from: s.utf8Start, byteCount: s.utf8CodeUnitCount)
            p += s.utf8CodeUnitCount
        }
        func put(_ b: UnsafeRawBufferPointer) {
            if let from = b.baseAddress { p.copyMemory(from: from, byteCount: b.count) }
            p += b.count
        }
        put(Pieces.eventKey)
        put(event)
        put(Pieces.prevKey)
        prev.writeHex(to: p)
        p += 64
        put(Pieces.recordedAtKey)
        put(recordedAt)
        put("\"")
        put(Pieces.seqKey)
        let digits = RecordLine.digits(seq)
        var rest = seq
        for k in stride(from: digits - 1, through: 0, by: -1) {
            p.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 + rest % 10), toByteOffset: k, as: UInt8.self)
            rest /= 10
        }
        p += digits
        put("}")
        hasher.update(UnsafeRawBufferPointer(start: out, count: p - out))
        let digest = hasher.finalize()
        p -= 1
        put(Pieces.shaKey)
        digest.writeHex(to: p)
        p += 64
        put("\"}\n")
        return digest
    }

    /// The fixed-shape tail of a record line, read from its end without a
    /// JSON parser (docs/ledger-format.md): `,"prev":"…","recorded_at":"…","seq":N,"sha256":"…"}`.
    package struct Tail: Sendable, Equatable {
        package var prev: Digest
        package var recordedAt: Timestamp
        package var seq: Int
        package var sha256: Digest
    }

    package static func tail(of line: UnsafeRawBufferPointer) -> Tail? {
        guard let at = locateTail(line),
              let sha = Digest(hex: UnsafeRawBufferPointer(rebasing: line[at.sha..<(at.sha + 64)])),
              let prev = Digest(hex: UnsafeRawBufferPointer(rebasing: line[at.prev..<(at.prev + 64)])),
              let time = Timestamp(utf8: UnsafeBufferPointer(rebasing: line.assumingMemoryBound(to: UInt8.self)[at.time..<(at.time + 20)]))
        else { return nil }
        return Tail(prev: prev, recordedAt: time, seq: at.seq, sha256: sha)
    }

    /// The parts of a record line whose tail (after the event) has exactly
    /// the canonical shape and values: the event's byte range (to parse),
    /// prev, recorded_at and seq. Such a line is canonical JSON with exactly
    /// the record's members if and only if its event is a canonical object.
    /// nil when the line is anything else (the full parse then names the
    /// problem). The sha256 value is ``hashes(of:hasher:)``'s to check.
    static func canonicalParts(_ line: UnsafeRawBufferPointer) -> (event: Range<Int>, prev: Digest, recordedAt: Timestamp, seq: Int)? {
        guard matches(line, at: 0, Pieces.eventKey), let at = locateTail(line),
              at.seq >= 1, at.seq <= JSONValue.maxInteger,
              let prev = Digest(hex: UnsafeRawBufferPointer(rebasing: line[at.prev..<(at.prev + 64)])),
              let time = Timestamp(utf8: UnsafeBufferPointer(rebasing: line.assumingMemoryBound(to: UInt8.self)[at.time..<(at.time + 20)]))
        else { return nil }
        // No leading zero in seq: its first digit follows `,"seq":`.
        let firstDigit = at.time + 21 + Pieces.seqKey.utf8CodeUnitCount
        guard line[firstDigit] != UInt8(ascii: "0") else { return nil }
        let eventEnd = at.prev - Pieces.prevKey.utf8CodeUnitCount
        let eventStart = Pieces.eventKey.utf8CodeUnitCount
        guard eventStart < eventEnd else { return nil }
        return (eventStart..<eventEnd, prev, time, at.seq)
    }

    /// Where the tail's values are in a record line (byte positions of the
    /// `prev` and `sha256` hex and of `recorded_at`) and its seq, checked for
    /// shape only: the digests' and the time's text are not parsed.
    @inline(__always)
    static func locateTail(_ line: UnsafeRawBufferPointer) -> (prev: Int, time: Int, seq: Int, sha: Int)? {
        let n = line.count
        guard n > shaTailLength + 120, line[n - 1] == UInt8(ascii: "}") else { return nil }
        let shaStart = n - shaTailLength
        guard matches(line, at: shaStart, Pieces.shaKey), line[n - 2] == UInt8(ascii: "\"") else { return nil }
        // Back over the digits of seq to `,"seq":`.
        var i = shaStart - 1
        var seq = 0
        var scale = 1
        while i > 0, line[i] >= 0x30, line[i] <= 0x39, scale <= 1_000_000_000_000_000 {
            seq += Int(line[i] - 0x30) * scale
            scale *= 10
            i -= 1
        }
        let seqStart = i - Pieces.seqKey.utf8CodeUnitCount + 1
        guard scale > 1, seqStart > 0, matches(line, at: seqStart, Pieces.seqKey) else { return nil }
        // `,"prev":"<64>","recorded_at":"<20>"` ends where `,"seq":` starts.
        let timeStart = seqStart - 21
        let prevStart = timeStart - 16 - 65
        guard prevStart > 9, matches(line, at: prevStart - 9, Pieces.prevKey),
              matches(line, at: prevStart + 64, Pieces.recordedAtKey),
              line[seqStart - 1] == UInt8(ascii: "\"")
        else { return nil }
        return (prevStart, timeStart, seq, shaStart + 11)
    }

    @inline(__always)
    static func matches(_ line: UnsafeRawBufferPointer, at start: Int, _ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard start >= 0, start + n <= line.count else { return false }
        return memcmp(line.baseAddress! + start, text.utf8Start, n) == 0
    }

    /// The first 8 bytes of the SHA-256 of an event's canonical bytes, for
    /// telling an idempotent retry from a clash (kept in the read models too).
    package static func contentDigest(_ bytes: UnsafeRawBufferPointer, hasher: inout SHA256) -> UInt64 {
        hasher.update(bytes)
        return hasher.finalize().prefix64 | 1
    }

    /// Recomputes the hash of a line (without its LF) from the line alone,
    /// or `nil` when the line does not end in the fixed `sha256` tail.
    /// Returns (claimed, computed).
    package static func hashes(of line: UnsafeRawBufferPointer, hasher: inout SHA256) -> (claimed: Digest, computed: Digest)? {
        let n = line.count
        guard n > shaTailLength + 1 else { return nil }
        let tailStart = n - shaTailLength
        // Hashed first, front to back, and the tail looked at after: the
        // line is read in order (its last byte read first waited on memory).
        hasher.update(UnsafeRawBufferPointer(rebasing: line[..<tailStart]))
        hasher.update(UInt8(ascii: "}"))
        let computed = hasher.finalize()
        guard line[n - 1] == UInt8(ascii: "}"), line[n - 2] == UInt8(ascii: "\""), matches(line, at: tailStart, Pieces.shaKey),
              let claimed = Digest(hex: UnsafeRawBufferPointer(rebasing: line[(tailStart + 11)..<(n - 2)]))
        else { return nil }
        return (claimed, computed)
    }
}
