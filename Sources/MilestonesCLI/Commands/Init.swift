import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif

extension Milestones {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create a ledger with its ledger.created record.",
            discussion: """
                Refuses to touch an existing file (exit 73). The origin names the ledger in
                checkpoints: a URL-like string without spaces.

                Example:
                  milestones init --name example.org/ai-factories --ledger ai.jsonl
                """
        )

        @OptionGroup var location: LedgerLocation
        @Option(help: ArgumentHelp("The ledger's origin, e.g. example.org/ai-factories.", valueName: "origin"))
        var name: String

        func run() throws {
            try reportingErrors {
                let head = try LedgerInit.create(path: location.path, name: name)
                print("created \(location.path): record 1 ledger.created, head \(head.hex)")
            }
        }
    }
}
