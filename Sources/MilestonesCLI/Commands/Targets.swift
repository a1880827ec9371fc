import Foundation
import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
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
}
