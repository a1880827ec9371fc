#if canImport(Glibc)
import Glibc
#endif

/// The Merkle tree state kept beside the ledger (`X.jsonl` → `X.tree`), so
/// checkpoints and proofs never rehash the whole ledger.
///
/// Layout: a 64-byte header — magic `MLTREE1\0`, the number of leaves, the
/// ledger's byte length after the last leaf's line, the sha256 of that last
/// record — then every perfect subtree hash (32 bytes) in post-order: a
/// leaf (followed by its record's byte offset in the ledger, 8 bytes, so a
/// record can be found by seq), then the parents it completes. Appending
/// leaves only appends to the file. The tree is a cache: deleting it loses nothing, and it is checked
/// against the ledger (the last leaf's record must still be there, with the
/// same hash) before every use.
public final class MerkleTreeFile: SubtreeHashes {
    public let path: String
    let fd: Int32
    public private(set) var leaves = 0
    /// The ledger's byte length covered by the leaves.
    public private(set) var ledgerLength = 0
    /// The sha256 of the last record covered.
    public private(set) var lastRecord = Digest.zero
    /// The right edge of the tree (perfect subtrees not yet combined), by level, highest first.
    private var edge: [(level: Int, hash: Digest)] = []

    static let headerSize = 64
    static let magic: [UInt8] = Array("MLTREE1\0".utf8)

    /// Where the tree of `ledger` lives.
    public static func path(forLedger ledger: String) -> String {
        (ledger.hasSuffix(".jsonl") ? String(ledger.dropLast(6)) : ledger) + ".tree"
    }

    init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Post-order position of the perfect subtree at `level`, `index`.
    static func position(level: Int, index: Int) -> Int {
        let last = (index + 1) << level - 1  // its last leaf
        return 2 * last - last.nonzeroBitCount + level
    }

    /// Where the subtree's entry is in the file: 32 bytes a node, plus 8 for
    /// each leaf's record offset before it.
    static func fileOffset(level: Int, index: Int) -> Int {
        let leavesBefore = level == 0 ? index : (index + 1) << level
        return headerSize + position(level: level, index: index) * 32 + leavesBefore * 8
    }

    /// Bytes of the file for `n` leaves.
    static func fileSize(leaves n: Int) -> Int { headerSize + (2 * n - n.nonzeroBitCount) * 32 + n * 8 }

    /// Where record `seq` (1-based) is in the ledger: its offset and length (without LF).
    public func recordRange(seq: Int) throws -> Range<Int> {
        guard seq >= 1, seq <= leaves else {
            throw LedgerError.io(path: path, operation: "read (no record \(seq))", errno: EINVAL)
        }
        let start = try leafOffset(seq - 1)
        let end = seq == leaves ? ledgerLength : try leafOffset(seq)
        return start..<(end - 1)
    }

    func leafOffset(_ index: Int) throws -> Int {
        var v: UInt64 = 0
        let at = MerkleTreeFile.fileOffset(level: 0, index: index) + 32
        let n = withUnsafeMutableBytes(of: &v) { pread(fd, $0.baseAddress!, 8, off_t(at)) }
        guard n == 8 else { throw LedgerError.io(path: path, operation: "read", errno: n < 0 ? errno : EIO) }
        return Int(UInt64(littleEndian: v))
    }

    public func perfect(level: Int, index: Int) throws -> Digest {
        guard (index + 1) << level <= leaves else {
            throw LedgerError.io(path: path, operation: "read (no such subtree)", errno: EINVAL)
        }
        var raw = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let offset = MerkleTreeFile.fileOffset(level: level, index: index)
        let n = withUnsafeMutableBytes(of: &raw) { pread(fd, $0.baseAddress!, 32, off_t(offset)) }
        guard n == 32 else { throw LedgerError.io(path: path, operation: "read", errno: n < 0 ? errno : EIO) }
        return withUnsafeBytes(of: &raw) { Digest(raw: $0) }
    }

    /// The root of the first `size` leaves.
    public func root(size: Int? = nil) throws -> Digest { try Merkle.root(size: size ?? leaves, self) }

    // MARK: Opening and catching up

