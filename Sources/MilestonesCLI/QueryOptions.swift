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

func safeText(_ s: String) -> String { Rows(columns: [], rows: []).safe(s) }

extension String {
    func padding(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
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
