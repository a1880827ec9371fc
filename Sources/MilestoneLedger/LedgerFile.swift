#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import MilestoneModel

/// An open ledger file: locking, reading, appending durably, truncating.
///
/// Writers hold an exclusive `flock` for the whole read-validate-append
/// cycle, so concurrent appends from several processes are serialised and
/// the chain never forks. Readers take a shared lock only to read the file's
/// length, then read that prefix, which appends never change.
public final class LedgerFile {
    public let path: String
    let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    /// Opens an existing ledger.
    public static func open(_ path: String, writable: Bool) throws(LedgerError) -> LedgerFile {
        let fd = Glibc.open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw .missing(path: path) }
            throw .io(path: path, operation: "open", errno: e)
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw .io(path: path, operation: "open (it is a folder)", errno: EISDIR)
        }
        return LedgerFile(path: path, fd: fd)
    }

    /// Creates a new ledger holding exactly `bytes`, atomically: the bytes are
    /// written and synced to a temporary file that is then linked into place,
    /// so the ledger either appears whole or not at all, and an existing file
    /// is never replaced.
    public static func create(_ path: String, bytes: [UInt8]) throws(LedgerError) {
        let dir = directory(of: path)
        let tmp = dir + "/.\(basename(of: path)).init-\(getpid())"
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw .io(path: path, operation: "create (no such folder)", errno: e) }
            throw .io(path: path, operation: "create", errno: e)
        }
        let file = LedgerFile(path: tmp, fd: fd)
        defer { unlink(tmp) }
        try file.writeAll(bytes)
        guard FileSystemCalls.current.fsync(fd) == 0 else { throw LedgerError.io(path: path, operation: "fsync", errno: errno) }
        guard link(tmp, path) == 0 else {
            let e = errno
            if e == EEXIST { throw .exists(path: path) }
            throw .io(path: path, operation: "link", errno: e)
        }
        syncDirectory(dir)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }

    static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    static func syncDirectory(_ dir: String) {
        let d = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 {
            _ = FileSystemCalls.current.fsync(d)
            close(d)
        }
    }

    // MARK: Locks

    /// Takes the lock, retrying until `wait` seconds have passed (then exit 75).
    public func lock(exclusive: Bool, wait: Double) throws(LedgerError) {
        let deadline = monotonicSeconds() + max(0, wait)
        var pause = 0.002
        while true {
            if flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 { return }
            let e = errno
            guard e == EWOULDBLOCK || e == EINTR else { throw .io(path: path, operation: "flock", errno: e) }
            if monotonicSeconds() >= deadline { throw .locked(path: path, seconds: wait) }
            usleep(UInt32(pause * 1_000_000))
            pause = min(pause * 2, 0.05)
        }
    }

    public func unlock() { flock(fd, LOCK_UN) }

    public func size() throws(LedgerError) -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, operation: "fstat", errno: errno) }
        return Int(st.st_size)
    }

    // MARK: Writing

    func writeAll(_ bytes: [UInt8]) throws(LedgerError) {
        var done = 0
        let calls = FileSystemCalls.current
        let failure: Int32? = bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = calls.write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { return EIO }
                done += n
            }
            return nil
        }
        if let e = failure { throw .io(path: path, operation: "write", errno: e) }
    }

    /// Appends whole lines at byte `length` (the current end) and makes them
    /// durable before returning. On any failure the file is cut back to
    /// `length`, so nothing half-written remains, and the error is thrown.
    public func append(_ bytes: [UInt8], at length: Int) throws(LedgerError) {
        guard lseek(fd, off_t(length), SEEK_SET) >= 0 else { throw .io(path: path, operation: "seek", errno: errno) }
        do throws(LedgerError) {
            try writeAll(bytes)
            guard FileSystemCalls.current.fsync(fd) == 0 else { throw LedgerError.io(path: path, operation: "fsync", errno: errno) }
        } catch {
            let e = error
            _ = FileSystemCalls.current.ftruncate(fd, length)
            _ = FileSystemCalls.current.fsync(fd)
            throw e
        }
    }

    /// Cuts the file to `length` bytes, durably.
    public func truncate(to length: Int) throws(LedgerError) {
        guard FileSystemCalls.current.ftruncate(fd, length) == 0 else { throw .io(path: path, operation: "truncate", errno: errno) }
        guard FileSystemCalls.current.fsync(fd) == 0 else { throw .io(path: path, operation: "fsync", errno: errno) }
    }

    // MARK: Reading

    /// Reads `count` bytes at `offset` (fewer at the end of the file).
    public func read(at offset: Int, count: Int) throws(LedgerError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, count - got, off_t(offset + got)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            got += n
        }
        out.removeLast(count - got)
        return out
    }

    /// The line (without its LF) that ends at byte `length`: the last record
    /// of the first `length` bytes; nil when those bytes do not end with LF.
    public func line(endingAt length: Int) throws -> [UInt8]? {
        // The last 4 KiB hold the line almost always; else up to a maximal line.
        for reach in [4096, LedgerReader.maxLineLength + 1] {
            let from = max(0, length - reach)
            let bytes = try read(at: from, count: length - from)
            guard bytes.count >= 2, bytes.last == 0x0A else { return nil }
            var start = bytes.count - 1
            while start > 0, bytes[start - 1] != 0x0A { start -= 1 }
            if start > 0 || from == 0 { return Array(bytes[start..<(bytes.count - 1)]) }
        }
        return nil
    }

    /// Where the first line that starts at or after `position` starts (the
    /// byte after the first LF at or after `position - 1`), or nil when none
    /// does before `limit` within one maximal line's reach.
    public func lineStart(atOrAfter position: Int, limit: Int) throws -> Int? {
        guard position > 0 else { return 0 }
        let bytes = try read(at: position - 1, count: min(limit - position + 1, LedgerReader.maxLineLength + 1))
        guard let lf = bytes.firstIndex(of: 0x0A) else { return nil }
        let start = position + lf
        return start < limit ? start : nil
    }

    /// One line of a chunk read by ``forEachChunk(upTo:_:progress:)``.
    public struct LineSpan: Sendable {
        public enum Kind: Sendable { case complete, tooLong, unterminated }
        public var kind: Kind
        /// Where the line starts in the chunk (complete lines only).
        public var start: Int
        /// Its length without the LF.
        public var length: Int
        /// Its byte offset in the file.
        public var offset: Int
        /// Nothing follows this line's LF.
        public var isFinal: Bool
    }

    /// Reads the first `length` bytes in chunks of whole lines and calls
    /// `body` with each chunk and its lines, in order. A line longer than
    /// ``LedgerReader/maxLineLength`` comes as `.tooLong` without its bytes; a
    /// last piece without LF as `.unterminated`. Memory stays bounded by the
    /// chunk size, whatever the file holds.
    public func forEachChunk(
        from start0: Int = 0,
        upTo length: Int,
        chunkSize chunk: Int = 8 << 20,
        _ body: (UnsafeRawBufferPointer, [LineSpan]) throws -> Void,
        progress: ((Int) -> Void)? = nil
    ) throws {
        // No bigger than what there is to read: catching up one record reads one line, not 9 MiB.
        var buf = [UInt8](repeating: 0, count: max(1, min(chunk + LedgerReader.maxLineLength + 1, length - start0 + 1)))
        var filled = 0  // bytes in buf
        var base = start0  // file offset of buf[0]
        var readTo = start0  // file offset read so far
        var skipping = false  // inside an over-long line
        var skipStart = 0
        var spans: [LineSpan] = []
        while true {
            let want = min(buf.count - filled, length - readTo)
            if want > 0 {
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + filled, want, off_t(readTo)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw LedgerError.io(path: path, operation: "read", errno: errno)
                }
                if n == 0 { throw LedgerError.io(path: path, operation: "read (the file shrank)", errno: EIO) }
                filled += n
                readTo += n
            }
            let atEnd = readTo == length
            var start = 0
            spans.removeAll(keepingCapacity: true)
            buf.withUnsafeBytes { raw in
                let p = raw.baseAddress!
                while start < filled {
                    guard let hit = memchr(p + start, 0x0A, filled - start) else { break }
                    let end = p.distance(to: UnsafeRawPointer(hit))
                    if skipping {
                        skipping = false
                        spans.append(LineSpan(kind: .tooLong, start: 0, length: 0, offset: skipStart, isFinal: false))
                    } else if end - start > LedgerReader.maxLineLength {
                        spans.append(LineSpan(kind: .tooLong, start: 0, length: 0, offset: base + start, isFinal: false))
                    } else {
                        spans.append(LineSpan(kind: .complete, start: start, length: end - start, offset: base + start,
                                              isFinal: base + end + 1 == length))
                    }
                    start = end + 1
                }
            }
            // Keep the unfinished line; drop what an over-long line has used.
            let rest = filled - start
            if !skipping, rest > LedgerReader.maxLineLength {
                skipping = true
                skipStart = base + start
            }
            if atEnd {
                if skipping {
                    spans.append(LineSpan(kind: .unterminated, start: 0, length: length - skipStart, offset: skipStart, isFinal: true))
                } else if rest > 0 {
                    spans.append(LineSpan(kind: .unterminated, start: 0, length: rest, offset: base + start, isFinal: true))
                }
            }
            if !spans.isEmpty {
                try buf.withUnsafeBytes { try body($0, spans) }
            }
            progress?(base + start)
            if atEnd { return }
            if skipping {
                base += filled
                filled = 0
            } else {
                if start > 0 {
                    buf.withUnsafeMutableBytes { b in
                        _ = memmove(b.baseAddress!, b.baseAddress! + start, rest)
                    }
                }
                base += start
                filled = rest
            }
        }
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