    /// Opens (or creates) the tree of `ledger`, checks it still matches the
    /// ledger, and appends the leaves of records added since.
    ///
    /// A tree whose last leaf's record is gone or changed means the ledger was
    /// rewritten: that is reported (exit 1), never papered over; `rebuild`
    /// starts the tree anew on request.
    public static func open(ledger: LedgerFile, upTo size: Int, rebuild: Bool = false) throws -> MerkleTreeFile {
        let path = MerkleTreeFile.path(forLedger: ledger.path)
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LedgerError.io(path: path, operation: "open", errno: errno) }
        let tree = MerkleTreeFile(path: path, fd: fd)
        guard flock(fd, LOCK_EX) == 0 else { throw LedgerError.io(path: path, operation: "flock", errno: errno) }
        defer { flock(fd, LOCK_UN) }
        if rebuild {
            guard ftruncate(fd, 0) == 0 else { throw LedgerError.io(path: path, operation: "truncate", errno: errno) }
        }
        try tree.readHeader()
        if tree.leaves > 0 { try tree.checkAgainst(ledger) }
        if tree.ledgerLength < size { try tree.catchUp(ledger, upTo: size) }
        return tree
    }

    func readHeader() throws {
        var h = [UInt8](repeating: 0, count: MerkleTreeFile.headerSize)
        let n = h.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, MerkleTreeFile.headerSize, 0) }
        guard n == MerkleTreeFile.headerSize, Array(h[0..<8]) == MerkleTreeFile.magic else {
            leaves = 0
            ledgerLength = 0
            lastRecord = .zero
            edge = []
            return
        }
        h.withUnsafeBytes { b in
            leaves = Int(UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            ledgerLength = Int(UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
            lastRecord = Digest(raw: UnsafeRawBufferPointer(rebasing: b[24..<56]))
        }
        // The file must hold every node of that many leaves.
        var st = stat()
        guard fstat(fd, &st) == 0, Int(st.st_size) >= MerkleTreeFile.fileSize(leaves: leaves) else {
            leaves = 0
            ledgerLength = 0
            lastRecord = .zero
            return
        }
        // The right edge: one perfect subtree per set bit of `leaves`.
        edge = []
        var start = 0
        for level in stride(from: 62, through: 0, by: -1) where leaves & (1 << level) != 0 {
            edge.append((level, try perfect(level: level, index: start >> level)))
            start += 1 << level
        }
    }

    func checkAgainst(_ ledger: LedgerFile) throws {
        // The line that ends at ledgerLength must be the record we stopped at.
        let ok: Bool = try ledger.line(endingAt: ledgerLength)?.withUnsafeBytes { line in
            var hasher = SHA256()
            guard let hashes = RecordLine.hashes(of: line, hasher: &hasher), hashes.claimed == hashes.computed,
                  hashes.claimed == lastRecord, let leaf = try? perfect(level: 0, index: leaves - 1)
            else { return false }
            return Merkle.leafHash(line, hasher: &hasher) == leaf
        } ?? false
        guard ok else {
            throw LedgerError.stale(
                path: path,
                reason: "the ledger no longer holds record \(leaves) as this tree saw it (sha256 \(lastRecord.hex)): it was rewritten or truncated. Run `milestones verify`; rebuild the tree with --rebuild only if the ledger is the one you trust")
        }
    }

    /// Appends the leaves of the records between `ledgerLength` and `size`,
    /// checking each line's own hash and its link to the previous record.
    func catchUp(_ ledger: LedgerFile, upTo size: Int) throws {
        var hashes: [(leaf: Digest, offset: Int)] = []
        var last = lastRecord
        var seq = leaves
        var failure: LedgerError?
        let workers = size - ledgerLength > 1 << 20 ? max(1, min(8, activeProcessorCount())) : 1
        let base = ledgerLength
        var lengthCovered = ledgerLength
        try ledger.forEachChunk(from: base, upTo: size) { chunk, spans in
            guard failure == nil else { return }
            var results = [(leaf: Digest, tail: RecordLine.Tail)?](repeating: nil, count: spans.count)
            results.withUnsafeMutableBufferPointer { out in
                let slots = UncheckedSendable(out)
                let text = UncheckedSendable(chunk)
                let per = (spans.count + workers - 1) / workers
                concurrentPerform(workers) { w in
                    var hasher = SHA256()
                    for i in (w * per)..<min(spans.count, w * per + per) where spans[i].kind == .complete {
                        let line = UnsafeRawBufferPointer(rebasing: text.value[spans[i].start..<(spans[i].start + spans[i].length)])
                        guard let h = RecordLine.hashes(of: line, hasher: &hasher), h.claimed == h.computed,
                              let tail = RecordLine.tail(of: line), tail.sha256 == h.claimed
                        else { continue }
                        slots.value[i] = (Merkle.leafHash(line, hasher: &hasher), tail)
                    }
                }
            }
            for (i, s) in spans.enumerated() {
                guard let r = results[i], r.tail.prev == last, r.tail.seq == seq + 1 else {
                    failure = LedgerError.stale(
                        path: ledger.path,
                        reason: "record at byte \(s.offset) does not verify (run `milestones verify` for the details)")
                    return
                }
                hashes.append((r.leaf, s.offset))
                last = r.tail.sha256
                seq += 1
                lengthCovered = s.offset + s.length + 1
            }
        }
        if let failure { throw failure }
        try append(hashes, ledgerLength: lengthCovered, lastRecord: last)
    }

    func append(_ leafHashes: [(leaf: Digest, offset: Int)], ledgerLength newLength: Int, lastRecord newLast: Digest) throws {
        guard !leafHashes.isEmpty else { return }
        var out: [UInt8] = []
        out.reserveCapacity(leafHashes.count * 72)
        var hasher = SHA256()
        for (leaf, offset) in leafHashes {
            leaf.withBytes { out.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt64(offset).littleEndian) { out.append(contentsOf: $0) }
            var node = (level: 0, hash: leaf)
            while let top = edge.last, top.level == node.level {
                edge.removeLast()
                node = (node.level + 1, Merkle.nodeHash(top.hash, node.hash, hasher: &hasher))
                node.hash.withBytes { out.append(contentsOf: $0) }
            }
            edge.append(node)
        }
        let at = MerkleTreeFile.fileSize(leaves: leaves)
        try writeAll(out, at: at)
        guard fsync(fd) == 0 else { throw LedgerError.io(path: path, operation: "fsync", errno: errno) }
        leaves += leafHashes.count
        ledgerLength = newLength
        lastRecord = newLast
        var header = MerkleTreeFile.magic
        withUnsafeBytes(of: UInt64(leaves).littleEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(ledgerLength).littleEndian) { header.append(contentsOf: $0) }
        lastRecord.withBytes { header.append(contentsOf: $0) }
        header.append(contentsOf: [UInt8](repeating: 0, count: MerkleTreeFile.headerSize - header.count))
        try writeAll(header, at: 0)
    }

    func writeAll(_ bytes: [UInt8], at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LedgerError.io(path: path, operation: "write", errno: errno)
            }
            done += n
        }
    }
}
