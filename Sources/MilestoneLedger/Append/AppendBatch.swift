#if canImport(Glibc)
import Glibc
import MilestoneCrypto
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import Dispatch
import MilestoneModel
import MilestoneSupport

/// Input rejected (exit 65): one line a problem, each naming its place.
package struct InputError: Error, Sendable, CustomStringConvertible {
    package var problems: [String]
    package init(problems: [String]) { self.problems = problems }
    package var description: String { problems.joined(separator: "\n") }
}

/// What `record` did with one input event.
package struct RecordOutcome: Sendable, Equatable {
    package enum Status: String, Sendable { case appended, alreadyRecorded = "already_recorded" }
    /// The input line (nil for an event given by options).
    package var line: Int?
    package var id: String
    package var seq: Int?
    package var status: Status
}

/// An input event prepared on its own (in parallel with others): validated,
/// normalised, its canonical bytes written, its id given.
///
/// Plain fields, read in place by the in-order stage: as a `Result`, each
/// event was copied twice there through generic value witnesses, with its
/// references counted.
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
/// after another: kept until the chunk's events are accepted, and the new
/// ones spooled (a buffer for each event cost a second of a million-event
/// batch in `malloc` and page faults).
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
/// Two passes, so that memory grows only by the ids, not by the events: the
/// checking pass keeps the new events' canonical bytes in a ``Spool`` (a
/// temporary file once they pass a few MiB), and the ids in the index;
/// ``commit()`` reads them back in order as it makes the lines.
///
///     let batch = try AppendBatch(ledger: "milestones.jsonl", wait: 10)
///     try batch.add(from: try InputFile.open("events.jsonl"))
///     let outcomes = try batch.commit()
/// Its stored properties are `@exclusivity(unchecked)`: one owner uses them at a time, by construction, and the dynamic checks cost per record (bench/README.md).
package final class AppendBatch {
    /// At most this many problems are listed for one rejected batch.
    package static let maxProblems = 50

    let file: LedgerFile
    let startLength: Int
    @exclusivity(unchecked) var index: ReferenceIndex
    /// The ledger's head: its `seq` counts the records added so far; its
    /// hash is the new last record's once ``commit()`` has written them.
    @exclusivity(unchecked) package private(set) var head: ChainHead
    let recordedAtText: [UInt8]
    /// The new records' events, whose lines are made as ``commit()`` writes
    /// them (their hashes chain, and nothing is written until every event passed).
    let spool: Spool
    /// Each new record's id fingerprint and its event's place in the spool
    /// (offset << 16 | length; an event is under 64 KiB), for the content
    /// digest of an id that comes again in the batch: 16 bytes a record.
    @exclusivity(unchecked) var spooled: [(id: UInt64, place: UInt64)] = []
    /// The length of their lines, and the longest.
    @exclusivity(unchecked) var pendingLength = 0
    @exclusivity(unchecked) var longestLine = 0
    /// The ledger's record count before this batch.
    let startSeq: Int
    /// Where in `spooled` each new record's id is, once an id came again.
    @exclusivity(unchecked) var pendingByID: [UInt64: Int]?
    @exclusivity(unchecked) var hasher = SHA256()
    /// What was done with each input event, in order: the first
    /// ``outcomeLimit`` of them (the rest are counted).
    @exclusivity(unchecked) package private(set) var outcomes: [RecordOutcome] = []
    /// How many outcomes ``outcomes`` keeps (all by default): a caller that
    /// shows only a few keeps a large batch's memory from growing with it.
    package var outcomeLimit = Int.max
    /// The events appended and those already recorded (all of them, kept in ``outcomes`` or not).
    package private(set) var appendedCount = 0
    package private(set) var alreadyRecordedCount = 0
    package private(set) var problems: [String] = []
    /// Problems beyond ``maxProblems``, counted but not listed.
    package private(set) var moreProblems = 0
    /// Where the events come from, for messages: a file name or `record`.
    package private(set) var source = "record"

    /// Where a batch learns the ledger's head and what is recorded: from the
    /// locked ledger and its length. The default verifies the whole ledger
    /// (a torn tail or any other damage blocks appends); read models can
    /// answer instead, without rescanning the log.
    package typealias StateSource = (_ ledger: LedgerFile, _ length: Int) throws -> (head: ChainHead, known: any ReferenceState)

    package static func verifiedState(_ file: LedgerFile, _ length: Int) throws -> (head: ChainHead, known: any ReferenceState) {
        let state = try LedgerReader.verify(file, upTo: length, rememberContent: true)
        return (state.head, state.index)
    }

    /// Opens and locks the ledger (waiting up to `wait` seconds), then learns
    /// its head and contents from `state`.
    package init(ledger path: String, wait: Double, now: Timestamp = LedgerClock.now(),
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
        spool = Spool(directory: LedgerFile.directory(of: path))
        recordedAtText = Array(max(now, known.head.recordedAt).description.utf8)
    }

    /// Told the input's bytes read so far and its size, chunk by chunk (a
    /// terminal's progress line; not called for input of unknown size).
    package var progress: ((Int, Int) -> Void)?

    /// The ledger being appended to (locked until the batch is released).
    package var ledgerFile: LedgerFile { file }

    /// The ledger's length before this batch.
    package var ledgerLength: Int { startLength }

    deinit { file.unlock() }

    func place(_ line: Int?) -> String { line.map { "\(source):\($0)" } ?? source }

    /// Notes a problem found before an event could be added.
    func reject(_ problem: String) {
        if problems.count < AppendBatch.maxProblems { problems.append(problem) } else { moreProblems += 1 }
    }

    /// Validates one event built in memory (e.g. from options) and adds it.
    package func add(_ value: JSONValue) {
        add(value, line: nil)
    }

    /// Validates one event built in memory from line `line` of the input
    /// named `source` (a CSV file's row, say) and adds it: problems name that line.
    package func add(_ value: JSONValue, line: Int?, source name: String? = nil) {
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
    package func reject(line: Int?, source name: String? = nil, _ problem: String) {
        if let name { source = name }
        reject("\(place(line)): \(problem)")
    }

    /// Reads every line of `input` (in chunks: memory holds the index of ids
    /// and a few chunks, neither the input nor the new records), prepares
    /// the events on every core, and adds them in order.
    package func add(from input: InputFile) throws {
        source = input.name
        if let size = input.size {
            if outcomeLimit == .max { outcomes.reserveCapacity(outcomes.count + size / 256) }
            spooled.reserveCapacity(spooled.count + size / 256)
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
        if let failure = spool.failure { throw LedgerError.io(path: spool.name, operation: failure.operation, errno: failure.errno) }
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
                alreadyRecordedCount += 1
                if outcomes.count < outcomeLimit { outcomes.append(RecordOutcome(line: line, id: event.id!, seq: nil, status: .alreadyRecorded)) }
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
        let at = record.withEvent { spool.append($0) }
        spooled.append((event.facts.id!, UInt64(at) << 16 | UInt64(record.count)))
        appendedCount += 1
        if outcomes.count < outcomeLimit { outcomes.append(RecordOutcome(line: line, id: event.id!, seq: head.seq, status: .appended)) }
        if pendingByID != nil { pendingByID![event.facts.id!] = spooled.count - 1 }
    }

    /// The content digest of a new record's event.
    func digest(_ record: PendingRecord) -> UInt64 {
        record.withEvent { RecordLine.contentDigest($0, hasher: &hasher) }
    }

    /// The content digest of an event this batch added before (by its id's
    /// fingerprint), read back from the spool; the index keeps none for
    /// them. Their places by id are gathered the first time one is asked for.
    func earlierDigest(_ id: UInt64) -> UInt64? {
        if pendingByID == nil {
            var byID: [UInt64: Int] = [:]
            for (k, s) in spooled.enumerated() { byID[s.id] = k }
            pendingByID = byID
        }
        guard let k = pendingByID![id] else { return nil }
        let (offset, count) = (Int(spooled[k].place >> 16), Int(spooled[k].place & 0xFFFF))
        return withUnsafeTemporaryAllocation(byteCount: max(count, 1), alignment: 8) { buf in
            // A spool that cannot be read back fails the batch (commit reports it); 0 matches no digest.
            guard spool.read(at: offset, count: count, into: buf.baseAddress!) else { return 0 }
            return RecordLine.contentDigest(UnsafeRawBufferPointer(rebasing: buf[..<count]), hasher: &hasher)
        }
    }

    /// Appends the batch durably, or throws ``InputError`` (nothing written)
    /// if any event was rejected.
    package func commit() throws -> [RecordOutcome] {
        func spoolFailed() -> LedgerError? {
            spool.failure.map { LedgerError.io(path: spool.name, operation: $0.operation, errno: $0.errno) }
        }
        // (First: a spool that failed may have left problems of its own.)
        if let failed = spoolFailed() { throw failed }
        if !problems.isEmpty {
            var all = problems
            if moreProblems > 0 { all.append("… and \(moreProblems) more problems") }
            throw InputError(problems: all)
        }
        spooled = []
        pendingByID = nil
        // The lines, made in order (each hash chains onto the one before) as
        // the file takes them, from the events read back from the spool.
        let end = head.seq
        var (seq, last) = (startSeq + 1, head.sha256)
        var hasher = SHA256()
        let reader = Spool.Reader(spool)
        do {
            try recordedAtText.withUnsafeBytes { time in
                try file.append(at: startLength, total: pendingLength, longestLine: longestLine) { room in
                    var used = 0
                    while seq <= end, let events = reader.available(), events.count > 0 {
                        var at = 0
                        defer { reader.consume(at) }
                        while seq <= end, at < events.count {
                            let base = events.baseAddress! + at
                            let count = base.distance(to: UnsafeRawPointer(memchr(base, 0x0A, events.count - at)!))
                            let n = RecordLine.length(event: count, seq: seq)
                            guard used + n <= room.count else { return used }
                            last = RecordLine.write(event: UnsafeRawBufferPointer(start: base, count: count), seq: seq, prev: last,
                                                    recordedAt: time, into: room.baseAddress! + used, hasher: &hasher)
                            (used, at, seq) = (used + n, at + count + 1, seq + 1)
                        }
                    }
                    return used
                }
            }
        } catch {
            // (The append cut the ledger back.) A spool that could not be read back says so.
            throw spoolFailed() ?? error
        }
        head.sha256 = last
        return outcomes
    }
}
