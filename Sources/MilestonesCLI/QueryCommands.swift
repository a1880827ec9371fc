import Foundation
import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

/// Where the read models are, and bringing them up to date.
struct ReadSide: ParsableArguments {
    @OptionGroup var location: LedgerLocation
    @Option(help: ArgumentHelp("The read models: a SQLite file, or postgresql://USER@HOST[:PORT]/DB[?sslmode=…] (default: $MILESTONES_DB, else the ledger's path with .sqlite).", valueName: "path|url"))
    var db: String?
    @Flag(help: "Rebuild the read models from the ledger (after a deliberate rewrite).") var rebuild = false
    @Flag(name: .customLong("read-only"), help: "Answer from the read models as they are (a replica): no catch-up, no ledger needed, nothing written; stderr says which seq they reflect.")
    var readOnly = false
    @Flag(help: "Tables: never cut a column, on a terminal too.") var wide = false

    func validate() throws {
        if readOnly && rebuild { throw ValidationError("--read-only and --rebuild: a read-only command writes nothing; drop one") }
    }

    /// Where the read models are: `--db`, else `MILESTONES_DB`, else the SQLite file beside the ledger.
    var modelsLocation: ReadModelsLocation {
        get throws { try ReadModelsLocation(db: db, ledger: location.path) }
    }

    /// The SQLite file (the working copy, for PostgreSQL) beside the ledger or named.
    var dbPath: String { (try? modelsLocation.workingPath(ledger: location.path)) ?? ReadModels.path(forLedger: location.path) }

    /// Opens the read models and catches them up with the ledger (progress on
    /// a terminal); read-only, says on stderr which record they reflect.
    func open() throws -> any ReadModelStore {
        if wide { wideTables = true }
        var progress: ProgressLine?
        let opened = try openReadModels(ledger: location.path, at: try modelsLocation, rebuild: rebuild, readOnly: readOnly) { size in
            guard isTerminal(2), size > 8 << 20 else { return nil }
            let p = ProgressLine(label: "catching up")
            progress = p
            return { p.update($0, of: $1) }
        }
        progress?.done()
        if let head = opened.readOnlyHead {
            printError("milestones: read-only: answering from the read models as of seq \(head.seq) (sha256 \(head.sha256.hex), recorded \(head.recordedAt))")
        }
        return opened.store
    }
}

/// `--as-of`, `--known-at` and `--published-by` (docs/cli.md, "Time travel").
struct TimeTravel: ParsableArguments {
    @Option(name: .customLong("as-of"), help: ArgumentHelp("The world as of this date (valid time; default: today, UTC); 2025-Q3 means its last day.", valueName: "YYYY-MM-DD"))
    var asOf: String?
    @Option(name: .customLong("known-at"), help: ArgumentHelp("Only what was recorded by then (transaction time; a date means the end of that day, UTC).", valueName: "date|time"))
    var knownAt: String?
    @Option(name: .customLong("published-by"), help: ArgumentHelp("Only what had been published by this date (an event's earliest source date, else the day it was recorded).", valueName: "YYYY-MM-DD"))
    var publishedBy: String?

