import CanonicalJSON
import MilestoneCrypto
import MilestoneModel

/// An RFC 9162 inclusion proof of record `seq` in the tree of the first `size` records.
public struct InclusionProof: Sendable, Equatable {
    public var seq: Int
    public var size: Int
    public var root: Digest
    public var hashes: [Digest]

    /// The JSON of docs/cli.md: `{"kind":"inclusion","seq":n,"size":m,"root":b64,"hashes":[b64,…]}`.
    package var json: JSONValue {
        ["kind": "inclusion", "seq": .int(Int64(seq)), "size": .int(Int64(size)), "root": .string(root.base64),
         "hashes": .array(hashes.map { .string($0.base64) })]
    }

    public init(seq: Int, size: Int, root: Digest, hashes: [Digest]) {
        self.seq = seq
        self.size = size
        self.root = root
        self.hashes = hashes
    }

    /// Reads the JSON strictly: exactly these members, integers, 32-byte base64 hashes.
    package init(json: JSONValue) throws(ProofError) {
        let o = try ProofError.members(json, ["hashes", "kind", "root", "seq", "size"], kind: "inclusion")
        seq = try ProofError.positive(o["seq"]!, "seq")
        size = try ProofError.positive(o["size"]!, "size")
        root = try ProofError.hash(o["root"]!, "root")
        hashes = try ProofError.hashes(o["hashes"]!)
    }

    /// Whether the proof shows `recordLine` (without LF) under `root`.
    public func verify(recordLine: [UInt8]) -> Bool {
        Merkle.verifyInclusion(leaf: Merkle.leafHash(recordLine), index: seq - 1, size: size, proof: hashes, root: root)
    }
}

/// An RFC 9162 consistency proof between the trees of `fromSize` and `size` records.
public struct ConsistencyProof: Sendable, Equatable {
    public var fromSize: Int
    public var size: Int
    public var fromRoot: Digest
    public var root: Digest
    public var hashes: [Digest]

    package var json: JSONValue {
        ["kind": "consistency", "from_size": .int(Int64(fromSize)), "size": .int(Int64(size)),
         "from_root": .string(fromRoot.base64), "root": .string(root.base64), "hashes": .array(hashes.map { .string($0.base64) })]
    }

    public init(fromSize: Int, size: Int, fromRoot: Digest, root: Digest, hashes: [Digest]) {
        self.fromSize = fromSize
        self.size = size
        self.fromRoot = fromRoot
        self.root = root
        self.hashes = hashes
    }

    package init(json: JSONValue) throws(ProofError) {
        let o = try ProofError.members(json, ["from_root", "from_size", "hashes", "kind", "root", "size"], kind: "consistency")
        fromSize = try ProofError.positive(o["from_size"]!, "from_size")
        size = try ProofError.positive(o["size"]!, "size")
        fromRoot = try ProofError.hash(o["from_root"]!, "from_root")
        root = try ProofError.hash(o["root"]!, "root")
        hashes = try ProofError.hashes(o["hashes"]!)
    }

    public func verify() -> Bool {
        Merkle.verifyConsistency(size1: fromSize, size2: size, proof: hashes, root1: fromRoot, root2: root)
    }
}

public struct ProofError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func members(_ v: JSONValue, _ keys: [String], kind: String) throws(ProofError) -> JSONObject {
        guard case .object(let o) = v else { throw ProofError("a proof is a JSON object") }
        guard o["kind"] == .string(kind) else { throw ProofError("not an \(kind) proof (kind must be \"\(kind)\")") }
        guard o.keys == keys else { throw ProofError("an \(kind) proof has exactly the members \(keys.joined(separator: ", "))") }
        return o
    }

    static func positive(_ v: JSONValue, _ name: String) throws(ProofError) -> Int {
        guard case .int(let i) = v, i >= 1 else { throw ProofError("\(name): must be an integer ≥ 1") }
        return Int(i)
    }

    static func hash(_ v: JSONValue, _ name: String) throws(ProofError) -> Digest {
        guard case .string(let s) = v, let raw = Base64.decode(s), raw.count == 32 else {
            throw ProofError("\(name): must be a standard base64 SHA-256 hash")
        }
        return Digest(bytes: raw)
    }

    static func hashes(_ v: JSONValue) throws(ProofError) -> [Digest] {
        guard case .array(let a) = v, a.count <= 64 else { throw ProofError("hashes: must be an array of at most 64 hashes") }
        var out: [Digest] = []
        for (i, h) in a.enumerated() { out.append(try hash(h, "hashes[\(i)]")) }
        return out
    }
}

