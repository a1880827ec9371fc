import ArgumentParser
import CanonicalJSON
import Foundation
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
    /// `milestones report --out FILE.html`: one self-contained page (no network,
    /// no scripts, no external fonts) with an SVG timeline per facility, the
    /// program summary and the targets table, for any point of view.
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report",
            abstract: "Write a self-contained HTML report: an SVG timeline per facility, the programs, the targets.",
            discussion: """
                Each milestone is drawn at its date, as wide as its precision (a month, a quarter,
                a year); each target window is a band, earlier windows faded behind the current
                one; slips, overdue spans and undetermined outcomes are marked; every mark links
                to its first source and names all of them when hovered. The page needs no
                network, prints on paper and reads on a phone. It honours --as-of, --known-at
                and --published-by.

                Examples:
                  milestones report --out report.html
                  milestones report --published-by 2025-06-30 --out public-mid-2025.html
                  milestones report --as-of 2026-07-15 --known-at 2025-12-31 --out then.html --force
                """
        )

        @OptionGroup var read: ReadSide
        @OptionGroup var time: TimeTravel
        @Option(help: ArgumentHelp("The HTML file to write.", valueName: "file.html")) var out: String
        @Flag(help: "Replace an existing file.") var force = false

        func run() throws {
            try reportingErrors {
                if FileManager.default.fileExists(atPath: out), !force { throw LedgerError.exists(path: out) }
                let models = try read.open()
                let pov = try time.pointOfView(models)
                let progress = isTerminal(2) ? ProgressLine(label: "report") : nil
                progress?.update(0, of: 2)
                let events = try models.knownEvents(pov)
                progress?.update(1, of: 2)
                let head = try models.head()
                let page = ReportPage(events: events, pov: pov, view: time.describe(pov), ledger: read.location.path,
                                      head: head.map { "record \($0.seq), sha256 \($0.sha256.hex)" } ?? "empty").html()
                progress?.done()
                // Written whole, then moved into place: a reader never sees half a report.
                let temp = out + ".tmp-\(getpid())"
                do {
                    try Data(page.utf8).write(to: URL(fileURLWithPath: temp))
                    guard rename(temp, out) == 0 else { throw LedgerError.io(path: out, operation: "rename", errno: errno) }
                } catch let e as LedgerError {
                    try? FileManager.default.removeItem(atPath: temp)
                    throw e
                } catch {
                    try? FileManager.default.removeItem(atPath: temp)
                    throw LedgerError.io(path: out, operation: "write", errno: EIO)
                }
                let facilities = Replay.facilities(events, asOf: pov.asOf).count
                print("wrote \(out): \(facilities) facilit\(facilities == 1 ? "y" : "ies"), \(time.describe(pov))")
            }
        }
    }
}
