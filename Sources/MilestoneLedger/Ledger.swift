#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import Dispatch
import MilestoneModel

public enum LedgerReader {
    /// The longest record or input line accepted: far above any valid event
    /// (text fields are limited to 2,000 characters), and a bound on memory.
    public static let maxLineLength = 1 << 20

    /// Checks every record of the ledger (the six checks of docs/ledger-format.md),
    /// streaming; throws ``LedgerError/notIntact(_:path:)`` with the first failure.
    public static func verify(_ file: LedgerFile, upTo length: Int? = nil, rememberContent: Bool = false,
                              progress: ((Int, Int) -> Void)? = nil) throws -> VerifiedLedger {
        let size: Int
        if let length {
            size = length
        } else {
            // Appends only ever add after the length seen under the lock.
            try file.lock(exclusive: false, wait: 10)
            size = try file.size()
            file.unlock()
        }
        var verifier = RecordVerifier(rememberContent: rememberContent)
        // Lines are inspected on every core (hash, canonical form, event form)
        // and accepted in order (chain, ids, references) on one, pipelined:
        // while one chunk's lines are accepted, the next chunk's are inspected.
        let workers = size > 1 << 20 ? max(1, min(8, activeProcessorCount())) : 1
        // Slices of each chunk, each with its own inspector (a tape and a hasher).
        let slices = workers == 1 ? 1 : workers * 32
        let inspectors = UncheckedSendable((0..<slices).map { _ in verifier.makeInspector() })
        // Notes by line (failures, announced subjects), one dictionary per slice (each written by one task).
        typealias Inspected = (spans: [LedgerFile.LineSpan], results: UnsafeBufferPointer<InspectedLine>, notes: [[Int: LineNote]], perSlice: Int)
        var previous: Inspected?
        // Two buffers of inspected lines, reused: one chunk's written while the one before is accepted.
        let buffers = (LineBuffer(), LineBuffer())
        var chunks = 0
        var linesBefore = 0
        do {
            try withUnsafeMutablePointer(to: &verifier) { v in
                let acceptor = UncheckedSendable(v)
                let reader = UncheckedSendable(file)
                /// Accepts an inspected chunk in order; the first failure.
                @Sendable func accept(_ done: Inspected) -> VerifyFailure? {
                    do throws(VerifyFailure) {
                        for (i, s) in done.spans.enumerated() {
                            if let ahead = ReferenceIndex.warmAhead(i, of: done.results.count) {
                                acceptor.value.pointee.warm(UnsafeBufferPointer(rebasing: done.results[ahead]))
                            }
                            switch s.kind {
                            case .complete:
                                let line = done.results.baseAddress! + i
                                let note = line.pointee.hasNote ? done.notes[i / done.perSlice][i] : nil
                                try acceptor.value.pointee.accept(line, note: note, in: reader.value)
                            case .tooLong: throw acceptor.value.pointee.lineTooLong(offset: s.offset)
                            case .unterminated: throw acceptor.value.pointee.unterminated(offset: s.offset, length: s.length)
                            }
                        }
                        return nil
                    } catch {
                        return error
                    }
                }
                // 2 MiB chunks: two of them in flight (one inspected, one accepted) keep memory small.
                try file.forEachChunk(upTo: size, chunkSize: 2 << 20, readAhead: workers > 1, { chunk, spans in
                    let out = (chunks % 2 == 0 ? buffers.0 : buffers.1).lines(spans.count)
                    chunks += 1
                    if let last = spans.last, chunks == 1 || acceptor.value.pointee.room < 2 * spans.count {
                        // Size the id table for the records the lines so far foretell: before
                        // anything is accepted, and again (in place) if the lines run shorter
                        // than foretold and it would fill within two chunks (this chunk's and
                        // the one accepted next). Each re-size is a rehash, so not at every
                        // chunk: a ledger of shrinking lines would rehash again and again.
                        // Nothing else runs between two chunks.
                        let expected = LedgerReader.expectedRecords(size: size, sampleBytes: last.offset + last.length + 1,
                                                                    sampleLines: linesBefore + spans.count)
                        acceptor.value.pointee.reserve(records: expected)
                    }
                    var notes = [[Int: LineNote]](repeating: [:], count: slices)
                    let lineBase = linesBefore
                    let per = (spans.count + slices - 1) / slices  // lines a slice inspects
                    let waiting = previous
                    let acceptWaiting = waiting.map { w in
                        let u = UncheckedSendable(w)
                        return { @Sendable in accept(u.value) }
                    }
                    let failure = notes.withUnsafeMutableBufferPointer { noted in
                        let slots = UncheckedSendable((out, noted))
                        let input = UncheckedSendable(chunk)
                        return pipelineStep(slices: slices, acceptPrevious: acceptWaiting) { slice in
                            let (lo, hi) = (slice * per, min(spans.count, slice * per + per))
                            guard lo < hi else { return }
                            for i in lo..<hi where spans[i].kind == .complete {
                                let s = spans[i]
                                if let note = inspectors.value[slice].inspect(
                                    line: UnsafeRawBufferPointer(rebasing: input.value[s.start..<(s.start + s.length)]),
                                    offset: s.offset, isFinal: s.isFinal, lineNumber: lineBase + i + 1, into: slots.value.0.baseAddress! + i) {
                                    slots.value.1[slice][i] = note
                                }
                            }
                        }
                    }
                    if let failure { throw failure }
                    linesBefore += spans.count
                    previous = (spans, UnsafeBufferPointer(out), notes, per)
                }, progress: progress.map { p in { p($0, size) } })
                if let last = previous, let failure = accept(last) { throw failure }
            }
            return try verifier.finish()
        } catch let f as VerifyFailure {
            throw LedgerError.notIntact(f, path: file.path)
        }
    }
}

