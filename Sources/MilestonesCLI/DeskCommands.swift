import ArgumentParser
import CanonicalJSON
import Foundation
import GRDB
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

/// `milestones types [TYPE]`: the event vocabulary, from the validator's own tables.
struct Types: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "types",
        abstract: "The event vocabulary: every type with its fields, or one type in full.",
        discussion: """
            The list comes from the same definitions the validator uses (docs/events.md).

            Examples:
              milestones types
              milestones types target.revised
              milestones types --format json
            """
    )

    @Option(help: "Output: text or json.") var format: OutputFormat = .text
    @Argument(help: "One event type, e.g. facility.announced.", completion: typeCompletion) var type: String?

    func validate() throws {
        if let type, EventType(rawValue: type) == nil {
            let hint = nearest(type, among: EventType.allCases.map(\.rawValue)).map { "; did you mean \(quoted($0))?" } ?? ""
            throw ValidationError("\(quoted(type)) is not an event type\(hint) (`milestones types` lists them)")
        }
    }

    static func phase(_ t: EventType) -> String? {
        if let p = FacilityPhase(reachedBy: t) { return "reaches the phase \(p.rawValue)" }
        switch t {
        case .facilityPaused: return "the facility is paused"
        case .facilityResumed: return "the facility is back in its lifecycle phase"
        case .facilityCancelled: return "the facility is cancelled"
        case .productionMilestone: return "timeline only"
        case .ledgerCreated: return "the first record of every ledger, written by init"
        default: return nil
        }
    }

    func run() throws {
        let types = type.flatMap(EventType.init(rawValue:)).map { [$0] } ?? EventType.allCases
        if format == .json {
            let list: [JSONValue] = types.map { t in
                .object(JSONObject(dictionary: [
                    "type": .string(t.rawValue),
                    "note": Types.phase(t).map { .string($0) } ?? .null,
                    "fields": .array(EventForm.describe(t).map { f in
                        .object(JSONObject(dictionary: ["name": .string(f.name), "required": .bool(f.required), "form": .string(f.form)]))
                    }),
                ]))
            }
            writeStdout(JSONWriter.string(.array(list)) + "\n")
            return
        }
        var out = ""
        for t in types {
            let own = EventForm.describe(t).filter { !["type", "id", "date", "precision", "subject", "sources", "summary"].contains($0.name) || t == .ledgerCreated }
            if type == nil {
                let fields = own.map { $0.required ? $0.name : "[\($0.name)]" }.joined(separator: " ")
                out += t.rawValue.padding(24) + fields + (Types.phase(t).map { "  — \($0)" } ?? "") + "\n"
                continue
            }
            out += "\(t.rawValue)" + (Types.phase(t).map { ": \($0)" } ?? "") + "\n"
            let all = EventForm.describe(t)
            let width = (all.map(\.name.count).max() ?? 0) + 2
            for f in all {
                out += "  " + f.name.padding(width) + (f.required ? "required  " : "optional  ") + f.form + "\n"
            }
        }
        if type == nil {
            out += "\nEvery type also has type, date, subject, sources (required), id, precision, summary.\n"
            out += "[field]: optional. `milestones types TYPE` shows one type in full.\n"
        }
        writeStdout(out)
    }
}

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

extension CalendarDate {
    /// A date after every date a ledger can hold (year 9999's last day).
    static let distantFuture = CalendarDate(year: 9999, month: 12, day: 31)!
}
