import Foundation
import TestSupport
import Testing
@testable import MilestoneLedger

func loadJSON(_ name: String) -> [String: Any] {
    let data = try! Data(contentsOf: URL(fileURLWithPath: Paths.fixture(name)))
    return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
}

func unhex(_ s: String) -> [UInt8] {
    let u = Array(s.utf8)
    return stride(from: 0, to: u.count, by: 2).map { UInt8(String(decoding: u[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
}

/// An integer from decoded JSON, nil when out of Int's range (some probes use 2^64 − 1).
func int(_ any: Any?) -> Int? {
    guard let n = any as? NSNumber else { return nil }
    if let i = Int(exactly: n.doubleValue), abs(n.doubleValue) < 9.0e18 { return i == n.intValue ? i : n.intValue }
    return nil
}

func digest(_ hex: String) -> Digest? {
    let b = unhex(hex)
    return b.count == 32 ? Digest(bytes: b) : nil
}

/// A loosely typed vector, passed to parameterised tests by index.
struct Vector: Sendable, CustomTestStringConvertible {
    let file: String
    let group: String
    let index: Int
    var value: [String: Any] {
        let top = loadJSON(file)
        if group.contains(".") {
            let parts = group.split(separator: ".").map(String.init)
            return ((top[parts[0]] as! [String: Any])[parts[1]] as! [[String: Any]])[index]
        }
        return (top[group] as! [[String: Any]])[index]
    }
    var testDescription: String { "\(group)[\(index)] \((value["desc"] as? String) ?? (value["id"] as? String) ?? (value["name"] as? String) ?? "")" }

    static func all(_ file: String, _ group: String) -> [Vector] {
        let top = loadJSON(file)
        let list: [Any]
        if group.contains(".") {
            let parts = group.split(separator: ".").map(String.init)
            list = (top[parts[0]] as! [String: Any])[parts[1]] as! [Any]
        } else {
            list = top[group] as! [Any]
        }
        return list.indices.map { Vector(file: file, group: group, index: $0) }
    }
}

let merkleFile = "vectors/merkle-rfc9162.json"
let merkleLeaves: [[UInt8]] = (loadJSON(merkleFile)["leaves_hex"] as! [String]).map(unhex)

@Suite("RFC 9162 Merkle tree: published vectors")
struct MerkleVectorTests {
    @Test("roots for every size, and the empty tree")
    func roots() throws {
        let top = loadJSON(merkleFile)
        #expect(Merkle.emptyRoot.hex == top["empty_root"] as? String)
        var tree = InMemoryTree()
        for (i, leaf) in merkleLeaves.enumerated() {
            tree.append(Merkle.leafHash(leaf))
            let want = (top["roots"] as! [[String: Any]]).first { $0["size"] as? Int == i + 1 }!["root"] as! String
            #expect(try Merkle.root(size: i + 1, tree).hex == want)
        }
        #expect((top["roots"] as! [[String: Any]]).count == merkleLeaves.count)
    }

    @Test("inclusion proofs are generated exactly and verify", arguments: Vector.all(merkleFile, "inclusion"))
    func inclusion(_ v: Vector) throws {
        let x = v.value
        let tree = InMemoryTree(leaves: merkleLeaves)
        let index = x["index"] as! Int, size = x["size"] as! Int
        let want = (x["proof"] as! [String]).map { digest($0)! }
        #expect(try Merkle.inclusionProof(leaf: index, size: size, tree) == want)
        #expect(Merkle.verifyInclusion(leaf: Merkle.leafHash(merkleLeaves[index]), index: index, size: size, proof: want,
                                       root: try Merkle.root(size: size, tree)))
    }

    @Test("consistency proofs are generated exactly and verify", arguments: Vector.all(merkleFile, "consistency"))
    func consistency(_ v: Vector) throws {
        let x = v.value
        let tree = InMemoryTree(leaves: merkleLeaves)
        let a = x["size1"] as! Int, b = x["size2"] as! Int
        let want = (x["proof"] as! [String]).map { digest($0)! }
        #expect(try Merkle.consistencyProof(from: a, to: b, tree) == want)
        #expect(Merkle.verifyConsistency(size1: a, size2: b, proof: want, root1: try Merkle.root(size: a, tree),
                                         root2: try Merkle.root(size: b, tree)))
    }

    @Test("published verifier probes: accepted and rejected as published", arguments: Vector.all(merkleFile, "probes.inclusion"))
    func inclusionProbes(_ v: Vector) {
        let x = v.value
        let proof = (x["proof"] as! [String]).map(digest)
        let accepted: Bool
        if let leaf = digest(x["leaf_hash"] as! String), let root = digest(x["root"] as! String), !proof.contains(where: { $0 == nil }) {
            if let index = int(x["index"]), let size = int(x["size"]) {
                accepted = Merkle.verifyInclusion(leaf: leaf, index: index, size: size, proof: proof.map { $0! }, root: root)
            } else {
                accepted = false
            }
        } else {
            accepted = false  // a hash that is not 32 bytes never verifies
        }
        #expect(accepted == !(x["want_error"] as! Bool))
    }

    @Test("published consistency probes", arguments: Vector.all(merkleFile, "probes.consistency"))
    func consistencyProbes(_ v: Vector) {
        let x = v.value
        let proof = (x["proof"] as! [String]).map(digest)
        let accepted: Bool
        if int(x["size1"]) == int(x["size2"]), int(x["size1"]) ?? 0 >= 1, proof.isEmpty, unhex(x["root1"] as! String).count != 32 {
            // Equal sizes with an empty proof compare the roots only; this probe's
            // "roots" are not SHA-256 hashes (our formats cannot carry such a root).
            accepted = x["root1"] as! String == x["root2"] as! String
        } else if let r1 = digest(x["root1"] as! String), let r2 = digest(x["root2"] as! String), !proof.contains(where: { $0 == nil }) {
            if let a = int(x["size1"]), let b = int(x["size2"]) {
                accepted = Merkle.verifyConsistency(size1: a, size2: b, proof: proof.map { $0! }, root1: r1, root2: r2)
            } else {
                accepted = false
            }
        } else {
            accepted = false
        }
        #expect(accepted == !(x["want_error"] as! Bool))
    }

    @Test("proofs from every (index, size) up to 40 leaves verify; any changed hash, index or size does not")
    func exhaustive() throws {
        let leaves = (0..<40).map { Array("leaf \($0)".utf8) }
        let tree = InMemoryTree(leaves: leaves)
        for size in 1...40 {
            let root = try Merkle.root(size: size, tree)
            for index in 0..<size {
                let proof = try Merkle.inclusionProof(leaf: index, size: size, tree)
                let leaf = Merkle.leafHash(leaves[index])
                #expect(Merkle.verifyInclusion(leaf: leaf, index: index, size: size, proof: proof, root: root))
                if index + 1 < size {
                    #expect(!Merkle.verifyInclusion(leaf: leaf, index: index + 1, size: size, proof: proof, root: root))
                }
                #expect(!Merkle.verifyInclusion(leaf: leaf, index: index, size: size, proof: proof + [root], root: root))
                if !proof.isEmpty {
                    #expect(!Merkle.verifyInclusion(leaf: leaf, index: index, size: size, proof: Array(proof.dropLast()), root: root))
                    var bent = proof
                    bent[0] = Merkle.leafHash(Array("x".utf8))
                    #expect(!Merkle.verifyInclusion(leaf: leaf, index: index, size: size, proof: bent, root: root))
                }
            }
            for from in 1..<size {
                let proof = try Merkle.consistencyProof(from: from, to: size, tree)
                let r1 = try Merkle.root(size: from, tree)
                #expect(Merkle.verifyConsistency(size1: from, size2: size, proof: proof, root1: r1, root2: root))
                #expect(!Merkle.verifyConsistency(size1: from, size2: size, proof: proof, root1: root, root2: r1))
                if proof.count > 1 {
                    #expect(!Merkle.verifyConsistency(size1: from, size2: size, proof: proof.reversed(), root1: r1, root2: root))
                }
            }
        }
    }
}

