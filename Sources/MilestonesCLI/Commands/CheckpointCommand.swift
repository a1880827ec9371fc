import ArgumentParser
import MilestoneCrypto
import CanonicalJSON
import MilestoneLedger
import MilestoneModel

extension Milestones {
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
}