    func validate() throws {
        if let publishedBy, CalendarDate(publishedBy) == nil {
            throw ValidationError("--published-by \(quoted(publishedBy)): not a calendar date; write YYYY-MM-DD, e.g. 2025-06-30")
        }
        if let asOf, PartialDate(asOf) == nil {
            throw ValidationError("--as-of \(quoted(asOf)): not a date; write YYYY-MM-DD, e.g. 2025-04-14 (or 2025-04, 2025-Q2, 2025: their last day)")
        }
        if let knownAt, knownTime(knownAt) == nil {
            throw ValidationError("--known-at \(quoted(knownAt)): not a date or UTC time; write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
        }
    }

    func knownTime(_ text: String) -> Timestamp? {
        if let t = Timestamp(text) { return t }
        return CalendarDate(text).map(Timestamp.endOfDay)
    }

    /// As of a partial date (2025-Q3) means as of its last day.
    var date: CalendarDate { asOf.flatMap(PartialDate.init)?.end ?? LedgerClock.now().date }

    func pointOfView(_ models: any ReadModelStore) throws -> PointOfView {
        PointOfView(asOf: date, knownSeq: try models.knownSeq(at: knownAt.flatMap(knownTime)),
                    publishedBy: publishedBy.flatMap(CalendarDate.init))
    }

    /// "as of D, as known at T, as published by P", for titles.
    func describe(_ pov: PointOfView) -> String {
        "as of \(pov.asOf)" + (knownAt.map { ", as known at \($0)" } ?? "") + (publishedBy.map { ", as published by \($0)" } ?? "")
    }
}

/// Subjects named on the command line must be known to the ledger: an
/// unknown one is a usage error naming the nearest known slug (exit 64).
func checkSubjects(_ names: [String], in models: any ReadModelStore) throws {
    guard !names.isEmpty else { return }
    let known = try models.subjects()
    for name in names where !known.contains(name) {
        var message = "no program or facility \(quoted(name)) in this ledger"
        if let near = nearest(name, among: known) { message += "; did you mean \(quoted(near))?" }
        throw UsageProblem(message: message)
    }
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
func nearest(_ word: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let old = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = old
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
    let w = Array(word)
    let best = candidates.map { ($0, distance(w, Array($0))) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, w.count / 3) else { return nil }
    return best.0
}

/// Streams rows made by `scan` over the subjects' summaries, in two halves
/// at once from 2,000 subjects (``ReadModels/inHalves(_:minimum:first:rest:)``):
/// the first half straight to stdout, the second into memory, written after
/// it; the output is the same bytes as one scan's. `MILESTONES_PARALLEL_FROM`
/// (for tests) sets another number of subjects.
func streamRows(_ models: any ReadModelStore, _ pov: PointOfView, columns: [String], format: QueryFormat,
                _ scan: @escaping (any ReadModelStore, SubjectRange, inout RowStream) throws -> Void) throws {
    let minimum = getenv("MILESTONES_PARALLEL_FROM").flatMap { Int(String(cString: $0)) } ?? 2_000
    var first = RowStream(columns: columns, format: format)
    let second = try models.inHalves(pov, minimum: minimum, first: { models, range in try scan(models, range, &first) }, rest: { reader, range in
        var rest = RowStream(columns: columns, format: format, fd: -1, continuing: true)
        try scan(reader, range, &rest)
        return rest
    })
    first.finish(followedBy: second)
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Where each facility stands (phase, since when) and each program's totals.",
        discussion: """
            A facility's phase as of D is its most advanced lifecycle phase reached by an
            event dated on or before D, unless its latest pause/resume/cancel says paused
            or cancelled (docs/events.md). JSON and CSV list facilities; --programs lists
            programs instead.

            Examples:
              milestones status
              milestones status --as-of 2025-04-14
              milestones status --as-of 2026-01-01 --known-at 2025-06-30 --format json
              milestones status --programs --format csv
            """
    )

    @OptionGroup var read: ReadSide
    @OptionGroup var time: TimeTravel
    @Option(help: "Output: table, json or csv (default: table on a terminal, else json).") var format: QueryFormat?
    @Flag(help: "List programs (JSON/CSV); a table always shows both.") var programs = false

    func run() throws {
        try reportingErrors {
            let models = try read.open()
            let pov = try time.pointOfView(models)
            let format = self.format ?? .automatic
            let facilityColumns = FacilityStatus.columns
            @inline(__always)
            func cell(_ f: FacilityRow, _ j: Int) -> Cell {
                func text(_ t: UnsafeBufferPointer<UInt8>?) -> Cell { t.map { .utf8($0) } ?? .null }
                switch j {
                case 0: return .utf8(f.subject)
                case 1: return text(f.name)
                case 2: return text(f.kind)
                case 3: return text(f.operatorName)
                case 4: return text(f.program)
                case 5: return .string(f.phase.rawValue)
                case 6: return .date(f.phaseDate)
                default: return .string(f.phasePrecision.rawValue)
                }
            }
            if format != .table, !programs {
                // Facilities as they come, their texts straight from the read models' rows.
                return try streamRows(models, pov, columns: facilityColumns, format: format) { models, part, stream in
                    try models.forEachFacility(pov, subjects: part) { f in stream.add { cell(f, $0) } }
                }
            }
            var facilities: [FacilityStatus] = []
            var facilityTable: [[Cell]] = []
            try models.forEachFacility(pov) { f in
                facilities.append(f.status)
                facilityTable.append(facilityColumns.indices.map { cell(f, $0).owned })
            }
            // Tables print a date as precisely as it is known (2026, 2026-Q1, 2026-03).
            let facilityRows = Rows(columns: facilityColumns, rows: facilityTable,
                                    display: facilities.map { f in [nil, nil, nil, nil, nil, nil, f.phaseDate.label(at: f.phasePrecision), nil] })
            let programList = try models.programs(pov, facilities: facilities)
            let programRows = Rows(
                columns: ["subject", "name", "sponsor", "committed", "currency", "qualifier", "horizon", "facilities", "by_phase"],
                rows: programList.map { p in
                    let byPhase = FacilityPhase.allCases.compactMap { ph in p.facilities[ph].map { "\(ph.rawValue):\($0)" } }
                    return [.string(p.subject), Cell(p.name), Cell(p.sponsor), Cell(p.committed?["value"]),
                            Cell(p.committed?["currency"]), Cell(p.committed?["qualifier"]), Cell(p.horizon),
                            .int(Int64(p.facilities.values.reduce(0, +))), .string(byPhase.joined(separator: " "))]
                },
                display: programList.map { p in [nil, nil, nil, humanAmount(p.committed), "", "", nil, nil, nil] })
            switch format {
            case .table:
                let when = time.describe(pov)
                var compact = facilityRows
                compact.columns = ["subject", "name", "phase", "since"]
                compact.rows = facilityRows.rows.map { [$0[0], $0[1], $0[5], $0[6]] }
                compact.display = facilityRows.display.map { [nil, nil, nil, $0[6]] }
                compact.write(.table, title: "Facilities \(when)")
                var p = programRows
                p.columns = ["subject", "committed", "horizon", "facilities", "by_phase"]
                p.rows = programRows.rows.map { [$0[0], $0[3], $0[6], $0[7], $0[8]] }
                p.display = programRows.display.map { [nil, $0[3], nil, nil, nil] }
                writeStdout("\n")
                p.write(.table, title: "Programs \(when)")
            default:
                (programs ? programRows : facilityRows).write(format)
            }
        }
    }
}

struct Targets: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "targets",
        abstract: "Every promised date with its state and slip: met, missed, undetermined, overdue or pending.",
        discussion: """
            A reported date covers its precision's interval: "2026" runs from 2026-01-01
            to 2026-12-31. actual … actual_latest is when the milestone happened; when only
            a later milestone is known, it implies this one (implied_by, actual_latest).
            met: certainly by due.latest; missed: certainly after; undetermined: the
            interval straddles due.latest, or only a later milestone after it shows it
            happened; overdue: nothing yet and due.latest has passed; pending: not yet due.
            slip_days is a certain bound: actual_latest − due.latest when met (at least
            that early), actual − due.latest when missed, today − due.latest when overdue;
            slip_from_original_days measures against the first target set; revisions
            counts the revisions after it (docs/events.md, "Targets").

            Examples:
              milestones targets
              milestones targets --state overdue --state missed
              milestones targets --as-of 2026-07-15 --format json
              milestones targets --published-by 2025-06-30
            """
    )

    @OptionGroup var read: ReadSide
    @OptionGroup var time: TimeTravel
    @Option(help: "Output: table, json or csv.") var format: QueryFormat?
    @Option(help: "Only targets in this state: met, missed, undetermined, overdue, pending (repeatable: any of them).") var state: [String] = []
    @Option(help: "Only this program or facility (repeatable: any of them).", completion: subjectCompletion) var subject: [String] = []

    func validate() throws {
        for s in state where TargetState(rawValue: s) == nil {
            throw ValidationError("--state \(quoted(s)): one of met, missed, undetermined, overdue, pending")
        }
    }

    func run() throws {
        try reportingErrors {
            let models = try read.open()
            try checkSubjects(subject, in: models)
            let pov = try time.pointOfView(models)
            let columns = TargetStatus.columns
            @inline(__always)
            func cell(_ t: TargetRow, _ j: Int) -> Cell {
                switch j {
                case 0: .utf8(t.subject)
                case 1: .utf8(t.milestone)
                case 2: .date(t.dueEarliest)
                case 3: .date(t.dueLatest)
                case 4: Cell(t.actual?.earliest)
                case 5: Cell(t.actual?.latest)
                case 6: Cell(t.actual?.impliedBy?.rawValue)
                case 7: .string(t.state.rawValue)
                case 8: Cell(t.slipDays)
                case 9: Cell(t.slipFromOriginalDays)
                default: .int(Int64(t.revisions))
                }
            }
            // Read once: each read of an option goes through ArgumentParser's generic wrapper.
            let (states, only) = (Set(state.compactMap(TargetState.init(rawValue:))), subject.map { Array($0.utf8) })
            func wanted(_ t: TargetRow) -> Bool {
                (states.isEmpty || states.contains(t.state)) && (only.isEmpty || only.contains { t.subject.elementsEqual($0) })
            }
            let format = self.format ?? .automatic
            if format != .table {
                // Targets as they come: no list of tens of thousands held.
                return try streamRows(models, pov, columns: columns, format: format) { models, part, stream in
                    try models.forEachTarget(pov, subjects: part) { t in
                        if wanted(t) { stream.add { cell(t, $0) } }
                    }
                }
            }
            var table: [[Cell]] = []
            var display: [[String?]] = []
            try models.forEachTarget(pov) { t in
                guard wanted(t) else { return }
                table.append([.utf8(t.subject), .utf8(t.milestone), .date(t.dueLatest), Cell(t.actual?.earliest), .string(t.state.rawValue),
                              Cell(t.slipDays), Cell(t.slipFromOriginalDays), .int(Int64(t.revisions))].map(\.owned))
                display.append([nil, nil, nil, t.actual.map(actualLabel), nil, nil, nil, nil])
            }
            Rows(columns: ["subject", "milestone", "due_latest", "actual", "state", "slip", "from_orig", "rev"], rows: table, display: display)
                .write(.table, title: "Targets " + time.describe(pov))
        }
    }
}