@Suite("Ed25519 (RFC 8032) and signed notes (Go sumdb/note, C2SP)")
struct SignatureTests {
    @Test("RFC 8032 §7.1: public key and signature", arguments: Vector.all("vectors/ed25519-rfc8032.json", "vectors"))
    func rfc8032(_ v: Vector) throws {
        let x = v.value
        let seed = unhex(x["secret_key"] as! String)
        let message = unhex(x["message"] as! String)
        #expect(try Ed25519.publicKey(seed: seed) == unhex(x["public_key"] as! String))
        let sig = try Ed25519.sign(message, seed: seed)
        #expect(sig == unhex(x["signature"] as! String))
        #expect(Ed25519.verify(signature: sig, message: message, publicKey: unhex(x["public_key"] as! String)))
        var bad = sig
        bad[0] ^= 1
        #expect(!Ed25519.verify(signature: bad, message: message, publicKey: unhex(x["public_key"] as! String)))
    }

    @Test("notes signed by other software: valid ones verify, the others are rejected", arguments: Vector.all("vectors/signed-note.json", "vectors"))
    func notes(_ v: Vector) throws {
        let x = v.value
        let valid = x["valid"] as! Bool
        var keys: [VerifierKey] = []
        if let k = x["verifier_key"] as? String { keys.append(try VerifierKey(parsing: k)) }
        for k in (x["verifier_keys"] as? [String]) ?? [] where !keys.contains(where: { $0.encoded == k }) {
            keys.append(try VerifierKey(parsing: k))
        }
        let bytes: [UInt8] = (x["note"] as? String).map { Array($0.utf8) } ?? unhex(x["note_hex"] as! String)
        let ok: Bool
        do {
            let note = try SignedNote(parsing: bytes)
            try note.verify(keys: keys)
            ok = true
        } catch {
            ok = false
        }
        #expect(ok == valid)
        if valid, let signer = x["signer_key"] as? String {
            // Our signer reproduces the published signature byte for byte.
            let key = try SignerKey(parsing: signer)
            var note = SignedNote(body: try SignedNote(parsing: bytes).body)
            try note.sign(with: key)
            #expect(Array(note.text.utf8) == bytes)
        }
    }

