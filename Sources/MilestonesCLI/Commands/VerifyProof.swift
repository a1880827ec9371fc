import ArgumentParser
import MilestoneCrypto
import CanonicalJSON
import MilestoneLedger
import MilestoneModel

extension Milestones {
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
}
