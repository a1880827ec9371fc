import ArgumentParser
import CanonicalJSON
import Foundation
import GRDB
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
    /// `milestones log`: the records in ledger order, newest first, like `git log`.
    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "log",
            abstract: "The records as appended (seq, recorded_at, type, subject, id, summary), newest first.",
            discussion: """
                --since and --until select by the time each record was appended (recorded_at,
                a date meaning the whole day, UTC). --limit N keeps the newest N; --reverse
                lists the oldest first.

                Examples:
                  milestones log --limit 10
                  milestones log --since 2026-12-01 --format csv
                  milestones log --reverse --format json
                """
        )

        @OptionGroup var read: ReadSide
        @Option(help: "Output: table, json or csv.") var format: QueryFormat = .table
        @Option(help: ArgumentHelp("Only records appended at or after this time.", valueName: "date|time")) var since: String?
        @Option(help: ArgumentHelp("Only records appended at or before this time.", valueName: "date|time")) var until: String?
        @Option(help: "At most this many records (the newest).") var limit: Int?
        @Flag(help: "Oldest first.") var reverse = false

        func validate() throws {
            if let since, Log.time(since, endOfDay: false) == nil { throw ValidationError("--since \(quoted(since)): write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ") }
            if let until, Log.time(until, endOfDay: true) == nil { throw ValidationError("--until \(quoted(until)): write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ") }
            if let s = since.flatMap({ Log.time($0, endOfDay: false) }), let u = until.flatMap({ Log.time($0, endOfDay: true) }), s > u {
                throw ValidationError("--since \(since!) is after --until \(until!): no record can be both")
            }
            if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
        }

        static func time(_ text: String, endOfDay: Bool) -> Timestamp? {
            if let t = Timestamp(text) { return t }
            return CalendarDate(text).map { endOfDay ? Timestamp.endOfDay($0) : Timestamp(seconds: Int64($0.days) * 86_400) }
        }

        func run() throws {
            try reportingErrors {
                let models = try read.open()
                let records = try models.log(since: since.flatMap { Log.time($0, endOfDay: false) },
                                             until: until.flatMap { Log.time($0, endOfDay: true) }, limit: limit, newestFirst: !reverse)
                Rows(columns: ["seq", "recorded_at", "type", "subject", "id", "summary"],
                     rows: records.map { r in [.int(Int64(r.seq)), .string(r.recordedAt), .string(r.type), Cell(r.subject), .string(r.id), Cell(r.summary)] })
                    .write(format, title: "Log of \(read.location.path)" + (reverse ? ", oldest first" : ", newest first"))
            }
        }
    }
}
