#if canImport(Glibc)
import Glibc
import MilestoneCrypto
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import Dispatch
import MilestoneModel
import MilestoneSupport

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
    package static func create(_ path: String, bytes: [UInt8]) throws(LedgerError) {
        let dir = directory(of: path)
        let tmp = dir + "/.\(basename(of: path)).init-\(getpid())"
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw .io(path: path, operation: "create (no such folder)", errno: e) }
            throw .io(path: path, operation: "create", errno: e)
        }
        let file = LedgerFile(path: path, fd: fd)  // (messages name the ledger)
        defer { unlink(tmp) }
        try file.append(bytes, at: 0)
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

    /// The length of the ledger's complete appends, read under a shared lock:
    /// an append only ever adds after it, so everything before it can be read
    /// without the lock.
    package func settledSize(wait: Double = 10) throws(LedgerError) -> Int {
        try lock(exclusive: false, wait: wait)
        defer { unlock() }
        return try size()
    }

    /// Where the record line that ends at `length` (its LF the byte before)
    /// starts, if it is the record a derived file (the read models, the tree
    /// cache) saw there: its hash holds, is `sha256`, and its seq is `seq`.
    /// Nil when the ledger no longer holds it: rewritten or truncated.
    package func start(ofRecord seq: Int, sha256: Digest, endingAt length: Int) throws -> Int? {
        try line(endingAt: length)?.withUnsafeBytes { line -> Int? in
            var hasher = SHA256()
            guard let h = RecordLine.hashes(of: line, hasher: &hasher), h.claimed == h.computed, h.claimed == sha256,
                  let tail = RecordLine.tail(of: line), tail.seq == seq
            else { return nil }
            return length - line.count - 1
        }
    }

    public func size() throws(LedgerError) -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, operation: "fstat", errno: errno) }
        return Int(st.st_size)
    }

    /// What identifies this file's contents without reading them: device,
    /// inode, size, and modification and status-change times (ns). Any write
    /// changes it (the status-change time cannot be set back by hand); a
    /// derived file that saw another identity re-checks the ledger
    /// (docs/cli.md, "The read models never answer for a changed ledger").
    public func identity() throws(LedgerError) -> String {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, operation: "fstat", errno: errno) }
        return "\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec):\(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
    }

    // MARK: Writing

    /// Writes all of `bytes` from the file's position.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(LedgerError) {
        var done = 0
        let calls = FileSystemCalls.current
        while done < bytes.count {
            let n = calls.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "write", errno: errno)
            }
            if n == 0 { throw .io(path: path, operation: "write", errno: EIO) }
            done += n
        }
    }

    /// Appends of at least this many bytes are synced as they are written.
    package static let flushMinimum = 8 << 20
    /// A long append is made and written in pieces of about this many bytes.
    package static let pieceSize = 8 << 20

    /// Appends whole lines at byte `length` (the current end) and makes them
    /// durable before returning. On any failure the file is cut back to
    /// `length`, so nothing half-written remains, and the error is thrown.
    package func append(_ bytes: [UInt8], at length: Int) throws(LedgerError) {
        // One piece, so `fill` is asked once.
        try append(at: length, total: bytes.count, longestLine: bytes.count, piece: 0) { room in
            bytes.withUnsafeBytes { room.copyMemory(from: $0) }
            return bytes.count
        }
    }

    /// The same for lines made piece by piece: `fill` writes the next whole
    /// lines into the room it is given (at least `longestLine` bytes) and
    /// returns how many bytes it wrote. It is asked until they come to
    /// `total`; fewer (a 0 before then) or more fails the append. Each piece
    /// (about `piece` bytes) is written while `fill` makes the next (on
    /// another core).
    ///
    /// A large append (`total` at least `flushFrom`) is synced as it goes, by
    /// a ``Flusher`` beside the writing: left to the final fsync, the disk
    /// would take the whole batch after the last write; this way that time
    /// overlaps with making the lines. (Writing whole pages past the page
    /// cache, `O_DIRECT`, saved the copy but still left the disk all of it
    /// to take at the end; measurements are in bench/README.md.)
    package func append(at length: Int, total: Int, longestLine: Int,
                       piece: Int = LedgerFile.pieceSize, flushFrom: Int = LedgerFile.flushMinimum,
                       fill: (UnsafeMutableRawBufferPointer) -> Int) throws(LedgerError) {
        guard total > 0 else { return }
        guard lseek(fd, off_t(length), SEEK_SET) >= 0 else { throw .io(path: path, operation: "seek", errno: errno) }
        let capacity = min(total, piece) + longestLine
        let buffers = (UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64),
                       UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64))
        let flusher = total >= flushFrom ? Flusher(fd: fd) : nil
        defer {
            buffers.0.deallocate()
            buffers.1.deallocate()
        }
        func write(_ piece: UnsafeMutableRawPointer, count: Int) throws(LedgerError) {
            try writeAll(UnsafeRawBufferPointer(start: piece, count: count))
            flusher?.wrote()
        }
        // What `fill` made must fit its room and come to `total`: a shortfall
        // would leave whole, chained lines but not all of them.
        var made = 0
        func check(_ n: Int, room: Int, last: Bool = false) throws(LedgerError) {
            made += n
            guard n >= 0, n <= room, last ? made == total : made <= total else {
                throw .io(path: path, operation: "append (\(made) bytes of lines made, for \(total))", errno: EIO)
            }
        }
        do throws(LedgerError) {
            var (piece, spare) = buffers
            var count = fill(UnsafeMutableRawBufferPointer(start: piece, count: capacity))
            try check(count, room: capacity)
            while count > 0 {
                if made == total {
                    // The last piece: nothing to make beside it (and for a
                    // small append, no second thread to start).
                    try write(piece, count: count)
                    break
                }
                // One core writes this piece while the other makes the next.
                let step = PieceStep()
                let room = UncheckedSendable(UnsafeMutableRawBufferPointer(start: spare, count: capacity))
                withoutActuallyEscaping(fill) { fill in
                    let (fill, writer, p, n) = (UncheckedSendable(fill), UncheckedSendable(write), UncheckedSendable(piece), count)
                    concurrentPerform(2) { task in
                        if task == 0 {
                            do throws(LedgerError) { try writer.value(p.value, n) } catch { step.failure = error }
                        } else {
                            step.made = fill.value(room.value)
                        }
                    }
                }
                if let failure = step.failure { throw failure }
                try check(step.made, room: capacity)
                (piece, spare) = (spare, piece)
                count = step.made
            }
            try check(0, room: 0, last: true)
            if let failed = flusher?.finish() { throw LedgerError.io(path: path, operation: "sync", errno: failed) }
            guard FileSystemCalls.current.fsync(fd) == 0 else { throw LedgerError.io(path: path, operation: "fsync", errno: errno) }
        } catch {
            let e = error
            _ = flusher?.finish()
            _ = FileSystemCalls.current.ftruncate(fd, length)
            _ = FileSystemCalls.current.fsync(fd)
            throw e
        }
    }

    /// What the two tasks of one step of ``append(at:total:longestLine:piece:flushFrom:fill:)`` report.
    private final class PieceStep: @unchecked Sendable {
        var made = 0
        var failure: LedgerError?
    }

    /// Cuts the file to `length` bytes, durably.
    package func truncate(to length: Int) throws(LedgerError) {
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
    package func lineStart(atOrAfter position: Int, limit: Int) throws -> Int? {
        guard position > 0 else { return 0 }
        let bytes = try read(at: position - 1, count: min(limit - position + 1, LedgerReader.maxLineLength + 1))
        guard let lf = bytes.firstIndex(of: 0x0A) else { return nil }
        let start = position + lf
        return start < limit ? start : nil
    }

    /// One line of a chunk read by ``forEachChunk(upTo:_:progress:)``.
    package struct LineSpan: Sendable {
        package enum Kind: Sendable { case complete, tooLong, unterminated }
        package var kind: Kind
        /// Where the line starts in the chunk (complete lines only).
        package var start: Int
        /// Its length without the LF.
        package var length: Int
        /// Its byte offset in the file.
        package var offset: Int
        /// Nothing follows this line's LF.
        package var isFinal: Bool
    }

    /// Reads the first `length` bytes in chunks of whole lines and calls
    /// `body` with each chunk and its lines, in order. A line longer than
    /// ``LedgerReader/maxLineLength`` comes as `.tooLong` without its bytes; a
    /// last piece without LF as `.unterminated`. Memory stays bounded by the
    /// chunk size, whatever the file holds.
    ///
    /// With `readAhead`, the next chunk is read (on another thread, into a
    /// second buffer) while `body` works on this one.
    package func forEachChunk(
        from start0: Int = 0,
        upTo length: Int,
        chunkSize chunk: Int = 8 << 20,
        readAhead: Bool = false,
        _ body: (UnsafeRawBufferPointer, [LineSpan]) throws -> Void,
        progress: ((Int) -> Void)? = nil
    ) throws {
        // No bigger than what there is to read: catching up one record reads one line, not 9 MiB.
        let capacity = max(1, min(chunk + LedgerReader.maxLineLength + 1, length - start0 + 1))
        var cursor = ChunkCursor(file: self, base: start0, readTo: start0, length: length, chunkSize: chunk)
        var current = ChunkCursor.Chunk(capacity: capacity)
        defer { current.free() }
        try cursor.fill(&current, carried: false)
        guard readAhead else {
            while true {
                if !current.spans.isEmpty { try body(current.bytes, current.spans) }
                progress?(current.end)
                if current.atEnd { return }
                try cursor.fill(&current, carried: false)
            }
        }
        var next = ChunkCursor.Chunk(capacity: capacity)
        defer { next.free() }
        while true {
            // Read the next chunk while the body works on this one; the read
            // only copies the unfinished line out of this chunk.
            var readError: Error?
            var bodyError: Error?
            if current.atEnd {
                if !current.spans.isEmpty { try body(current.bytes, current.spans) }
                progress?(current.end)
                return
            }
            cursor.prepareCarry(from: current, into: &next)
            withUnsafeMutablePointer(to: &cursor) { c in
                withUnsafeMutablePointer(to: &next) { n in
                    withUnsafeMutablePointer(to: &readError) { e in
                        let job = UncheckedSendable((c, n, e))
                        // (`alongside` returns only when the read is done, before the pointers go.)
                        alongside({
                            do { try job.value.0.pointee.fill(&job.value.1.pointee, carried: true) } catch { job.value.2.pointee = error }
                        }) {
                            do {
                                if !current.spans.isEmpty { try body(current.bytes, current.spans) }
                            } catch {
                                bodyError = error
                            }
                        }
                    }
                }
            }
            if let bodyError { throw bodyError }
            if let readError { throw readError }
            progress?(current.end)
            swap(&current, &next)
        }
    }
}

