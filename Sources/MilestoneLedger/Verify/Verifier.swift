import CanonicalJSON
import MilestoneCrypto
import MilestoneModel

/// The first thing wrong with a ledger (docs/ledger-format.md, "What verify checks").
public struct VerifyFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The record's seq, when the line has a readable one.
    public var seq: Int?
    /// 1-based line number.
    public var line: Int
    /// Byte offset of the line's first byte.
    public var offset: Int
    public var reason: String
    /// The damage is a torn tail that `repair --torn-tail` can remove.
    public var isTornTail: Bool

    package init(seq: Int?, line: Int, offset: Int, reason: String, isTornTail: Bool) {
        self.seq = seq
        self.line = line
        self.offset = offset
        self.reason = reason
        self.isTornTail = isTornTail
    }

    /// The last line, `length` bytes from byte `offset`, has no LF: a torn tail.
    package static func unterminated(line: Int, offset: Int, length: Int) -> VerifyFailure {
        VerifyFailure(seq: nil, line: line, offset: offset,
                      reason: "torn tail: \(length) bytes from byte \(offset) without a final LF; `milestones repair --torn-tail` mends it",
                      isTornTail: true)
    }

    /// The last line (`length` bytes without its LF) fails its hash: a torn tail.
    package static func lastLineFailsHash(line: Int, offset: Int, length: Int) -> VerifyFailure {
        VerifyFailure(seq: nil, line: line, offset: offset,
                      reason: "torn tail: the last line fails its hash (\(length + 1) bytes from byte \(offset)); `milestones repair --torn-tail` removes it",
                      isTornTail: true)
    }

    /// A line longer than any record may be.
    package static func tooLong(line: Int, offset: Int) -> VerifyFailure {
        VerifyFailure(seq: nil, line: line, offset: offset, reason: "line longer than \(LedgerReader.maxLineLength) bytes", isTornTail: false)
    }

    /// A file without record 1.
    package static let emptyLedger = VerifyFailure(seq: nil, line: 1, offset: 0,
                                                  reason: "empty file: a ledger holds at least record 1 (ledger.created)", isTornTail: false)

    public var description: String {
        let place = seq.map { "seq \($0) (line \(line), byte \(offset))" } ?? "line \(line) (byte \(offset))"
        return "\(place): \(reason)"
    }
}

/// What a verified ledger is: its records' count, head, origin, and the
/// referential state after the last record.
public struct VerifiedLedger {
    public var head: ChainHead
    /// The ledger's `name` from `ledger.created` (the checkpoint origin).
    public var origin: String
    package var index: ReferenceIndex
    public var records: Int { head.seq }
}

/// What one line says, as far as it can be known from the line alone: the
/// part of verification that lines do independently (and so in parallel).
/// Plain values only, so that a million of them pass from the workers to the
/// in-order checks without allocating or counting references; the rare
/// rest comes beside it as a ``LineNote``.
package struct InspectedLine: Sendable, BitwiseCopyable {
    package struct Record: Sendable, BitwiseCopyable {
        var seq: Int
        var prev: Digest
        var sha256: Digest
        var recordedAt: Timestamp
        var facts: EventFacts
        /// The digest of the event's bytes (0 when not asked for).
        var content: UInt64
    }
    var line: Int
    var offset: Int
    var length: Int
    /// The line failed (its note says why), and `record` holds nothing.
    var failed: Bool
    /// Not an optional: written and read field by field in place (a whole
    /// record copied in and out of an optional showed in profiles).
    var record: Record

    /// Whether inspecting the line left a note: its failure, or the name of the subject it announces.
    var hasNote: Bool { failed || record.facts.type.announces != nil }
}

/// What inspecting a line found besides its plain record.
package enum LineNote: Sendable {
    case failure(VerifyFailure)
    /// An announcement's subject: the one name the in-order checks keep.
    case newSubject(String)
}

