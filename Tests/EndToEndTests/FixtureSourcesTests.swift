import Foundation
import TestSupport
import MilestoneLedger
import Testing

/// The bundled fixture's sources follow docs/sources.md: after corrections are
/// applied, every source is complete and none comes from a refused aggregator
/// or AI-summary site; and the fixture's original lines are never edited.
@Suite struct FixtureSourcesTests {
    static let fixturePath = Paths.fixture("nvidia-ai-factories.jsonl")
    static let policyPath = Paths.root.appendingPathComponent("docs/sources.md").path

    /// The fixture as first committed had 27 lines. They are immutable: fixes are
    /// appended as `event.corrected` / `event.retracted` lines. This is the SHA-256
    /// of those 27 lines' bytes (`head -n 27 fixtures/nvidia-ai-factories.jsonl | sha256sum`),
    /// taken before any correction was appended; it must never change.
    static let originalLineCount = 27
    static let originalLinesSHA256 = "e79ff42af37e009abf8bb09c82c10da2bcfbf032904577e7efcb8735d048bedb"

    @Test("the fixture's original 27 lines are unchanged (corrections are appended, never edited in)")
    func originalLinesUnchanged() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixturePath)))
        let head = try #require(Self.firstLines(bytes, Self.originalLineCount), "the fixture has fewer than \(Self.originalLineCount) lines")
        #expect(SHA256.hash(head).hex == Self.originalLinesSHA256)
    }

    @Test("docs/sources.md lists the refused domains in one fenced block")
    func bannedListParses() throws {
        let banned = try Self.bannedDomains()
        #expect(banned.contains("aicnbc.com"))
        #expect(banned.contains("reportify.ai"))
        #expect(banned.allSatisfy { !$0.isEmpty && !$0.contains("/") && !$0.contains(" ") })
    }

    @Test("every effective source of the fixture is complete and from no refused domain")
    func fixtureSourcesComplete() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixturePath)))
        let problems = try Self.sourceProblems(bytes, banned: Self.bannedDomains())
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    @Test("the check fails on a broken copy", arguments: [
        // A source without its publication date, appended after the originals.
        #"{"id":"t-broken-1","type":"event.corrected","date":"2026-12-07","subject":"foxconn-houston","corrects":"foxconn-houston-announced","changes":{"summary":"x"},"reason":"test","sources":[{"publisher":"P","url":"https://example.org/a","title":"T"}]}"#,
        // A refused domain, through a subdomain.
        #"{"id":"t-broken-2","type":"event.corrected","date":"2026-12-07","subject":"foxconn-houston","corrects":"foxconn-houston-announced","changes":{"sources":[{"publisher":"P","url":"https://www.aicnbc.com/1.html","title":"T","published":"2025-01-02"}]},"reason":"test","sources":[{"publisher":"P","url":"https://example.org/a","title":"T","published":"2025-01-02"}]}"#,
        // A URL that is not http(s), and a date that is no calendar date.
        #"{"id":"t-broken-3","type":"target.set","date":"2026-01-01","subject":"foxconn-houston","milestone":"production.started","due":{"earliest":"2026-01-01","latest":"2026-02-01"},"sources":[{"publisher":"P","url":"ftp://example.org/a","title":"T","published":"2025-02-30"}]}"#,
        // A retraction whose own source lacks a title.
        #"{"id":"t-broken-4","type":"event.retracted","date":"2026-12-07","subject":"spil-arizona","retracts":"spil-arizona-announced","reason":"test","sources":[{"publisher":"P","url":"https://example.org/a","published":"2025-01-02"}]}"#,
    ])
    func brokenCopyFails(_ appended: String) throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixturePath)))
        bytes += Array((appended + "\n").utf8)
        #expect(!(try Self.sourceProblems(bytes, banned: Self.bannedDomains())).isEmpty)
    }

    @Test("an original correction with incomplete sources is accepted only while an appended correction restates it")
    func supersedingRequired() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.fixturePath)))
        let text = String(decoding: bytes, as: UTF8.self)
        // Drop the appended restatement of the original location correction: the original's sources then count.
        let without = text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains(#""id":"fix-wistron-location-resourced""#) }
            .joined(separator: "\n")
        #expect(!(try Self.sourceProblems(Array(without.utf8), banned: Self.bannedDomains())).isEmpty)
    }

    // MARK: - The check

    /// The bytes of the first `n` lines, newlines included (what `head -n` prints).
    static func firstLines(_ bytes: [UInt8], _ n: Int) -> [UInt8]? {
        var seen = 0
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") {
            seen += 1
            if seen == n { return Array(bytes[...i]) }
        }
        return nil
    }

    /// The refused domains: the lines of the ```banned-domains block of docs/sources.md.
    static func bannedDomains() throws -> Set<String> {
        let text = try String(contentsOfFile: policyPath, encoding: .utf8)
        var inBlock = false
        var domains: Set<String> = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if !inBlock {
                if line == "```banned-domains" { inBlock = true }
            } else if line.hasPrefix("```") {
                break
            } else if !line.isEmpty {
                domains.insert(line.lowercased())
            }
        }
        if domains.isEmpty { throw PolicyError.noBannedList }
        return domains
    }

    enum PolicyError: Error { case noBannedList }

    /// One line per problem: a fixture line that is not an object, or a source
    /// that is incomplete or refused. Corrections apply in file order: an
    /// `event.corrected`'s `changes` replace top-level fields of the event it
    /// corrects; an `event.retracted` removes it. Checked: the effective sources
    /// of every event not retracted, and the own sources of every correction and
    /// retraction — except an original (immutable) correction that a later,
    /// appended correction of the same event restates (same fields, same values).
    static func sourceProblems(_ bytes: [UInt8], banned: Set<String>) throws -> [String] {
        var problems: [String] = []
        var events: [String: [String: Any]] = [:]
        var domainOrder: [String] = []
        var retracted: Set<String> = []
        var fixes: [(line: Int, object: [String: Any])] = []

        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where !line.isEmpty {
            let number = index + 1
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let type = object["type"] as? String else {
                problems.append("line \(number): not a JSON object with a type")
                continue
            }
            switch type {
            case "event.corrected":
                fixes.append((number, object))
                if let target = object["corrects"] as? String, let changes = object["changes"] as? [String: Any] {
                    if events[target] == nil { problems.append("line \(number): corrects unknown event \(target)") }
                    for (key, value) in changes { events[target]?[key] = value }
                }
            case "event.retracted":
                fixes.append((number, object))
                if let target = object["retracts"] as? String { retracted.insert(target) }
            default:
                let id = object["id"] as? String ?? "line-\(number)"
                events[id] = object
                domainOrder.append(id)
            }
        }

        for id in domainOrder where !retracted.contains(id) {
            problems += sourceProblems(of: events[id]?["sources"], banned: banned).map { "\(id) (effective): \($0)" }
        }
        for (number, fix) in fixes {
            if number <= originalLineCount, isRestated(fix, after: number, in: fixes) { continue }
            let id = fix["id"] as? String ?? "line-\(number)"
            problems += sourceProblems(of: fix["sources"], banned: banned).map { "\(id) (line \(number), own sources): \($0)" }
        }
        return problems
    }

    /// Whether an appended correction of the same event sets every field `fix` changed, to the same value.
    static func isRestated(_ fix: [String: Any], after line: Int, in fixes: [(line: Int, object: [String: Any])]) -> Bool {
        guard let target = fix["corrects"] as? String, let changes = fix["changes"] as? [String: Any] else { return false }
        return fixes.contains { later in
            guard later.line > originalLineCount, later.line > line,
                  later.object["corrects"] as? String == target,
                  let laterChanges = later.object["changes"] as? [String: Any] else { return false }
            return changes.allSatisfy { key, value in
                guard let other = laterChanges[key] else { return false }
                return NSDictionary(dictionary: ["v": value]).isEqual(to: ["v": other])
            }
        }
    }

    static func sourceProblems(of value: Any?, banned: Set<String>) -> [String] {
        guard let sources = value as? [Any], !sources.isEmpty else { return ["no sources"] }
        var problems: [String] = []
        for (i, element) in sources.enumerated() {
            guard let source = element as? [String: Any] else {
                problems.append("source \(i): not an object")
                continue
            }
            let publisher = source["publisher"] as? String ?? ""
            let label = "source \(i) (\(publisher.isEmpty ? "?" : publisher))"
            if publisher.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("\(label): no publisher") }
            if (source["title"] as? String ?? "").trimmingCharacters(in: .whitespaces).isEmpty { problems.append("\(label): no title") }
            if !isCalendarDate(source["published"] as? String) { problems.append("\(label): published is not YYYY-MM-DD") }
            guard let url = source["url"] as? String,
                  let components = URLComponents(string: url),
                  let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = components.host?.lowercased(), !host.isEmpty else {
                problems.append("\(label): url is not an http(s) URL")
                continue
            }
            if let domain = banned.first(where: { host == $0 || host.hasSuffix("." + $0) }) {
                problems.append("\(label): \(url) is from a refused domain (\(domain), docs/sources.md)")
            }
        }
        return problems
    }

    /// `YYYY-MM-DD` naming a real day (2025-02-30 is not one).
    static func isCalendarDate(_ text: String?) -> Bool {
        guard let text, text.utf8.count == 10 else { return false }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              (1...12).contains(month), day >= 1 else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return day <= days
    }
}
