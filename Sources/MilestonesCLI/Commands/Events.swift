import Foundation
import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "events",
            abstract: "List events (corrections applied, retracted ones left out), with filters.",
            discussion: """
                A filter given several times keeps events that match any of its values.
                JSON lists every field of each event as known (corrections applied, sources
                included) with its record's seq and recorded_at.

                Examples:
                  milestones events --subject wistron-texas
                  milestones events --type target.set --type target.revised --since 2025-01-01 \\
                      --until 2025-12-31 --format csv
                  milestones events --published-by 2025-06-30 --format json
                """
        )

        @OptionGroup var read: ReadSide
        @OptionGroup var time: TimeTravel
        @Option(help: "Output: table, json or csv.") var format: QueryFormat?
        @Option(help: "Only this program or facility (repeatable: any of them).", completion: subjectCompletion) var subject: [String] = []
        @Option(help: "Only this event type (repeatable: any of them).", completion: typeCompletion) var type: [String] = []
        @Option(help: ArgumentHelp("Only events dated on or after this date.", valueName: "YYYY-MM-DD")) var since: String?
        @Option(help: ArgumentHelp("Only events dated on or before this date.", valueName: "YYYY-MM-DD")) var until: String?

        func validate() throws {
            for (name, v) in [("--since", since), ("--until", until)] {
                if let v, PartialDate(v) == nil { throw ValidationError("\(name) \(quoted(v)): not a date (YYYY-MM-DD, or 2025-09, 2025-Q3, 2025)") }
            }
            for t in type where EventType(rawValue: t) == nil {
                var message = "--type \(quoted(t)): not an event type"
                if let near = nearest(t, among: EventType.allCases.map(\.rawValue)) { message += "; did you mean \(quoted(near))?" }
                throw ValidationError(message)
            }
            if let since, let until, let a = PartialDate(since)?.start, let b = PartialDate(until)?.end, a > b {
                throw ValidationError("--since \(since) is after --until \(until): no date can be both")
            }
        }

        func run() throws {
            try reportingErrors {
                let models = try read.open()
                try checkSubjects(subject, in: models)
                let pov = try time.pointOfView(models)
                // A partial date covers its period: --since from its first day, --until to its last.
                writeEvents(try models.events(pov, subjects: subject, types: type, since: since.flatMap(PartialDate.init)?.start,
                                              until: until.flatMap(PartialDate.init)?.end),
                            format: format, title: "Events " + time.describe(pov))
            }
        }
    }
}
