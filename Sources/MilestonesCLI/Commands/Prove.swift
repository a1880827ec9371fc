import ArgumentParser
import MilestoneCrypto
import CanonicalJSON
import MilestoneLedger
import MilestoneModel

extension Milestones {
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
}