extension LedgerReader {
    /// No record line is shorter: two 64-digit hashes, `recorded_at`, seq,
    /// and an event with its id, type and date come to over 230 bytes.
    static let shortestRecord = 200

    /// How many records a ledger of `size` bytes holds, foretold from its
    /// lines so far (`sampleLines` in its first `sampleBytes`), and 1% more.
    /// Never more than `size / shortestRecord`: a file of short lines
    /// (damaged, or no ledger) is reported, not sized for.
    static func expectedRecords(size: Int, sampleBytes: Int, sampleLines: Int) -> Int {
        let foretold = Double(size) / Double(max(1, sampleBytes)) * Double(sampleLines) * 1.01
        return min(Int(foretold.rounded(.up)), size / shortestRecord + 1)
    }
}

/// The clock that stamps `recorded_at`: the system's, or the one fixed by the
/// `MILESTONES_NOW` environment variable (`YYYY-MM-DDTHH:MM:SSZ`), which
/// tests use to make ledgers reproducible.
public enum LedgerClock {
    public static func now() -> Timestamp {
        if let fixed = getenv("MILESTONES_NOW").flatMap({ Timestamp(String(cString: $0)) }) { return fixed }
        return Timestamp(seconds: Int64(time(nil)))
    }
}

/// Creating a ledger (`init`).
public enum LedgerInit {
    /// Writes record 1, `ledger.created`, into a new file at `path`.
    @discardableResult
    public static func create(path: String, name: String, now: Timestamp = LedgerClock.now()) throws -> Digest {
        var o = JSONObject()
        o["type"] = .string(EventType.ledgerCreated.rawValue)
        o["name"] = .string(name)
        o["format"] = 1
        o["date"] = .string(now.date.description)
        do {
            _ = try EventForm.validate(.object(o))
        } catch {
            throw InputError(problems: ["init: --\(error)"])
        }
        o["id"] = .string(EventIDs.derived(for: o))
        var bytes: [UInt8] = []
        var hasher = SHA256()
        let digest = RecordLine.append(event: JSONWriter.bytes(.object(o)), seq: 1, prev: .zero, recordedAt: Array(now.description.utf8),
                                       to: &bytes, hasher: &hasher)
        try LedgerFile.create(path, bytes: bytes)
        return digest
    }
}

/// How ids are assigned to events recorded without one: `ev-` and the first
/// 20 hex digits of the SHA-256 of the normalised event's canonical JSON.
/// Derived from the content, so retrying an id-less event (or batch) after a
/// crash finds the same id and is a no-op instead of a duplicate.
public enum EventIDs {
    public static func derived(for object: JSONObject) -> String {
        var o = object
        o["id"] = nil
        return derived(fromCanonical: JSONWriter.bytes(.object(o)))
    }

    /// The id for the canonical bytes of a normalised event without id.
    public static func derived(fromCanonical bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes(derived(fromCanonical:))
    }

