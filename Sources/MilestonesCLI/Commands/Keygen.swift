import ArgumentParser
import MilestoneCrypto
import CanonicalJSON
import MilestoneLedger
import MilestoneModel

extension Milestones {
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
}
