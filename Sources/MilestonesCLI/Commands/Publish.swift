import ArgumentParser
import Foundation
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif

extension Milestones {
    /// `publish`, `mirror`, `cosign`: the ledger as C2SP tlog-tiles, followed by
    /// readers and witnessed (docs/ledger-format.md, "Publishing").
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "publish",
            abstract: "Write the ledger as a C2SP tlog-tiles log (static files) under DIR, with a signed checkpoint.",
            discussion: """
                Writes DIR/tile/<L>/<N>[.p/<W>] (Merkle tiles), DIR/tile/entries/<N>[.p/<W>]
                (the record lines) and, last, DIR/checkpoint signed with --key. Run it again
                after recording more: full tiles already there are checked, never rewritten;
                new tiles and partial ones are written, then the checkpoint, each through a
                temporary file and a rename, so a reader never sees a checkpoint whose tiles
                are missing. Serve DIR with any web server; readers follow it with `mirror`.

                Examples:
                  milestones publish site/log --key signer.key
                  milestones publish /srv/www/ai-factories --key signer.key --ledger ai.jsonl
                """
        )

        @Argument(help: ArgumentHelp("The folder to write (created if missing).", valueName: "dir")) var dir: String
        @OptionGroup var location: LedgerLocation
        @Option(name: .customLong("key"), help: ArgumentHelp("The log's private key (repeatable).", valueName: "log.key"))
        var keys: [String] = []

        func validate() throws {
            guard !keys.isEmpty else { throw ValidationError("give --key LOG.key to sign the checkpoint with") }
        }

        func run() throws {
            try reportingErrors {
                do {
                    let signers = try keys.map { try SignerKey.load($0) }
                    let ledger = try ProvableLedger(path: location.path)
                    // Records written into tiles so far, on a terminal only.
                    let progress = isTerminal(2) ? ProgressLine(label: "publishing") : nil
                    defer { progress?.done() }
                    let r = try Publisher.publish(ledger, to: dir, keys: signers, progress: progress.map { p in { p.update($0, of: $1) } }) {
                        // Fault injection for the crash tests (not for production use).
                        if getenv("MILESTONES_FAULT").map({ String(cString: $0) }) == "publish-before-checkpoint" { _exit(137) }
                    }
                    print("published \(r.size) records to \(dir): \(r.written) files written, \(r.kept) full tiles already there and unchanged; checkpoint last")
                }
            }
        }
    }
}
