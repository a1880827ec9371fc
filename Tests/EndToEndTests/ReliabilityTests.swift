import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

struct BadInputCase: Decodable, Sendable, CustomTestStringConvertible {
    var file: String
    var exit: Int32
    var stderr: String
    var args: [String]?
    var testDescription: String { file }

    static let all: [BadInputCase] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: Paths.fixture("bad-input/manifest.json")))
        return try! JSONDecoder().decode([BadInputCase].self, from: data)
    }()
}

/// `*` matches any run of characters.
func globMatch(_ pattern: String, _ text: String) -> Bool {
    let parts = pattern.components(separatedBy: "*")
    var rest = Substring(text)
    for (i, part) in parts.enumerated() {
        if i == 0 {
            guard rest.hasPrefix(part) else { return false }
            rest = rest.dropFirst(part.count)
        } else if i == parts.count - 1 {
            return part.isEmpty || rest.hasSuffix(part)
        } else if let r = rest.range(of: part) {
            rest = rest[r.upperBound...]
        } else {
            return false
        }
    }
    return rest.isEmpty
}

@Suite("reliability: hostile input, I/O faults, crashes, concurrency")
struct ReliabilityTests {
    static let shared: (dir: TempDir, ledger: String) = {
        let dir = TempDir()
        return (dir, fixtureLedger(in: dir))
    }()

    @Test("the bad-input catalogue: each rejected with its exit code and first stderr line, the ledger byte-identical",
          arguments: BadInputCase.all)
    func badInput(_ c: BadInputCase) {
        let (dir, ledger) = ReliabilityTests.shared
        let before = bytes(ledger)
        let file = Paths.fixture("bad-input/\(c.file)")
        let args = (c.args ?? ["record", "--file", "{file}"]).map {
            $0.replacingOccurrences(of: "{file}", with: file).replacingOccurrences(of: "{dir}", with: dir.path)
        }
        let r = cli(args.contains("--ledger") ? args : args + ["--ledger", ledger])
        #expect(r.code == c.exit, "\(r.stderr)")
        let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
        let pattern = c.stderr.replacingOccurrences(of: "{file}", with: file)
        #expect(globMatch(pattern, first), "stderr: \(first)\nwanted: \(pattern)")
        // Terminal escapes never reach stderr raw.
        #expect(!r.stderr.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B || $0.value == 0x07 })
        #expect(bytes(ledger) == before)
    }

    @Test("the catalogue is large enough") func catalogueSize() {
        #expect(BadInputCase.all.count >= 150)
    }

    @Test("a 100 MB line: a clear error, bounded memory, nothing written")
    func hugeLine() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let before = bytes(ledger)
        let path = dir.file("huge.jsonl")
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.write(contentsOf: Data(#"{"type":"site.secured","summary":""#.utf8))
        let chunk = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<100 { try h.write(contentsOf: chunk) }
        try h.write(contentsOf: Data("\"}\n".utf8))
        try h.close()
        let r = run("/usr/bin/time", ["-v", Paths.binary, "record", "--ledger", ledger, "--file", path], env: ["MILESTONES_NOW": fixedNow])
        #expect(r.code == 65)
        #expect(r.stderr.hasPrefix("\(path):1: line longer than 1048576 bytes"))
        let rss = r.stderr.split(separator: "\n").first { $0.contains("Maximum resident set size") }
            .flatMap { Int($0.split(separator: " ").last!) } ?? 0
        #expect(rss > 0 && rss < 120_000, "peak RSS \(rss) KiB")
        #expect(bytes(ledger) == before)
    }

    @Test("a line just over 1 MiB inside one chunk of input, with or without its LF: refused like one cut at a chunk's end")
    func longLineInsideChunk() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let before = bytes(ledger)
        let first = milestoneLines(ids: "short-", 0..<1, summary: 10)
        let long = #"{"type":"site.secured","summary":""# + String(repeating: "x", count: 1 << 20) + "\"}"
        for (name, text) in [("lf.jsonl", first + long + "\n"), ("nolf.jsonl", first + long)] {
            let path = dir.write(name, text)
            let r = cli(["record", "--ledger", ledger, "--file", path])
            #expect(r.code == 65, "\(name): \(r.stderr)")
            #expect(r.stderr.hasPrefix("\(path):2: line longer than 1048576 bytes"), "\(name): \(r.stderr.prefix(200))")
            #expect(r.stderr.contains("put one event on each line"), "\(name): the remedy")
            #expect(bytes(ledger) == before)
        }
    }

