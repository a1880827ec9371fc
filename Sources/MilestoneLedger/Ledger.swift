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

    /// Checks every record of the ledger (the six checks of ledger-format.md),
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
        // Lines are inspected on every core (hash, canonical form, event form),
        // then accepted in order on this thread (chain, ids, references).
        let workers = size > 1 << 20 ? max(1, min(8, activeProcessorCount())) : 1
        let inspectors = UncheckedSendable((0..<workers).map { _ in verifier.makeInspector() })
        var results: [InspectedLine?] = []
        do {
            try file.forEachChunk(upTo: size, { chunk, spans in
                results = [InspectedLine?](repeating: nil, count: spans.count)
                let lineBase = verifier.linesSeen
                results.withUnsafeMutableBufferPointer { out in
                    let slots = UncheckedSendable(out)
                    let input = UncheckedSendable(chunk)
                    let perWorker = (spans.count + workers - 1) / workers
                    concurrentPerform(workers) { w in
                        let lo = w * perWorker
                        let hi = min(spans.count, lo + perWorker)
                        guard lo < hi else { return }
                        for i in lo..<hi where spans[i].kind == .complete {
                            let s = spans[i]
                            slots.value[i] = inspectors.value[w].inspect(
                                line: UnsafeRawBufferPointer(rebasing: input.value[s.start..<(s.start + s.length)]),
                                offset: s.offset, isFinal: s.isFinal, lineNumber: lineBase + i + 1)
                        }
                    }
                }
                for (i, s) in spans.enumerated() {
                    switch s.kind {
                    case .complete: try verifier.accept(results[i]!)
                    case .tooLong: throw verifier.lineTooLong(offset: s.offset)
                    case .unterminated: throw verifier.unterminated(offset: s.offset, length: s.length)
                    }
                }
            }, progress: progress.map { p in { p($0, size) } })
            return try verifier.finish()
        } catch let f as VerifyFailure {
            throw LedgerError.notIntact(f, path: file.path)
        }
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
        let digest = RecordLine.append(event: JSONWriter.bytes(.object(o)), seq: 1, prev: .zero, recordedAt: now,
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
        return "ev-" + String(SHA256.hash(JSONWriter.bytes(.object(o))).hex.prefix(20))
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
    /// Where the event came from, e.g. `events.jsonl:12`.
    public var place: String
    public var id: String
    public var seq: Int?
    public var status: Status
}

/// One `record` run: takes the ledger's lock, checks each event as it is
/// added (form, then references against the ledger and the events before it
/// in the batch), and writes nothing until ``commit()``, which appends every
/// new record in one durable write — or nothing at all if any event failed.
///
///     var batch = try AppendBatch(ledger: "milestones.jsonl", wait: 10)
///     batch.add(try JSONReader.parse(line), place: "events.jsonl:1")
///     let outcomes = try batch.commit()
public final class AppendBatch {
    /// At most this many problems are listed for one rejected batch.
    public static let maxProblems = 50

    let file: LedgerFile
    let startLength: Int
    var index: ReferenceIndex
    public private(set) var head: ChainHead
    let recordedAt: Timestamp
    var bytes: [UInt8] = []
    var hasher = SHA256()
    let tape = JSONTape()
    public private(set) var outcomes: [RecordOutcome] = []
    public private(set) var problems: [String] = []
    /// Problems beyond ``maxProblems``, counted but not listed.
    public private(set) var moreProblems = 0

    /// Opens and locks the ledger (waiting up to `wait` seconds) and verifies it:
    /// a torn tail or any other damage blocks appends.
    public init(ledger path: String, wait: Double, now: Timestamp = LedgerClock.now()) throws {
        file = try LedgerFile.open(path, writable: true)
        try file.lock(exclusive: true, wait: wait)
        startLength = try file.size()
        let state = try LedgerReader.verify(file, upTo: startLength, rememberContent: true)
        index = state.index
        head = state.head
        recordedAt = max(now, state.head.recordedAt)
    }

    deinit { file.unlock() }

    /// Notes a problem found before an event could be added (e.g. bad JSON).
    public func reject(_ problem: String) {
        if problems.count < AppendBatch.maxProblems { problems.append(problem) } else { moreProblems += 1 }
    }

    /// Parses, validates and (if it is new) adds one input line (JSON text) to the batch.
    public func add(line: UnsafeRawBufferPointer, place: String) {
        do {
            try tape.parse(line)
        } catch {
            reject("\(place): not JSON: \(error.message) at column \(error.offset + 1)")
            return
        }
        add(tape.root, place: place)
    }

    /// Validates one input event and, if it is new, adds its record to the batch.
    public func add(_ value: JSONValue, place: String) {
        do {
            try tape.parse(JSONWriter.bytes(value))
        } catch {
            reject("\(place): \(error)")
            return
        }
        add(tape.root, place: place)
    }

    func add(_ input: JSONView, place: String) {
        do {
            var event = try EventForm.validate(input)
            if event.type == .ledgerCreated {
                throw EventError(field: "type", "ledger.created is written by `milestones init` only")
            }
            var object = EventForm.normalized(input.value.objectValue!)
            if event.id == nil {
                let id = EventIDs.derived(for: object)
                event.id = id
                object["id"] = .string(id)
            }
            let eventBytes = JSONWriter.bytes(.object(object))
            let content = eventBytes.withUnsafeBytes { RecordLine.contentDigest($0, seed: index.seed) }
            if try index.check(event, content: content) == .sameContent {
                outcomes.append(RecordOutcome(place: place, id: event.id!, seq: nil, status: .alreadyRecorded))
                return
            }
            index.add(event, content: content)
            head.seq += 1
            head.sha256 = RecordLine.append(event: eventBytes, seq: head.seq, prev: head.sha256,
                                            recordedAt: recordedAt, to: &bytes, hasher: &hasher)
            outcomes.append(RecordOutcome(place: place, id: event.id!, seq: head.seq, status: .appended))
        } catch {
            reject("\(place): \(error)")
        }
    }

    /// Appends the batch durably, or throws ``InputError`` (nothing written)
    /// if any event was rejected.
    public func commit() throws -> [RecordOutcome] {
        if !problems.isEmpty {
            var all = problems
            if moreProblems > 0 { all.append("… and \(moreProblems) more problems") }
            throw InputError(problems: all)
        }
        if !bytes.isEmpty { try file.append(bytes, at: startLength) }
        return outcomes
    }
}

/// `repair --torn-tail`.
public enum LedgerRepair {
    public struct Result: Sendable {
        /// Bytes removed (0 when there was no torn tail).
        public var removedBytes: Int
        public var records: Int
    }

    /// Removes a torn tail and nothing else; refuses any other damage.
    public static func tornTail(ledger path: String, wait: Double) throws -> Result {
        let file = try LedgerFile.open(path, writable: true)
        try file.lock(exclusive: true, wait: wait)
        defer { file.unlock() }
        let size = try file.size()
        do {
            let state = try LedgerReader.verify(file, upTo: size)
            return Result(removedBytes: 0, records: state.records)
        } catch LedgerError.notIntact(let failure, _) where failure.isTornTail {
            // The torn tail is the last line; everything before it must verify.
            let state = try LedgerReader.verify(file, upTo: failure.offset)
            try file.truncate(to: failure.offset)
            return Result(removedBytes: size - failure.offset, records: state.records)
        }
    }
}

/// A value handed to parallel workers that write disjoint parts of it.
struct UncheckedSendable<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

func activeProcessorCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

func concurrentPerform(_ n: Int, _ body: @Sendable (Int) -> Void) {
    if n == 1 {
        body(0)
    } else {
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
    }
}
