import ArgumentParser
import CanonicalJSON
import Foundation
import GRDB
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
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
}