    public static func derived(fromCanonical bytes: UnsafeRawBufferPointer) -> String {
        "ev-" + String(SHA256.hash(bytes).hex.prefix(20))
    }
}

/// Input rejected (exit 65): one line a problem, each naming its place.
public struct InputError: Error, Sendable, CustomStringConvertible {
    public var problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "\n") }
}

/// What `record` did with one input event.
public struct RecordOutcome: Sendable, Equatable {
    public enum Status: String, Sendable { case appended, alreadyRecorded = "already_recorded" }
    /// The input line (nil for an event given by options).
    public var line: Int?
    public var id: String
    public var seq: Int?
    public var status: Status
}

/// An input event prepared on its own (in parallel with others): validated,
/// normalised, its canonical bytes written, its id given.
///
/// Plain fields, read in place by the in-order stage: as a `Result`, each
/// event was copied twice there through generic value witnesses, with its
/// references counted (about 1,200 instructions an event, in callgrind).
struct PreparedEvent: Sendable {
    /// The input line (nil for an event given by options).
    var line: Int?
    /// The event, when it passed the checks it can pass alone; else
    /// `problem` says why. Neither, for a blank line.
    var event: Event?
    var problem: String?
    var record: PendingRecord?

    static func blank(line: Int) -> PreparedEvent { PreparedEvent(line: line) }
    static func problem(_ message: String, line: Int?) -> PreparedEvent { PreparedEvent(line: line, problem: message) }
}

/// A new record before its place in the chain is known: where its event's
/// canonical bytes are.
struct PendingRecord: Sendable {
    let store: EventBytes
    let offset: Int, count: Int

    func withEvent<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: store.bytes.base + offset, count: count))
    }
}

/// The canonical bytes of the events one slice of a chunk prepared, one
/// after another: kept until the batch is written (a buffer for each event
/// cost a second of a million-event batch in `malloc` and page faults).
final class EventBytes: @unchecked Sendable {
    @exclusivity(unchecked) var bytes: ByteBuffer
    init(capacity: Int) { bytes = ByteBuffer(capacity: capacity) }
}

/// What one slice of a chunk prepares its events with.
final class Preparer: @unchecked Sendable {
    let tape = JSONTape()
    @exclusivity(unchecked) var store = EventBytes(capacity: 0)
    /// The fast path's small objects, while an event's members are read.
    @exclusivity(unchecked) var scratch = ByteBuffer(capacity: 1024)
}


/// One `record` run: takes the ledger's lock, checks each event (form, then
/// references against the ledger and the events before it in the batch), and
/// writes nothing until ``commit()``, which makes the new records and appends
/// them, synced before it returns (``LedgerFile/append(at:total:longestLine:piece:flushFrom:fill:)``)
/// — or nothing at all if any event failed.
///
///     let batch = try AppendBatch(ledger: "milestones.jsonl", wait: 10)
///     try batch.add(from: try InputFile.open("events.jsonl"))
///     let outcomes = try batch.commit()
/// Its stored properties are `@exclusivity(unchecked)`: one owner uses them at a time, by construction, and the dynamic checks cost per record (bench/README.md).
public final class AppendBatch {
    /// At most this many problems are listed for one rejected batch.
    public static let maxProblems = 50

    let file: LedgerFile
    let startLength: Int
    @exclusivity(unchecked) var index: ReferenceIndex
    /// The ledger's head: its `seq` counts the records added so far; its
    /// hash is the new last record's once ``commit()`` has written them.
    @exclusivity(unchecked) public private(set) var head: ChainHead
    let recordedAtText: [UInt8]
    /// The new records, whose lines are made as ``commit()`` writes them
    /// (their hashes chain, and nothing is written until every event passed).
    @exclusivity(unchecked) var pending: [PendingRecord] = []
    /// The length of their lines, and the longest.
    @exclusivity(unchecked) var pendingLength = 0
    @exclusivity(unchecked) var longestLine = 0
    /// The ledger's record count before this batch.
    let startSeq: Int
    /// Where in `pending` each new record's id is, once an id came again.
    @exclusivity(unchecked) var pendingByID: [UInt64: Int]?
    @exclusivity(unchecked) var hasher = SHA256()
    @exclusivity(unchecked) public private(set) var outcomes: [RecordOutcome] = []
    public private(set) var problems: [String] = []
    /// Problems beyond ``maxProblems``, counted but not listed.
    public private(set) var moreProblems = 0
    /// Where the events come from, for messages: a file name or `record`.
    public private(set) var source = "record"

