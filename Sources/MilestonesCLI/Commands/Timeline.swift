import Foundation
import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
    struct Timeline: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "timeline",
            abstract: "The dated milestones, in date order (of one program or facility, or all).",
            discussion: """
                Examples:
                  milestones timeline foxconn-houston
                  milestones timeline --as-of 2025-12-31 --known-at 2025-06-30
                """
        )

        @OptionGroup var read: ReadSide
        @OptionGroup var time: TimeTravel
        @Option(help: "Output: table, json or csv.") var format: QueryFormat?
        @Argument(help: "A program or facility slug.", completion: subjectCompletion) var subject: String?

        func run() throws {
            try reportingErrors {
                let models = try read.open()
                try checkSubjects(subject.map { [$0] } ?? [], in: models)
                let pov = try time.pointOfView(models)
                writeEvents(try models.timeline(pov, subject: subject), format: format,
                            title: "Timeline\(subject.map { " of \($0)" } ?? "") " + time.describe(pov))
            }
        }
    }
}
