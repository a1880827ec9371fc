import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif

/// A progress line on stderr, for a terminal only.
final class ProgressLine {
    let label: String
    var last = -1
    init(label: String) { self.label = label }
    func update(_ done: Int, of total: Int) {
        guard total > 0 else { return }
        let pct = Int(Double(done) / Double(total) * 100)
        if pct != last {
            last = pct
            writeStderr("\r\(label): \(pct)%")
        }
    }
    func done() { if last >= 0 { writeStderr("\r\u{1B}[K") } }
}