    /// Where a batch learns the ledger's head and what is recorded: from the
    /// locked ledger and its length. The default verifies the whole ledger
    /// (a torn tail or any other damage blocks appends); read models can
    /// answer instead, without rescanning the log.
    public typealias StateSource = (_ ledger: LedgerFile, _ length: Int) throws -> (head: ChainHead, known: any ReferenceState)

    public static func verifiedState(_ file: LedgerFile, _ length: Int) throws -> (head: ChainHead, known: any ReferenceState) {
        let state = try LedgerReader.verify(file, upTo: length, rememberContent: true)
        return (state.head, state.index)
    }

    /// Opens and locks the ledger (waiting up to `wait` seconds), then learns
    /// its head and contents from `state`.
    public init(ledger path: String, wait: Double, now: Timestamp = LedgerClock.now(),
                state: StateSource = AppendBatch.verifiedState) throws {
        file = try LedgerFile.open(path, writable: true)
        try file.lock(exclusive: true, wait: wait)
        startLength = try file.size()
        guard startLength > 0 else { throw LedgerError.empty(path: path) }
        let known = try state(file, startLength)
        // A ledger's own verified index is in memory: the batch goes on from it
        // rather than asking it, id by id, as it would the read models.
        index = known.known as? ReferenceIndex ?? ReferenceIndex(base: known.known)
        head = known.head
        startSeq = known.head.seq
        recordedAtText = Array(max(now, known.head.recordedAt).description.utf8)
    }

    /// Told the input's bytes read so far and its size, chunk by chunk (a
    /// terminal's progress line; not called for input of unknown size).
    public var progress: ((Int, Int) -> Void)?

    /// The ledger being appended to (locked until the batch is released).
    public var ledgerFile: LedgerFile { file }

    /// The ledger's length before this batch.
    public var ledgerLength: Int { startLength }

    deinit { file.unlock() }

    func place(_ line: Int?) -> String { line.map { "\(source):\($0)" } ?? source }

    /// Notes a problem found before an event could be added.
    func reject(_ problem: String) {
        if problems.count < AppendBatch.maxProblems { problems.append(problem) } else { moreProblems += 1 }
    }

    /// Validates one event built in memory (e.g. from options) and adds it.
    public func add(_ value: JSONValue) {
        add(value, line: nil)
    }

    /// Validates one event built in memory from line `line` of the input
    /// named `source` (a CSV file's row, say) and adds it: problems name that line.
    public func add(_ value: JSONValue, line: Int?, source name: String? = nil) {
        if let name { source = name }
        let preparer = Preparer()
        do {
            try preparer.tape.parse(JSONWriter.bytes(value))
        } catch {
            reject("\(place(line)): \(error)")
            return
        }
        withUnsafePointer(to: AppendBatch.prepare(preparer.tape.root, line: line, using: preparer)) { accept($0) }
    }

    /// Notes a problem found by the caller before an event could be built (e.g. a CSV cell).
    public func reject(line: Int?, source name: String? = nil, _ problem: String) {
        if let name { source = name }
        reject("\(place(line)): \(problem)")
    }

