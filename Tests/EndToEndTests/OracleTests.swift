import Foundation
import TestSupport
import Testing

/// `status` and `targets` against an oracle written from the spec alone
/// (Tests/python/oracle.py): random ledgers made with the binary, random views
/// (--as-of, --known-at, --published-by), rows compared as sets.
@Suite("status and targets agree with the independent oracle")
struct OracleTests {
    static let script = Paths.root.appendingPathComponent("Tests/python/oracle_check.py").path

    @Test("25 random ledgers, 20 views each: every row the same, every target state seen")
    func randomLedgers() {
        let r = run("/usr/bin/env", ["python3", OracleTests.script, Paths.binary, "--seeds", "25"])
        #expect(r.code == 0, "oracle_check.py exited \(r.code)\n\(r.stdout)\(r.stderr)")
        let last = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasSuffix(" 0 failed"), "\(last)")
    }
}
