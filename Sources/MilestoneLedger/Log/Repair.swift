#if canImport(Glibc)
import Glibc
import MilestoneCrypto
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import Dispatch
import MilestoneModel

/// `repair --torn-tail`.
public enum LedgerRepair {
    public struct Result: Sendable {
        /// Bytes removed (0 when there was no torn tail).
        package var removedBytes: Int
        package var records: Int
        /// Whether the last record lacked only its LF, which was written back.
        package var restoredNewline = false
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