/// Runs `work` on another thread while `body` runs on this one, and returns
/// (or throws) only when both are done: how a chunk is read while the one
/// before is worked on.
func alongside<T>(_ work: @escaping @Sendable () -> Void, _ body: () throws -> T) rethrows -> T {
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group, execute: work)
    defer { group.wait() }
    return try body()
}

/// Where ``LedgerFile/forEachChunk(from:upTo:chunkSize:readAhead:_:progress:)``
/// is in the file, and how it fills a buffer with whole lines.
struct ChunkCursor {
    let file: LedgerFile
    var base: Int  // file offset of the next chunk's first byte
    var readTo: Int  // file offset read so far
    let length: Int
    /// Bytes read at a time: the buffer has room for an unfinished line
    /// besides, but the pages it does not need are never touched.
    let chunkSize: Int
    var skipping = false  // inside an over-long line
    var skipStart = 0

    /// A buffer of whole lines and where they are.
    struct Chunk {
        let buffer: UnsafeMutableRawBufferPointer
        var filled = 0
        var start = 0  // where the unfinished line begins
        var atEnd = false
        var end = 0  // file offset after the last whole line
        var spans: [LedgerFile.LineSpan] = []
        /// Bytes already copied in (the unfinished line of the chunk before).
        var carried = 0

