import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
#if canImport(Glibc)
import Glibc
#endif

extension Milestones {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check the whole ledger: canonical lines, hash chain, seq, time, events, references.",
            discussion: """
                Streams the file and reports the first failure with its seq (or line), byte
                offset and reason; exit 1 when anything is wrong, including an empty file and a
                torn tail.

                With --checkpoint and --key, also checks that every checkpoint is signed by
                every key and that the ledger extends it: fewer records than it commits to is
                reported as truncation or rollback, another root for its first n records as a
                fork. Signatures by keys not given are ignored, whatever their type.

                With --witness (repeatable) the checkpoints must also carry valid C2SP
                cosignature/v1 lines from at least --quorum K of those witnesses (default:
                all of them).

                Examples:
                  milestones verify
                  milestones verify --format json
                  milestones verify --checkpoint yesterday.checkpoint --key signer.vkey
                  milestones verify --checkpoint cosigned.checkpoint --key signer.vkey \\
                      --witness w1.vkey --witness w2.vkey --witness w3.vkey --quorum 2
                """
        )

        @OptionGroup var location: LedgerLocation
        @Option(help: "Output: text or json.") var format: OutputFormat = .text
        @Option(name: .customLong("checkpoint"), help: ArgumentHelp("A signed checkpoint the ledger must extend (repeatable).", valueName: "file"))
        var checkpoints: [String] = []
        @Option(name: .customLong("key"), help: ArgumentHelp("A verifier key the checkpoints must be signed by (repeatable).", valueName: "prefix.vkey"))
        var keys: [String] = []
        @Option(name: .customLong("witness"), help: ArgumentHelp("A witness's verifier key (cosignature/v1, from `keygen --witness`) whose cosignature counts toward --quorum (repeatable).", valueName: "w.vkey"))
        var witnesses: [String] = []
        @Option(help: ArgumentHelp("How many of the --witness keys must have cosigned each checkpoint (default: all).", valueName: "k"))
        var quorum: Int?

        func validate() throws {
            if !checkpoints.isEmpty, keys.isEmpty { throw ValidationError("--checkpoint needs at least one --key PREFIX.vkey") }
            if checkpoints.isEmpty, !keys.isEmpty { throw ValidationError("--key goes with --checkpoint FILE") }
            if !witnesses.isEmpty, checkpoints.isEmpty { throw ValidationError("--witness goes with --checkpoint FILE and --key LOG.vkey") }
            if let quorum {
                guard !witnesses.isEmpty else { throw ValidationError("--quorum goes with --witness W.vkey (repeatable)") }
                guard quorum >= 1, quorum <= witnesses.count else {
                    throw ValidationError("--quorum must be between 1 and the number of --witness keys (\(witnesses.count))")
                }
            }
        }

        /// Checks each checkpoint against the (verified) ledger; nil when all hold.
        func checkCheckpoints() throws -> (file: String, reason: String)? {
            guard !checkpoints.isEmpty else { return nil }
            let vkeys = try loadVerifierKeys(keys)
            let wkeys = try loadVerifierKeys(witnesses)
            let ledger = try ProvableLedger(path: location.path)
            for file in checkpoints {
                do {
                    let note = try SignedNote(parsing: try readBytes(file))
                    let cp = try ProofCheck.checkpoint(note, keys: vkeys)
                    if !wkeys.isEmpty { try note.verifyQuorum(witnesses: wkeys, quorum: quorum) }
                    let verdict = try ledger.check(cp)
                    if verdict != .consistent { return (file, verdict.message) }
                } catch let e as NoteError {
                    return (file, "\(e)")
                }
            }
            return nil
        }

        func run() throws {
            try reportingErrors {
                let file = try LedgerFile.open(location.path, writable: false)
                let progress = isTerminal(2) ? ProgressLine(label: "verifying") : nil
                do {
                    let ledger = try LedgerReader.verify(file, progress: progress.map { p in { p.update($0, of: $1) } })
                    progress?.done()
                    if let (cpFile, reason) = try checkCheckpoints() {
                        if format == .json {
                            let error: JSONValue = ["seq": .null, "line": .null, "offset": .null, "reason": .string("\(cpFile): \(reason)")]
                            print(jsonLine(["ok": false, "records": .int(Int64(ledger.records)), "head": .string(ledger.head.sha256.hex), "error": error]))
                        }
                        printError("milestones: \(location.path): checkpoint \(cpFile): \(reason)")
                        throw ExitCode(1)
                    }
                    switch format {
                    case .json:
                        print(jsonLine(["ok": true, "records": .int(Int64(ledger.records)), "head": .string(ledger.head.sha256.hex), "error": .null]))
                    case .text:
                        print("ok: \(ledger.records) records, head \(ledger.head.sha256.hex)")
                        for cp in checkpoints { print("ok: extends \(cp)") }
                    }
                } catch LedgerError.notIntact(let f, let path) {
                    progress?.done()
                    if format == .json {
                        let error: JSONValue = [
                            "seq": f.seq.map { .int(Int64($0)) } ?? .null, "line": .int(Int64(f.line)),
                            "offset": .int(Int64(f.offset)), "reason": .string(f.reason),
                        ]
                        let good = goodPrefix(file, before: f.offset)
                        print(jsonLine(["ok": false, "records": .int(Int64(good?.seq ?? 0)),
                                        "head": good.map { .string($0.sha256.hex) } ?? .null, "error": error]))
                    }
                    printError("milestones: \(path): \(f.isTornTail ? "" : "not intact: ")\(f)")
                    throw ExitCode(1)
                }
            }
        }

        /// The head of the intact records before a failure (they verified already).
        func goodPrefix(_ file: LedgerFile, before offset: Int) -> ChainHead? {
            guard offset > 0 else { return nil }
            return try? LedgerReader.verify(file, upTo: offset).head
        }
    }
}