/// Checks records in order, remembering only what the checks need (the chain
/// head and the ``ReferenceIndex``). Each line is first inspected on its own
/// (``Inspector/inspect(line:offset:isFinal:lineNumber:into:)``: canonical form, hash,
/// event form), then accepted in order (``accept(_:note:in:)``: chain, seq, time, ids
/// and references).
package struct RecordVerifier: ~Copyable {
    package private(set) var head = ChainHead.genesis
    package private(set) var index: ReferenceIndex
    package private(set) var origin: String?
    private var lineNumber = 0
    /// Lines accepted or reported so far.
    package var linesSeen: Int { lineNumber }
    /// Remember event contents so that an idempotent retry can be told from a clash.
    private let rememberContent: Bool

    package init(rememberContent: Bool = false) {
        self.rememberContent = rememberContent
        index = ReferenceIndex()
    }

    /// How many more records fit before the id table grows.
    package var room: Int { index.idRoom }

    /// Makes room for about this many records in all (those accepted
    /// included), in one step; nothing when there is room already.
    package mutating func reserve(records: Int) {
        index.reserve(events: max(0, records - index.eventCount), contents: rememberContent)
    }

    /// What a worker needs to inspect lines: its own hasher and tape.
    package final class Inspector {
        @exclusivity(unchecked) var hasher = SHA256()
        let tape = JSONTape()
        let rememberContent: Bool

        init(rememberContent: Bool) {
            self.rememberContent = rememberContent
        }

        /// Checks what a line (without its LF, at byte `offset`) can show alone.
        /// `isFinal`: nothing follows this line's LF (so a hash failure is a torn tail).
        /// Writes what it finds into `slot`; returns the line's note, if any.
        package func inspect(line: UnsafeRawBufferPointer, offset: Int, isFinal: Bool, lineNumber lineNo: Int,
                            into slot: UnsafeMutablePointer<InspectedLine>) -> LineNote? {
            func fail(_ reason: String, seq: Int? = nil, torn: Bool = false) -> LineNote? {
                (slot.pointee.line, slot.pointee.offset, slot.pointee.length, slot.pointee.failed) = (lineNo, offset, line.count, true)
                return .failure(VerifyFailure(seq: seq, line: lineNo, offset: offset, reason: reason, isTornTail: torn))
            }
            let hashes = RecordLine.hashes(of: line, hasher: &hasher)
            if isFinal, hashes == nil || hashes!.claimed != hashes!.computed {
                (slot.pointee.line, slot.pointee.offset, slot.pointee.length, slot.pointee.failed) = (lineNo, offset, line.count, true)
                return .failure(.lastLineFailsHash(line: lineNo, offset: offset, length: line.count))
            }
            // 1. well-formed UTF-8 JSON, byte for byte canonical. A record is
            // `{"event":` EVENT `,"prev":"…","recorded_at":"…","seq":N,"sha256":"…"}`:
            // when its tail has exactly that shape and canonical values, only the
            // event needs reading: in one pass when it is plain (EventForm.plainFacts),
            // else by the parser. Any other line is parsed whole, which names its problem.
            var parts = hashes == nil ? nil : RecordLine.canonicalParts(line)
            let plain = parts.flatMap { EventForm.plainFacts(UnsafeRawBufferPointer(rebasing: line[$0.event]), tape: tape) }
            if plain == nil, let p = parts,
               (try? tape.parse(UnsafeRawBufferPointer(rebasing: line[p.event]), mode: .canonical, copy: false, depth: 1)) == nil
                || tape.root.kind != .object {
                parts = nil
            }
            let eventView: JSONView?, eventText: UnsafeRawBufferPointer
            let prev: Digest, recordedAt: Timestamp, seq: Int
            if let parts {
                (eventText, prev, recordedAt, seq) = (UnsafeRawBufferPointer(rebasing: line[parts.event]), parts.prev, parts.recordedAt, parts.seq)
                eventView = plain == nil ? tape.root : nil
            } else {
                do {
                    try tape.parse(line, mode: .canonical, copy: false)  // the chunk outlives this inspection
                } catch {
                    return fail("not canonical JSON: \(error.message) at byte \(offset + error.offset)")
                }
                guard let (e, prevView, timeView, seqView) = tape.root.members(exactly: RecordLine.members, { ($0[0], $0[1], $0[2], $0[3]) }) else {
                    return fail("not a record: expected exactly the members event, prev, recorded_at, seq, sha256")
                }
                guard let seq64 = seqView.int, seq64 >= 1 else { return fail("seq: must be a positive integer") }
                seq = Int(seq64)
                guard let hashes else { return fail("sha256: not 64 lowercase hex digits", seq: seq) }
                guard hashes.claimed == hashes.computed else {
                    return fail("sha256: the record hashes to \(hashes.computed.hex), not \(hashes.claimed.hex)", seq: seq)
                }
                guard let p = prevView.withUTF8({ Digest(hex: UnsafeRawBufferPointer($0)) }) ?? nil else {
                    return fail("prev: not 64 lowercase hex digits", seq: seq)
                }
                // 4. recorded_at is well-formed (its order is checked in order).
                guard let t = timeView.withUTF8({ Timestamp(utf8: $0) }) ?? nil else {
                    return fail("recorded_at: not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ", seq: seq)
                }
                guard e.kind == .object else { return fail("event: must be an object", seq: seq) }
                (eventView, eventText, prev, recordedAt) = (e, UnsafeRawBufferPointer(rebasing: line[e.byteRange!]), p, t)
            }
            // 2. sha256 (prev is checked in order).
            let (claimed, computed) = hashes!
            guard claimed == computed else {
                return fail("sha256: the record hashes to \(computed.hex), not \(claimed.hex)", seq: seq)
            }
            // 6. the event's form.
            let facts: EventFacts
            do {
                facts = try plain?.facts ?? EventForm.facts(of: eventView!)
                guard facts.id != nil else { throw EventError(field: "id", "missing: a recorded event always has its id") }
            } catch {
                return fail("event: \(error)", seq: seq)
            }
            let content = rememberContent ? RecordLine.contentDigest(eventText, hasher: &hasher) : 0
            (slot.pointee.line, slot.pointee.offset, slot.pointee.length, slot.pointee.failed) = (lineNo, offset, line.count, false)
            (slot.pointee.record.seq, slot.pointee.record.prev, slot.pointee.record.sha256) = (seq, prev, claimed)
            (slot.pointee.record.recordedAt, slot.pointee.record.facts, slot.pointee.record.content) = (recordedAt, facts, content)
            guard slot.pointee.hasNote else { return nil }
            if let plain { return .newSubject(String(decoding: UnsafeRawBufferPointer(rebasing: eventText[plain.subject]), as: UTF8.self)) }
            return .newSubject(eventView!["subject"]!.string!)
        }

        /// The event of a line inspected before, with its names, and the
        /// ledger's name when it is `ledger.created`.
        static func event(of line: [UInt8]) -> (event: Event, origin: String?)? {
            let tape = JSONTape()
            guard (try? tape.parse(line, mode: .canonical)) != nil, let view = tape.root["event"],
                  let event = try? EventForm.validate(view)
            else { return nil }
            return (event, event.type == .ledgerCreated ? view["name"]?.string : nil)
        }
    }

    package func makeInspector() -> Inspector { Inspector(rememberContent: rememberContent) }

    /// The checks that depend on the records before: 2 (prev), 3, 4 (order), 5, 6 (ids, references).
    /// `note` is what inspecting the line left beside it; the line is read
    /// again from `file` for the names an error message quotes.
    package mutating func accept(_ line: UnsafePointer<InspectedLine>, note: LineNote?, in file: LedgerFile) throws(VerifyFailure) {
        // Read in place: a copy of the whole line (about 200 bytes) per record shows in profiles.
        let inspected = (line: line.pointee.line, offset: line.pointee.offset, length: line.pointee.length)
        lineNumber = inspected.line
        if case .failure(let failure) = note { throw failure }
        // The record is there (a failed line has a failure note).
        let r = line.pointer(to: \.record)!
        func fail(_ reason: String) -> VerifyFailure {
            VerifyFailure(seq: r.pointee.seq, line: inspected.line, offset: inspected.offset, reason: reason, isTornTail: false)
        }
        guard r.pointee.prev == head.sha256 else {
            throw fail("prev: \(r.pointee.prev.hex) is not the previous record's sha256 \(head.sha256.hex)")
        }
        guard r.pointee.seq == head.seq + 1 else { throw fail("seq: \(r.pointee.seq) follows \(head.seq); expected \(head.seq + 1)") }
        guard r.pointee.recordedAt >= head.recordedAt else {
            throw fail("recorded_at: \(r.pointee.recordedAt) is earlier than the previous record's \(head.recordedAt)")
        }
        let isCreated = r.pointee.facts.type == .ledgerCreated
        if r.pointee.seq == 1, !isCreated { throw fail("record 1 must hold the ledger.created event") }
        if r.pointee.seq != 1, isCreated { throw fail("ledger.created may only be record 1") }
        /// The line read and parsed again (for a message, or the origin).
        func reparsed() -> (event: Event, origin: String?)? {
            (try? file.read(at: inspected.offset, count: inspected.length)).flatMap(Inspector.event(of:))
        }
        func names() -> Event {
            reparsed()?.event ?? Event(facts: r.pointee.facts, id: "?", subject: "?", reference: "?", program: "?", changes: JSONObject())
        }
        do {
            _ = try index.check(r.pointee.facts, names: names)
            // `add` asks for the name of a new subject: an announcement's, noted beside it.
            try index.add(r.pointee.facts, content: rememberContent ? r.pointee.content : nil, names: { () -> Event in
                guard case .newSubject(let subject) = note else { return names() }
                return Event(facts: r.pointee.facts, id: nil, subject: subject, reference: nil, program: nil, changes: nil)
            })
        } catch {
            throw fail("event: \(error)")
        }
        if isCreated { origin = reparsed()?.origin }
        head = ChainHead(seq: r.pointee.seq, sha256: r.pointee.sha256, recordedAt: r.pointee.recordedAt, length: inspected.offset + inspected.length + 1)
    }

    /// Brings what these lines' checks will look up into the cache
    /// (``ReferenceIndex/warm(_:facts:)``).
    package func warm(_ lines: UnsafeBufferPointer<InspectedLine>) {
        index.warm(lines.count) { k in
            let line = lines.baseAddress! + k
            return line.pointee.failed ? nil : line.pointee.record.facts
        }
    }

    /// A line too long to be a record.
    package mutating func lineTooLong(offset: Int) -> VerifyFailure {
        lineNumber += 1
        return .tooLong(line: lineNumber, offset: offset)
    }

    /// A line at the end of the file with no LF.
    package mutating func unterminated(offset: Int, length: Int) -> VerifyFailure {
        lineNumber += 1
        return .unterminated(line: lineNumber, offset: offset, length: length)
    }

    /// The result once every line has passed.
    package func finish() throws(VerifyFailure) -> VerifiedLedger {
        guard head.seq > 0, let origin else {
            throw VerifyFailure.emptyLedger
        }
        return VerifiedLedger(head: head, origin: origin, index: index)
    }
}