    /// Reads every line of `input` (in chunks, so memory holds the new records,
    /// not the input), prepares the events on every core, and adds them in order.
    public func add(from input: InputFile) throws {
        source = input.name
        if let size = input.size {
            outcomes.reserveCapacity(outcomes.count + size / 256)
            pending.reserveCapacity(pending.count + size / 256)
            // Input events run 250 to 500 bytes, and about one in eight names a new subject.
            if !index.hasBase { index.reserve(events: size / 250, subjects: size / 2000, contents: false) }
        }
        let workers = max(1, min(8, activeProcessorCount()))
        // Slices of each chunk, each with its own preparer (tape, scratch and
        // store of canonical bytes); while one chunk's events are accepted in
        // order (task 0), the next chunk's are prepared.
        let slices = workers == 1 ? 1 : workers * 32
        let preparers = UncheckedSendable((0..<slices).map { _ in Preparer() })
        var previous: [PreparedEvent]?
        let batch = UncheckedSendable(self)
        @Sendable func acceptAll(_ prepared: [PreparedEvent]) -> Error? {
            prepared.withUnsafeBufferPointer { events in
                if batch.value.index.hasBase {
                    var ids: [String] = []
                    for e in events {
                        if let id = e.event?.id { ids.append(id) }
                        if let r = e.event?.reference { ids.append(r) }
                    }
                    do {
                        try batch.value.index.prefetch(ids: ids)
                    } catch {
                        return error
                    }
                }
                for i in events.indices {
                    if let ahead = ReferenceIndex.warmAhead(i, of: events.count) { batch.value.warm(UnsafeBufferPointer(rebasing: events[ahead])) }
                    batch.value.accept(events.baseAddress! + i)
                }
                return nil
            }
        }
        var consumed = 0
        try input.forEachChunk { chunk, spans in
            consumed += chunk.count
            if let size = input.size { progress?(min(consumed, size), size) }
            var acceptPrevious: (@Sendable () -> UncheckedSendable<any Error>?)?
            if let waiting = previous {
                acceptPrevious = { acceptAll(waiting).map { UncheckedSendable($0) } }
            }
            var failure: UncheckedSendable<any Error>?
            // Each slot is initialised where it lies, never assigned over a nil
            // (which would read each slot's old value first).
            let prepared = [PreparedEvent](unsafeUninitializedCapacity: spans.count) { out, initialized in
                let slots = UncheckedSendable(out)
                let text = UncheckedSendable(chunk)
                let n = spans.count >= 256 ? slices : 1
                let per = (spans.count + n - 1) / n
                for p in preparers.value.prefix(n) { p.store = EventBytes(capacity: chunk.count / n * 5 / 4) }
                // Every slice runs, so every slot is initialised.
                failure = pipelineStep(slices: n, acceptPrevious: acceptPrevious) { slice in
                    let (lo, hi) = (slice * per, min(spans.count, slice * per + per))
                    guard lo < hi else { return }
                    for i in lo..<hi {
                        slots.value.initializeElement(at: i, to: AppendBatch.prepare(line: spans[i], in: text.value, using: preparers.value[slice]))
                    }
                }
                initialized = spans.count
            }
            if let failure { throw failure.value }
            previous = prepared
        }
        if let last = previous, let failure = acceptAll(last) { throw failure }
    }

