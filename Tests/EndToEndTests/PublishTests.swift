import Foundation
import TestSupport
import Testing

/// Issue 26: publish (C2SP tlog-tiles), checked by Go's sumdb/tlog and
/// sumdb/note; mirror from a folder and over HTTP; cosign; record's limit.
func goCheck(_ dir: String, _ vkey: String) -> Run {
    run("/usr/bin/env", ["go", "run", "./tlogcheck", dir, vkey],
        env: ["GO111MODULE": "off", "GOPATH": "/usr/share/gocode", "GOFLAGS": "", "GOTOOLCHAIN": "local"],
        cwd: Paths.root.appendingPathComponent("Tests/go").path)
}

func files(under dir: String) -> [String: Data] {
    var out: [String: Data] = [:]
    let e = FileManager.default.enumerator(atPath: dir)!
    while let p = e.nextObject() as? String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir + "/" + p, isDirectory: &isDir), !isDir.boolValue { out[p] = bytes(dir + "/" + p) }
    }
    return out
}

func inode(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: path))?[.systemFileNumber] as? Int) ?? -1 }

/// A ledger of the fixture plus `extra` records, a log key, and the folder it is published to.
struct PublishedLog {
    let dir = TempDir()
    let ledger: String
    var pub: String { dir.file("pub") }
    var key: String { dir.file("log.key") }
    var vkey: String { dir.file("log.vkey") }

    init(extra: Int) {
        ledger = fixtureLedger(in: dir)
        precondition(cli(["keygen", "--name", "example.org/nvidia-ai-factories", "--out", dir.file("log")]).code == 0)
        if extra > 0 { add(0..<extra) }
    }

    func add(_ range: Range<Int>, prefix: String = "lot-") {
        let r = cli(["record", "--quiet", "--ledger", ledger, "--file", "-"], stdin: milestoneLines(ids: prefix, range))
        precondition(r.code == 0, r.stderr)
    }

    @discardableResult
    func publish(env: [String: String] = [:]) -> Run { cli(["publish", pub, "--key", key, "--ledger", ledger], env: env) }
}

