#if canImport(Glibc)
import Glibc
import MilestoneCrypto
import MilestoneSupport
#endif

/// The Merkle tree state kept beside the ledger (`X.jsonl` → `X.tree`), so
/// checkpoints and proofs never rehash the whole ledger.
///
/// Layout: a 64-byte header — magic `MLTREE2\0`, the number of leaves, the
/// ledger's byte length after the last leaf's line, the sha256 of that last
/// record — then, block by block (a block is 256 leaves): the byte offsets
/// in the ledger of the block's records (8 bytes each, so a record can be
/// found by seq), then, once the block is complete, its root and every
/// perfect subtree above blocks that it completes (32 bytes each), in
/// post-order. Subtrees smaller than a block are not stored: they are
/// rehashed from the ledger's lines when a proof needs them (at most 255
/// lines), which keeps the file at about 8 bytes a record, so building it
/// writes (and fsyncs) 9× less than storing every node would.
///
/// Appending leaves only appends to the file. The tree is a cache: deleting
/// it loses nothing, and it is checked against the ledger (the last leaf's
/// record must still be there, with the same hash) before every use.
package final class MerkleTreeFile: SubtreeHashes {
    package let path: String
    let fd: Int32
    let ledger: LedgerFile
    package private(set) var leaves = 0
    /// The ledger's byte length covered by the leaves.
    package private(set) var ledgerLength = 0
    /// The sha256 of the last record covered.
    package private(set) var lastRecord = Digest.zero
    /// The right edge of the tree (perfect subtrees not yet combined), by level, highest first.
    private var edge: [(level: Int, hash: Digest)] = []

    static let headerSize = 64
    static let magic: [UInt8] = Array("MLTREE2\0".utf8)
    /// Leaves per block: 2^blockLevel.
    static let blockLevel = 8
    static let blockSize = 1 << blockLevel

    /// Where the tree of `ledger` lives.
    package static func path(forLedger ledger: String) -> String {
        (ledger.hasSuffix(".jsonl") ? String(ledger.dropLast(6)) : ledger) + ".tree"
    }

    init(path: String, fd: Int32, ledger: LedgerFile) {
        self.path = path
        self.fd = fd
        self.ledger = ledger
    }

    deinit { close(fd) }

    /// Post-order position, among the stored nodes, of the perfect subtree of
    /// `2^level` blocks at `index`.
    static func position(level: Int, index: Int) -> Int {
        let last = (index + 1) << level - 1  // its last block
        return 2 * last - last.nonzeroBitCount + level
    }

    /// Where a stored node (a subtree of `2^level` blocks) is in the file:
    /// after every stored node before it and the offsets of every block it covers.
    static func nodeOffset(level: Int, index: Int) -> Int {
        headerSize + position(level: level, index: index) * 32 + ((index + 1) << level) * blockSize * 8
    }

    /// Where leaf `g`'s record offset is in the file.
    static func entryOffset(leaf g: Int) -> Int {
        let block = g >> blockLevel
        return headerSize + (2 * block - block.nonzeroBitCount) * 32 + g * 8
    }

    /// Bytes of the file for `n` leaves.
    static func fileSize(leaves n: Int) -> Int {
        let blocks = n >> blockLevel
        return headerSize + (2 * blocks - blocks.nonzeroBitCount) * 32 + n * 8
    }

    /// Where record `seq` (1-based) is in the ledger: its offset and length (without LF).
    package func recordRange(seq: Int) throws -> Range<Int> {
        guard seq >= 1, seq <= leaves else {
            throw LedgerError.io(path: path, operation: "read (no record \(seq))", errno: EINVAL)
        }
        let start = try leafOffsets(seq - 1, count: 1)[0]
        let end = seq == leaves ? ledgerLength : try leafOffsets(seq, count: 1)[0]
        return start..<(end - 1)
    }

    /// The ledger offsets of `count` consecutive leaves from `first`, all in one block.
    func leafOffsets(_ first: Int, count: Int) throws -> [Int] {
        var raw = [UInt64](repeating: 0, count: count)
        let at = MerkleTreeFile.entryOffset(leaf: first)
        let n = raw.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, count * 8, off_t(at)) }
        guard n == count * 8 else { throw LedgerError.io(path: path, operation: "read", errno: n < 0 ? errno : EIO) }
        return raw.map { Int(UInt64(littleEndian: $0)) }
    }

    package func perfect(level: Int, index: Int) throws -> Digest {
        guard (index + 1) << level <= leaves else {
            throw LedgerError.io(path: path, operation: "read (no such subtree)", errno: EINVAL)
        }
        if level < MerkleTreeFile.blockLevel { return try rehash(level: level, index: index) }
        var raw = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let offset = MerkleTreeFile.nodeOffset(level: level - MerkleTreeFile.blockLevel, index: index)
        let n = withUnsafeMutableBytes(of: &raw) { pread(fd, $0.baseAddress!, 32, off_t(offset)) }
        guard n == 32 else { throw LedgerError.io(path: path, operation: "read", errno: n < 0 ? errno : EIO) }
        return withUnsafeBytes(of: &raw) { Digest(raw: $0) }
    }

    /// A subtree smaller than a block, from its records' lines in the ledger.
    func rehash(level: Int, index: Int) throws -> Digest {
        let first = index << level
        let count = 1 << level
        let offsets = try leafOffsets(first, count: count)
        let end = first + count == leaves ? ledgerLength : try leafOffsets(first + count, count: 1)[0]
        let bytes = try ledger.read(at: offsets[0], count: end - offsets[0])
        var hasher = SHA256()
        var subtree = Merkle.PerfectRoot()
        try bytes.withUnsafeBytes { raw in
            for k in 0..<count {
                let from = offsets[k] - offsets[0]
                let to = (k + 1 < count ? offsets[k + 1] : end) - offsets[0] - 1
                guard from < to, to < raw.count, raw[to] == 0x0A else {
                    throw LedgerError.stale(path: path, reason: "record \(first + k + 1) is not where this tree saw it; rebuild the tree with --rebuild")
                }
                subtree.add(leaf: Merkle.leafHash(UnsafeRawBufferPointer(rebasing: raw[from..<to]), hasher: &hasher), hasher: &hasher)
            }
        }
        return subtree.root
    }

    /// The root of the first `size` leaves.
    package func root(size: Int? = nil) throws -> Digest { try Merkle.root(size: size ?? leaves, self) }

    // MARK: Opening and catching up

    /// Opens (or creates) the tree of `ledger`, checks it still matches the
    /// ledger, and appends the leaves of records added since.
    ///
    /// A tree whose last leaf's record is gone or changed means the ledger was
    /// rewritten: that is reported (exit 1), never papered over; `rebuild`
    /// starts the tree anew on request.
    package static func open(ledger: LedgerFile, upTo size: Int, rebuild: Bool = false) throws -> MerkleTreeFile {
        let path = MerkleTreeFile.path(forLedger: ledger.path)
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LedgerError.io(path: path, operation: "open", errno: errno) }
        let tree = MerkleTreeFile(path: path, fd: fd, ledger: ledger)
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
        edge = []
    }

    /// The right edge: one perfect subtree per set bit of `leaves`.
    func loadEdge() throws {
        edge = []
        var start = 0
        for level in stride(from: 62, through: 0, by: -1) where leaves & (1 << level) != 0 {
            edge.append((level, try perfect(level: level, index: start >> level)))
            start += 1 << level
        }
    }

    func checkAgainst(_ ledger: LedgerFile) throws {
        // The line that ends at ledgerLength must be the record we stopped at.
        let start = try ledger.start(ofRecord: leaves, sha256: lastRecord, endingAt: ledgerLength)
        guard let start, start == (try? leafOffsets(leaves - 1, count: 1)[0]) else {
            throw LedgerError.stale(
                path: path,
                reason: "the ledger no longer holds record \(leaves) as this tree saw it (sha256 \(lastRecord.hex)): it was rewritten or truncated. Run `milestones verify`; rebuild the tree with --rebuild only if the ledger is the one you trust")
        }
    }

    /// What one worker found in its range of whole lines.
    private struct Part {
        var leaves: [(leaf: Digest, offset: Int)] = []
        var firstPrev = Digest.zero
        var firstSeq = 0
        var last = Digest.zero
        var lastSeq = 0
        var end = 0
        /// The byte offset of the first line that is not a valid record linked to the one before.
        var failure: Int?
        var error: Error?
    }

    /// Appends the leaves of the records between `ledgerLength` and `size`,
    /// checking that they form a chain: each line ends in a record's fixed
    /// tail, its seq follows, and its `prev` is the sha256 the record before
    /// claims. Recomputing every record's own hash is left to `verify` (and
    /// to the read models' catch-up, which does it): it would double the
    /// hashing of a first build, and the tree commits to the lines' bytes as
    /// they are, so a line altered in place yields proofs that fail the
    /// record's own hash check. The last record's hash is recomputed every
    /// time the tree is opened (``checkAgainst(_:)``).
    ///
    /// The range is cut at line boundaries into parts (a few per core); each part
    /// is read, hashed and checked on its own (so reading, splitting and
    /// hashing all run in parallel), then the parts' joins are checked in
    /// order. Node data is made durable (fsync) before the header that counts
    /// it, so a crash leaves the previous tree intact.
    func catchUp(_ ledger: LedgerFile, upTo size: Int) throws {
        let base = ledgerLength
        guard size > base else { return }
        try loadEdge()
        // Four parts a core: a core slowed by a neighbour leaves the others more parts to take.
        let want = size - base > 1 << 20 ? 4 * max(1, min(8, activeProcessorCount())) : 1
        var bounds = [base]
        for k in 1..<max(1, want) {
            if let b = try ledger.lineStart(atOrAfter: base + (size - base) * k / want, limit: size), b > bounds.last! {
                bounds.append(b)
            }
        }
        bounds.append(size)
        var parts = [Part](repeating: Part(), count: bounds.count - 1)
        parts.withUnsafeMutableBufferPointer { out in
            let slots = UncheckedSendable(out)
            let file = UncheckedSendable(ledger)
            let cuts = bounds
            concurrentPerform(cuts.count - 1) { r in
                var part = Part()
                part.leaves.reserveCapacity((cuts[r + 1] - cuts[r]) / 400)  // records run 400-600 bytes
                var hasher = SHA256()
                var lastHex = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
                do {
                    try file.value.forEachChunk(from: cuts[r], upTo: cuts[r + 1], chunkSize: 2 << 20) { chunk, spans in
                        guard part.failure == nil else { return }
                        for s in spans {
                            guard s.kind == .complete else {
                                part.failure = s.offset
                                return
                            }
                            let line = UnsafeRawBufferPointer(rebasing: chunk[s.start..<(s.start + s.length)])
                            // The chain is checked on the hex text: this line's prev must be
                            // the sha256 text of the line before (digests parsed only at the ends).
                            guard let at = RecordLine.locateTail(line),
                                  part.leaves.isEmpty || (at.seq == part.lastSeq + 1
                                      && withUnsafeBytes(of: &lastHex) { memcmp(line.baseAddress! + at.prev, $0.baseAddress!, 64) } == 0)
                            else {
                                part.failure = s.offset
                                return
                            }
                            if part.leaves.isEmpty {
                                guard let prev = Digest(hex: UnsafeRawBufferPointer(rebasing: line[at.prev..<(at.prev + 64)])) else {
                                    part.failure = s.offset
                                    return
                                }
                                (part.firstPrev, part.firstSeq) = (prev, at.seq)
                            }
                            withUnsafeMutableBytes(of: &lastHex) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: line[at.sha..<(at.sha + 64)])) }
                            part.leaves.append((Merkle.leafHash(line, hasher: &hasher), s.offset))
                            (part.lastSeq, part.end) = (at.seq, s.offset + s.length + 1)
                        }
                    }
                    if !part.leaves.isEmpty, part.failure == nil {
                        guard let last = withUnsafeBytes(of: &lastHex, { Digest(hex: $0) }) else {
                            part.failure = part.leaves.last!.offset
                            slots.value[r] = part
                            return
                        }
                        part.last = last
                    }
                } catch { part.error = error }
                slots.value[r] = part
            }
        }
        // In order: each part starts where the one before ended.
        var last = lastRecord
        var count = leaves
        var covered = ledgerLength
        for part in parts {
            if let error = part.error { throw error }
            if let first = part.leaves.first, part.firstPrev != last || part.firstSeq != count + 1 {
                throw staleRecord(ledger, at: first.offset)
            }
            if let failure = part.failure { throw staleRecord(ledger, at: failure) }
            (last, count, covered) = (part.last, count + part.leaves.count, part.end)
        }
        try write(NewLeaves(parts.map(\.leaves)), from: leaves)
        parts = []
        guard fsync(fd) == 0 else { throw LedgerError.io(path: path, operation: "fsync", errno: errno) }
        leaves = count
        ledgerLength = covered
        lastRecord = last
        var header = MerkleTreeFile.magic
        withUnsafeBytes(of: UInt64(leaves).littleEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(ledgerLength).littleEndian) { header.append(contentsOf: $0) }
        lastRecord.withBytes { header.append(contentsOf: $0) }
        header.append(contentsOf: [UInt8](repeating: 0, count: MerkleTreeFile.headerSize - header.count))
        try writeAll(header, at: 0)
    }

    private func staleRecord(_ ledger: LedgerFile, at offset: Int) -> LedgerError {
        .stale(path: ledger.path, reason: "record at byte \(offset) does not verify (run `milestones verify` for the details)")
    }

    /// Writes the entries of new leaves `first…` and every stored node they
    /// complete: whole blocks on the workers (their offsets and root), the
    /// rest (the leaves before the first whole block and after the last, and
    /// the nodes above blocks) here, in order.
    private func write(_ new: NewLeaves, from first: Int) throws {
        let block = MerkleTreeFile.blockSize
        let end = first + new.count
        let (firstBlock, endBlock) = ((first + block - 1) / block, end / block)
        let hasBlocks = firstBlock < endBlock
        let headEnd = hasBlocks ? firstBlock * block : end
        let tailStart = hasBlocks ? endBlock * block : end
        var roots = [Digest](repeating: .zero, count: hasBlocks ? endBlock - firstBlock : 0)
        var failures = [Int32](repeating: 0, count: roots.count)
        if hasBlocks {
            let workers = roots.count > 16 ? max(1, min(8, activeProcessorCount())) : 1
            roots.withUnsafeMutableBufferPointer { rootsOut in
                failures.withUnsafeMutableBufferPointer { failed in
                    let (rootSlots, failSlots, input) = (UncheckedSendable(rootsOut), UncheckedSendable(failed), UncheckedSendable(new))
                    let fd = self.fd
                    let per = (rootsOut.count + workers - 1) / workers
                    concurrentPerform(workers) { w in
                        var hasher = SHA256()
                        var buf = [UInt8](repeating: 0, count: block * 8 + 32)
                        var subtree = Merkle.PerfectRoot()
                        for k in (w * per)..<min(rootSlots.value.count, w * per + per) {
                            let b = firstBlock + k
                            subtree.reset()
                            buf.withUnsafeMutableBytes { raw in
                                for g in (b * block)..<((b + 1) * block) {
                                    let entry = input.value[g - first]
                                    raw.storeBytes(of: UInt64(entry.offset).littleEndian, toByteOffset: (g - b * block) * 8, as: UInt64.self)
                                    subtree.add(leaf: entry.leaf, hasher: &hasher)
                                }
                                subtree.root.withBytes { raw.baseAddress!.advanced(by: block * 8).copyMemory(from: $0.baseAddress!, byteCount: 32) }
                            }
                            rootSlots.value[k] = subtree.root
                            failSlots.value[k] = MerkleTreeFile.pwriteAll(fd, buf, at: MerkleTreeFile.entryOffset(leaf: b * block))
                        }
                    }
                }
            }
            if let e = failures.first(where: { $0 != 0 }) { throw LedgerError.io(path: path, operation: "write", errno: e) }
        }
        var hasher = SHA256()
        for g in first..<headEnd { try push(new[g - first].leaf, offset: new[g - first].offset, level: 0, endingAt: g + 1, hasher: &hasher) }
        for (k, root) in roots.enumerated() {
            try push(root, offset: nil, level: MerkleTreeFile.blockLevel, endingAt: (firstBlock + k + 1) * block, hasher: &hasher)
        }
        for g in tailStart..<end { try push(new[g - first].leaf, offset: new[g - first].offset, level: 0, endingAt: g + 1, hasher: &hasher) }
    }

    /// Adds the perfect subtree at `level` that ends at leaf `end` (exclusive)
    /// to the right edge, writing its record offset (a leaf) and every stored
    /// node it completes (a whole block's root, written with the block, and
    /// the nodes above it).
    private func push(_ hash: Digest, offset: Int?, level: Int, endingAt end: Int, hasher: inout SHA256) throws {
        if let offset {
            try writeAll(withUnsafeBytes(of: UInt64(offset).littleEndian) { Array($0) }, at: MerkleTreeFile.entryOffset(leaf: end - 1))
        }
        var node = (level: level, hash: hash)
        while true {
            if node.level >= MerkleTreeFile.blockLevel, offset != nil || node.level > level {
                let at = MerkleTreeFile.nodeOffset(level: node.level - MerkleTreeFile.blockLevel, index: (end >> node.level) - 1)
                try writeAll(node.hash.withBytes { Array($0) }, at: at)
            }
            guard let top = edge.last, top.level == node.level else { break }
            edge.removeLast()
            node = (node.level + 1, Merkle.nodeHash(top.hash, node.hash, hasher: &hasher))
        }
        edge.append(node)
    }

    /// The leaves a catch-up found, as the parts found them (not copied into one array).
    struct NewLeaves {
        let parts: [[(leaf: Digest, offset: Int)]]
        let starts: [Int]
        let count: Int

        init(_ parts: [[(leaf: Digest, offset: Int)]]) {
            self.parts = parts
            var starts: [Int] = []
            var n = 0
            for p in parts {
                starts.append(n)
                n += p.count
            }
            self.starts = starts
            count = n
        }

        /// The `k`-th new leaf.
        subscript(k: Int) -> (leaf: Digest, offset: Int) {
            var p = parts.count - 1
            while starts[p] > k { p -= 1 }
            return parts[p][k - starts[p]]
        }
    }

    /// pwrite of all of `bytes`; 0 or the errno.
    static func pwriteAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int) -> Int32 {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return 0
    }

    func writeAll(_ bytes: [UInt8], at offset: Int) throws {
        let e = MerkleTreeFile.pwriteAll(fd, bytes, at: offset)
        guard e == 0 else { throw LedgerError.io(path: path, operation: "write", errno: e) }
    }
}