    /// Form checks, normalisation and canonical bytes of one input line.
    static func prepare(line span: InputFile.Line, in chunk: UnsafeRawBufferPointer, using preparer: Preparer) -> PreparedEvent {
        func problem(_ m: String) -> PreparedEvent { .problem(m, line: span.number) }
        // (A line read whole, inside one chunk, is held to the same limit as one cut at a chunk's end.)
        if span.tooLong || span.length > LedgerReader.maxLineLength {
            return problem("line longer than \(LedgerReader.maxLineLength) bytes: no event is this long (each text is at most \(EventForm.maxTextLength) characters); put one event on each line")
        }
        let bytes = UnsafeRawBufferPointer(rebasing: chunk[span.start..<(span.start + span.length)])
        if span.number == 1, bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            return problem("starts with a UTF-8 byte order mark; save the file as UTF-8 without BOM")
        }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return .blank(line: span.number) }
        // The plain case in one pass (EventForm.plainInput); anything else,
        // and every invalid event, by the full path, which words the message.
        let store = preparer.store
        let offset = store.bytes.count
        if let event = EventForm.plainInput(bytes, appendingNormalizedTo: &store.bytes, scratch: &preparer.scratch,
                                            tape: preparer.tape, deriveID: EventIDs.derived(fromCanonical:)) {
            return prepared(event, line: span.number, store: store, from: offset)
        }
        do {
            // The tape reads the chunk in place: the event keeps none of its views.
            try preparer.tape.parse(bytes, copy: false)
        } catch {
            return problem("not JSON: \(error.message) at column \(error.offset + 1)")
        }
        return prepare(preparer.tape.root, line: span.number, using: preparer)
    }

    static func prepare(_ input: JSONView, line: Int?, using preparer: Preparer) -> PreparedEvent {
        do {
            let store = preparer.store
            let offset = store.bytes.count
            let event = try EventForm.validate(input, appendingNormalizedTo: &store.bytes, deriveID: EventIDs.derived(fromCanonical:))
            if event.type == .ledgerCreated {
                store.bytes.removeLast(from: offset)
                throw EventError(field: "type", "ledger.created is written by `milestones init` only")
            }
            return prepared(event, line: line, store: store, from: offset)
        } catch {
            return .problem("\(error)", line: line)
        }
    }

    /// A valid event whose normalised bytes were appended to `store` from `offset` on.
    static func prepared(_ event: Event, line: Int?, store: EventBytes, from offset: Int) -> PreparedEvent {
        PreparedEvent(line: line, event: event, record: PendingRecord(store: store, offset: offset, count: store.bytes.count - offset))
    }

    /// Brings what these events' checks will look up into the cache
    /// (``ReferenceIndex/warm(_:facts:)``).
    func warm(_ events: UnsafeBufferPointer<PreparedEvent>) {
        index.warm(events.count) { k in events[k].event?.facts }
    }

    /// The checks that depend on what came before, in order; then the record.
    func accept(_ p: UnsafePointer<PreparedEvent>) {
        let line = p.pointee.line
        if let problem = p.pointee.problem {
            reject("\(place(line)): \(problem)")
            return
        }
        guard let event = p.pointee.event, let record = p.pointee.record else { return }  // a blank line
        do {
            // Content digests are made only for an id that comes again: an
            // idempotent retry, or a clash (SHA-256 of every event's bytes was
            // a tenth of a million-event batch's CPU time).
            if try index.check(event.facts, content: { self.digest(record) }, earlier: { self.earlierDigest($0) }, names: { event }) == .sameContent {
                outcomes.append(RecordOutcome(line: line, id: event.id!, seq: nil, status: .alreadyRecorded))
                return
            }
            // Once the batch has a problem its records are not kept (nothing
            // will be written), so a later repeat would not find this one
            // among them: its digest goes into the index instead.
            try index.add(event, content: problems.isEmpty ? nil : digest(record))
        } catch {
            reject("\(place(line)): \(error)")
            return
        }
        // The published form (tlog-tiles entry bundles) prefixes each record
        // line with a 16-bit length: docs/ledger-format.md, "Lines".
        let length = RecordLine.length(event: record.count, seq: head.seq + 1)
        if length - 1 > RecordLine.maxLength {
            reject("\(place(line)): the record line would be \(length - 1) bytes; a record line is at most \(RecordLine.maxLength) bytes (its length is a 16-bit number where the ledger is published); shorten the event's texts or split its sources")
            return
        }
        guard problems.isEmpty else { return }  // nothing will be written: skip the record
        head.seq += 1
        pendingLength += length
        longestLine = max(longestLine, length)
        pending.append(record)
        outcomes.append(RecordOutcome(line: line, id: event.id!, seq: head.seq, status: .appended))
        if pendingByID != nil { pendingByID![event.facts.id!] = pending.count - 1 }
    }

    /// The content digest of a new record's event.
    func digest(_ record: PendingRecord) -> UInt64 {
        record.withEvent { RecordLine.contentDigest($0, hasher: &hasher) }
    }

    /// The content digest of an event this batch added before (by its id's
    /// fingerprint); the index keeps none for them. Their places by id are
    /// gathered the first time one is asked for.
    func earlierDigest(_ id: UInt64) -> UInt64? {
        if pendingByID == nil {
            var byID: [UInt64: Int] = [:]
            for o in outcomes where o.status == .appended { byID[ReferenceIndex.fingerprint(o.id)] = o.seq! - startSeq - 1 }
            pendingByID = byID
        }
        return pendingByID![id].map { digest(pending[$0]) }
    }

    /// Appends the batch durably, or throws ``InputError`` (nothing written)
    /// if any event was rejected.
    public func commit() throws -> [RecordOutcome] {
        if !problems.isEmpty {
            var all = problems
            if moreProblems > 0 { all.append("… and \(moreProblems) more problems") }
            throw InputError(problems: all)
        }
        // The lines, made in order (each hash chains onto the one before) as
        // the file takes them.
        var (next, seq, last) = (0, head.seq - pending.count + 1, head.sha256)
        var hasher = SHA256()
        try recordedAtText.withUnsafeBytes { time in
            try file.append(at: startLength, total: pendingLength, longestLine: longestLine) { room in
                var used = 0
                while next < pending.count {
                    let n = RecordLine.length(event: pending[next].count, seq: seq)
                    guard used + n <= room.count else { break }
                    last = pending[next].withEvent {
                        RecordLine.write(event: $0, seq: seq, prev: last, recordedAt: time, into: room.baseAddress! + used,
                                         hasher: &hasher)
                    }
                    (used, next, seq) = (used + n, next + 1, seq + 1)
                }
                return used
            }
        }
        head.sha256 = last
        pending = []
        return outcomes
    }
}

