import CanonicalJSON
import MilestoneModel

/// The first thing wrong with a ledger (ledger-format.md, "What verify checks").
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

    public var description: String {
        let place = seq.map { "seq \($0) (line \(line), byte \(offset))" } ?? "line \(line) (byte \(offset))"
        return "\(place): \(reason)"
    }
}

/// What a verified ledger is: its records' count, head, origin, and the
/// referential state after the last record.
public struct VerifiedLedger: Sendable {
    public var head: ChainHead
    /// The ledger's `name` from `ledger.created` (the checkpoint origin).
    public var origin: String
    public var index: ReferenceIndex
    public var records: Int { head.seq }
}

/// Checks records one line at a time, in order, remembering only what the
/// checks need (the chain head and the ``ReferenceIndex``).
public struct RecordVerifier: ~Copyable {
    public private(set) var head = ChainHead.genesis
    public private(set) var index = ReferenceIndex()
    public private(set) var origin: String?
    private var hasher = SHA256()
    private var lineNumber = 0
    /// Remember event contents so that an idempotent retry can be told from a clash.
    private let rememberContent: Bool

    public init(rememberContent: Bool = false) {
        self.rememberContent = rememberContent
    }

    /// Checks the next line (without its LF) starting at byte `offset`.
    /// `isFinal`: nothing follows this line's LF (so a hash failure is a torn tail).
    public mutating func check(line: UnsafeRawBufferPointer, offset: Int, isFinal: Bool) throws(VerifyFailure) {
        lineNumber += 1
        let lineNo = lineNumber
        func fail(_ reason: String, seq: Int? = nil, torn: Bool = false) -> VerifyFailure {
            VerifyFailure(seq: seq, line: lineNo, offset: offset, reason: reason, isTornTail: torn)
        }
        let hashes = RecordLine.hashes(of: line, hasher: &hasher)
        if isFinal, hashes == nil || hashes!.claimed != hashes!.computed {
            throw fail("torn tail: the last line fails its hash (\(line.count + 1) bytes from byte \(offset)); `milestones repair --torn-tail` removes it", torn: true)
        }
        // 1. well-formed UTF-8 JSON, byte for byte canonical.
        let value: JSONValue
        do {
            value = try JSONReader.parse(line.assumingMemoryBound(to: UInt8.self), mode: .canonical)
        } catch {
            throw fail("not canonical JSON: \(error.message) at byte \(offset + error.offset)")
        }
        guard case .object(let record) = value, record.count == 5, record.members[0].key == "event",
              record.members[1].key == "prev", record.members[2].key == "recorded_at", record.members[3].key == "seq",
              record.members[4].key == "sha256"
        else {
            throw fail("not a record: expected exactly the members event, prev, recorded_at, seq, sha256")
        }
        guard case .int(let seq64) = record["seq"]!, seq64 >= 1 else { throw fail("seq: must be a positive integer") }
        let seq = Int(seq64)
        // 2. sha256 and prev.
        guard let hashes else { throw fail("sha256: not 64 lowercase hex digits", seq: seq) }
        guard hashes.claimed == hashes.computed else {
            throw fail("sha256: the record hashes to \(hashes.computed.hex), not \(hashes.claimed.hex)", seq: seq)
        }
        guard let prevHex = record["prev"]!.stringValue, let prev = Digest(hex: prevHex) else {
            throw fail("prev: not 64 lowercase hex digits", seq: seq)
        }
        guard prev == head.sha256 else {
            throw fail("prev: \(prev.hex) is not the previous record's sha256 \(head.sha256.hex)", seq: seq)
        }
        // 3. seq.
        guard seq == head.seq + 1 else { throw fail("seq: \(seq) follows \(head.seq); expected \(head.seq + 1)", seq: seq) }
        // 4. recorded_at.
        guard let ts = record["recorded_at"]!.stringValue, let recordedAt = Timestamp(ts) else {
            throw fail("recorded_at: not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ", seq: seq)
        }
        guard recordedAt >= head.recordedAt else {
            throw fail("recorded_at: \(recordedAt) is earlier than the previous record's \(head.recordedAt)", seq: seq)
        }
        // 5. ledger.created first and only there; 6. the event itself.
        guard case .object(let eventObject) = record["event"]! else { throw fail("event: must be an object", seq: seq) }
        let isCreated = eventObject["type"] == .string(EventType.ledgerCreated.rawValue)
        if seq == 1, !isCreated { throw fail("record 1 must hold the ledger.created event", seq: seq) }
        if seq != 1, isCreated { throw fail("ledger.created may only be record 1", seq: seq) }
        let event: Event
        do {
            event = try EventForm.validate(.object(eventObject))
            guard event.id != nil else { throw EventError(field: "id", "missing: a recorded event always has its id") }
            _ = try index.check(event)
        } catch {
            throw fail("event: \(error)", seq: seq)
        }
        index.add(event, rememberContent: rememberContent)
        if isCreated { origin = event["name"]?.stringValue }
        head = ChainHead(seq: seq, sha256: hashes.claimed, recordedAt: recordedAt, length: offset + line.count + 1)
    }

    /// A line at the end of the file with no LF.
    public mutating func unterminated(offset: Int, length: Int) -> VerifyFailure {
        lineNumber += 1
        return VerifyFailure(seq: nil, line: lineNumber, offset: offset,
                             reason: "torn tail: \(length) bytes from byte \(offset) without a final LF; `milestones repair --torn-tail` removes them",
                             isTornTail: true)
    }

    public func lineTooLong(offset: Int) -> VerifyFailure {
        VerifyFailure(seq: nil, line: lineNumber + 1, offset: offset,
                      reason: "line longer than \(LedgerReader.maxLineLength) bytes", isTornTail: false)
    }

    /// The result once every line has passed.
    public func finish() throws(VerifyFailure) -> VerifiedLedger {
        guard head.seq > 0, let origin else {
            throw VerifyFailure(seq: nil, line: 1, offset: 0, reason: "empty file: a ledger holds at least record 1 (ledger.created)", isTornTail: false)
        }
        return VerifiedLedger(head: head, origin: origin, index: index)
    }
}
