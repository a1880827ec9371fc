import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif

extension Milestones {
    struct Repair: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "repair",
            abstract: "Mend a torn tail (a last line without its LF, or failing its hash), and nothing else.",
            discussion: """
                A crash in the middle of an append can leave a last line without its LF or
                failing its hash; appends refuse to run until it is mended. A last line that
                lacks only its LF and passes every check of verify gets its LF back (nothing
                is lost); anything else after the last LF is removed, and the bytes counted.
                Any other damage is refused (exit 1): repair never removes a complete, valid
                record.

                Example:
                  milestones repair --torn-tail
                """
        )

        @OptionGroup var location: LedgerLocation
        @OptionGroup var waitOption: WaitOption
        @Flag(name: .customLong("torn-tail"), help: "Remove a torn tail (required: the only repair there is).")
        var tornTail = false

        func validate() throws {
            guard tornTail else { throw ValidationError("say what to repair: --torn-tail is the only repair") }
        }

        func run() throws {
            try reportingErrors {
                let r = try LedgerRepair.tornTail(ledger: location.path, wait: waitOption.wait)
                if r.restoredNewline {
                    print("the last record lacked only its final LF: written back; \(r.records) records intact, nothing removed")
                } else if r.removedBytes == 0 {
                    print("no torn tail: \(r.records) records intact, nothing removed")
                } else {
                    print("removed a torn tail of \(r.removedBytes) bytes; \(r.records) records intact")
                }
            }
        }
    }
}