/// A JSON Lines input (a file, or stdin for `-`), read in chunks of whole
/// lines with bounded memory: a line longer than the limit is reported, not
/// buffered.
public struct InputFile {
    public let fd: Int32
    public let name: String

    /// The size of a regular file (nil for a pipe).
    var size: Int? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(st.st_size)
    }

    public struct Line: Sendable {
        var start: Int
        var length: Int
        var number: Int
        var tooLong: Bool
    }

    public static func open(_ path: String) throws -> InputFile {
        if path == "-" { return InputFile(fd: 0, name: "<stdin>") }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw LedgerError.missing(path: path) }
            throw LedgerError.io(path: path, operation: "open", errno: e)
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw LedgerError.io(path: path, operation: "open (it is a folder, not a JSON Lines file)", errno: EISDIR)
        }
        return InputFile(fd: fd, name: path)
    }

    func forEachChunk(_ body: (UnsafeRawBufferPointer, [Line]) throws -> Void) throws {
        let limit = LedgerReader.maxLineLength
        // Two buffers: the next chunk is read (on another thread) while
        // `body` works on this one; read between chunks, it left both cores idle.
        var buf = ChunkBuffer(count: 4 << 20), next = ChunkBuffer(count: 4 << 20)
        var lineNo = 1
        var skipping = false
        var lines: [Line] = []
        var (filled, failure) = InputFile.read(fd, into: buf, from: 0)
        while true {
            if let failure { throw LedgerError.io(path: name, operation: "read", errno: failure) }
            let atEnd = filled < buf.count  // a read stops short only at the end
            var start = 0
            lines.removeAll(keepingCapacity: true)
            let base = buf.base.assumingMemoryBound(to: UInt8.self)
            while start < filled, let hit = memchr(base + start, 0x0A, filled - start) {
                let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if skipping {
                    skipping = false
                } else {
                    lines.append(Line(start: start, length: i - start, number: lineNo, tooLong: false))
                }
                lineNo += 1
                start = i + 1
            }
            let rest = filled - start
            if atEnd, rest > 0, !skipping {
                lines.append(Line(start: start, length: rest, number: lineNo, tooLong: false))
            }
            if !atEnd, !skipping, rest > limit {
                lines.append(Line(start: 0, length: 0, number: lineNo, tooLong: true))
                skipping = true
            }
            // The next chunk: the rest of this one's last line (unless it is
            // skipped), then what the file gives, read while `body` runs.
            if !atEnd {
                let carried = skipping ? 0 : rest
                if carried > 0 { next.base.copyMemory(from: buf.base + start, byteCount: carried) }
                let (into, fd) = (UncheckedSendable(next), self.fd)
                let result = UncheckedSendable(ReadResult())
                try alongside({ result.value.value = InputFile.read(fd, into: into.value, from: carried) }) {
                    if !lines.isEmpty { try body(UnsafeRawBufferPointer(start: buf.base, count: filled), lines) }
                }
                let n: Int
                (n, failure) = result.value.value
                filled = carried + n
                swap(&buf, &next)
                continue
            }
            if !lines.isEmpty { try body(UnsafeRawBufferPointer(start: buf.base, count: filled), lines) }
            return
        }
    }

    /// A chunk's memory.
    final class ChunkBuffer {
        let base: UnsafeMutableRawPointer
        let count: Int
        init(count: Int) {
            base = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
            self.count = count
        }
        deinit { base.deallocate() }
    }

    final class ReadResult: @unchecked Sendable {
        var value: (Int, Int32?) = (0, nil)
    }

    /// Fills `buffer` from byte `from` as far as the file goes (a pipe gives
    /// little at a time); returns the bytes read, and the errno of a failure.
    static func read(_ fd: Int32, into buffer: ChunkBuffer, from: Int) -> (Int, Int32?) {
        var filled = from
        while filled < buffer.count {
            let n = Glibc.read(fd, buffer.base + filled, buffer.count - filled)
            if n < 0 {
                if errno == EINTR { continue }
                return (filled - from, errno)
            }
            if n == 0 { break }
            filled += n
        }
        return (filled - from, nil)
    }
}