/// When a milestone happened, as a table prints it: its interval as precisely
/// as known (`2026`, `2026-Q1`, `2025-03-01…2025-04-30`), or what implies it.
func actualLabel(_ a: Rules.Actual) -> String {
    guard let earliest = a.earliest else { return "by \(a.latest) (implied by \(a.impliedBy?.rawValue ?? "?"))" }
    if earliest == a.latest { return earliest.description }
    for p in [DatePrecision.month, .quarter, .year] where earliest.end(at: p) == a.latest && p.admits(earliest) {
        return earliest.label(at: p)
    }
    return "\(earliest)…\(a.latest)"
}

/// `events` and `timeline`: JSON carries every field of each event as known
/// (sources included) with its record's seq and recorded_at; CSV the common
/// fields and the whole event as JSON; a table the date as precisely as known.
func writeEvents(_ lines: [EventLine], format: QueryFormat?, title: String) {
    switch format ?? .automatic {
    case .json:
        var out = "["
        for (k, e) in lines.enumerated() {
            var o = e.event
            o["seq"] = .int(Int64(e.seq))
            o["recorded_at"] = .string(e.recordedAt)
            // The common keys are always there (docs/cli.md, "Output"): missing values as null.
            for key in ["precision", "subject", "summary"] where o[key] == nil { o[key] = key == "precision" ? .string(e.precision) : .null }
            out += (k == 0 ? "" : ",") + JSONWriter.string(.object(o))
        }
        writeStdout(out + "]\n")
    case .csv:
        Rows(columns: ["seq", "recorded_at", "id", "type", "date", "precision", "subject", "summary", "event"],
             rows: lines.map { e in
                 [.int(Int64(e.seq)), .string(e.recordedAt), .string(e.id), .string(e.type), .string(e.date), .string(e.precision),
                  Cell(e.subject), Cell(e.summary), .string(JSONWriter.string(.object(e.event)))]
             }).write(.csv)
    case .table:
        Rows(columns: ["seq", "date", "type", "subject", "summary"],
             rows: lines.map { e in [.int(Int64(e.seq)), CalendarDate(e.date).map(Cell.date) ?? .string(e.date), .string(e.type), Cell(e.subject), Cell(e.summary)] },
             display: lines.map { e in
                 [nil, CalendarDate(e.date).map { $0.label(at: DatePrecision(rawValue: e.precision) ?? .day) }, nil, nil, nil]
             }).write(.table, title: title)
    }
}

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

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "One event: its record (seq, recorded_at, hash), its sources, its corrections.",
        discussion: """
            Examples:
              milestones show wistron-texas-announced
              milestones show nvda-us-ai-2025-04-14 --format json
              milestones show wistron-texas-investment-2025-05-16 --published-by 2025-05-08

            With --known-at or --published-by, the event as that view knew it: only the
            corrections and retraction recorded (and published) by then count.
            """
    )

    @OptionGroup var read: ReadSide
    @Option(name: .customLong("known-at"), help: ArgumentHelp("Only what was recorded by then (a date means the end of that day, UTC).", valueName: "date|time"))
    var knownAt: String?
    @Option(name: .customLong("published-by"), help: ArgumentHelp("Only what had been published by this date.", valueName: "YYYY-MM-DD"))
    var publishedBy: String?
    @Option(help: "Output: text or json.") var format: OutputFormat = .text
    @Argument(help: "The event's id.") var id: String

    func run() throws {
        try reportingErrors {
            let time = try TimeTravel.parse((knownAt.map { ["--known-at", $0] } ?? []) + (publishedBy.map { ["--published-by", $0] } ?? []))
            let models = try read.open()
            guard var d = try models.event(id: id) else {
                printError("milestones: no event \(quoted(id)) in \(read.location.path)")
                throw ExitCode(66)
            }
            if knownAt != nil || publishedBy != nil {
                // The view's own knowledge: its corrections and retraction, and the content they make.
                let pov = try time.pointOfView(models)
                func counts(_ seq: Int, _ event: JSONValue, _ at: String) -> Bool {
                    guard seq <= pov.knownSeq else { return false }
                    guard let by = pov.publishedBy, let o = event.objectValue, let t = Timestamp(at) else { return true }
                    return Rules.publicationDate(of: o, recordedAt: t) <= by
                }
                let known = try models.knownEvents(pov).first { $0.id == id }
                guard d.seq <= pov.knownSeq, known != nil || d.retraction.map({ counts($0.seq, $0.event, $0.recordedAt) }) == true else {
                    printError("milestones: event \(quoted(id)) is not known in this view (\(time.describe(pov)))")
                    throw ExitCode(66)
                }
                d.corrections = d.corrections.filter { counts($0.seq, $0.event, $0.recordedAt) }
                d.retraction = d.retraction.flatMap { counts($0.seq, $0.event, $0.recordedAt) ? $0 : nil }
                d.current = known.map { .object($0.object) }
            }
            let corrections: [JSONValue] = d.corrections.map { c in
                ["seq": .int(Int64(c.seq)), "id": .string(c.id), "recorded_at": .string(c.recordedAt), "event": c.event]
            }
            let retraction: JSONValue = d.retraction.map { r in
                ["seq": .int(Int64(r.seq)), "id": .string(r.id), "recorded_at": .string(r.recordedAt), "event": r.event]
            } ?? .null
            if format == .json {
                writeStdout(JSONWriter.string([
                    "seq": .int(Int64(d.seq)), "recorded_at": .string(d.recordedAt), "sha256": .string(d.sha256),
                    "event": d.recorded, "current": d.current ?? .null, "corrections": .array(corrections), "retraction": retraction,
                ]) + "\n")
                return
            }
            // Labels aligned on the longest field name.
            let width = max(9, (d.recorded.objectValue?.members.map { $0.key.count }.max() ?? 0) + 1)
            func label(_ s: String) -> String { "  " + s.padding(width) }
            var out = "event \(id)\n\(label("record"))seq \(d.seq), recorded \(d.recordedAt)\n\(label("sha256"))\(d.sha256)\n"
            if case .object(let e) = d.recorded {
                for m in e.members where m.key != "sources" {
                    out += "\(label(m.key))\(m.value.stringValue.map(safeText) ?? JSONWriter.string(m.value))\n"
                }
                for s in e["sources"]?.arrayValue ?? [] {
                    let o = s.objectValue
                    let parts = [o?["publisher"]?.stringValue, o?["published"]?.stringValue, o?["url"]?.stringValue, o?["title"]?.stringValue]
                    out += "\(label("source"))\(parts.compactMap { $0 }.map(safeText).joined(separator: ", "))\n"
                }
            }
            for c in d.corrections {
                let changes = c.event.objectValue?["changes"].map { JSONWriter.string($0) } ?? ""
                let reason = c.event.objectValue?["reason"]?.stringValue ?? ""
                out += "  corrected by \(c.id) (seq \(c.seq), \(c.recordedAt)): \(safeText(reason))\n    changes: \(safeText(changes))\n"
            }
            if let r = d.retraction {
                out += "  RETRACTED by \(r.id) (seq \(r.seq), \(r.recordedAt)): \(safeText(r.event.objectValue?["reason"]?.stringValue ?? ""))\n"
            }
            if d.current != nil, !d.corrections.isEmpty {
                out += "\(label("now"))\(safeText(JSONWriter.string(d.current!)))\n"
            }
            writeStdout(out)
        }
    }
}

func safeText(_ s: String) -> String { Rows(columns: [], rows: []).safe(s) }

extension String {
    func padding(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
}

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

/// Shell completion of event types (`milestones --generate-completion-script SHELL`).
let typeCompletion = CompletionKind.list(EventType.allCases.map(\.rawValue))

/// Shell completion of subjects: the slugs the ledger has announced (the
/// ledger named by --ledger on the line being completed, else
/// $MILESTONES_LEDGER, else milestones.jsonl), read straight from the file.
let subjectCompletion = CompletionKind.custom { words, _, prefix in
    var path = getenv("MILESTONES_LEDGER").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "milestones.jsonl"
    if let i = words.firstIndex(of: "--ledger"), i + 1 < words.count { path = words[i + 1] }
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    var subjects = Set<String>()
    for line in data.split(separator: 0x0A) {
        let text = String(decoding: line, as: UTF8.self)
        guard text.contains(#""type":"facility.announced""#) || text.contains(#""type":"program.announced""#),
              let r = text.range(of: #""subject":""#) else { continue }
        let rest = text[r.upperBound...]
        if let end = rest.firstIndex(of: "\"") { subjects.insert(String(rest[..<end])) }
    }
    return subjects.filter { $0.hasPrefix(prefix) }.sorted()
}
