import ArgumentParser
import Foundation
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif

/// `publish`, `mirror`, `cosign`: the ledger as C2SP tlog-tiles, followed by
/// readers and witnessed (docs/ledger-format.md, "Publishing").
struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Write the ledger as a C2SP tlog-tiles log (static files) under DIR, with a signed checkpoint.",
        discussion: """
            Writes DIR/tile/<L>/<N>[.p/<W>] (Merkle tiles), DIR/tile/entries/<N>[.p/<W>]
            (the record lines) and, last, DIR/checkpoint signed with --key. Run it again
            after recording more: full tiles already there are checked, never rewritten;
            new tiles and partial ones are written, then the checkpoint, each through a
            temporary file and a rename, so a reader never sees a checkpoint whose tiles
            are missing. Serve DIR with any web server; readers follow it with `mirror`.

            Examples:
              milestones publish site/log --key signer.key
              milestones publish /srv/www/ai-factories --key signer.key --ledger ai.jsonl
            """
    )

    @Argument(help: ArgumentHelp("The folder to write (created if missing).", valueName: "dir")) var dir: String
    @OptionGroup var location: LedgerLocation
    @Option(name: .customLong("key"), help: ArgumentHelp("The log's private key (repeatable).", valueName: "log.key"))
    var keys: [String] = []

    func validate() throws {
        guard !keys.isEmpty else { throw ValidationError("give --key LOG.key to sign the checkpoint with") }
    }

    func run() throws {
        try reportingErrors {
            do {
                let signers = try keys.map { try SignerKey.load($0) }
                let ledger = try ProvableLedger(path: location.path)
                // Records written into tiles so far, on a terminal only.
                let progress = isTerminal(2) ? ProgressLine(label: "publishing") : nil
                defer { progress?.done() }
                let r = try Publisher.publish(ledger, to: dir, keys: signers, progress: progress.map { p in { p.update($0, of: $1) } }) {
                    // Fault injection for the crash tests (not for production use).
                    if getenv("MILESTONES_FAULT").map({ String(cString: $0) }) == "publish-before-checkpoint" { _exit(137) }
                }
                print("published \(r.size) records to \(dir): \(r.written) files written, \(r.kept) full tiles already there and unchanged; checkpoint last")
            }
        }
    }
}

struct Mirror: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirror",
        abstract: "Follow a published ledger (a folder or an http(s) URL) into the local --ledger, verified.",
        discussion: """
            Fetches the checkpoint and checks the log's signature (and, with --witness,
            the witnesses' cosignatures, --quorum K of them); checks that the published
            tree extends the local ledger (a consistency proof from the tiles), fetches
            only the records the local copy lacks, checks that they give the
            checkpoint's root and are valid records chained onto the local head, as
            `verify` does, and appends them, byte for byte. The local ledger is created
            when missing. The checkpoint it matches is kept beside it (X.mirror-checkpoint).

            On any mismatch (a fork, a rollback, a rewritten record, a bad tile, a bad
            signature) nothing is written, the evidence (the checkpoint the local copy
            matched and the one fetched) is kept in X.mirror-evidence.json, and the exit
            code is 1.

            Examples:
              milestones mirror https://example.org/ai-factories --key signer.vkey --ledger ai.jsonl
              milestones mirror /mnt/copy/log --key signer.vkey
              milestones mirror https://example.org/log --key signer.vkey \\
                  --witness w1.vkey --witness w2.vkey --quorum 1
            """
    )

    @Argument(help: ArgumentHelp("The published log: a folder, or an http:// or https:// URL.", valueName: "source")) var source: String
    @OptionGroup var location: LedgerLocation
    @Option(help: ArgumentHelp("The log's verifier key.", valueName: "log.vkey")) var key: String
    @Option(name: .customLong("witness"), help: ArgumentHelp("A witness's verifier key (repeatable).", valueName: "w.vkey"))
    var witnesses: [String] = []
    @Option(help: ArgumentHelp("How many --witness cosignatures are required (default: all).", valueName: "k")) var quorum: Int?

    func validate() throws {
        if let quorum {
            guard !witnesses.isEmpty else { throw ValidationError("--quorum goes with --witness W.vkey (repeatable)") }
            guard quorum >= 1, quorum <= witnesses.count else {
                throw ValidationError("--quorum must be between 1 and the number of --witness keys (\(witnesses.count))")
            }
        }
    }

    func run() throws {
        try reportingErrors {
            do {
                let vkey = try loadVerifierKeys([key])[0]
                let wkeys = try loadVerifierKeys(witnesses)
                let src = try logSource(source)
                do {
                    let r = try Follower.mirror(src, ledger: location.path, key: vkey, witnesses: wkeys, quorum: quorum)
                    if r.from == r.to {
                        print("up to date: \(location.path) holds the \(r.to) records of \(r.origin)")
                    } else {
                        print("mirrored \(r.origin): records \(r.from + 1)…\(r.to) appended to \(location.path), verified")
                    }
                } catch let e as Follower.FollowError {
                    let evidence = try Follower.keepEvidence(e, ledger: location.path, source: source)
                    printError("milestones: mirror refused, \(location.path) left as it was: \(e.reason); evidence kept in \(evidence) (report it to the log's operator)")
                    throw ExitCode(1)
                }
            }
        }
    }
}

