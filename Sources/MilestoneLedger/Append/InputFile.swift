#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import Dispatch
import MilestoneModel
import MilestoneSupport

/// A JSON Lines input (a file, or stdin for `-`), read in chunks of whole
/// lines with bounded memory: a line longer than the limit is reported, not
/// buffered.
package struct InputFile {
    package let fd: Int32
    package let name: String

    /// The size of a regular file (nil for a pipe).
    var size: Int? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(st.st_size)
    }

    package struct Line: Sendable {
        var start: Int
        var length: Int
        var number: Int
        var tooLong: Bool
    }

    package static func open(_ path: String) throws -> InputFile {
        if path == "-" { return InputFile(fd: 0, name: "<stdin>") }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw LedgerError.missing(path: path) }
            throw LedgerError.io(path: path, operation: "open", errno: e)
        }
        var st = stat()
        if fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw LedgerError.io(path: path, operation: "open (it is a folder, not a JSON Lines file)", errno: EISDIR)
        }
        return InputFile(fd: fd, name: path)
    }

    func forEachChunk(_ body: (UnsafeRawBufferPointer, [Line]) throws -> Void) throws {
        let limit = LedgerReader.maxLineLength
        // Two buffers: the next chunk is read (on another thread) while
        // `body` works on this one; read between chunks, it left both cores idle.
        var buf = ChunkBuffer(count: 4 << 20), next = ChunkBuffer(count: 4 << 20)
        var lineNo = 1
        var skipping = false
        var lines: [Line] = []
        var (filled, failure) = InputFile.read(fd, into: buf, from: 0)
        while true {
            if let failure { throw LedgerError.io(path: name, operation: "read", errno: failure) }
            let atEnd = filled < buf.count  // a read stops short only at the end
            var start = 0
            lines.removeAll(keepingCapacity: true)
            let base = buf.base.assumingMemoryBound(to: UInt8.self)
            while start < filled, let hit = memchr(base + start, 0x0A, filled - start) {
                let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if skipping {
                    skipping = false
                } else {
                    lines.append(Line(start: start, length: i - start, number: lineNo, tooLong: false))
                }
                lineNo += 1
                start = i + 1
            }
            let rest = filled - start
            if atEnd, rest > 0, !skipping {
                lines.append(Line(start: start, length: rest, number: lineNo, tooLong: false))
            }
            if !atEnd, !skipping, rest > limit {
                lines.append(Line(start: 0, length: 0, number: lineNo, tooLong: true))
                skipping = true
            }
            // The next chunk: the rest of this one's last line (unless it is
            // skipped), then what the file gives, read while `body` runs.
            if !atEnd {
                let carried = skipping ? 0 : rest
                if carried > 0 { next.base.copyMemory(from: buf.base + start, byteCount: carried) }
                let (into, fd) = (UncheckedSendable(next), self.fd)
                let result = UncheckedSendable(ReadResult())
                try alongside({ result.value.value = InputFile.read(fd, into: into.value, from: carried) }) {
                    if !lines.isEmpty { try body(UnsafeRawBufferPointer(start: buf.base, count: filled), lines) }
                }
                let n: Int
                (n, failure) = result.value.value
                filled = carried + n
                swap(&buf, &next)
                continue
            }
            if !lines.isEmpty { try body(UnsafeRawBufferPointer(start: buf.base, count: filled), lines) }
            return
        }
    }

    /// A chunk's memory.
    final class ChunkBuffer {
        let base: UnsafeMutableRawPointer
        let count: Int
        init(count: Int) {
            base = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
            self.count = count
        }
        deinit { base.deallocate() }
    }

    final class ReadResult: @unchecked Sendable {
        var value: (Int, Int32?) = (0, nil)
    }

    /// Fills `buffer` from byte `from` as far as the file goes (a pipe gives
    /// little at a time); returns the bytes read, and the errno of a failure.
    static func read(_ fd: Int32, into buffer: ChunkBuffer, from: Int) -> (Int, Int32?) {
        var filled = from
        while filled < buffer.count {
            let n = Glibc.read(fd, buffer.base + filled, buffer.count - filled)
            if n < 0 {
                if errno == EINTR { continue }
                return (filled - from, errno)
            }
            if n == 0 { break }
            filled += n
        }
        return (filled - from, nil)
    }
}
