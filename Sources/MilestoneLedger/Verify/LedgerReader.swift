#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import Dispatch
import MilestoneModel
import MilestoneSupport

public enum LedgerReader {
    /// The longest record or input line accepted: far above any valid event
    /// (text fields are limited to 2,000 characters), and a bound on memory.
    public static let maxLineLength = 1 << 20

    /// Checks every record of the ledger (the six checks of docs/ledger-format.md),
    /// streaming; throws ``LedgerError/notIntact(_:path:)`` with the first failure.
    /// `onThisThread`: all of the work on the calling thread (else on every core).
    public static func verify(_ file: LedgerFile, upTo length: Int? = nil, rememberContent: Bool = false, onThisThread: Bool = false,
                              progress: ((Int, Int) -> Void)? = nil) throws -> VerifiedLedger {
        let size: Int
        if let length {
            size = length
        } else {
            size = try file.settledSize()
        }
        var verifier = RecordVerifier(rememberContent: rememberContent)
        // Lines are inspected on every core (hash, canonical form, event form)
        // and accepted in order (chain, ids, references) on one, pipelined:
        // while one chunk's lines are accepted, the next chunk's are inspected.
        let workers = size > 1 << 20 && !onThisThread ? max(1, min(8, activeProcessorCount())) : 1
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
                // Two chunks in flight (one inspected, one accepted) keep memory small.
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
                        return pipelineStep(slices: slices, serial: onThisThread, acceptPrevious: acceptWaiting) { slice in
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
