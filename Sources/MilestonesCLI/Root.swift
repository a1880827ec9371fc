import ArgumentParser
import Glibc
import MilestoneLedger
import MilestoneModel

/// `milestones`: the root of the command tree (docs/cli.md).
package struct Milestones: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "milestones",
        abstract: "An event-sourced, tamper-evident ledger of industrial megaproject milestones.",
        discussion: """
            Every fact is an immutable, sourced event in an append-only, SHA-256
            hash-chained JSON Lines file. The ledger is --ledger PATH, else
            $MILESTONES_LEDGER, else milestones.jsonl in the current folder.

            Examples:
              milestones init --name example.org/ai-factories
              milestones record --file events.jsonl
              milestones record --type construction.started --subject foxconn-houston \\
                  --date 2025-06-01 --source "Reuters,https://www.reuters.com/x"
              milestones verify
              milestones status --as-of 2025-04-14
              milestones targets --state overdue --published-by 2025-06-30
              milestones diff --from 2025-06-30 --by published
              milestones report --out report.html
              milestones types target.revised
              milestones keygen --name example.org/ai-factories --out signer
              milestones checkpoint --key signer.key --out today.checkpoint
              milestones verify --checkpoint today.checkpoint --key signer.vkey
              milestones prove --seq 12
              milestones publish site --key signer.key

            Three clocks on every query: --as-of (when it happened), --known-at (what
            the ledger had recorded by then), --published-by (what had been published
            by then). The contract: docs/events.md, docs/ledger-format.md, docs/cli.md.

            Exit codes: 0 ok, 1 not intact, 64 usage, 65 invalid input (nothing written),
            66 no such ledger or input, 69 PostgreSQL unreachable, 73 init on an existing
            file, 74 I/O error, 75 locked by another writer, 77 PostgreSQL refused the
            credentials.
            """,
        version: "milestones \(Milestones.version)",
        subcommands: [Init.self, Record.self, Verify.self, Repair.self, Status.self, Timeline.self, Targets.self, Events.self,
                      Show.self, ReplayCommand.self, Log.self, Diff.self, Report.self, Types.self, Keygen.self, CheckpointCommand.self, Prove.self,
                      VerifyProof.self, Publish.self, Mirror.self, Cosign.self]
    )

    /// The release's semantic version: the one place it is written (`--version` prints it).
    package static let version = "0.9.0"

    package init() {}

    /// Runs the command line; the executable's `main`.
    package static func runMain() {
        FileSystemCalls.installFaultFromEnvironment()
        ignoreFileSizeSignal()
        // A subcommand's own arguments, parsed by that command alone: building
        // the whole tree of commands first costs several ms, much of a
        // one-record run. Whatever it does not take (help, a usage error) goes
        // through the whole tree, for the same messages and exit codes.
        let args = Array(CommandLine.arguments.dropFirst())
        if let name = args.first, let command = configuration.subcommands.first(where: { $0._commandName == name }),
           var parsed = try? command.parseAsRoot(Array(args.dropFirst())) {
            do {
                try parsed.run()
            } catch {
                exit(withError: error)
            }
            return
        }
        // A mistyped subcommand: name the nearest one.
        if let name = args.first, !name.hasPrefix("-"), name != "help",
           !configuration.subcommands.contains(where: { $0._commandName == name }) {
            let names: [String] = configuration.subcommands.map { $0._commandName }
            let hint = nearest(name, among: names).map { "; did you mean \(quoted($0))?" } ?? ""
            printError("milestones: no command \(quoted(name))\(hint) (see `milestones --help`)")
            Glibc.exit(64)
        }
        main()
    }
}
