import Foundation
import MilestoneLedger  // not @testable: only what docs/library.md shows a user of the library
import Testing
import TestSupport

/// The examples of docs/library.md, written against the public API alone
/// (a plain `import MilestoneLedger`): if the API they show changes, this
/// stops compiling.
@Suite("docs/library.md: the library's public API")
struct LibraryAPITests {
    @Test("verify a ledger, prove a record's inclusion and a consistency, sign and check a checkpoint")
    func walkthrough() throws {
        let dir = TempDir()
        let path = fixtureLedger(in: dir)

        // Verify the whole ledger.
        let file = try LedgerFile.open(path, writable: false)
        let verified = try LedgerReader.verify(file)
        #expect(verified.records == fixtureEventCount + 1)
        #expect(verified.origin == "example.org/nvidia-ai-factories")

        // Prove record 3 in the whole tree, and the tree of 10 records in today's.
        let ledger = try ProvableLedger(path: path)
        let proof = try ledger.inclusionProof(seq: 3)
        #expect(proof.verify(recordLine: try ledger.recordLine(seq: 3)))
        #expect(!proof.verify(recordLine: try ledger.recordLine(seq: 4)))
        let consistency = try ledger.consistencyProof(from: 10)
        #expect(consistency.verify())

        // Sign a checkpoint with a new key, then check it and the proof as a stranger would.
        let key = try SignerKey.generate(name: "example.org/log")
        let note = try ledger.checkpoint(keys: [key])
        let checkpoint = try ProofCheck.checkpoint(note, keys: [key.verifier])
        #expect(checkpoint.size == verified.records && checkpoint.root == proof.root)
        try ProofCheck.inclusion(record: try ledger.recordLine(seq: 3), proof: proof, checkpoint: note, keys: [key.verifier])
        #expect(throws: (any Error).self) {
            try ProofCheck.inclusion(record: try ledger.recordLine(seq: 4), proof: proof, checkpoint: note, keys: [key.verifier])
        }

        // The checkpoint as text, parsed back, and a witness's quorum.
        let parsed = try SignedNote(parsing: Array(note.text.utf8))
        try parsed.verify(keys: [key.verifier])
        let other = try SignerKey.generate(name: "someone.else/log")
        #expect(throws: NoteError.self) { try parsed.verify(keys: [other.verifier]) }
        let witness = try SignerKey.generate(name: "witness.example", algorithm: .cosignatureV1)
        #expect(throws: NoteError.self) { try parsed.verifyQuorum(witnesses: [witness.verifier], quorum: 1) }

        // Digests and the Merkle tree's own functions.
        let leaf = Merkle.leafHash(try ledger.recordLine(seq: 3))
        #expect(Merkle.verifyInclusion(leaf: leaf, index: 2, size: proof.size, proof: proof.hashes, root: proof.root))
        #expect(Digest(hex: proof.root.hex) == proof.root)
    }

    @Test("a changed ledger fails verify with the record, line and reason")
    func tampered() throws {
        let dir = TempDir()
        let path = fixtureLedger(in: dir)
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"seq\":5,", with: "\"seq\":5,\"x\":1,")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            try LedgerReader.verify(try LedgerFile.open(path, writable: false))
        } throws: { error in
            guard case .notIntact(let failure, _)? = error as? LedgerError else { return false }
            return failure.line == 5 && !failure.isTornTail && failure.reason.contains("canonical")
        }
    }
}
