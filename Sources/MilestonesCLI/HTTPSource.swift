import ArgumentParser
import Foundation
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif


/// A folder, or an http(s) URL read with URLSession.
func logSource(_ source: String) throws -> any LogSource {
    if source.hasPrefix("http://") || source.hasPrefix("https://") {
        guard URL(string: source) != nil else { throw UsageProblem(message: "\(source): not a URL") }
        return HTTPSource(base: source.hasSuffix("/") ? String(source.dropLast()) : source)
    }
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: source, isDirectory: &isDir), isDir.boolValue else {
        throw TlogError("\(source): no such folder; give the folder `milestones publish` wrote, or an http(s) URL", exitCode: 66)
    }
    return FolderSource(source)
}

/// A published log over http(s), fetched with the `curl` command (Debian's
/// curl package; `make deps` installs it). Not FoundationNetworking: linking it
/// loads libcurl and some thirty libraries into every command, most of a
/// one-record command's start-up, for the one command that needs a network.
struct HTTPSource: LogSource {
    let base: String

    func describe(_ path: String) -> String { base + "/" + path }

    func fetch(_ path: String) throws -> [UInt8]? {
        let url = describe(path)
        let body = FileManager.default.temporaryDirectory.appendingPathComponent("milestones-fetch-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: body) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // --proto: http(s) only, also after a redirect; the status code on stdout, the body in a file.
        // -q first: no ~/.curlrc. --compressed: tlog-tiles servers may send gzip. A cap on the size:
        // a checkpoint is small, a tile at most 256 hashes, a bundle at most 256 lines of 65,535 bytes.
        let cap = path == "checkpoint" ? 1 << 20 : 256 * (65_535 + 2)
        p.arguments = ["curl", "-q", "--silent", "--show-error", "--location", "--compressed", "--proto", "=http,https", "--proto-redir", "=http,https",
                       "--max-time", "30", "--max-filesize", "\(cap)", "--output", body.path, "--write-out", "%{http_code}", "--", url]
        let out = Pipe(), err = Pipe()
        (p.standardOutput, p.standardError) = (out, err)
        do {
            try p.run()
        } catch {
            throw TlogError("\(url): cannot run curl (\(error)); install it (`make deps` does), then run again", exitCode: 74)
        }
        let code = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let why = problem.isEmpty ? "curl exited with \(p.terminationStatus)" : problem
            throw TlogError("\(url): \(why); check the URL and the network, then run again", exitCode: 74)
        }
        if code == "404" { return nil }
        guard code == "200" else {
            throw TlogError("\(url): HTTP \(code); check the URL and the server, then run again", exitCode: 74)
        }
        guard let data = FileManager.default.contents(atPath: body.path) else { return [] }
        return [UInt8](data)
    }
}
