import Foundation
import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections

extension Milestones {
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
}
