#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The syscalls that change a ledger file, in one place, so tests can inject
/// failures (a short write, EIO from fsync, EFBIG, ENOSPC) without a real
/// broken disk.
package struct FileSystemCalls: Sendable {
    package var write: @Sendable (Int32, UnsafeRawPointer, Int) -> Int
    package var fsync: @Sendable (Int32) -> Int32
    /// The syncs a long append makes while it writes (``Flusher``).
    package var flush: @Sendable (Int32) -> Int32
    package var ftruncate: @Sendable (Int32, Int) -> Int32

    package init(write: @escaping @Sendable (Int32, UnsafeRawPointer, Int) -> Int,
                fsync: @escaping @Sendable (Int32) -> Int32,
                flush: @escaping @Sendable (Int32) -> Int32,
                ftruncate: @escaping @Sendable (Int32, Int) -> Int32) {
        self.write = write
        self.fsync = fsync
        self.flush = flush
        self.ftruncate = ftruncate
    }

    package static let system = FileSystemCalls(
        write: { fd, p, n in Glibc.write(fd, p, n) },
        fsync: { fd in Glibc.fsync(fd) },
        flush: { fd in Glibc.fdatasync(fd) },
        ftruncate: { fd, n in Glibc.ftruncate(fd, off_t(n)) }
    )

    /// The calls in use. Only tests and the fault-injection hook change it,
    /// before any ledger is opened.
    nonisolated(unsafe) package static var current = FileSystemCalls.system

    /// Installs a fault named by the `MILESTONES_FAULT` environment variable,
    /// for end-to-end tests of the error paths: `write` (EIO on the first
    /// append write), `fsync` (EIO on the first fsync), `flush` (EIO on the
    /// syncs a long append makes while it writes), `short-write` (the
    /// first write stops halfway, then EIO), `second-write` (EIO on the
    /// second write). Not for production use.
    package static func installFaultFromEnvironment() {
        guard let spec = getenv("MILESTONES_FAULT").map({ String(cString: $0) }) else { return }
        var calls = FileSystemCalls.system
        switch spec {
        case "write":
            calls.write = { _, _, _ in errno = EIO; return -1 }
        case "fsync":
            calls.fsync = { _ in errno = EIO; return -1 }
        case "flush":
            calls.flush = { _ in errno = EIO; return -1 }
        case "short-write":
            let first = Flag()
            calls.write = { fd, p, n in
                if first.take() { return Glibc.write(fd, p, max(1, n / 2)) }
                errno = EIO
                return -1
            }
        case "second-write":
            // The first write goes through, the next fails: a large batch's second piece.
            let first = Flag()
            calls.write = { fd, p, n in
                if first.take() { return Glibc.write(fd, p, n) }
                errno = EIO
                return -1
            }
        default:
            return
        }
        current = calls
    }
}

/// A one-shot flag.
final class Flag: @unchecked Sendable {
    private var set = true
    func take() -> Bool {
        defer { set = false }
        return set
    }
}

/// What went wrong outside the ledger's content, with the exit code docs/cli.md gives it.
public enum LedgerError: Error, Sendable, CustomStringConvertible {
    case missing(path: String)
    /// A zero-byte file: not a ledger (record 1 is missing).
    case empty(path: String)
    case exists(path: String)
    case io(path: String, operation: String, errno: Int32)
    case locked(path: String, seconds: Double)
    case notIntact(VerifyFailure, path: String)
    case tooLarge(path: String, what: String)
    /// A derived file (tree, read models) no longer matches the ledger.
    case stale(path: String, reason: String)

    public var exitCode: Int32 {
        switch self {
        case .missing, .empty: 66
        case .exists: 73
        case .io, .tooLarge: 74
        case .locked: 75
        case .notIntact, .stale: 1
        }
    }

    public var description: String {
        switch self {
        case .missing(let path):
            return "\(path): no such ledger (create one with `milestones init --name ORIGIN`, or name it with --ledger)"
        case .empty(let path):
            return "\(path): an empty file is not a ledger (it has no record 1); create one with `milestones init --name ORIGIN`"
        case .exists(let path):
            return "\(path): a file already exists there and is left as it is (init never overwrites a ledger; report and replay replace their output with --force)"
        case .io(let path, let op, let e):
            return "\(path): \(op) failed: \(String(cString: strerror(e))); nothing was written"
        case .locked(let path, let s):
            return "\(path): locked by another writer for more than \(s.formatted) s (raise --wait to wait longer)"
        case .notIntact(let f, let path):
            if f.isTornTail {
                return "\(path): \(f); appends are refused until it is repaired"
            }
            return "\(path): not intact: \(f)"
        case .tooLarge(let path, let what):
            return "\(path): \(what)"
        case .stale(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}

extension Double {
    var formatted: String {
        self == rounded() ? String(Int(self)) : String(self)
    }
}