struct Cosign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cosign",
        abstract: "Act as a witness: check a published checkpoint and add a C2SP cosignature/v1 to it.",
        discussion: """
            Fetches the checkpoint from --log (a folder or an http(s) URL), checks the
            log's signature with --log-key, and checks from the tiles that it extends the
            last checkpoint this witness cosigned for the same origin (kept in --state;
            the first one is taken as it is). Then writes it, with a cosignature/v1 line
            by --key (a key from `keygen --witness`) added, to --out, and records it in
            --state. A fork or a rollback is exit 1: nothing written, the state unchanged,
            the evidence kept in STATE.cosign-evidence.json.

            Examples:
              milestones keygen --witness --name witness.example.org/w1 --out w1
              milestones cosign --log https://example.org/ai-factories --log-key signer.vkey \\
                  --key w1.key --state w1.state --out cosigned.checkpoint
            """
    )

    @Option(help: ArgumentHelp("The published log: a folder, or an http:// or https:// URL.", valueName: "source")) var log: String
    @Option(name: .customLong("log-key"), help: ArgumentHelp("The log's verifier key.", valueName: "log.vkey")) var logKey: String
    @Option(help: ArgumentHelp("The witness's private key (keygen --witness).", valueName: "witness.key")) var key: String
    @Option(help: ArgumentHelp("The witness's state: the last checkpoint cosigned per origin (created if missing).", valueName: "file"))
    var state: String
    @Option(help: ArgumentHelp("Where to write the cosigned checkpoint.", valueName: "file")) var out: String

    func run() throws {
        try reportingErrors {
            do {
                let witness = try SignerKey.load(key)
                guard witness.algorithm == .cosignatureV1 else {
                    throw TlogError("\(key): a log key, not a witness key; make one with `milestones keygen --witness`", exitCode: 65)
                }
                let vkey = try loadVerifierKeys([logKey])[0]
                let src = try logSource(log)
                do {
                    let c = try Follower.cosign(src, logKey: vkey, witness: witness, state: state, out: out,
                                                time: UInt64(max(0, LedgerClock.now().seconds)))
                    let was = c.previous.map { "extends the \($0) records cosigned before" } ?? "first checkpoint seen for this origin"
                    print("cosigned \(c.checkpoint.origin) at \(c.checkpoint.size) records (\(was)): wrote \(out)")
                } catch let e as Follower.FollowError {
                    let evidence = try Follower.keepWitnessEvidence(e, state: state, source: log)
                    printError("milestones: not cosigned, \(state) unchanged: \(e.reason); evidence kept in \(evidence)")
                    throw ExitCode(1)
                }
            }
        }
    }
}


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