    @Test("injected write and fsync failures: exit 74, the ledger byte-identical", arguments: ["write", "fsync", "short-write"])
    func injectedFaults(_ fault: String) {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let before = bytes(ledger)
        let one = cli(["record", "--ledger", ledger, "--type", "construction.started", "--subject", "foxconn-houston",
                       "--date", "2025-09-01", "--source", "x"], env: ["MILESTONES_FAULT": fault])
        #expect(one.code == 74, "\(one.stderr)")
        #expect(one.stderr.contains("nothing was written"))
        #expect(bytes(ledger) == before)
        #expect(cli(["verify", "--ledger", ledger]).code == 0)
    }

    @Test("a file-size limit hit in the middle of a batch: exit 74, the ledger byte-identical")
    func fileSizeLimit() {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let before = bytes(ledger)
        let input = dir.write("big.jsonl", milestoneLines(ids: "big-", 0..<400, summary: 500))
        // The limit (in 512-byte blocks) lets the ledger grow by about 100 KB: the batch needs 400.
        let limit = (before.count + 100_000) / 512
        let r = run("/bin/bash", ["-c", "ulimit -f \(limit); exec \"$0\" \"$@\"", Paths.binary, "record", "--ledger", ledger, "--file", input],
                    env: ["MILESTONES_NOW": fixedNow])
        #expect(r.code == 74, "\(r.stderr)")
        #expect(r.stderr.contains("File too large"))
        #expect(bytes(ledger) == before)
    }

    @Test("a batch of over 8 MiB, synced as it is written: each fault, and a file-size limit in the middle, leave the ledger byte-identical; then it records, and the independent check agrees")
    func largeBatchSyncedAsWritten() {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let before = bytes(ledger)
        let input = dir.write("large.jsonl", milestoneLines(ids: "large-", 0..<14_000, summary: 400))
        // Two pieces: `second-write` fails the second; `flush` fails the syncs made while writing
        // (at least one runs after the last write, before the final fsync).
        for fault in ["write", "fsync", "flush", "short-write", "second-write"] {
            let r = cli(["record", "-q", "--ledger", ledger, "--file", input], env: ["MILESTONES_FAULT": fault])
            #expect(r.code == 74, "\(fault): \(r.stderr)")
            let same = bytes(ledger) == before  // (a failed comparison of megabytes of Data takes minutes to describe)
            #expect(same, "\(fault)")
        }
        // The limit (in 512-byte blocks) stops the first piece about 5 MB in.
        let limit = (before.count + 5_000_000) / 512
        let r = run("/bin/bash", ["-c", "ulimit -f \(limit); exec \"$0\" \"$@\"", Paths.binary, "record", "-q", "--ledger", ledger, "--file", input],
                    env: ["MILESTONES_NOW": fixedNow])
        #expect(r.code == 74, "\(r.stderr)")
        let same = bytes(ledger) == before
        #expect(same)
        let ok = cli(["record", "-q", "--ledger", ledger, "--file", input])
        #expect(ok.code == 0, "\(ok.stderr)")
        #expect(bytes(ledger).count > before.count + 8 << 20)
        #expect(cli(["verify", "--ledger", ledger]).code == 0)
        let py = pythonCheck(["ledger", ledger])
        #expect(py.code == 0, "\(py.stdout)")
        #expect(pythonCheck(["normalized", input, ledger]).stdout == "ok 14000\n")
    }

