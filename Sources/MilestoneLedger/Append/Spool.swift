#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The canonical bytes of a batch's new events, in order, each ended by an
/// LF (canonical JSON has none inside), kept between the checking pass and
/// the writing pass of ``AppendBatch``, so that a batch's memory does not
/// grow with its size.
///
/// They stay in one buffer while they fit; past that, the buffer is written
/// out to an unnamed temporary file in the ledger's folder (`O_TMPFILE`: no
/// name to leave behind, even if the process is killed; a named file
/// removed at once where the file system has no `O_TMPFILE`), which the
/// writing pass reads back through the same buffer. The file is never
/// synced: it lives only as long as the batch.
///
/// As the writing pass reads the file back, it gives back the pages it has
/// read (a hole punched in the file: dirty pages dropped, never written to
/// the disk), so the page cache holds the spool's unread part and the
/// ledger's new lines, not both whole, and the ledger's writes can take
/// pages the spool has just freed: on the shared VM, fresh page-cache pages
/// cost the kernel several times a recently freed one
/// (bench/results/batch-record-speed-2026-12-07.md).
final class Spool {
    /// The buffer's size: far above the longest event (a record line is at most 65,535 bytes).
    static let bufferSize = 4 << 20

    /// The folder of the temporary file, and the name messages give it.
    let directory: String
    var name: String { directory + "/(the batch's temporary file)" }
    private var fd: Int32 = -1
    private let buffer: UnsafeMutableRawPointer
    /// Bytes in the buffer not yet in the file.
    private var used = 0
    /// Bytes in the file.
    private var written = 0
    /// The errno and the operation of the first failure, if any: the batch then writes nothing.
    private(set) var failure: (operation: String, errno: Int32)?
    /// How many events were spooled.
    private(set) var count = 0