/// What a checkpoint says about a ledger.
public enum CheckpointVerdict: Sendable, Equatable {
    case consistent
    /// The ledger holds fewer records than the checkpoint commits to.
    case truncated(records: Int, checkpoint: Int)
    /// The ledger's first n records have another root.
    case fork(root: Digest, checkpoint: Digest)
    case otherOrigin(ledger: String, checkpoint: String)
    case otherHead(head: Digest, checkpoint: Digest)

    public var message: String {
        switch self {
        case .consistent: "consistent"
        case .truncated(let m, let n):
            "truncation or rollback: the checkpoint commits to \(n) records, the ledger holds \(m)"
        case .fork(let r, let c):
            "fork: the ledger's first records have root \(r.base64), the checkpoint says \(c.base64)"
        case .otherOrigin(let l, let c): "another log: the checkpoint's origin is \"\(c)\", the ledger's is \"\(l)\""
        case .otherHead(let h, let c): "fork: record n has sha256 \(h.hex), the checkpoint's head line says \(c.hex)"
        }
    }
}

/// A ledger with its Merkle tree caught up: checkpoints and proofs.
public final class ProvableLedger {
    public let file: LedgerFile
    package let tree: MerkleTreeFile
    /// The ledger's `name` (checkpoint origin).
    public let origin: String

    /// Opens the ledger (read only) and brings its tree up to date. `lockedBy`:
    /// this process already holds the writers' lock through that file (a
    /// shared lock taken through another descriptor would wait for it).
    public init(path: String, rebuild: Bool = false, lockedBy holder: LedgerFile? = nil) throws {
        file = try LedgerFile.open(path, writable: false)
        tree = try MerkleTreeFile.open(ledger: file, upTo: try holder?.size() ?? file.settledSize(), rebuild: rebuild)
        guard tree.leaves > 0 else {
            throw LedgerError.notIntact(.emptyLedger, path: path)
        }
        let first = try file.read(at: 0, count: try tree.recordRange(seq: 1).count)
        let tape = JSONTape()
        try? tape.parse(first)
        guard let name = tape.root["event"]?["name"]?.string else {
            throw LedgerError.notIntact(VerifyFailure(seq: 1, line: 1, offset: 0, reason: "record 1 must hold the ledger.created event", isTornTail: false), path: path)
        }
        origin = name
    }

    public var size: Int { tree.leaves }

    /// Record `seq`'s line (without LF).
    public func recordLine(seq: Int) throws -> [UInt8] {
        let r = try tree.recordRange(seq: seq)
        return try file.read(at: r.lowerBound, count: r.count)
    }

    /// The sha256 of record `seq`.
    public func recordHash(seq: Int) throws -> Digest {
        if seq == tree.leaves { return tree.lastRecord }
        let line = try recordLine(seq: seq)
        guard let tail = line.withUnsafeBytes({ RecordLine.tail(of: $0) }) else {
            throw LedgerError.stale(path: file.path, reason: "record \(seq) has no readable sha256")
        }
        return tail.sha256
    }

    /// A checkpoint of the whole ledger, signed by every key.
    public func checkpoint(keys: [SignerKey]) throws -> SignedNote {
        let cp = Checkpoint(origin: origin, size: size, root: try tree.root(), extensions: ["head \(tree.lastRecord.hex)"])
        var note = SignedNote(body: cp.body)
        for key in keys { try note.sign(with: key) }
        return note
    }

    public func inclusionProof(seq: Int, size: Int? = nil) throws(ProofError) -> InclusionProof {
        let m = size ?? self.size
        guard m >= 1, m <= self.size else { throw ProofError("--size \(m): the ledger holds \(self.size) records") }
        guard seq >= 1, seq <= m else { throw ProofError("--seq \(seq): must be between 1 and the tree size \(m)") }
        do {
            return InclusionProof(seq: seq, size: m, root: try tree.root(size: m),
                                  hashes: try Merkle.inclusionProof(leaf: seq - 1, size: m, tree))
        } catch {
            throw ProofError("\(error)")
        }
    }

