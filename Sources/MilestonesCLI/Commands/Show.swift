import Foundation
import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
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
}
