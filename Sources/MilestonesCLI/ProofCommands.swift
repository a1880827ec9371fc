import ArgumentParser
import MilestoneCrypto
import CanonicalJSON
import MilestoneLedger
import MilestoneModel

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create an Ed25519 signing key for checkpoints.",
        discussion: """
            Writes PREFIX.key (the private key, mode 0600, never over an existing file) and
            PREFIX.vkey (the verifier key to publish), in the encodings of Go's
            golang.org/x/mod/sumdb/note, so transparency-log witnesses and tools read them.

            --witness makes a witness's key instead: it signs C2SP cosignature/v1 lines
            (`milestones cosign`), and its verifier key carries the algorithm byte 0x04.

            A name is non-empty printable Unicode without whitespace or '+'.

            Examples:
              milestones keygen --name example.org/ai-factories --out ci-signer
              milestones keygen --witness --name witness.example.org/w1 --out w1
            """
    )

    @Option(help: "The key's name (printable, no whitespace or '+'): the log's origin, or the witness's name.") var name: String
    @Option(help: ArgumentHelp("Where to write PREFIX.key and PREFIX.vkey.", valueName: "prefix")) var out: String
    @Flag(help: "Make a witness key (cosignature/v1) rather than a log key.") var witness = false

    func run() throws {
        try reportingErrors {
            let key = try SignerKey.generate(name: name, algorithm: witness ? .cosignatureV1 : .ed25519)
            try key.write(prefix: out)
            print("wrote \(out).key (private, mode 0600) and \(out).vkey: \(key.verifier.encoded)")
        }
    }
}

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign a checkpoint of the whole ledger (C2SP tlog-checkpoint in a signed note).",
        discussion: """
            The body is the ledger's origin, its number of records, the base64 RFC 9162
            root of their Merkle tree, and `head <sha256 of the last record>`. Each --key
            adds a signature. Publish it: anyone can later check that the ledger still
            extends it (`milestones verify --checkpoint`) or that one record is in it
            (`prove`).

            Examples:
              milestones checkpoint --key ci-signer.key --out today.checkpoint
              milestones checkpoint --key a.key --key b.key
            """
    )

    @OptionGroup var location: LedgerLocation
    @Option(name: .customLong("key"), help: ArgumentHelp("A private key file (repeatable).", valueName: "prefix.key"))
    var keys: [String] = []
    @Option(help: ArgumentHelp("Write the checkpoint here instead of stdout.", valueName: "file")) var out: String?
    @Flag(help: "Rebuild the Merkle tree file from the ledger.") var rebuild = false

    func validate() throws {
        guard !keys.isEmpty else { throw ValidationError("give at least one --key PREFIX.key to sign with") }
    }

    func run() throws {
        try reportingErrors {
            let signers = try keys.map { try SignerKey.load($0) }
            let ledger = try ProvableLedger(path: location.path, rebuild: rebuild)
            let note = try ledger.checkpoint(keys: signers)
            if let out {
                try writeFile(out, note.text)
                print("wrote \(out): \(ledger.size) records, signed by \(signers.map(\.name).joined(separator: ", "))")
            } else {
                writeStdout(note.text)
            }
        }
    }
}

struct Prove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Print an RFC 9162 inclusion or consistency proof (JSON).",
        discussion: """
            --seq N: record N is in the tree of the first M records (--size; default all).
            --from-size A: the tree of A records is a prefix of the tree of B (--size).
            --bundle with --checkpoint: one self-contained file (the record line, its
            inclusion proof, the signed checkpoint) that `verify-proof --bundle` checks
            offline.

            Examples:
              milestones prove --seq 12
              milestones prove --from-size 28 --size 40
              milestones prove --seq 12 --bundle --checkpoint today.checkpoint \\
                  --out claim.json
            """
    )

    @OptionGroup var location: LedgerLocation
    @Option(help: "The record to prove (1-based).") var seq: Int?
    @Option(name: .customLong("from-size"), help: "The older tree size, for a consistency proof.") var fromSize: Int?
    @Option(help: "The tree size (default: every record; with --bundle, the checkpoint's).") var size: Int?
    @Flag(help: "Write a proof bundle (needs --seq and --checkpoint).") var bundle = false
    @Option(help: ArgumentHelp("The signed checkpoint to bundle.", valueName: "file")) var checkpoint: String?
    @Option(help: ArgumentHelp("Write to this file instead of stdout.", valueName: "file")) var out: String?
    @Flag(help: "Rebuild the Merkle tree file from the ledger.") var rebuild = false

    func validate() throws {
        guard (seq == nil) != (fromSize == nil) else { throw ValidationError("give either --seq N or --from-size A") }
        if bundle {
            guard seq != nil, checkpoint != nil else { throw ValidationError("--bundle needs --seq N and --checkpoint FILE") }
        }
    }

    func run() throws {
        try reportingErrors {
            let ledger = try ProvableLedger(path: location.path, rebuild: rebuild)
            let output: JSONValue
            do {
                if bundle, let seq, let checkpoint {
                    let note = try SignedNote(parsing: try readBytes(checkpoint))
                    let cp = try Checkpoint(parsing: note.body)
                    let verdict = try ledger.check(cp)
                    guard verdict == .consistent else { throw ProofError("\(checkpoint): \(verdict.message)") }
                    guard size == nil || size == cp.size else { throw UsageProblem(message: "--size must be the checkpoint's size \(cp.size)") }
                    let proof = try ledger.inclusionProof(seq: seq, size: cp.size)
                    output = ProofBundle(record: try ledger.recordLine(seq: seq), proof: proof, checkpoint: note).json
                } else if let seq {
                    output = try ledger.inclusionProof(seq: seq, size: size).json
                } else {
                    output = try ledger.consistencyProof(from: fromSize!, to: size).json
                }
            } catch let e as ProofError where !bundle {
                throw UsageProblem(message: e.message)
            }
            let text = JSONWriter.string(output) + "\n"
            if let out { try writeFile(out, text) } else { writeStdout(text) }
        }
    }
}

