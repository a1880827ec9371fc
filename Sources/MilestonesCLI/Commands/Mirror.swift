import ArgumentParser
import Foundation
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif

extension Milestones {
    struct Mirror: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mirror",
            abstract: "Follow a published ledger (a folder or an http(s) URL) into the local --ledger, verified.",
            discussion: """
                Fetches the checkpoint and checks the log's signature (and, with --witness,
                the witnesses' cosignatures, --quorum K of them); checks that the published
                tree extends the local ledger (a consistency proof from the tiles), fetches
                only the records the local copy lacks, checks that they give the
                checkpoint's root and are valid records chained onto the local head, as
                `verify` does, and appends them, byte for byte. The local ledger is created
                when missing. The checkpoint it matches is kept beside it (X.mirror-checkpoint).

                On any mismatch (a fork, a rollback, a rewritten record, a bad tile, a bad
                signature) nothing is written, the evidence (the checkpoint the local copy
                matched and the one fetched) is kept in X.mirror-evidence.json, and the exit
                code is 1.

                Examples:
                  milestones mirror https://example.org/ai-factories --key signer.vkey --ledger ai.jsonl
                  milestones mirror /mnt/copy/log --key signer.vkey
                  milestones mirror https://example.org/log --key signer.vkey \\
                      --witness w1.vkey --witness w2.vkey --quorum 1
                """
        )

        @Argument(help: ArgumentHelp("The published log: a folder, or an http:// or https:// URL.", valueName: "source")) var source: String
        @OptionGroup var location: LedgerLocation
        @Option(help: ArgumentHelp("The log's verifier key.", valueName: "log.vkey")) var key: String
        @Option(name: .customLong("witness"), help: ArgumentHelp("A witness's verifier key (repeatable).", valueName: "w.vkey"))
        var witnesses: [String] = []
        @Option(help: ArgumentHelp("How many --witness cosignatures are required (default: all).", valueName: "k")) var quorum: Int?

        func validate() throws {
            if let quorum {
                guard !witnesses.isEmpty else { throw ValidationError("--quorum goes with --witness W.vkey (repeatable)") }
                guard quorum >= 1, quorum <= witnesses.count else {
                    throw ValidationError("--quorum must be between 1 and the number of --witness keys (\(witnesses.count))")
                }
            }
        }

        func run() throws {
            try reportingErrors {
                do {
                    let vkey = try loadVerifierKeys([key])[0]
                    let wkeys = try loadVerifierKeys(witnesses)
                    let src = try logSource(source)
                    do {
                        let r = try Follower.mirror(src, ledger: location.path, key: vkey, witnesses: wkeys, quorum: quorum)
                        if r.from == r.to {
                            print("up to date: \(location.path) holds the \(r.to) records of \(r.origin)")
                        } else {
                            print("mirrored \(r.origin): records \(r.from + 1)…\(r.to) appended to \(location.path), verified")
                        }
                    } catch let e as Follower.FollowError {
                        let evidence = try Follower.keepEvidence(e, ledger: location.path, source: source)
                        printError("milestones: mirror refused, \(location.path) left as it was: \(e.reason); evidence kept in \(evidence) (report it to the log's operator)")
                        throw ExitCode(1)
                    }
                }
            }
        }
    }
}