    init(directory: String) {
        self.directory = directory
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Spool.bufferSize, alignment: 64)
    }

    deinit {
        buffer.deallocate()
        if fd >= 0 { close(fd) }
    }

    /// The bytes spooled so far.
    var size: Int { written + used }

    /// The bytes of the temporary file the file system holds (0 when there is
    /// none): what the reader has not given back yet.
    var allocatedBytes: Int {
        var st = stat()
        guard fd >= 0, fstat(fd, &st) == 0 else { return 0 }
        return Int(st.st_blocks) * 512
    }

    /// Adds one event's bytes (and an LF); returns where they start.
    @discardableResult
    func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let at = written + used
        if used + bytes.count + 1 > Spool.bufferSize { spill() }
        if failure != nil { return at }
        if bytes.count > 0 { (buffer + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        buffer.storeBytes(of: 0x0A, toByteOffset: used + bytes.count, as: UInt8.self)
        used += bytes.count + 1
        count += 1
        return at
    }

    /// The temporary file, made the first time the buffer is full: in the
    /// ledger's folder, or the system's temporary folder if that one refuses.
    private func openFile() -> Bool {
        if fd >= 0 { return true }
        let system = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var first: Int32 = 0
        for folder in [directory, system] {
            // O_TMPFILE: __O_TMPFILE | O_DIRECTORY (Linux's value; Glibc's macro does not import).
            fd = open(folder, 0o20000000 | O_DIRECTORY | O_RDWR | O_CLOEXEC, 0o600)
            if fd >= 0 { return true }
            var template = Array((folder + "/.milestones-batch-XXXXXX").utf8CString)
            fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
                return true
            }
            if first == 0 { first = errno }
        }
        failure = ("create", first)
        return false
    }

    /// Writes the buffer out to the file.
    private func spill() {
        guard failure == nil, used > 0, openFile() else { return }
        var done = 0
        while done < used {
            let n = pwrite(fd, buffer + done, used - done, off_t(written + done))
            if n < 0 {
                if errno == EINTR { continue }
                failure = ("write", errno)
                return
            }
            done += n
        }
        written += used
        used = 0
    }

    /// Reads `count` bytes from `offset` into `out` (a content digest of an earlier event of the batch).
    func read(at offset: Int, count: Int, into out: UnsafeMutableRawPointer) -> Bool {
        if offset >= written {
            out.copyMemory(from: buffer + (offset - written), byteCount: count)
            return true
        }
        guard offset + count <= written else { return false }
        var done = 0
        while done < count {
            let n = pread(fd, out + done, count - done, off_t(offset + done))
            if n < 0, errno == EINTR { continue }
            if n <= 0 {
                failure = ("read", n < 0 ? errno : EIO)
                return false
            }
            done += n
        }
        return true
    }

    /// Calls `body` with each event in order, in pieces: `body` gets the
    /// bytes of the whole events from the next one on (each ended by its LF)
    /// and returns how many bytes it used (whole events; 0 when the first
    /// does not fit where it writes), then is called again with the rest.
    /// Only once all were added: the buffer is reused to read the file back.
    final class Reader {
        let spool: Spool
        private var start = 0, end = 0
        /// The next byte of the file to read.
        private var next = 0
        /// The file's bytes before this are given back (a page boundary).
        private var released = 0
        /// False once the file system refused to punch a hole.
        private var canRelease = true

        init(_ spool: Spool) {
            self.spool = spool
            spool.spill()
            if spool.fd < 0 {
                end = spool.used  // never spilled: the events are all in the buffer
                next = 0
            }
        }

        /// The unread whole events (at least one, unless none is left); nil after a failure.
        func available() -> UnsafeRawBufferPointer? {
            if spool.failure != nil { return nil }
            // Refilled while less than half is left: far more than the longest event.
            if spool.fd >= 0, next < spool.written, end - start < Spool.bufferSize / 2 {
                refill()
                if spool.failure != nil { return nil }
            }
            // Only whole events: up to the last LF.
            var last = end
            while last > start, spool.buffer.load(fromByteOffset: last - 1, as: UInt8.self) != 0x0A { last -= 1 }
            return UnsafeRawBufferPointer(start: spool.buffer + start, count: last - start)
        }

        func consume(_ n: Int) { start += n }

        private func refill() {
            let rest = end - start
            if rest > 0, start > 0 { spool.buffer.copyMemory(from: spool.buffer + start, byteCount: rest) }
            (start, end) = (0, rest)
            while end < Spool.bufferSize, next < spool.written {
                let n = pread(spool.fd, spool.buffer + end, min(Spool.bufferSize - end, spool.written - next), off_t(next))
                if n < 0, errno == EINTR { continue }
                if n <= 0 {
                    spool.failure = ("read", n < 0 ? errno : EIO)
                    return
                }
                (end, next) = (end + n, next + n)
            }
            release()
        }

        /// Gives back the file's whole pages already read into the buffer:
        /// nothing reads them again (the checking pass, which reads events
        /// back for content digests, is over). A file system that cannot
        /// punch holes keeps them until the file is closed, as before.
        private func release() {
            let upTo = next & ~(Reader.pageSize - 1)
            guard canRelease, upTo > released, let fallocate = Reader.fallocate else { return }
            // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (Linux's values; the macros do not import).
            if fallocate(spool.fd, 0x02 | 0x01, off_t(released), off_t(upTo - released)) == 0 {
                released = upTo
            } else {
                canRelease = false
            }
        }

        static let pageSize = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))

        /// The C library's `fallocate`, which the Glibc module does not
        /// import (a GNU extension); nil where it cannot be found.
        static let fallocate: (@convention(c) (Int32, Int32, off_t, off_t) -> Int32)? = {
            guard let f = dlsym(nil, "fallocate") else { return nil }  // RTLD_DEFAULT
            return unsafeBitCast(f, to: (@convention(c) (Int32, Int32, off_t, off_t) -> Int32).self)
        }()
    }
}