        init(capacity: Int) { buffer = .allocate(byteCount: capacity, alignment: 16) }
        func free() { buffer.deallocate() }
        var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[..<filled]) }
    }

    /// Copies the unfinished line at the end of `previous` to the start of `next`.
    func prepareCarry(from previous: Chunk, into next: inout Chunk) {
        let rest = skipping ? 0 : previous.filled - previous.start
        if rest > 0 { next.buffer.baseAddress!.copyMemory(from: previous.buffer.baseAddress! + previous.start, byteCount: rest) }
        next.carried = rest
    }

    /// Fills `c` with the next whole lines. The unfinished line of the chunk
    /// before is moved to the front within `c` itself or, when `carried`, was
    /// copied in by ``prepareCarry(from:into:)``.
    mutating func fill(_ c: inout Chunk, carried: Bool) throws {
        // Keep the unfinished line; drop what an over-long line has used.
        if carried {
            c.filled = c.carried
        } else if c.atEnd == false, c.filled > 0 || c.start > 0 {
            let rest = skipping ? 0 : c.filled - c.start
            if rest > 0, c.start > 0 { memmove(c.buffer.baseAddress!, c.buffer.baseAddress! + c.start, rest) }
            c.filled = rest
        }
        let p = c.buffer.baseAddress!
        while true {
            let want = min(c.buffer.count - c.filled, chunkSize, length - readTo)
            if want > 0 {
                let n = pread(file.fd, p + c.filled, want, off_t(readTo))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw LedgerError.io(path: file.path, operation: "read", errno: errno)
                }
                if n == 0 { throw LedgerError.io(path: file.path, operation: "read (the file shrank)", errno: EIO) }
                c.filled += n
                readTo += n
            }
            break
        }
        let atEnd = readTo == length
        var start = 0
        c.spans.removeAll(keepingCapacity: true)
        while start < c.filled {
            guard let hit = memchr(p + start, 0x0A, c.filled - start) else { break }
            let end = p.distance(to: UnsafeMutableRawPointer(hit))
            if skipping {
                skipping = false
                c.spans.append(LedgerFile.LineSpan(kind: .tooLong, start: 0, length: 0, offset: skipStart, isFinal: false))
            } else if end - start > LedgerReader.maxLineLength {
                c.spans.append(LedgerFile.LineSpan(kind: .tooLong, start: 0, length: 0, offset: base + start, isFinal: false))
            } else {
                c.spans.append(LedgerFile.LineSpan(kind: .complete, start: start, length: end - start, offset: base + start,
                                                   isFinal: base + end + 1 == length))
            }
            start = end + 1
        }
        let rest = c.filled - start
        if !skipping, rest > LedgerReader.maxLineLength {
            skipping = true
            skipStart = base + start
        }
        if atEnd {
            if skipping {
                c.spans.append(LedgerFile.LineSpan(kind: .unterminated, start: 0, length: length - skipStart, offset: skipStart, isFinal: true))
            } else if rest > 0 {
                c.spans.append(LedgerFile.LineSpan(kind: .unterminated, start: 0, length: rest, offset: base + start, isFinal: true))
            }
        }
        c.start = start
        c.atEnd = atEnd
        c.end = base + start
        // The next chunk starts at the unfinished line (or, past an over-long one, after what was read).
        base += skipping ? c.filled : start
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Syncs a file in the background while it is being written: after each
/// ``wrote()``, one sync (`fdatasync`) of all written so far, so the disk takes
/// a long append as it is made rather than all at the final fsync. A failed
/// sync is kept for ``finish()``: the kernel reports a failed writeback once
/// per open file, so the final fsync might not see it.
final class Flusher: @unchecked Sendable {
    private let fd: Int32
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let more = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var thread: pthread_t?
    private var written = 0, done = false
    private var failure: Int32?