    public func consistencyProof(from a: Int, to b: Int? = nil) throws(ProofError) -> ConsistencyProof {
        let n = b ?? size
        guard n >= 1, n <= size else { throw ProofError("--size \(n): the ledger holds \(size) records") }
        guard a >= 1, a <= n else { throw ProofError("--from-size \(a): must be between 1 and --size \(n)") }
        do {
            return ConsistencyProof(fromSize: a, size: n, fromRoot: try tree.root(size: a), root: try tree.root(size: n),
                                    hashes: try Merkle.consistencyProof(from: a, to: n, tree))
        } catch {
            throw ProofError("\(error)")
        }
    }

    /// Whether the ledger extends the checkpoint (signatures are checked by the caller).
    public func check(_ cp: Checkpoint) throws -> CheckpointVerdict {
        guard cp.origin == origin else { return .otherOrigin(ledger: origin, checkpoint: cp.origin) }
        guard cp.size <= size else { return .truncated(records: size, checkpoint: cp.size) }
        guard cp.size >= 1 else { return .consistent }
        let root = try tree.root(size: cp.size)
        guard root == cp.root else { return .fork(root: root, checkpoint: cp.root) }
        if let head = cp.head {
            let h = try recordHash(seq: cp.size)
            guard h == head else { return .otherHead(head: h, checkpoint: head) }
        }
        return .consistent
    }
}

/// A self-contained proof that one record is in a signed ledger: the record
/// line, its inclusion proof, and the signed checkpoint of the proof's tree.
public struct ProofBundle: Sendable {
    public var record: [UInt8]
    public var proof: InclusionProof
    public var checkpoint: SignedNote

    public init(record: [UInt8], proof: InclusionProof, checkpoint: SignedNote) {
        self.record = record
        self.proof = proof
        self.checkpoint = checkpoint
    }

    package var json: JSONValue {
        ["kind": "milestones-proof-bundle", "record": .string(String(decoding: record, as: UTF8.self)),
         "proof": proof.json, "checkpoint": .string(checkpoint.text)]
    }

    package init(json: JSONValue) throws {
        guard case .object(let o) = json, o.keys == ["checkpoint", "kind", "proof", "record"],
              o["kind"] == "milestones-proof-bundle", let r = o["record"]?.stringValue, let c = o["checkpoint"]?.stringValue
        else { throw ProofError("not a proof bundle: expected the members checkpoint, kind, proof, record") }
        record = Array(r.utf8)
        proof = try InclusionProof(json: o["proof"]!)
        checkpoint = try SignedNote(parsing: Array(c.utf8))
    }
}

/// Checks proofs without the ledger: what a reader of a claim runs.
public enum ProofCheck {
    /// A checkpoint's signatures and body.
    public static func checkpoint(_ note: SignedNote, keys: [VerifierKey]) throws -> Checkpoint {
        try note.verify(keys: keys)
        return try Checkpoint(parsing: note.body)
    }

    /// An inclusion proof of `record` under a signed checkpoint.
    public static func inclusion(record: [UInt8], proof: InclusionProof, checkpoint note: SignedNote, keys: [VerifierKey]) throws {
        let cp = try checkpoint(note, keys: keys)
        guard proof.size == cp.size, proof.root == cp.root else {
            throw ProofError("the proof is for a tree of \(proof.size) records with root \(proof.root.base64); the checkpoint commits to \(cp.size) records with root \(cp.root.base64)")
        }
        guard let tail = record.withUnsafeBytes({ RecordLine.tail(of: $0) }), tail.seq == proof.seq else {
            throw ProofError("the record is not a ledger line with seq \(proof.seq)")
        }
        guard proof.verify(recordLine: record) else { throw ProofError("the inclusion proof does not verify") }
    }

    /// A consistency proof between two signed checkpoints.
    public static func consistency(proof: ConsistencyProof, old: SignedNote, new: SignedNote, keys: [VerifierKey]) throws {
        let a = try checkpoint(old, keys: keys)
        let b = try checkpoint(new, keys: keys)
        guard a.origin == b.origin else { throw ProofError("the checkpoints are of different logs (\(a.origin), \(b.origin))") }
        guard proof.fromSize == a.size, proof.fromRoot == a.root, proof.size == b.size, proof.root == b.root else {
            throw ProofError("the proof's sizes and roots are not the checkpoints'")
        }
        guard proof.verify() else { throw ProofError("the consistency proof does not verify") }
    }
}