    @Test("malformed verifier keys are refused", arguments: (loadJSON("vectors/signed-note.json")["invalid_verifier_keys"] as! [[String: Any]]).map { $0["verifier_key"] as! String })
    func badKeys(_ k: String) {
        #expect(throws: KeyError.self) { try VerifierKey(parsing: k) }
    }
}

@Suite("keygen, checkpoint, prove, verify-proof: end to end, checked by the independent Python verifier")
struct ProofCLITests {
    static func setUp() -> (TempDir, String) {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let k = cli(["keygen", "--name", "example.org/nvidia-ai-factories", "--out", dir.file("k")])
        precondition(k.code == 0, k.stderr)
        return (dir, ledger)
    }

    @Test("every inclusion and consistency proof of the fixture ledger passes the independent check")
    func everyProof() throws {
        let (dir, ledger) = ProofCLITests.setUp()
        var checked = 0
        for size in [1, 2, 7, 16, 27, 28] {
            for seq in Set([1, size / 2 + 1, size]) {
                let r = cli(["prove", "--ledger", ledger, "--seq", "\(seq)", "--size", "\(size)", "--out", dir.file("p.json")])
                #expect(r.code == 0, "\(r.stderr)")
                let py = pythonCheck(["inclusion", dir.file("p.json"), ledger])
                #expect(py.code == 0, "seq \(seq) size \(size): \(py.stdout)")
                checked += 1
            }
            if size > 1 {
                for from in Set([1, size / 2, size - 1]) {
                    #expect(cli(["prove", "--ledger", ledger, "--from-size", "\(from)", "--size", "\(size)", "--out", dir.file("c.json")]).code == 0)
                    let py = pythonCheck(["consistency", dir.file("c.json"), ledger])
                    #expect(py.code == 0, "from \(from) size \(size): \(py.stdout)")
                    checked += 1
                }
            }
        }
        #expect(checked > 25)
    }