    @Test("the read models' disk fills up during a catch-up: a clear error, then they still work")
    func readModelsDiskFull() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        #expect(cli(["record", "-q", "--ledger", ledger, "--file", dir.write("many.jsonl", milestoneLines(ids: "f-", 0..<3000, summary: 300))]).code == 0)
        try? FileManager.default.removeItem(atPath: dir.file("ai.sqlite"))
        // A file-size limit of about 600 KB stops the SQLite files part way.
        let r = run("/bin/bash", ["-c", "ulimit -f 1200; exec \"$0\" \"$@\"", Paths.binary, "status", "--ledger", ledger, "--format", "json"],
                    env: ["MILESTONES_NOW": fixedNow])
        #expect(r.code == 74, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("milestones: "))
        let again = cli(["events", "--ledger", ledger, "--format", "json", "--as-of", "2030-01-01"])
        #expect(again.code == 0, "\(again.stderr)")
        // Every event and correction is listed; a retracted event drops out (its retraction stays).
        #expect((parseJSON(again.stdout) as? [Any])?.count == fixtureEventCount - fixtureRetractions + 3000)
    }

    @Test("a read-only or missing folder: a clear error")
    func unwritableFolder() throws {
        let dir = TempDir()
        let r = cli(["init", "--name", "x", "--ledger", dir.file("no/such/folder/l.jsonl")])
        #expect(r.code == 74)
        #expect(r.stderr.contains("no such folder"))
        if getuid() != 0 {  // root writes anywhere: the read-only case needs another user
            let ro = dir.file("ro")
            try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: false)
            chmod(ro, 0o555)
            #expect(cli(["init", "--name", "x", "--ledger", ro + "/l.jsonl"]).code == 74)
        }
    }

    /// Kills `record` (batches of 1 to 2,000) and read-model catch-ups at
    /// random moments; after each kill, nothing acknowledged is lost, the chain
    /// verifies or has only a torn tail that repair fixes, and the retry
    /// completes the batch without duplicates. `make soak` runs 1,000 kills.
    @Test("crash harness: SIGKILL at random moments loses nothing acknowledged")
    func crashHarness() throws {
        let kills = Int(ProcessInfo.processInfo.environment["MILESTONES_SOAK_KILLS"] ?? "") ?? 50
        var total = (killed: 0, torn: 0, acknowledged: 0)
        // Rounds of 50 kills, each on a new ledger, so a long soak stays quick.
        for round in 0..<max(1, (kills + 49) / 50) {
            let r = try crashRound(kills: min(50, kills - round * 50), seed: UInt64(round + 1) &* 7919)
            total = (total.killed + r.killed, total.torn + r.torn, total.acknowledged + r.acknowledged)
        }
        print("crash harness: \(total.killed) kills (\(total.torn) torn tails repaired), \(total.acknowledged) events acknowledged, 0 lost")
    }

    func crashRound(kills: Int, seed: UInt64) throws -> (killed: Int, torn: Int, acknowledged: Int) {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        var rng = SplitMix64(seed: seed)
        var acknowledged: Set<String> = []
        var killed = 0
        var torn = 0
        var batchNo = 0
        while killed < kills {
            batchNo += 1
            let size = [1, 5, 50, 500, 2000].randomElement(using: &rng)!
            var text = ""
            var ids: [String] = []
            for i in 0..<size {
                let id = "b\(batchNo)-e\(i)"
                ids.append(id)
                text += #"{"id":"\#(id)","type":"production.milestone","milestone":"lot \#(i)","date":"2026-01-01","subject":"foxconn-houston","sources":[{"publisher":"soak"}]}"# + "\n"
            }
            let input = dir.write("batch.jsonl", text)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Paths.binary)
            p.arguments = ["record", "--quiet", "--wait", "30", "--ledger", ledger, "--file", input]
            p.environment = ["MILESTONES_NOW": fixedNow]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32.random(in: 0..<60_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .exit && p.terminationStatus == 0 {
                acknowledged.formUnion(ids)
                continue
            }
            killed += 1
            // The ledger verifies, or has only a torn tail that repair removes.
            let v = cli(["verify", "--ledger", ledger])
            if v.code != 0 {
                #expect(v.stderr.contains("torn tail"), "\(v.stderr)")
                torn += 1
                #expect(cli(["repair", "--torn-tail", "--ledger", ledger]).code == 0)
                #expect(cli(["verify", "--ledger", ledger]).code == 0)
            }
            // Kill a read-model catch-up now and then.
            if killed % 5 == 0 {
                let q = Process()
                q.executableURL = URL(fileURLWithPath: Paths.binary)
                q.arguments = ["status", "--ledger", ledger, "--format", "json", "--rebuild"]
                q.standardOutput = FileHandle.nullDevice
                q.standardError = FileHandle.nullDevice
                try q.run()
                usleep(UInt32.random(in: 0..<40_000, using: &rng))
                kill(q.processIdentifier, SIGKILL)
                q.waitUntilExit()
            }
            // The retry completes the batch, without duplicates.
            let retry = cli(["record", "--quiet", "--ledger", ledger, "--file", input])
            #expect(retry.code == 0, "\(retry.stderr)")
            acknowledged.formUnion(ids)
        }
        let text = String(decoding: bytes(ledger), as: UTF8.self)
        var seen: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            if let r = line.range(of: #""id":""#) {
                let id = line[r.upperBound...].prefix { $0 != "\"" }
                seen[String(id), default: 0] += 1
            }
        }
        let lost = acknowledged.filter { seen[$0] != 1 }
        #expect(lost.isEmpty, "\(lost.count) acknowledged events missing or doubled")
        #expect(cli(["verify", "--ledger", ledger]).code == 0)
        #expect(pythonCheck(["ledger", ledger]).code == 0)
        let status = cli(["events", "--ledger", ledger, "--format", "json", "--as-of", "2030-01-01"])
        #expect(status.code == 0, "\(status.stderr)")
        // Every record but ledger.created is listed, except the events the fixture retracts.
        #expect((parseJSON(status.stdout) as? [Any])?.count == seen.count - 1 - fixtureRetractions)
        return (killed, torn, acknowledged.count)
    }

    @Test("8 writer processes × 500 events while readers query: all 4,000 present once, the chain intact")
    func eightWriters() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        let group = DispatchGroup()
        let codes = Codes()
        for w in 0..<8 {
            group.enter()
            DispatchQueue.global().async {
                for chunk in 0..<5 {
                    var text = ""
                    for i in 0..<100 {
                        let n = chunk * 100 + i
                        text += #"{"id":"w\#(w)-\#(n)","type":"production.milestone","milestone":"lot \#(n)","date":"2026-01-01","subject":"foxconn-houston","sources":[{"publisher":"w\#(w)"}]}"# + "\n"
                    }
                    let input = dir.write("w\(w)-\(chunk).jsonl", text)
                    codes.add(cli(["record", "--quiet", "--wait", "120", "--ledger", ledger, "--file", input]).code)
                }
                group.leave()
            }
        }
        let readers = Codes()
        group.enter()
        DispatchQueue.global().async {
            for _ in 0..<10 { readers.add(cli(["status", "--ledger", ledger, "--format", "json"]).code) }
            group.leave()
        }
        group.wait()
        #expect(codes.all.count == 40 && codes.all.allSatisfy { $0 == 0 }, "\(codes.all)")
        #expect(readers.all.allSatisfy { $0 == 0 }, "\(readers.all)")
        let v = cli(["verify", "--format", "json", "--ledger", ledger])
        #expect((parseJSON(v.stdout) as? [String: Any])?["records"] as? Int == fixtureEventCount + 1 + 4000)
        #expect(pythonCheck(["ledger", ledger]).code == 0)
    }
}