/// `repair --torn-tail`.
public enum LedgerRepair {
    public struct Result: Sendable {
        /// Bytes removed (0 when there was no torn tail).
        public var removedBytes: Int
        public var records: Int
        /// Whether the last record lacked only its LF, which was written back.
        public var restoredNewline = false
    }

    /// Mends a torn tail and nothing else; refuses any other damage. A last
    /// line that lacks only its LF and is otherwise a complete record that
    /// follows the chain (hash, seq, prev, time) gets its LF back; anything
    /// else after the last LF is removed (docs/ledger-format.md, "Crash safety").
    public static func tornTail(ledger path: String, wait: Double) throws -> Result {
        let file = try LedgerFile.open(path, writable: true)
        try file.lock(exclusive: true, wait: wait)
        defer { file.unlock() }
        let size = try file.size()
        do {
            let state = try LedgerReader.verify(file, upTo: size)
            return Result(removedBytes: 0, records: state.records)
        } catch LedgerError.notIntact(let failure, _) where failure.isTornTail {
            // The torn tail is the last line; everything before it must verify
            // (nothing, when the torn line is record 1).
            let head = failure.offset == 0 ? nil : try LedgerReader.verify(file, upTo: failure.offset).head
            let tail = try file.read(at: failure.offset, count: size - failure.offset)
            if wholeRecord(tail, after: head) {
                // It hashes and chains: with its LF back it must pass every check of verify
                // (canonical form, event, references); if not, it goes like any torn tail.
                try file.append([UInt8(ascii: "\n")], at: size)
                if let whole = try? LedgerReader.verify(file, upTo: size + 1) {
                    return Result(removedBytes: 0, records: whole.records, restoredNewline: true)
                }
            }
            try file.truncate(to: failure.offset)
            return Result(removedBytes: size - failure.offset, records: head?.seq ?? 0)
        }
    }
}

extension LedgerRepair {
    /// Whether `line` (without LF) is a record whose hash holds and that
    /// follows `head`: the next seq, `prev` its hash, not recorded earlier.
    static func wholeRecord(_ line: [UInt8], after head: ChainHead?) -> Bool {
        guard !line.isEmpty, !line.contains(UInt8(ascii: "\n")) else { return false }
        return line.withUnsafeBytes { b in
            var hasher = SHA256()
            guard let h = RecordLine.hashes(of: b, hasher: &hasher), h.claimed == h.computed, let t = RecordLine.tail(of: b) else { return false }
            guard let head else { return t.seq == 1 && t.prev == .zero }
            return t.seq == head.seq + 1 && t.prev == head.sha256 && t.recordedAt >= head.recordedAt
        }
    }
}

/// Room for a chunk's inspected lines, kept from chunk to chunk.
final class LineBuffer {
    @exclusivity(unchecked) private var buffer = UnsafeMutableBufferPointer<InspectedLine>.allocate(capacity: 0)

    /// `count` slots (their old contents are overwritten before they are read).
    func lines(_ count: Int) -> UnsafeMutableBufferPointer<InspectedLine> {
        if buffer.count < count {
            buffer.deallocate()
            buffer = .allocate(capacity: count + count / 4)
        }
        return UnsafeMutableBufferPointer(rebasing: buffer[..<count])
    }

    deinit { buffer.deallocate() }
}

/// A value handed to parallel workers that write disjoint parts of it.
struct UncheckedSendable<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

func activeProcessorCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// One step of a two-stage pipeline: the `slices` tasks of `prepare` for
/// this chunk and, as one more task, `acceptPrevious` (the in-order stage for
/// the chunk before) share the cores; returns what the in-order stage returned.
func pipelineStep<R: Sendable>(slices: Int, acceptPrevious: (@Sendable () -> R?)?, prepare: @Sendable (Int) -> Void) -> R? {
    var result: R?
    withUnsafeMutablePointer(to: &result) { slot in
        let out = UncheckedSendable(slot)
        guard let accept = acceptPrevious else { return concurrentPerform(slices, prepare) }
        concurrentPerform(slices + 1) { t in
            if t == 0 { out.value.pointee = accept() } else { prepare(t - 1) }
        }
    }
    return result
}

func concurrentPerform(_ n: Int, _ body: @Sendable (Int) -> Void) {
    if n == 1 {
        body(0)
    } else {
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
    }
}