    @Test("checkpoints: signed, independently checked, and checked by verify; truncation and forks reported distinctly")
    func checkpoints() throws {
        let (dir, ledger) = ProofCLITests.setUp()
        let cp = dir.file("c1")
        #expect(cli(["checkpoint", "--ledger", ledger, "--key", dir.file("k.key"), "--out", cp]).code == 0)
        #expect(pythonCheck(["checkpoint", cp, dir.file("k.vkey"), ledger]).code == 0)
        #expect(cli(["verify", "--ledger", ledger, "--checkpoint", cp, "--key", dir.file("k.vkey")]).code == 0)
        // Appending keeps it valid.
        #expect(cli(["record", "-q", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston", "--date", "2025-09-01", "--source", "x"]).code == 0)
        #expect(cli(["verify", "--ledger", ledger, "--checkpoint", cp, "--key", dir.file("k.vkey")]).code == 0)
        // Truncation: a copy with 20 records.
        let text = String(decoding: bytes(ledger), as: UTF8.self).split(separator: "\n")
        let short = dir.write("short.jsonl", text.prefix(20).joined(separator: "\n") + "\n")
        let t = cli(["verify", "--ledger", short, "--checkpoint", cp, "--key", dir.file("k.vkey")])
        #expect(t.code == 1)
        #expect(t.stderr.contains("truncation or rollback"))
        // Fork: the same 20 records, then other (valid) records.
        #expect(cli(["record", "-q", "--ledger", short, "--type", "construction.started", "--subject", "foxconn-houston", "--date", "2025-09-09", "--source", "y"]).code == 0)
        // More records than the checkpoint commits to.
        #expect(cli(["record", "-q", "--ledger", short, "--file", dir.write("lots.jsonl", milestoneLines(ids: "lot-", 0..<fixtureEventCount))]).code == 0)
        let f = cli(["verify", "--ledger", short, "--checkpoint", cp, "--key", dir.file("k.vkey")])
        #expect(f.code == 1)
        #expect(f.stderr.contains("fork"))
        // Another key: rejected.
        #expect(cli(["keygen", "--name", "example.org/nvidia-ai-factories", "--out", dir.file("other")]).code == 0)
        let o = cli(["verify", "--ledger", ledger, "--checkpoint", cp, "--key", dir.file("other.vkey")])
        #expect(o.code == 1)
        #expect(o.stderr.contains("not signed by"))
    }

    @Test("a proof bundle verifies offline; every single-byte change to it is rejected")
    func bundles() throws {
        let (dir, ledger) = ProofCLITests.setUp()
        let cp = dir.file("c1")
        #expect(cli(["checkpoint", "--ledger", ledger, "--key", dir.file("k.key"), "--out", cp]).code == 0)
        let b = dir.file("b.json")
        let r = cli(["prove", "--ledger", ledger, "--seq", "9", "--bundle", "--checkpoint", cp, "--out", b])
        #expect(r.code == 0, "\(r.stderr)")
        #expect(cli(["verify-proof", "--bundle", b, "--key", dir.file("k.vkey")]).code == 0)
        // Change bytes across the whole bundle (every 5th, to keep the suite quick).
        let original = bytes(b)
        let copy = dir.file("t.json")
        var accepted: [Int] = []
        for i in stride(from: 0, to: original.count, by: 5) {
            var t = original
            let c = t[i]
            t[i] = c == 0x41 ? 0x42 : (c == 0x22 || c == 0x5C ? 0x41 : 0x41)
            if t[i] == c { continue }
            try t.write(to: URL(fileURLWithPath: copy))
            if cli(["verify-proof", "--bundle", copy, "--key", dir.file("k.vkey")]).code == 0 { accepted.append(i) }
        }
        #expect(accepted.isEmpty, "accepted changes at \(accepted)")
    }

