/// The Merkle tree of RFC 9162 §2.1 over the ledger's record lines (leaf =
/// the line's bytes without its LF), its proofs, and their verification.
///
/// Proof generation reads perfect subtree hashes from a ``SubtreeHashes``
/// source (the ``MerkleTreeFile`` beside the ledger), so a proof costs
/// O(log n) reads and hashes, not a pass over the ledger.
public enum Merkle {
    /// SHA-256 of the empty string: the root of the empty tree.
    public static let emptyRoot = SHA256.hash([UInt8]())

    package static func leafHash(_ leaf: UnsafeRawBufferPointer, hasher: inout SHA256) -> Digest {
        hasher.update(0x00)
        hasher.update(leaf)
        return hasher.finalize()
    }

    public static func leafHash(_ leaf: [UInt8]) -> Digest {
        var h = SHA256()
        return leaf.withUnsafeBytes { leafHash($0, hasher: &h) }
    }

    package static func nodeHash(_ left: Digest, _ right: Digest, hasher: inout SHA256) -> Digest {
        hasher.update(0x01)
        left.withBytes { hasher.update($0) }
        right.withBytes { hasher.update($0) }
        return hasher.finalize()
    }

    public static func nodeHash(_ left: Digest, _ right: Digest) -> Digest {
        var h = SHA256()
        return nodeHash(left, right, hasher: &h)
    }

    /// The root of a perfect subtree (2^k leaves), from its leaf hashes in order:
    /// each pair of equal-sized subtrees is joined as soon as both are there.
    struct PerfectRoot {
        private var stack: [(level: Int, hash: Digest)] = []

        mutating func reset() { stack.removeAll(keepingCapacity: true) }

        mutating func add(leaf: Digest, hasher: inout SHA256) {
            var node = (level: 0, hash: leaf)
            while let top = stack.last, top.level == node.level {
                stack.removeLast()
                node = (node.level + 1, Merkle.nodeHash(top.hash, node.hash, hasher: &hasher))
            }
            stack.append(node)
        }

        /// The root, once a power of two of leaves came.
        var root: Digest { stack[0].hash }
    }

    /// The largest power of two smaller than `n` (n ≥ 2): RFC 9162's split.
    static func split(_ n: Int) -> Int {
        // From the bit length of n - 1, not by doubling (which overflows past 2^62 and never ends).
        precondition(n >= 2)
        return 1 << (Int.bitWidth - 1 - (n - 1).leadingZeroBitCount)
    }

    // MARK: - Building proofs (RFC 9162 §2.1.3.1, §2.1.4.1)

    /// MTH(D[a:b]) from the stored perfect subtrees: every left subtree in
    /// RFC 9162's recursion is perfect and aligned, so O(log n) reads.
    package static func subtreeHash(_ a: Int, _ b: Int, _ tree: some SubtreeHashes) throws -> Digest {
        let n = b - a
        if n == 0 { return emptyRoot }
        if n & (n - 1) == 0, a % n == 0 {
            return try tree.perfect(level: n.trailingZeroBitCount, index: a / n)
        }
        let k = split(n)
        return nodeHash(try subtreeHash(a, a + k, tree), try subtreeHash(a + k, b, tree))
    }

    package static func root(size: Int, _ tree: some SubtreeHashes) throws -> Digest {
        try subtreeHash(0, size, tree)
    }

    /// PATH(m, D[0:n]): the inclusion proof of leaf m (0-based) in the tree of n leaves.
    package static func inclusionProof(leaf m: Int, size n: Int, _ tree: some SubtreeHashes) throws -> [Digest] {
        precondition(m >= 0 && m < n)
        var proof: [Digest] = []
        func path(_ m: Int, _ a: Int, _ b: Int) throws {
            let n = b - a
            if n <= 1 { return }
            let k = split(n)
            if m < k {
                try path(m, a, a + k)
                proof.append(try subtreeHash(a + k, b, tree))
            } else {
                try path(m - k, a + k, b)
                proof.append(try subtreeHash(a, a + k, tree))
            }
        }
        try path(m, 0, n)
        return proof
    }

    /// PROOF(m, D[0:n]): the consistency proof between the trees of m and n leaves.
    package static func consistencyProof(from m: Int, to n: Int, _ tree: some SubtreeHashes) throws -> [Digest] {
        precondition(m >= 1 && m <= n)
        var proof: [Digest] = []
        func subproof(_ m: Int, _ a: Int, _ b: Int, _ complete: Bool) throws {
            let n = b - a
            if m == n {
                if !complete { proof.append(try subtreeHash(a, b, tree)) }
                return
            }
            let k = split(n)
            if m <= k {
                try subproof(m, a, a + k, complete)
                proof.append(try subtreeHash(a + k, b, tree))
            } else {
                try subproof(m - k, a + k, b, false)
                proof.append(try subtreeHash(a, a + k, tree))
            }
        }
        try subproof(m, 0, n, true)
        return proof
    }

    // MARK: - Verifying proofs (RFC 9162 §2.1.3.2, §2.1.4.2)

    /// Whether `proof` shows the leaf with hash `leaf` at `index` in the tree
    /// of `size` leaves with `root`.
    public static func verifyInclusion(leaf: Digest, index: Int, size: Int, proof: [Digest], root: Digest) -> Bool {
        guard index >= 0, index < size else { return false }
        var fn = index
        var sn = size - 1
        var r = leaf
        for p in proof {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                r = nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && r == root
    }

    /// Whether `proof` shows that the tree of `size1` leaves with `root1` is
    /// a prefix of the tree of `size2` leaves with `root2`.
    public static func verifyConsistency(size1: Int, size2: Int, proof: [Digest], root1: Digest, root2: Digest) -> Bool {
        guard size1 >= 1, size1 <= size2 else { return false }
        if size1 == size2 { return proof.isEmpty && root1 == root2 }
        guard !proof.isEmpty else { return false }
        var path = proof
        // If size1 is a power of two, the first tree is a complete subtree: start from its root.
        if size1 & (size1 - 1) == 0 { path.insert(root1, at: 0) }
        var fn = size1 - 1
        var sn = size2 - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            if sn == 0 { return false }
            if fn & 1 == 1 || fn == sn {
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        return fr == root1 && sr == root2 && sn == 0
    }
}

/// Where perfect subtree hashes come from: level k, index i is the hash of
/// leaves [i·2^k, (i+1)·2^k).
package protocol SubtreeHashes {
    func perfect(level: Int, index: Int) throws -> Digest
}

/// All leaf hashes in memory (tests, small trees).
package struct InMemoryTree: SubtreeHashes {
    package var levels: [[Digest]] = [[]]

    package init() {}

    package init(leaves: [[UInt8]]) {
        for l in leaves { append(Merkle.leafHash(l)) }
    }

    package var size: Int { levels[0].count }

    package mutating func append(_ leafHash: Digest) {
        levels[0].append(leafHash)
        var level = 0
        while levels[level].count % 2 == 0 {
            let c = levels[level].count
            let parent = Merkle.nodeHash(levels[level][c - 2], levels[level][c - 1])
            if levels.count == level + 1 { levels.append([]) }
            levels[level + 1].append(parent)
            level += 1
        }
    }

    package func perfect(level: Int, index: Int) throws -> Digest { levels[level][index] }
}
