import ArgumentParser
import Foundation
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif

extension Milestones {
    struct Cosign: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cosign",
            abstract: "Act as a witness: check a published checkpoint and add a C2SP cosignature/v1 to it.",
            discussion: """
                Fetches the checkpoint from --log (a folder or an http(s) URL), checks the
                log's signature with --log-key, and checks from the tiles that it extends the
                last checkpoint this witness cosigned for the same origin (kept in --state;
                the first one is taken as it is). Then writes it, with a cosignature/v1 line
                by --key (a key from `keygen --witness`) added, to --out, and records it in
                --state. A fork or a rollback is exit 1: nothing written, the state unchanged,
                the evidence kept in STATE.cosign-evidence.json.

                Examples:
                  milestones keygen --witness --name witness.example.org/w1 --out w1
                  milestones cosign --log https://example.org/ai-factories --log-key signer.vkey \\
                      --key w1.key --state w1.state --out cosigned.checkpoint
                """
        )

        @Option(help: ArgumentHelp("The published log: a folder, or an http:// or https:// URL.", valueName: "source")) var log: String
        @Option(name: .customLong("log-key"), help: ArgumentHelp("The log's verifier key.", valueName: "log.vkey")) var logKey: String
        @Option(help: ArgumentHelp("The witness's private key (keygen --witness).", valueName: "witness.key")) var key: String
        @Option(help: ArgumentHelp("The witness's state: the last checkpoint cosigned per origin (created if missing).", valueName: "file"))
        var state: String
        @Option(help: ArgumentHelp("Where to write the cosigned checkpoint.", valueName: "file")) var out: String

        func run() throws {
            try reportingErrors {
                do {
                    let witness = try SignerKey.load(key)
                    guard witness.algorithm == .cosignatureV1 else {
                        throw TlogError("\(key): a log key, not a witness key; make one with `milestones keygen --witness`", exitCode: 65)
                    }
                    let vkey = try loadVerifierKeys([logKey])[0]
                    let src = try logSource(log)
                    do {
                        let c = try Follower.cosign(src, logKey: vkey, witness: witness, state: state, out: out,
                                                    time: UInt64(max(0, LedgerClock.now().seconds)))
                        let was = c.previous.map { "extends the \($0) records cosigned before" } ?? "first checkpoint seen for this origin"
                        print("cosigned \(c.checkpoint.origin) at \(c.checkpoint.size) records (\(was)): wrote \(out)")
                    } catch let e as Follower.FollowError {
                        let evidence = try Follower.keepWitnessEvidence(e, state: state, source: log)
                        printError("milestones: not cosigned, \(state) unchanged: \(e.reason); evidence kept in \(evidence)")
                        throw ExitCode(1)
                    }
                }
            }
        }
    }
}