    @Test("forged inclusion proofs are rejected: changed hash, index, size, extra, missing, swapped; checkpoint body changed")
    func forgedProofs() throws {
        let (dir, ledger) = ProofCLITests.setUp()
        let cp = dir.file("c1")
        #expect(cli(["checkpoint", "--ledger", ledger, "--key", dir.file("k.key"), "--out", cp]).code == 0)
        #expect(cli(["prove", "--ledger", ledger, "--seq", "9", "--out", dir.file("p.json")]).code == 0)
        let line = String(decoding: bytes(ledger), as: UTF8.self).split(separator: "\n")[8]
        let record = dir.write("line.json", String(line) + "\n")
        let vkey = dir.file("k.vkey")
        func check(_ proof: [String: Any], checkpoint: String? = nil) -> Int32 {
            let data = try! JSONSerialization.data(withJSONObject: proof, options: [.sortedKeys])
            try! data.write(to: URL(fileURLWithPath: dir.file("q.json")))
            return cli(["verify-proof", "--inclusion", dir.file("q.json"), "--record", record, "--checkpoint", checkpoint ?? cp, "--key", vkey]).code
        }
        let good = parseJSON(String(decoding: bytes(dir.file("p.json")), as: UTF8.self)) as! [String: Any]
        #expect(check(good) == 0)
        var hashes = good["hashes"] as! [String]
        #expect(hashes.count >= 3)
        var p = good
        p["seq"] = 10
        #expect(check(p) == 1)
        p = good
        p["size"] = 27
        #expect(check(p) == 1)
        p = good
        p["hashes"] = hashes + [hashes[0]]
        #expect(check(p) == 1)
        p = good
        p["hashes"] = Array(hashes.dropLast())
        #expect(check(p) == 1)
        p = good
        p["hashes"] = [hashes[1], hashes[0]] + hashes.dropFirst(2)
        #expect(check(p) == 1)
        for i in hashes.indices {
            var h = Array(hashes[i].utf8)
            h[3] = h[3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            var changed = hashes
            changed[i] = String(decoding: h, as: UTF8.self)
            p = good
            p["hashes"] = changed
            #expect(check(p) == 1, "hash \(i) changed and still accepted")
        }
        hashes = []
        p = good
        p["extra"] = 1
        #expect(check(p) == 1)
        // The checkpoint with an extra or a missing body line: its signature fails.
        let note = String(decoding: bytes(cp), as: UTF8.self)
        let extra = dir.write("extra.cp", note.replacingOccurrences(of: "\nhead ", with: "\nx y\nhead "))
        #expect(check(good, checkpoint: extra) == 1)
        let missing = dir.write("missing.cp", note.replacingOccurrences(of: #"head [0-9a-f]{64}\n"#, with: "", options: .regularExpression))
        #expect(check(good, checkpoint: missing) == 1)
    }

    @Test("private keys: mode 0600, refused when readable by others, never printed, never overwritten")
    func keyHandling() throws {
        let (dir, ledger) = ProofCLITests.setUp()
        let attrs = try FileManager.default.attributesOfItem(atPath: dir.file("k.key"))
        #expect((attrs[.posixPermissions] as! NSNumber).intValue == 0o600)
        let secret = String(decoding: bytes(dir.file("k.key")), as: UTF8.self)
        chmod(dir.file("k.key"), 0o644)
        let r = cli(["checkpoint", "--ledger", ledger, "--key", dir.file("k.key")])
        #expect(r.code == 74)
        #expect(r.stderr.contains("chmod 600"))
        let material = secret.split(separator: "+", maxSplits: 4)[4].trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(material.count == 44)
        #expect(!r.stderr.contains(material.prefix(16)))
        chmod(dir.file("k.key"), 0o600)
        #expect(cli(["keygen", "--name", "x", "--out", dir.file("k")]).code == 73)
        #expect(String(decoding: bytes(dir.file("k.key")), as: UTF8.self) == secret)
    }

    @Test("the tree file: incremental equals fresh, and a rewritten ledger is reported, not papered over")
    func treeFile() throws {
        let (dir, ledger) = ProofCLITests.setUp()
        let before = cli(["prove", "--ledger", ledger, "--seq", "3"]).stdout
        for i in 0..<5 {
            #expect(cli(["record", "-q", "--ledger", ledger, "--type", "production.milestone", "--milestone", "lot \(i)", "--subject", "foxconn-houston", "--date", "2025-09-09", "--source", "y"]).code == 0)
            _ = cli(["prove", "--ledger", ledger, "--seq", "1"])  // the tree catches up one record at a time
        }
        let incremental = cli(["prove", "--ledger", ledger, "--from-size", "10"]).stdout
        try FileManager.default.removeItem(atPath: dir.file("ai.tree"))
        #expect(cli(["prove", "--ledger", ledger, "--from-size", "10"]).stdout == incremental)
        #expect(!before.isEmpty)
        // Rewrite: replace the ledger by another one with the same number of records.
        let other = TempDir()
        let otherLedger = fixtureLedger(in: other)
        for i in 0..<5 {
            _ = cli(["record", "-q", "--ledger", otherLedger, "--type", "production.milestone", "--milestone", "other \(i)", "--subject", "foxconn-houston", "--date", "2025-09-09", "--source", "z"])
        }
        try bytes(otherLedger).write(to: URL(fileURLWithPath: ledger))
        let r = cli(["prove", "--ledger", ledger, "--seq", "1"])
        #expect(r.code == 1)
        #expect(r.stderr.contains("rewritten"))
        #expect(cli(["prove", "--ledger", ledger, "--seq", "1", "--rebuild"]).code == 0)
    }

    /// The tree stores subtrees of 256 leaves and more, rehashing smaller ones
    /// from the ledger, and builds large catch-ups on several workers: grow a
    /// ledger across block boundaries in steps (small catch-ups, then one over
    /// 1 MiB) and compare roots and proofs with an in-memory tree of its lines.
    @Test("the tree file across block boundaries: every root and sampled proofs equal an in-memory tree's")
    func treeAcrossBlocks() throws {
        let dir = TempDir()
        let ledger = dir.file("g.jsonl")
        #expect(cli(["init", "--name", "test/blocks", "--ledger", ledger]).code == 0)
        let lines = generatedEvents(3000, seed: 11).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        #expect(lines.count == 3000)
        var recorded = 0
        for step in [254, 1, 1, 300, 2444] {  // sizes 255, 256, 257, 557 (small steps), then 3001 (> 1 MiB)
            try (lines[recorded..<(recorded + step)].joined(separator: "\n") + "\n").write(toFile: dir.file("step.jsonl"), atomically: true, encoding: .utf8)
            #expect(cli(["record", "-q", "--ledger", ledger, "--file", dir.file("step.jsonl")]).code == 0)
            recorded += step
            #expect(cli(["prove", "--ledger", ledger, "--seq", "1"]).code == 0)  // the tree catches up
        }
        let ledgerLines = bytes(ledger).split(separator: 0x0A).map { Array($0) }
        #expect(ledgerLines.count == 3001)
        let reference = InMemoryTree(leaves: ledgerLines)
        func proof(_ args: [String]) -> [String: Any]? {
            let r = cli(["prove", "--ledger", ledger] + args)
            return try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        }
        func b64(_ d: [Digest]) -> [String] { d.map(\.base64) }
        for size in [1, 255, 256, 257, 511, 512, 513, 557, 1024, 2048, 2049, 3000, 3001] {
            let root = try Merkle.root(size: size, reference).base64
            for seq in Set([1, size, (size + 1) / 2, min(size, 256), min(size, 257)]) {
                let p = proof(["--seq", "\(seq)", "--size", "\(size)"])
                #expect(p?["root"] as? String == root, "size \(size)")
                #expect(p?["hashes"] as? [String] == b64(try Merkle.inclusionProof(leaf: seq - 1, size: size, reference)), "seq \(seq) size \(size)")
            }
            for from in Set([1, 255, 256, 257, size - 1]) where from >= 1 && from < size {
                let p = proof(["--from-size", "\(from)", "--size", "\(size)"])
                #expect(p?["hashes"] as? [String] == b64(try Merkle.consistencyProof(from: from, to: size, reference)), "from \(from) size \(size)")
            }
        }
        // A fresh build (on the workers) writes the same file as the steps did.
        let stepped = bytes(dir.file("g.tree"))
        try FileManager.default.removeItem(atPath: dir.file("g.tree"))
        #expect(cli(["prove", "--ledger", ledger, "--seq", "1"]).code == 0)
        #expect(bytes(dir.file("g.tree")) == stepped)
    }
}
