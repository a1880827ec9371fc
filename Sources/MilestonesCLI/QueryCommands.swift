import Foundation
import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

/// Where the read models are, and bringing them up to date.
struct ReadSide: ParsableArguments {
    @OptionGroup var location: LedgerLocation
    @Option(help: ArgumentHelp("The read-model database (default: the ledger's path with .sqlite).", valueName: "path"))
    var db: String?
    @Flag(help: "Rebuild the read models from the ledger (after a deliberate rewrite).") var rebuild = false

    var dbPath: String { db ?? ReadModels.path(forLedger: location.path) }

    /// Opens the read models and catches them up with the ledger (progress on a terminal).
    func open() throws -> ReadModels {
        let file = try LedgerFile.open(location.path, writable: false)
        try file.lock(exclusive: false, wait: 10)
        let size = try file.size()
        file.unlock()
        let models = try ReadModels(path: dbPath)
        let progress = isTerminal(2) && size > 8 << 20 ? ProgressLine(label: "catching up") : nil
        try models.catchUp(file, upTo: size, rebuild: rebuild, progress: progress.map { p in { p.update($0, of: $1) } })
        progress?.done()
        return models
    }
}

/// `--as-of` and `--known-at` (cli.md, "Time travel").
struct TimeTravel: ParsableArguments {
    @Option(name: .customLong("as-of"), help: ArgumentHelp("The world as of this date (valid time; default: today, UTC).", valueName: "YYYY-MM-DD"))
    var asOf: String?
    @Option(name: .customLong("known-at"), help: ArgumentHelp("Only what was recorded by then (transaction time; a date means the end of that day, UTC).", valueName: "date|time"))
    var knownAt: String?

    func validate() throws {
        if let asOf, CalendarDate(asOf) == nil {
            throw ValidationError("--as-of \(quoted(asOf)): not a calendar date; write YYYY-MM-DD, e.g. 2025-04-14")
        }
        if let knownAt, knownTime(knownAt) == nil {
            throw ValidationError("--known-at \(quoted(knownAt)): not a date or UTC time; write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ")
        }
    }

    func knownTime(_ text: String) -> Timestamp? {
        if let t = Timestamp(text) { return t }
        return CalendarDate(text).map(Timestamp.endOfDay)
    }

    var date: CalendarDate { asOf.flatMap(CalendarDate.init) ?? LedgerClock.now().date }

    func pointOfView(_ models: ReadModels) throws -> PointOfView {
        PointOfView(asOf: date, knownSeq: try models.knownSeq(at: knownAt.flatMap(knownTime)))
    }
}

/// Streams rows made by `scan` over the subjects' summaries in two halves at
/// once: the first on this thread, straight to stdout; the second on another
/// thread, through its own connection, into memory, written after the first.
/// From 2,000 subjects (`MILESTONES_PARALLEL_FROM`, for tests, sets another
/// number, and cuts at the middle summary rather than at the stored split);
/// the output is the same bytes as one scan's.
func streamRows(_ models: ReadModels, columns: [String], format: QueryFormat,
                _ scan: @escaping (ReadModels, SubjectRange, inout RowStream) throws -> Void) throws {
    var first = RowStream(columns: columns, format: format)
    let parts = try models.halves(minimum: getenv("MILESTONES_PARALLEL_FROM").flatMap { Int(String(cString: $0)) } ?? 2_000)
    guard parts.count == 2 else {
        try scan(models, .all, &first)
        return first.finish()
    }
    let reader = try ReadModels(readerOf: models)
    let job = BackgroundJob {
        var second = RowStream(columns: columns, format: format, fd: -1, continuing: true)
        try scan(reader, parts[1], &second)
        return second
    }
    try scan(models, parts[0], &first)
    first.finish(followedBy: try job.result())
}

