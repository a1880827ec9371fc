import Foundation

/// Paths and helpers shared by the tests: the package root, fixtures, the
/// built binary, throwaway folders, and running the CLI as a user would.
package enum Paths {
    package static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    package static func fixture(_ name: String) -> String { root.appendingPathComponent("fixtures/\(name)").path }
    package static let pythonCheck = root.appendingPathComponent("Tests/python/independent_check.py").path

    /// The `milestones` binary `swift build` put beside the test bundle.
    package static let binary: String = {
        let fm = FileManager.default
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("milestones").path
            if fm.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        for config in ["debug", "release"] {
            let candidate = root.appendingPathComponent(".build/\(config)/milestones").path
            if fm.isExecutableFile(atPath: candidate) { return candidate }
        }
        return root.appendingPathComponent(".build/debug/milestones").path
    }()
}

/// A folder that is removed when the test ends.
package final class TempDir: @unchecked Sendable {
    package let url: URL
    package var path: String { url.path }

    package init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("milestones-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    package func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    package func write(_ name: String, _ text: String) -> String {
        let p = file(name)
        try! Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }
}

package struct Run {
    package var code: Int32
    package var stdout: String
    package var stderr: String
}

/// Fixed clock for reproducible ledgers.
package let fixedNow = "2026-01-01T00:00:00Z"

/// Runs an executable and waits for it.
@discardableResult
package func run(_ executable: String, _ args: [String], stdin: Data? = nil, env: [String: String] = [:], cwd: String? = nil) -> Run {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    var environment = ProcessInfo.processInfo.environment
    environment["MILESTONES_LEDGER"] = nil
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe()
    let err = Pipe()
    let inPipe = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inPipe
    try! p.run()
    // Read both pipes concurrently so a chatty child never blocks.
    nonisolated(unsafe) var outData = Data()
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    group.enter()
    DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    if let stdin { inPipe.fileHandleForWriting.write(stdin) }
    try? inPipe.fileHandleForWriting.close()
    p.waitUntilExit()
    group.wait()
    return Run(code: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
               stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs the built `milestones` binary.
@discardableResult
package func cli(_ args: [String], stdin: String? = nil, env: [String: String] = [:], cwd: String? = nil) -> Run {
    var e = ["MILESTONES_NOW": fixedNow]
    for (k, v) in env { e[k] = v }
    return run(Paths.binary, args, stdin: stdin.map { Data($0.utf8) }, env: e, cwd: cwd)
}

/// Runs the independent Python checker (written from the spec alone).
package func pythonCheck(_ args: [String]) -> Run {
    run("/usr/bin/env", ["python3", Paths.pythonCheck] + args)
}

/// JSON Lines of `production.milestone` events on the fixture's `foxconn-houston`, ids `<prefix><i>`
/// for each i of `range`, each with a summary of `summary` bytes (none when 0): a batch of any size.
package func milestoneLines(ids prefix: String, _ range: Range<Int>, summary: Int = 0) -> String {
    let note = summary > 0 ? #","summary":"\#(String(repeating: "x", count: summary))""# : ""
    var text = ""
    for i in range {
        text += #"{"id":"\#(prefix)\#(i)","type":"production.milestone","milestone":"lot \#(i)","date":"2026-01-01","subject":"foxconn-houston"\#(note),"sources":[{"publisher":"x"}]}"# + "\n"
    }
    return text
}

/// `n` synthetic events from the bench's generator (bench/generate.py), seeded: JSON Lines.
package func generatedEvents(_ n: Int, seed: Int) -> String {
    let gen = run("/usr/bin/env", ["python3", Paths.root.appendingPathComponent("bench/generate.py").path, "\(n)", "\(seed)"])
    precondition(gen.code == 0, gen.stderr)
    return gen.stdout
}

/// A new ledger in `dir` (`name`, made on 2015-01-01) holding `n` generated
/// events (``generatedEvents(_:seed:)``) recorded in one batch: its path.
package func generatedLedger(in dir: TempDir, _ name: String, events n: Int, seed: Int) -> String {
    let ledger = dir.file(name)
    let made = cli(["init", "--name", "example.org/\(name.prefix { $0 != "." })", "--ledger", ledger], env: ["MILESTONES_NOW": "2015-01-01T00:00:00Z"])
    precondition(made.code == 0, made.stderr)
    let recorded = cli(["record", "-q", "--ledger", ledger, "--file", dir.write("\(name).events", generatedEvents(n, seed: seed))])
    precondition(recorded.code == 0, recorded.stderr)
    return ledger
}

/// How many events the bundled fixture holds (its ledger has one record more: `ledger.created`).
package let fixtureEventCount = String(decoding: bytes(Paths.fixture("nvidia-ai-factories.jsonl")), as: UTF8.self)
    .split(separator: "\n").filter { !$0.isEmpty }.count

/// How many events the fixture's ledger lists with `events` (retracted ones drop out).
package let fixtureRetractions = String(decoding: bytes(Paths.fixture("nvidia-ai-factories.jsonl")), as: UTF8.self)
    .components(separatedBy: #""type":"event.retracted""#).count - 1

/// A new ledger holding the bundled NVIDIA fixture.
package func fixtureLedger(in dir: TempDir, name: String = "ai.jsonl") -> String {
    let ledger = dir.file(name)
    let i = cli(["init", "--name", "example.org/nvidia-ai-factories", "--ledger", ledger])
    precondition(i.code == 0, i.stderr)
    let r = cli(["record", "--quiet", "--ledger", ledger, "--file", Paths.fixture("nvidia-ai-factories.jsonl")])
    precondition(r.code == 0, r.stderr)
    return ledger
}

/// A TCP socket bound to a free port on 127.0.0.1 (not listening yet): the socket and its port.
/// Close it to hand the port to a server that another process starts, or listen on it.
package func loopbackSocket() -> (socket: Int32, port: Int) {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
    _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
    return (s, Int(UInt16(bigEndian: a.sin_port)))
}

/// Whether something accepts TCP connections on 127.0.0.1 at `port`.
package func acceptsConnections(loopbackPort port: Int) -> Bool {
    let c = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(c) }
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_addr.s_addr = inet_addr("127.0.0.1")
    a.sin_port = in_port_t(UInt16(port).bigEndian)
    let len = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(c, $0, len) } } == 0
}

/// A port on 127.0.0.1 that nothing listens on (free when this returns).
package func freeLoopbackPort() -> Int {
    let (s, port) = loopbackSocket()
    close(s)
    return port
}

package func bytes(_ path: String) -> Data { (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data() }

package func parseJSON(_ text: String) -> Any? {
    try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}


/// A small deterministic generator (SplitMix64), so failures reproduce.
package struct SplitMix64: RandomNumberGenerator {
    package var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Exit codes gathered from several threads.
package final class Codes: @unchecked Sendable {
    private let lock = NSLock()
    private var codes: [Int32] = []
    package init() {}
    package func add(_ c: Int32) { lock.lock(); codes.append(c); lock.unlock() }
    package var all: [Int32] { lock.lock(); defer { lock.unlock() }; return codes }
}

/// The golden ledger: the fixture as first recorded, with fixed clocks (scripts/make-golden.sh).
package let goldenLedger = Paths.fixture("golden/ledger.jsonl")
