import Foundation
import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
    struct ReplayCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract: "Write the read models as of a chosen time into a new self-contained SQLite file.",
            discussion: """
                The file holds the tables facilities, programs, targets, timeline and sources
                as the ledger saw the world as of --as-of, knowing what was recorded by
                --known-at (and published by --published-by), and a meta table saying so.
                Open it in sqlite3 or Datasette.

                Examples:
                  milestones replay --as-of 2025-04-14 --out april.sqlite
                  milestones replay --as-of 2026-07-15 --known-at 2025-06-30 \\
                      --out then.sqlite --force
                """
        )

        @OptionGroup var read: ReadSide
        @OptionGroup var time: TimeTravel
        @Option(help: ArgumentHelp("The new SQLite file.", valueName: "file.sqlite")) var out: String
        @Flag(help: "Replace an existing file.") var force = false

        func run() throws {
            try reportingErrors {
                let models = try read.open()
                let pov = try time.pointOfView(models)
                try models.replay(to: out, pov, overwrite: force)
                print("wrote \(out): the ledger as of \(pov.asOf), knowing records 1…\(pov.knownSeq)")
            }
        }
    }
}
