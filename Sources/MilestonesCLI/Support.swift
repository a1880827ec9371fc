import ArgumentParser
import MilestoneCrypto
import GRDB
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
import MilestoneProjections
#if canImport(Glibc)
import Glibc
#endif

/// Options every subcommand shares: where the ledger is.
struct LedgerLocation: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The ledger file (default: $MILESTONES_LEDGER, else milestones.jsonl).", valueName: "path"))
    var ledger: String?

    var path: String {
        if let ledger { return ledger }
        if let env = getenv("MILESTONES_LEDGER").map({ String(cString: $0) }), !env.isEmpty { return env }
        return "milestones.jsonl"
    }
}

struct WaitOption: ParsableArguments {
    @Option(help: ArgumentHelp("Seconds to wait for another writer's lock before giving up (exit 75).", valueName: "seconds"))
    var wait: Double = 10

    func validate() throws {
        guard wait >= 0, wait.isFinite else { throw ValidationError("--wait must be a number of seconds ≥ 0") }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Writes to stderr without buffering.
func printError(_ line: String) {
    writeStderr(line + "\n")
}

func writeStdout(_ text: String) {
    writeAll(fd: 1, text)
}

func writeStderr(_ text: String) {
    writeAll(fd: 2, text)
}

func writeAll(fd: Int32, _ text: String) {
    var s = text
    s.withUTF8 { writeAll(fd: fd, bytes: $0) }
}

func writeAll(fd: Int32, bytes buf: UnsafeBufferPointer<UInt8>) {
    var done = 0
    while done < buf.count {
        let n = Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
        if n < 0, errno == EINTR { continue }
        if n <= 0 { return }
        done += n
    }
}

/// Runs a command body, turning the library's errors into one stderr line a
/// problem and the exit code of docs/cli.md.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as LedgerError {
        printError("milestones: \(e)")
        throw ExitCode(e.exitCode)
    } catch let e as InputError {
        for p in e.problems { printError(p) }
        printError("milestones: nothing was written")
        throw ExitCode(65)
    } catch let e as UsageProblem {
        printError("milestones: \(e.message)")
        throw ExitCode(64)
    } catch let e as KeyError {
        printError("milestones: \(e)")
        if case .exposed = e { throw ExitCode(74) }
        throw ExitCode(65)
    } catch let e as NoteError {
        printError("milestones: checkpoint: \(e)")
        throw ExitCode(1)
    } catch let e as ProofError {
        printError("milestones: \(e)")
        throw ExitCode(1)
    } catch let e as CryptoError {
        printError("milestones: \(e)")
        throw ExitCode(74)
    } catch let e as TlogError {
        printError("milestones: \(e.message)")
        throw ExitCode(e.exitCode)
    } catch let e as ReadModelsServiceError {
        printError("milestones: \(e.message)")
        throw ExitCode(e.exitCode)
    } catch let e as DatabaseError {
        printError("milestones: read models: \(e.message ?? "SQLite error \(e.resultCode)") (remove the .sqlite file to rebuild it)")
        throw ExitCode(74)
    }
}

struct UsageProblem: Error {
    var message: String
}

/// SIGXFSZ would kill the process when a write passes RLIMIT_FSIZE; ignored,
/// the write fails with EFBIG instead and the ledger is cut back (exit 74).
func ignoreFileSizeSignal() {
    signal(SIGXFSZ, SIG_IGN)
}

func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

/// A JSON value as one line of text.
func jsonLine(_ v: JSONValue) -> String { JSONWriter.string(v) }

/// Reads verifier key files (`--key PREFIX.vkey`); a malformed one is invalid input.
func loadVerifierKeys(_ paths: [String]) throws -> [VerifierKey] {
    try paths.map { path in
        do {
            return try VerifierKey(parsing: String(decoding: try readBytes(path), as: UTF8.self))
        } catch let e as KeyError {
            throw InputError(problems: ["\(path): \(e)"])
        }
    }
}

func readJSON(_ path: String) throws -> JSONValue {
    try JSONReader.parse(try readBytes(path))
}

extension CalendarDate {
    /// A date after every date a ledger can hold (year 9999's last day).
    static let distantFuture = CalendarDate(year: 9999, month: 12, day: 31)!
}
