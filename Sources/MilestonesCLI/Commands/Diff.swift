import ArgumentParser
import CanonicalJSON
import Foundation
import GRDB
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
    /// `milestones diff`: what changed in the answers between two knowledge times.
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "What changed in the answers between two knowledge times: events, status rows, targets.",
            discussion: """
                Compares what was known at --from with what was known at --to (default: now),
                about the world as of --as-of (default: today). --by recorded (the default)
                reads the times as transaction time, when the ledger learned each fact;
                --by published as publication time, what the sources had published by then.
                Lists events added, corrected (field by field) and retracted, then the status
                rows and targets whose values changed.

                Examples:
                  milestones diff --from 2026-12-01
                  milestones diff --from 2025-06-30 --to 2025-12-31 --by published
                  milestones diff --from 2025-06-30 --by published --format json
                """
        )

        enum Clock: String, ExpressibleByArgument, CaseIterable { case recorded, published }

        @OptionGroup var read: ReadSide
        @Option(help: ArgumentHelp("The earlier knowledge time.", valueName: "date|time")) var from: String
        @Option(help: ArgumentHelp("The later knowledge time (default: now, everything).", valueName: "date|time")) var to: String?
        @Option(help: "Which clock --from and --to are on: recorded (transaction time) or published.") var by: Clock = .recorded
        @Option(name: .customLong("as-of"), help: ArgumentHelp("The world as of this date (default: today, UTC).", valueName: "YYYY-MM-DD"))
        var asOf: String?
        @Option(help: "Output: table, json or csv.") var format: QueryFormat = .table

        func validate() throws {
            for (name, value) in [("--from", from), ("--to", to)] {
                guard let value else { continue }
                let ok = by == .published ? CalendarDate(value) != nil : (Timestamp(value) != nil || CalendarDate(value) != nil)
                if !ok { throw ValidationError("\(name) \(quoted(value)): write YYYY-MM-DD" + (by == .recorded ? " or YYYY-MM-DDTHH:MM:SSZ" : "")) }
            }
            if let asOf, PartialDate(asOf) == nil { throw ValidationError("--as-of \(quoted(asOf)): not a date (YYYY-MM-DD, or 2025-09, 2025-Q3, 2025: their last day)") }
            if let to, let a = Diff.time(from), let b = Diff.time(to), a > b {
                throw ValidationError("--from \(from) is after --to \(to): give the earlier time first")
            }
        }

        /// A knowledge time as a timestamp (a date: the end of that day), for comparing --from and --to.
        static func time(_ text: String) -> Timestamp? {
            Timestamp(text) ?? CalendarDate(text).map(Timestamp.endOfDay)
        }

        func run() throws {
            try reportingErrors {
                let models = try read.open()
                let date = asOf.flatMap(PartialDate.init)?.end ?? LedgerClock.now().date
                func view(_ t: String?) throws -> PointOfView {
                    switch by {
                    case .recorded:
                        let time = t.map { Timestamp($0) ?? Timestamp.endOfDay(CalendarDate($0)!) }
                        return PointOfView(asOf: date, knownSeq: try models.knownSeq(at: time))
                    case .published:
                        return PointOfView(asOf: date, knownSeq: try models.knownSeq(at: nil), publishedBy: t.flatMap(CalendarDate.init) ?? .distantFuture)
                    }
                }
                let diff = KnowledgeDiff.between(try models.knownEvents(try view(from)), try models.knownEvents(try view(to)), asOf: date)
                let title = "Changes \(by == .recorded ? "recorded" : "published") between \(from) and \(to ?? "now"), about the world as of \(date)"
                write(diff, title: title)
            }
        }

        func write(_ diff: KnowledgeDiff, title: String) {
            func value(_ v: JSONValue?) -> JSONValue { v ?? .null }
            func fields(_ f: [KnowledgeDiff.FieldChange]) -> JSONValue {
                .object(JSONObject(dictionary: Dictionary(uniqueKeysWithValues: f.map { ($0.field, .object(JSONObject(dictionary: ["from": value($0.before), "to": value($0.after)]))) })))
            }
            switch format {
            case .json:
                let events: [JSONValue] = diff.events.map { e in
                    .object(JSONObject(dictionary: ["change": .string(e.change.rawValue), "id": .string(e.id), "type": .string(e.type),
                                                    "subject": .string(e.subject), "fields": fields(e.fields)]))
                }
                func rows(_ r: [KnowledgeDiff.RowChange]) -> JSONValue {
                    .array(r.map { c in
                        .object(JSONObject(dictionary: ["change": .string(c.change.rawValue), "subject": .string(c.subject),
                                                        "milestone": c.milestone.map { .string($0) } ?? .null, "fields": fields(c.fields)]))
                    })
                }
                writeStdout(JSONWriter.string(.object(JSONObject(dictionary: [
                    "events": .array(events), "status": rows(diff.status), "targets": rows(diff.targets),
                ]))) + "\n")
            case .csv, .table:
                var lines: [[Cell]] = []
                func text(_ v: JSONValue?) -> Cell {
                    guard let v, v != .null else { return .null }
                    return v.stringValue.map { .string($0) } ?? .string(JSONWriter.string(v))
                }
                for e in diff.events {
                    // Added and retracted events: one line each; corrections: one line a field.
                    if e.change == .corrected {
                        for f in e.fields { lines.append([.string("event"), .string(e.change.rawValue), .string(e.subject), .string(e.id), .string(f.field), text(f.before), text(f.after)]) }
                    } else {
                        // Its summary on the side it is known on: after when added, before when retracted.
                        let summary = e.fields.first { $0.field == "summary" }.flatMap { e.change == .added ? $0.after : $0.before }
                        let (before, after) = e.change == .added ? (Cell.null, text(summary)) : (text(summary), Cell.null)
                        lines.append([.string("event"), .string(e.change.rawValue), .string(e.subject), .string(e.id), .string(e.type), before, after])
                    }
                }
                for (kind, rows) in [("status", diff.status), ("target", diff.targets)] {
                    for r in rows {
                        let what = r.milestone ?? ""
                        if r.change == .changed {
                            for f in r.fields { lines.append([.string(kind), .string(r.change.rawValue), .string(r.subject), .string(what), .string(f.field), text(f.before), text(f.after)]) }
                        } else {
                            let key = kind == "status" ? "phase" : "state"
                            let f = r.fields.first { $0.field == key }
                            lines.append([.string(kind), .string(r.change.rawValue), .string(r.subject), .string(what), .string(key), text(f?.before), text(f?.after)])
                        }
                    }
                }
                Rows(columns: ["what", "change", "subject", "id_or_milestone", "field", "before", "after"], rows: lines)
                    .write(format, title: title)
            }
        }
    }
}