struct VerifyProof: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-proof",
        abstract: "Check a proof without the ledger: a bundle, an inclusion or a consistency proof.",
        discussion: """
            Every checkpoint must carry a valid signature by every --key. Exit 0 when the
            proof holds, 1 when it does not.

            Examples:
              milestones verify-proof --bundle claim.json --key ci-signer.vkey
              milestones verify-proof --inclusion proof.json --record line.json \\
                  --checkpoint today.checkpoint --key ci-signer.vkey
              milestones verify-proof --consistency proof.json \\
                  --checkpoint old.checkpoint --checkpoint new.checkpoint \\
                  --key ci-signer.vkey
            """
    )

    @Option(help: ArgumentHelp("A proof bundle from `prove --bundle`.", valueName: "file")) var bundle: String?
    @Option(help: ArgumentHelp("An inclusion proof from `prove --seq`.", valueName: "file")) var inclusion: String?
    @Option(help: ArgumentHelp("A consistency proof from `prove --from-size`.", valueName: "file")) var consistency: String?
    @Option(help: ArgumentHelp("The record line the inclusion proof is about.", valueName: "file")) var record: String?
    @Option(name: .customLong("checkpoint"), help: ArgumentHelp("A signed checkpoint (twice for consistency: old, then new).", valueName: "file"))
    var checkpoints: [String] = []
    @Option(name: .customLong("key"), help: ArgumentHelp("A verifier key file (repeatable).", valueName: "prefix.vkey"))
    var keys: [String] = []

    func validate() throws {
        guard [bundle, inclusion, consistency].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give one of --bundle, --inclusion or --consistency")
        }
        guard !keys.isEmpty else { throw ValidationError("give at least one --key PREFIX.vkey") }
        if inclusion != nil, record == nil || checkpoints.count != 1 {
            throw ValidationError("--inclusion needs --record FILE and one --checkpoint FILE")
        }
        if consistency != nil, checkpoints.count != 2 {
            throw ValidationError("--consistency needs two --checkpoint files: the older, then the newer")
        }
    }

    func run() throws {
        try reportingErrors {
            let vkeys = try loadVerifierKeys(keys)
            do {
                if let bundle {
                    let b = try ProofBundle(json: try readJSON(bundle))
                    try ProofCheck.inclusion(record: b.record, proof: b.proof, checkpoint: b.checkpoint, keys: vkeys)
                    let cp = try Checkpoint(parsing: b.checkpoint.body)
                    print("ok: record \(b.proof.seq) is in \(cp.origin) at size \(cp.size), signed by \(vkeys.map(\.name).joined(separator: ", "))")
                } else if let inclusion, let record {
                    let proof = try InclusionProof(json: try readJSON(inclusion))
                    var line = try readBytes(record)
                    if line.last == 0x0A { line.removeLast() }
                    try ProofCheck.inclusion(record: line, proof: proof, checkpoint: try SignedNote(parsing: try readBytes(checkpoints[0])), keys: vkeys)
                    print("ok: record \(proof.seq) is in the tree of \(proof.size) records")
                } else if let consistency {
                    let proof = try ConsistencyProof(json: try readJSON(consistency))
                    try ProofCheck.consistency(proof: proof, old: try SignedNote(parsing: try readBytes(checkpoints[0])),
                                               new: try SignedNote(parsing: try readBytes(checkpoints[1])), keys: vkeys)
                    print("ok: the tree of \(proof.size) records extends the tree of \(proof.fromSize)")
                }
            } catch let e as ProofError {
                printError("milestones: proof rejected: \(e)")
                throw ExitCode(1)
            } catch let e as NoteError {
                printError("milestones: proof rejected: checkpoint: \(e)")
                throw ExitCode(1)
            } catch let e as JSONError {
                printError("milestones: proof rejected: not JSON: \(e)")
                throw ExitCode(1)
            }
        }
    }
}

func readJSON(_ path: String) throws -> JSONValue {
    try JSONReader.parse(try readBytes(path))
}