@Suite("Issue 26: publish as tlog-tiles, mirror, cosign")
struct PublishTests {
    @Test("publish: Go's sumdb/tlog and sumdb/note read it; a second publish keeps full tiles, adds partial ones, checkpoint last; a crash before the checkpoint leaves the old one valid")
    func publishTwice() throws {
        let log = PublishedLog(extra: 640 - fixtureEventCount)  // 641 records: tiles 0/000, 0/001, 0/002.p/129, 1/000.p/2
        let first = log.publish()
        #expect(first.code == 0, "\(first.stderr)")
        let before = files(under: log.pub)
        #expect(Set(before.keys) == ["checkpoint", "tile/0/000", "tile/0/001", "tile/0/002.p/129", "tile/1/000.p/2",
                                     "tile/entries/000", "tile/entries/001", "tile/entries/002.p/129"])
        #expect(before["tile/0/000"]?.count == 8192 && before["tile/1/000.p/2"]?.count == 64)
        let go1 = goCheck(log.pub, log.vkey)
        #expect(go1.code == 0, "\(go1.stderr)")
        #expect(go1.stdout.hasPrefix("ok: 641 records"))
        let inodes = ["tile/0/000", "tile/0/001", "tile/entries/000"].map { inode(log.pub + "/" + $0) }

        // More records; a publish killed between the tiles and the checkpoint.
        log.add(1000..<1300)  // 941 records: 0/003.p/173, 1/000.p/3
        let crashed = log.publish(env: ["MILESTONES_FAULT": "publish-before-checkpoint"])
        #expect(crashed.code == 137)
        let mid = files(under: log.pub)
        #expect(mid["checkpoint"] == before["checkpoint"])
        #expect(mid["tile/0/002"] != nil && mid["tile/0/003.p/173"] != nil)
        let goMid = goCheck(log.pub, log.vkey)
        #expect(goMid.code == 0 && goMid.stdout.hasPrefix("ok: 641 records"), "\(goMid.stderr)")

        let second = log.publish()
        #expect(second.code == 0, "\(second.stderr)")
        let after = files(under: log.pub)
        for (path, data) in before where !path.contains(".p/") && path != "checkpoint" {
            #expect(after[path] == data, "\(path) changed")
        }
        #expect(["tile/0/000", "tile/0/001", "tile/entries/000"].map { inode(log.pub + "/" + $0) } == inodes, "full tiles rewritten")
        #expect(after["checkpoint"] != before["checkpoint"])
        #expect(after["tile/1/000.p/3"]?.count == 96 && after["tile/0/003.p/173"]?.count == 173 * 32)
        let go2 = goCheck(log.pub, log.vkey)
        #expect(go2.code == 0 && go2.stdout.hasPrefix("ok: 941 records"), "\(go2.stderr)")

        // A full tile that is not this ledger's is refused, the checkpoint left alone.
        var tile = [UInt8](after["tile/0/001"]!)
        tile[5] ^= 1
        try Data(tile).write(to: URL(fileURLWithPath: log.pub + "/tile/0/001"))
        let bad = log.publish()
        #expect(bad.code == 1 && bad.stderr.contains("tile/0/001"), "\(bad.stderr)")
        #expect(bytes(log.pub + "/checkpoint") == after["checkpoint"])
    }

    @Test("mirror from a folder: fresh, incremental, then a fork, a rewritten record, a bad tile, a bad signature: exit 1, local ledger byte-identical, evidence kept")
    func mirrorFolder() throws {
        let log = PublishedLog(extra: 360 - fixtureEventCount)  // 361 records
        #expect(log.publish().code == 0)
        let local = log.dir.file("copy.jsonl")
        let fresh = cli(["mirror", log.pub, "--key", log.vkey, "--ledger", local])
        #expect(fresh.code == 0, "\(fresh.stderr)")
        #expect(bytes(local) == bytes(log.ledger))
        log.add(1000..<1100)
        #expect(log.publish().code == 0)
        let inc = cli(["mirror", log.pub, "--key", log.vkey, "--ledger", local])
        #expect(inc.code == 0 && inc.stdout.contains("records 362…461"), "\(inc.stdout)\(inc.stderr)")
        #expect(bytes(local) == bytes(log.ledger))
        #expect(cli(["verify", "--ledger", local]).code == 0)
        log.add(1100..<1150)
        #expect(log.publish().code == 0)

        func refused(_ source: String, _ what: String, key: String? = nil) {
            let kept = bytes(local)
            let r = cli(["mirror", source, "--key", key ?? log.vkey, "--ledger", local])
            #expect(r.code == 1, "\(what): \(r.stderr)")
            #expect(r.stderr.contains(what), "\(r.stderr)")
            #expect(bytes(local) == kept, "\(what): local ledger changed")
            guard let path = r.stderr.components(separatedBy: "evidence kept in ").last?.components(separatedBy: " ").first,
                  let ev = parseJSON(String(decoding: bytes(path), as: UTF8.self)) as? [String: Any]
            else {
                Issue.record("\(what): no evidence file named in \(r.stderr)")
                return
            }
            #expect((ev["fetched_checkpoint"] as? String)?.contains("example.org/nvidia-ai-factories") == true)
            #expect((ev["local_checkpoint"] as? String)?.contains("\n461\n") == true, "\(ev)")
        }
        // A rewritten record: one byte of a new record in its bundle.
        let rewritten = log.dir.file("rewritten")
        try FileManager.default.copyItem(atPath: log.pub, toPath: rewritten)
        var bundle = [UInt8](bytes(rewritten + "/tile/entries/001.p/255"))
        let at = bundle.count - 100
        bundle[at] = bundle[at] == UInt8(ascii: "1") ? UInt8(ascii: "2") : UInt8(ascii: "1")
        try Data(bundle).write(to: URL(fileURLWithPath: rewritten + "/tile/entries/001.p/255"))
        refused(rewritten, "bad entries")
        // A bad tile: the level-1 tile the consistency proof reads (the hash of records 1…256).
        let badTile = log.dir.file("badtile")
        try FileManager.default.copyItem(atPath: log.pub, toPath: badTile)
        var t = [UInt8](bytes(badTile + "/tile/1/000.p/1"))
        t[0] ^= 0xFF
        try Data(t).write(to: URL(fileURLWithPath: badTile + "/tile/1/000.p/1"))
        refused(badTile, "bad tile")
        // A bad signature: the checkpoint signed by another key of the same name.
        let other = log.dir.file("other")
        try FileManager.default.copyItem(atPath: log.pub, toPath: other)
        #expect(cli(["keygen", "--name", "example.org/nvidia-ai-factories", "--out", log.dir.file("impostor")]).code == 0)
        #expect(cli(["checkpoint", "--ledger", log.ledger, "--key", log.dir.file("impostor.key"), "--out", other + "/checkpoint"]).code == 0)
        refused(other, "not signed by")
        // A fork: the same origin and key, other records after the first 361.
        let forkDir = TempDir()
        let forked = forkDir.file("f.jsonl")
        try Data(bytes(log.ledger).prefix(upTo: bytes(log.ledger).split(separator: 0x0A).prefix(361).reduce(0) { $0 + $1.count + 1 })).write(to: URL(fileURLWithPath: forked))
        let fr = cli(["record", "--quiet", "--ledger", forked, "--file", "-"], stdin: milestoneLines(ids: "fork-", 0..<150))
        #expect(fr.code == 0, "\(fr.stderr)")
        #expect(cli(["publish", forkDir.file("pub"), "--key", log.key, "--ledger", forked]).code == 0)
        refused(forkDir.file("pub"), "fork")
        // The real one still mirrors.
        let ok = cli(["mirror", log.pub, "--key", log.vkey, "--ledger", local])
        #expect(ok.code == 0, "\(ok.stderr)")
        #expect(bytes(local) == bytes(log.ledger))
    }

    @Test("mirror over HTTP from a local web server: fresh, then incremental")
    func mirrorHTTP() throws {
        let log = PublishedLog(extra: 10)
        #expect(log.publish().code == 0)
        // A free port, then python3's http.server on it, stopped when the test ends.
        let port = freeLoopbackPort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", log.pub]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            // SIGKILL: the child may have SIGTERM blocked, inherited from the test runner's thread.
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        let url = "http://127.0.0.1:\(port)"
        var up = false
        for _ in 0..<100 where !up {
            up = acceptsConnections(loopbackPort: port)
            if !up { usleep(50_000) }
        }
        #expect(up, "the web server did not start")
        let local = log.dir.file("web.jsonl")
        let fresh = cli(["mirror", url, "--key", log.vkey, "--ledger", local])
        #expect(fresh.code == 0, "\(fresh.stderr)")
        #expect(bytes(local) == bytes(log.ledger))
        log.add(10..<20)
        #expect(log.publish().code == 0)
        let inc = cli(["mirror", url + "/", "--key", log.vkey, "--ledger", local])
        #expect(inc.code == 0, "\(inc.stderr)")
        #expect(bytes(local) == bytes(log.ledger))
        let missing = cli(["mirror", url + "/nothing-here", "--key", log.vkey, "--ledger", log.dir.file("none.jsonl")])
        #expect(missing.code == 66, "\(missing.stderr)")
    }

    @Test("cosign: the first time, after growth (consistent), then a fork and a rollback: exit 1, state unchanged")
    func cosign() throws {
        let log = PublishedLog(extra: 100 - fixtureEventCount)  // 101 records
        #expect(log.publish().code == 0)
        #expect(cli(["keygen", "--witness", "--name", "witness.example/w1", "--out", log.dir.file("w1")]).code == 0)
        let state = log.dir.file("w1.state")
        func cosign(_ source: String, _ out: String) -> Run {
            cli(["cosign", "--log", source, "--log-key", log.vkey, "--key", log.dir.file("w1.key"), "--state", state, "--out", out])
        }
        let first = cosign(log.pub, log.dir.file("c1"))
        #expect(first.code == 0, "\(first.stderr)")
        #expect(cosignatureTool(["check", log.dir.file("c1"), log.dir.file("w1.vkey")]).code == 0)
        log.add(1000..<1280)
        #expect(log.publish().code == 0)
        let second = cosign(log.pub, log.dir.file("c2"))
        #expect(second.code == 0 && second.stdout.contains("extends the 101 records"), "\(second.stdout)\(second.stderr)")
        #expect(cosignatureTool(["check", log.dir.file("c2"), log.dir.file("w1.vkey")]).code == 0)
        let v = cli(["verify", "--ledger", log.ledger, "--checkpoint", log.dir.file("c2"), "--key", log.vkey,
                     "--witness", log.dir.file("w1.vkey"), "--quorum", "1"])
        #expect(v.code == 0, "\(v.stderr)")
        let kept = bytes(state)
        // Rollback: the first publication again.
        let old = TempDir()
        let oldLedger = old.file("o.jsonl")
        try Data(bytes(log.ledger).prefix(upTo: bytes(log.ledger).split(separator: 0x0A).prefix(101).reduce(0) { $0 + $1.count + 1 })).write(to: URL(fileURLWithPath: oldLedger))
        #expect(cli(["publish", old.file("pub"), "--key", log.key, "--ledger", oldLedger]).code == 0)
        let rollback = cosign(old.file("pub"), log.dir.file("c3"))
        #expect(rollback.code == 1 && rollback.stderr.contains("rollback"), "\(rollback.stderr)")
        #expect(bytes(state) == kept)
        #expect(!FileManager.default.fileExists(atPath: log.dir.file("c3")))
        // Fork: other records after the first 101, grown past 381.
        let fr = cli(["record", "--quiet", "--ledger", oldLedger, "--file", "-"], stdin: milestoneLines(ids: "fork-", 0..<300))
        #expect(fr.code == 0, "\(fr.stderr)")
        #expect(cli(["publish", old.file("pub2"), "--key", log.key, "--ledger", oldLedger]).code == 0)
        let fork = cosign(old.file("pub2"), log.dir.file("c4"))
        #expect(fork.code == 1 && fork.stderr.contains("fork") && fork.stderr.contains("evidence kept in"), "\(fork.stderr)")
        #expect(bytes(state) == kept)
    }

    @Test("record refuses a record line over 65,535 bytes (exit 65, nothing written); 65,535 is fine")
    func recordLimit() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        func event(_ id: String, pad: Int) -> String {
            let sources = (0..<44).map { i in
                #"{"publisher":"p\#(i)-\#(String(repeating: "x", count: i == 0 ? min(pad, 1990) : i == 1 ? pad - min(pad, 1990) : 1500))"}"#
            }
            return #"{"id":"\#(id)","type":"production.milestone","milestone":"m","date":"2026-01-01","subject":"foxconn-houston","sources":[\#(sources.joined(separator: ","))]}"# + "\n"
        }
        // Measure: one event of known padding in a scratch copy.
        let scratch = dir.file("scratch.jsonl")
        try FileManager.default.copyItem(atPath: ledger, toPath: scratch)
        #expect(cli(["record", "--quiet", "--ledger", scratch, "--file", "-"], stdin: event("big", pad: 1000)).code == 0)
        let measured = String(decoding: bytes(scratch), as: UTF8.self).split(separator: "\n").last!.utf8.count
        let pad = 1000 + 65_536 - measured
        let before = bytes(ledger)
        let r = cli(["record", "--ledger", ledger, "--file", "-"], stdin: "\n" + event("big", pad: pad))
        #expect(r.code == 65)
        #expect(r.stderr.contains("<stdin>:2") && r.stderr.contains("65536 bytes") && r.stderr.contains("at most 65535"), "\(r.stderr)")
        #expect(bytes(ledger) == before)
        let ok = cli(["record", "--quiet", "--ledger", ledger, "--file", "-"], stdin: event("big", pad: pad - 1))
        #expect(ok.code == 0, "\(ok.stderr)")
        #expect(String(decoding: bytes(ledger), as: UTF8.self).split(separator: "\n").last!.utf8.count == 65_535)
    }
}