@Suite("large ledgers (several read chunks)")
struct LargeLedgerTests {
    @Test("a ledger over 16 MB: verify, tree and read models agree with the independent check; damage is found")
    func largeLedger() throws {
        let dir = TempDir()
        let ledger = dir.file("big.jsonl")
        #expect(cli(["init", "--name", "example.org/big", "--ledger", ledger]).code == 0)
        let events = dir.file("events.jsonl")
        try Data(generatedEvents(40000, seed: 5).utf8).write(to: URL(fileURLWithPath: events))
        #expect(cli(["record", "-q", "--ledger", ledger, "--file", events]).code == 0)
        let size = bytes(ledger).count
        #expect(size > 17 << 20)
        let v = cli(["verify", "--format", "json", "--ledger", ledger])
        #expect(v.code == 0, "\(v.stderr)")
        let py = pythonCheck(["ledger", ledger])
        #expect(py.code == 0)
        #expect(py.stdout.contains((parseJSON(v.stdout) as? [String: Any])?["head"] as? String ?? "?"))
        // The tree built through the mapping has the independent root.
        let cp = cli(["prove", "--ledger", ledger, "--seq", "1"])
        #expect(cp.code == 0)
        let root = (parseJSON(cp.stdout) as? [String: Any])?["root"] as? String
        #expect(pythonCheck(["root", ledger]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == root)
        // A torn tail at the very end, and a tampered record in the middle.
        var data = bytes(ledger)
        let torn = dir.file("torn.jsonl")
        try (data + Data("{\"event\":".utf8)).write(to: URL(fileURLWithPath: torn))
        let t = cli(["verify", "--format", "json", "--ledger", torn])
        #expect(t.code == 1)
        #expect(((parseJSON(t.stdout) as? [String: Any])?["error"] as? [String: Any])?["offset"] as? Int == size)
        let mid = data.count / 2
        data[mid] = data[mid] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        let bad = dir.file("bad.jsonl")
        try data.write(to: URL(fileURLWithPath: bad))
        let b = cli(["verify", "--format", "json", "--ledger", bad])
        #expect(b.code == 1)
        // Reported at the damaged line, found in a middle slice of a middle chunk.
        let damagedLine = data[..<mid].filter { $0 == 0x0A }.count + 1
        #expect(((parseJSON(b.stdout) as? [String: Any])?["error"] as? [String: Any])?["line"] as? Int == damagedLine, "\(b.stdout)")
        #expect(pythonCheck(["ledger", bad]).code == 1)
    }
}