    /// Starts the flusher's thread (nil if none could be started: the final
    /// fsync then does all the syncing).
    init?(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(lock, nil)
        pthread_cond_init(more, nil)
        let this = Unmanaged.passRetained(self)
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { arg in
            Unmanaged<Flusher>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, this.toOpaque()) == 0 else {
            this.release()
            return nil
        }
        self.thread = thread
    }

    deinit {
        pthread_mutex_destroy(lock)
        pthread_cond_destroy(more)
        lock.deallocate()
        more.deallocate()
    }

    /// Notes that more of the file has been written.
    func wrote() {
        pthread_mutex_lock(lock)
        written += 1
        pthread_cond_signal(more)
        pthread_mutex_unlock(lock)
    }

    /// Waits for the syncs of all that was written (so a failure in any is
    /// seen), stops the thread, and returns the errno of a failed sync.
    func finish() -> Int32? {
        pthread_mutex_lock(lock)
        done = true
        pthread_cond_signal(more)
        pthread_mutex_unlock(lock)
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
        return failure
    }

    private func run() {
        var seen = 0
        pthread_mutex_lock(lock)
        while true {
            while written == seen, !done { pthread_cond_wait(more, lock) }
            if written == seen || failure != nil { break }
            seen = written
            pthread_mutex_unlock(lock)
            let failed = FileSystemCalls.current.flush(fd) == 0 ? nil : errno
            pthread_mutex_lock(lock)
            if let failed { failure = failed }
        }
        pthread_mutex_unlock(lock)
    }
}
