import ArgumentParser
import CanonicalJSON
import MilestoneLedger
import MilestoneModel
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

func writeStderr(_ text: String) {
    var s = text
    s.withUTF8 { buf in
        var done = 0
        while done < buf.count {
            let n = Glibc.write(2, buf.baseAddress! + done, buf.count - done)
            if n <= 0 { return }
            done += n
        }
    }
}

/// Runs a command body, turning the library's errors into one stderr line a
/// problem and the exit code of cli.md.
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

/// Reads an input file (or stdin for "-") line by line, with bounded memory:
/// a line longer than the limit is reported, not buffered.
struct InputLines {
    let fd: Int32
    let name: String

    static func open(_ path: String) throws -> InputLines {
        if path == "-" { return InputLines(fd: 0, name: "<stdin>") }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw LedgerError.missing(path: path) }
            throw LedgerError.io(path: path, operation: "open", errno: e)
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw UsageProblem(message: "\(path): is a folder, not a JSON Lines file")
        }
        return InputLines(fd: fd, name: path)
    }

    /// Calls `body(lineNumber, bytes)` for every line (without LF);
    /// `tooLong(lineNumber)` for lines over the limit.
    func forEach(_ body: (Int, UnsafeBufferPointer<UInt8>) throws -> Void, tooLong: (Int) -> Void) throws {
        let limit = LedgerReader.maxLineLength
        var buf = [UInt8](repeating: 0, count: 4 << 20)
        var filled = 0
        var lineNo = 1
        var skipping = false
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LedgerError.io(path: name, operation: "read", errno: errno)
            }
            filled += n
            var start = 0
            try buf.withUnsafeBufferPointer { p in
                let base = p.baseAddress!
                while start < filled, let hit = memchr(base + start, 0x0A, filled - start) {
                    let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if skipping {
                        skipping = false
                    } else {
                        try body(lineNo, UnsafeBufferPointer(rebasing: p[start..<i]))
                    }
                    lineNo += 1
                    start = i + 1
                }
            }
            let rest = filled - start
            if n == 0 {
                if rest > 0 && !skipping {
                    try buf.withUnsafeBufferPointer { try body(lineNo, UnsafeBufferPointer(rebasing: $0[start..<filled])) }
                }
                return
            }
            if !skipping && rest > limit {
                tooLong(lineNo)
                skipping = true
            }
            if skipping {
                filled = 0
            } else {
                if start > 0 {
                    buf.withUnsafeMutableBytes { b in _ = memmove(b.baseAddress!, b.baseAddress! + start, rest) }
                }
                filled = rest
                if filled == buf.count { buf.append(contentsOf: [UInt8](repeating: 0, count: buf.count)) }
            }
        }
    }
}

/// A JSON value as one line of text.
func jsonLine(_ v: JSONValue) -> String { JSONWriter.string(v) }