/// Work on another thread, and its result when it is done.
final class BackgroundJob<T>: @unchecked Sendable {
    private var outcome: Result<T, Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping () throws -> T) {
        // The work and its captures are this job's alone until `result()`.
        nonisolated(unsafe) let work = work
        Thread.detachNewThread { [self] in
            outcome = Result(catching: work)
            done.signal()
        }
    }

    /// Waits for the work (its writes are seen once the semaphore is passed).
    func result() throws -> T {
        done.wait()
        return try outcome!.get()
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Where each facility stands (phase, since when) and each program's totals.",
        discussion: """
            A facility's phase as of D is its most advanced lifecycle phase reached by an
            event dated on or before D, unless its latest pause/resume/cancel says paused
            or cancelled (events.md). JSON and CSV list facilities; --programs lists
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
            let facilityColumns = ["subject", "name", "kind", "operator", "program", "phase", "phase_date"]
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
                default: return .date(f.phaseDate)
                }
            }
            if format != .table, !programs {
                // Facilities as they come, their texts straight from the read models' rows.
                return try streamRows(models, columns: facilityColumns, format: format) { models, part, stream in
                    try models.forEachFacility(pov, subjects: part) { f in stream.add { cell(f, $0) } }
                }
            }
            var facilities: [FacilityStatus] = []
            var facilityTable: [[Cell]] = []
            try models.forEachFacility(pov) { f in
                facilities.append(f.status)
                facilityTable.append(facilityColumns.indices.map { cell(f, $0).owned })
            }
            let facilityRows = Rows(columns: facilityColumns, rows: facilityTable)
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
                let when = "as of \(pov.asOf)" + (time.knownAt.map { ", as known at \($0)" } ?? "")
                var compact = facilityRows
                compact.columns = ["subject", "name", "phase", "since"]
                compact.rows = facilityRows.rows.map { [$0[0], $0[1], $0[5], $0[6]] }
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
        abstract: "Every promised date with its state and slip: met, missed, overdue or pending.",
        discussion: """
            slip_days is actual − due.latest (negative when early), or today − due.latest
            when overdue; slip_from_original_days measures against the first target set;
            revisions counts the revisions after it (events.md).

            Examples:
              milestones targets
              milestones targets --state overdue --state missed
              milestones targets --as-of 2026-07-15 --format json
            """
    )

    @OptionGroup var read: ReadSide
    @OptionGroup var time: TimeTravel
    @Option(help: "Output: table, json or csv.") var format: QueryFormat?
    @Option(help: "Only targets in this state: met, missed, overdue, pending (repeatable).") var state: [String] = []
    @Option(help: "Only this program or facility.") var subject: String?

    func validate() throws {
        for s in state where TargetState(rawValue: s) == nil {
            throw ValidationError("--state \(quoted(s)): one of met, missed, overdue, pending")
        }
    }

    func run() throws {
        try reportingErrors {
            let models = try read.open()
            let pov = try time.pointOfView(models)
            let columns = ["subject", "milestone", "due_earliest", "due_latest", "actual", "state", "slip_days",
                           "slip_from_original_days", "revisions"]
            @inline(__always)
            func cell(_ t: TargetRow, _ j: Int) -> Cell {
                switch j {
                case 0: .utf8(t.subject)
                case 1: .utf8(t.milestone)
                case 2: .date(t.dueEarliest)
                case 3: .date(t.dueLatest)
                case 4: Cell(t.actual)
                case 5: .string(t.state.rawValue)
                case 6: Cell(t.slipDays)
                case 7: Cell(t.slipFromOriginalDays)
                default: .int(Int64(t.revisions))
                }
            }
            // Read once: each read of an option goes through ArgumentParser's generic wrapper.
            let (states, only) = (Set(state.compactMap(TargetState.init(rawValue:))), subject.map { Array($0.utf8) })
            func wanted(_ t: TargetRow) -> Bool {
                (states.isEmpty || states.contains(t.state)) && (only == nil || t.subject.elementsEqual(only!))
            }
            let format = self.format ?? .automatic
            if format != .table {
                // Targets as they come: no list of tens of thousands held.
                return try streamRows(models, columns: columns, format: format) { models, part, stream in
                    try models.forEachTarget(pov, subjects: part) { t in
                        if wanted(t) { stream.add { cell(t, $0) } }
                    }
                }
            }
            var table: [[Cell]] = []
            try models.forEachTarget(pov) { t in
                if wanted(t) { table.append(columns.indices.map { cell(t, $0).owned }) }
            }
            let rows = Rows(columns: columns, rows: table)
            var t = rows
            t.columns = ["subject", "milestone", "due_latest", "actual", "state", "slip", "from_orig", "rev"]
            t.rows = rows.rows.map { [$0[0], $0[1], $0[3], $0[4], $0[5], $0[6], $0[7], $0[8]] }
            t.write(.table, title: "Targets as of \(pov.asOf)" + (time.knownAt.map { ", as known at \($0)" } ?? ""))
        }
    }
}

func eventRows(_ lines: [EventLine]) -> Rows {
    Rows(columns: ["seq", "id", "type", "date", "precision", "subject", "summary"],
         rows: lines.map { e in
             [.int(Int64(e.seq)), .string(e.id), .string(e.type), .string(e.date), .string(e.precision), Cell(e.subject),
              Cell(e.summary)]
         })
}

func writeEvents(_ lines: [EventLine], format: QueryFormat?, title: String) {
    let rows = eventRows(lines)
    let format = format ?? .automatic
    if format == .table {
        var t = rows
        t.columns = ["seq", "date", "type", "subject", "summary"]
        t.rows = rows.rows.map { [$0[0], $0[3], $0[2], $0[5], $0[6]] }
        t.write(.table, title: title)
    } else {
        rows.write(format)
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
    @Argument(help: "A program or facility slug.") var subject: String?

    func run() throws {
        try reportingErrors {
            let models = try read.open()
            let pov = try time.pointOfView(models)
            writeEvents(try models.timeline(pov, subject: subject), format: format,
                        title: "Timeline\(subject.map { " of \($0)" } ?? "") as of \(pov.asOf)")
        }
    }
}

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "List events (corrections applied, retracted ones left out), with filters.",
        discussion: """
            Examples:
              milestones events --subject wistron-texas
              milestones events --type target.revised --since 2025-01-01 \\
                  --until 2025-12-31 --format csv
            """
    )

    @OptionGroup var read: ReadSide
    @OptionGroup var time: TimeTravel
    @Option(help: "Output: table, json or csv.") var format: QueryFormat?
    @Option(help: "Only this program or facility.") var subject: String?
    @Option(help: "Only this event type.") var type: String?
    @Option(help: ArgumentHelp("Only events dated on or after this date.", valueName: "YYYY-MM-DD")) var since: String?
    @Option(help: ArgumentHelp("Only events dated on or before this date.", valueName: "YYYY-MM-DD")) var until: String?

    func validate() throws {
        for (name, v) in [("--since", since), ("--until", until)] {
            if let v, CalendarDate(v) == nil { throw ValidationError("\(name) \(quoted(v)): not a calendar date (YYYY-MM-DD)") }
        }
        if let type, EventType(rawValue: type) == nil { throw ValidationError("--type \(quoted(type)): not an event type") }
    }

    func run() throws {
        try reportingErrors {
            let models = try read.open()
            let pov = try time.pointOfView(models)
            writeEvents(try models.events(pov, subject: subject, type: type, since: since.flatMap(CalendarDate.init),
                                          until: until.flatMap(CalendarDate.init)),
                        format: format, title: "Events as of \(pov.asOf)")
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
            """
    )

    @OptionGroup var read: ReadSide
    @Option(help: "Output: text or json.") var format: OutputFormat = .text
    @Argument(help: "The event's id.") var id: String

    func run() throws {
        try reportingErrors {
            let models = try read.open()
            guard let d = try models.event(id: id) else {
                printError("milestones: no event \(quoted(id)) in \(read.location.path)")
                throw ExitCode(66)
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
            var out = "event \(id)\n  record   seq \(d.seq), recorded \(d.recordedAt)\n  sha256   \(d.sha256)\n"
            if case .object(let e) = d.recorded {
                for m in e.members where m.key != "sources" {
                    out += "  \(m.key.padding(8))\(m.value.stringValue.map(safeText) ?? JSONWriter.string(m.value))\n"
                }
                for s in e["sources"]?.arrayValue ?? [] {
                    let o = s.objectValue
                    let parts = [o?["publisher"]?.stringValue, o?["published"]?.stringValue, o?["url"]?.stringValue, o?["title"]?.stringValue]
                    out += "  source   \(parts.compactMap { $0 }.map(safeText).joined(separator: ", "))\n"
                }
            }
            for c in d.corrections {
                let changes = c.event.objectValue?["changes"].map { JSONWriter.string($0) } ?? ""
                out += "  corrected by \(c.id) (seq \(c.seq), \(c.recordedAt)): \(safeText(changes))\n"
            }
            if let r = d.retraction {
                out += "  RETRACTED by \(r.id) (seq \(r.seq), \(r.recordedAt)): \(safeText(r.event.objectValue?["reason"]?.stringValue ?? ""))\n"
            }
            if d.current != nil, !d.corrections.isEmpty {
                out += "  now      \(safeText(JSONWriter.string(d.current!)))\n"
            }
            writeStdout(out)
        }
    }
}

func safeText(_ s: String) -> String { Rows(columns: [], rows: []).safe(s) }

extension String {
    func padding(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
}

struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Write the read models as of a chosen time into a new self-contained SQLite file.",
        discussion: """
            The file holds the tables facilities, programs, targets and timeline as the
            ledger saw the world as of --as-of, knowing what was recorded by --known-at,
            and a meta table saying so. Open it in sqlite3 or Datasette.

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
