import Foundation
import TestSupport
import Testing

/// `milestones report`, looked at in a real headless browser (Debian's
/// chromium, which `make test` installs when missing).
@Suite struct ReportTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    func browser(_ args: [String]) -> Run {
        // Root needs --no-sandbox; the timeout keeps a stuck browser from stalling the suite.
        run("/usr/bin/timeout", ["120", Self.chromium ?? "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                 "--hide-scrollbars", "--enable-logging=stderr", "--v=0"] + args)
    }

    @Test("the report is one self-contained page with one timeline per facility, rendered by a real browser")
    func rendered() throws {
        #expect(Self.chromium != nil, "chromium is not installed: `make test` installs it (Debian's chromium package)")
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let out = dir.file("report.html")
        let r = cli(["report", "--ledger", ledger, "--out", out, "--as-of", "2026-12-01"])
        #expect(r.code == 0, "\(r.stderr)")
        let html = String(decoding: bytes(out), as: UTF8.self)
        // Self-contained: nothing loaded from anywhere, no script at all.
        for banned in ["<script", "<link", "<img", "<iframe", " src=", "@import", "url(http", "<object"] {
            #expect(!html.lowercased().contains(banned), "the page holds \(banned)")
        }
        let facilities = try #require(parseJSON(cli(["status", "--ledger", ledger, "--format", "json", "--as-of", "2026-12-01"]).stdout) as? [[String: Any]])
        #expect(facilities.count >= 5)
        // The DOM as the browser built it: one timeline per facility, each named by its subject.
        let dom = browser(["--dump-dom", "file://" + out])
        #expect(dom.code == 0, "\(dom.stderr.suffix(2000))")
        let subjects = dom.stdout.components(separatedBy: "<svg class=\"timeline\" data-subject=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        #expect(Set(subjects) == Set(facilities.map { $0["subject"] as! String }) && subjects.count == facilities.count)
        #expect(!dom.stderr.contains("Uncaught") && !dom.stderr.contains("CONSOLE"), "\(dom.stderr.suffix(2000))")
        // Every target is in the table, with its state; a mark links to its source.
        let targets = try #require(parseJSON(cli(["targets", "--ledger", ledger, "--format", "json", "--as-of", "2026-12-01"]).stdout) as? [[String: Any]])
        #expect(dom.stdout.components(separatedBy: "<td class=\"state\">").count - 1 == targets.count)
        #expect(dom.stdout.contains("<a href=\"https://"))
        // A picture, on a desktop and on a phone.
        for (name, size) in [("desktop.png", "1200,1600"), ("phone.png", "390,1600")] {
            let png = dir.file(name)
            let shot = browser(["--window-size=\(size)", "--screenshot=\(png)", "file://" + out])
            #expect(shot.code == 0, "\(shot.stderr.suffix(2000))")
            let data = bytes(png)
            #expect(data.starts(with: [0x89, 0x50, 0x4E, 0x47]) && data.count > 20_000, "\(name): \(data.count) bytes")
        }
    }

    @Test("the report honours the time-travel options and refuses to overwrite without --force")
    func timeTravel() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let out = dir.file("early.html")
        #expect(cli(["report", "--ledger", ledger, "--out", out, "--as-of", "2025-04-14", "--published-by", "2025-04-14"]).code == 0)
        let html = String(decoding: bytes(out), as: UTF8.self)
        let facilities = try #require(parseJSON(cli(["status", "--ledger", ledger, "--format", "json", "--as-of", "2025-04-14",
                                                     "--published-by", "2025-04-14"]).stdout) as? [[String: Any]])
        #expect(html.components(separatedBy: "<svg class=\"timeline\"").count - 1 == facilities.count)
        #expect(html.contains("as of 2025-04-14, as published by 2025-04-14"))
        #expect(cli(["report", "--ledger", ledger, "--out", out]).code == 73)
        #expect(cli(["report", "--ledger", ledger, "--out", out, "--force"]).code == 0)
    }
}
