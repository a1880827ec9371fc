#if canImport(Glibc)
import Glibc
import MilestoneCrypto
#endif

/// C2SP tlog-tiles: the ledger as static files (docs/ledger-format.md,
/// "Publishing"). Tiles of height 8: the tile at level L, index N holds up to
/// 256 hashes of tree level 8·L; entry bundles hold up to 256 record lines,
/// each after its big-endian uint16 length.
package enum Tiles {
    package static let height = 8
    package static let width = 256

    /// N in the tlog-tiles path form: groups of three digits, all but the last prefixed with `x`.
    package static func indexPath(_ n: Int) -> String {
        var groups: [String] = []
        var rest = n
        repeat {
            let g = String(rest % 1000)
            groups.append(String(repeating: "0", count: 3 - g.count) + g)
            rest /= 1000
        } while rest > 0
        return groups.reversed().enumerated().map { $0.offset < groups.count - 1 ? "x" + $0.element : $0.element }
            .joined(separator: "/")
    }

    static func suffix(_ width: Int) -> String { width == Tiles.width ? "" : ".p/\(width)" }

    /// `tile/<L>/<N>[.p/<W>]`.
    package static func tilePath(level: Int, index: Int, width: Int) -> String {
        "tile/\(level)/\(indexPath(index))\(suffix(width))"
    }

    /// `tile/entries/<N>[.p/<W>]`.
    package static func entriesPath(index: Int, width: Int) -> String {
        "tile/entries/\(indexPath(index))\(suffix(width))"
    }

    /// The tiles of level `level` in the tree of `size` leaves: (index, width), full ones then the partial one.
    package static func tiles(level: Int, size: Int) -> [(index: Int, width: Int)] {
        let count = size >> (height * level)
        var out = (0..<(count / width)).map { (index: $0, width: width) }
        if count % width != 0 { out.append((count / width, count % width)) }
        return out
    }

    /// The levels that have tiles in a tree of `size` leaves.
    package static func levels(size: Int) -> Range<Int> {
        var l = 0
        while size >> (height * l) > 0 { l += 1 }
        return 0..<l
    }

    package static func bundle(_ lines: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for l in lines {
            precondition(l.count <= RecordLine.maxLength)
            out += [UInt8(l.count >> 8), UInt8(l.count & 0xFF)] + l
        }
        return out
    }

    /// The entries of a bundle that must hold exactly `count`.
    package static func entries(ofBundle b: [UInt8], count: Int) -> [[UInt8]]? {
        var out: [[UInt8]] = []
        var i = 0
        while i < b.count {
            guard i + 2 <= b.count else { return nil }
            let n = Int(b[i]) << 8 | Int(b[i + 1])
            guard i + 2 + n <= b.count else { return nil }
            out.append(Array(b[(i + 2)..<(i + 2 + n)]))
            i += 2 + n
        }
        return out.count == count ? out : nil
    }
}

/// A publishing or following problem: one line naming it and the remedy, and the exit code.
package struct TlogError: Error, CustomStringConvertible, Sendable {
    package var message: String
    package var exitCode: Int32
    package init(_ message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }
    package var description: String { message }
}

/// Writes the ledger under a folder as tlog-tiles, incrementally.
package enum Publisher {
    package struct Result: Sendable {
        package var size: Int
        /// Tiles and bundles written, and full ones already there (and checked equal).
        package var written: Int
        package var kept: Int
    }

    /// Writes every tile and bundle of the ledger's tree (full ones only when
    /// missing, and checked against the ledger when present), then, last,
    /// the checkpoint signed with `keys`. `beforeCheckpoint` runs in between
    /// (tests stop the process there).
    package static func publish(_ ledger: ProvableLedger, to dir: String, keys: [SignerKey],
                               progress: ((Int, Int) -> Void)? = nil, beforeCheckpoint: () -> Void = {}) throws -> Result {
        let size = ledger.size
        try makeDirectories(dir)
        // One publish at a time into a folder: two runs could rename their checkpoints out of order
        // (a rollback). The lock is on the folder itself, so nothing is added to what is served.
        let lockFD = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard lockFD >= 0 else { throw LedgerError.io(path: dir, operation: "open", errno: errno) }
        defer { close(lockFD) }
        guard flock(lockFD, LOCK_EX) == 0 else { throw LedgerError.io(path: dir, operation: "lock", errno: errno) }
        let cpPath = dir + "/checkpoint"
        if let old = try readIfPresent(cpPath) {
            let cp: Checkpoint
            do {
                cp = try Checkpoint(parsing: try SignedNote(parsing: old).body)
            } catch {
                throw TlogError("\(cpPath): \(error); publish into an empty folder, or remove the file", exitCode: 65)
            }
            let verdict = try ledger.check(cp)
            guard verdict == .consistent else {
                throw TlogError("\(cpPath): this ledger does not extend what is published there (\(verdict.message)); readers already hold it: publish into another folder", exitCode: 1)
            }
        }
        var result = Result(size: size, written: 0, kept: 0)
        func put(_ rel: String, _ bytes: [UInt8], full: Bool) throws {
            let path = dir + "/" + rel
            if full, let existing = try readIfPresent(path) {
                guard existing == bytes else {
                    throw TlogError("\(path): differs from this ledger's; the folder holds another log's tiles: publish into an empty folder", exitCode: 1)
                }
                result.kept += 1
                return
            }
            try writeAtomically(path, bytes)
            result.written += 1
        }
        // Level 0 and the entry bundles, block by block.
        for (k, w) in Tiles.tiles(level: 0, size: size) {
            var lines: [[UInt8]] = []
            var hashes: [UInt8] = []
            for seq in (k * Tiles.width + 1)...(k * Tiles.width + w) {
                let line = try ledger.recordLine(seq: seq)
                guard line.count <= RecordLine.maxLength else {
                    throw TlogError("record \(seq) is \(line.count) bytes long; a published record line is at most \(RecordLine.maxLength) bytes (a 16-bit length): this ledger cannot be published as tlog-tiles", exitCode: 65)
                }
                hashes += Merkle.leafHash(line).withBytes { Array($0) }
                lines.append(line)
            }
            try put(Tiles.entriesPath(index: k, width: w), Tiles.bundle(lines), full: w == Tiles.width)
            progress?(k * Tiles.width + w, size)
            try put(Tiles.tilePath(level: 0, index: k, width: w), hashes, full: w == Tiles.width)
        }
        for level in Tiles.levels(size: size).dropFirst() {
            for (k, w) in Tiles.tiles(level: level, size: size) {
                var hashes: [UInt8] = []
                for j in (k * Tiles.width)..<(k * Tiles.width + w) {
                    hashes += try ledger.tree.perfect(level: Tiles.height * level, index: j).withBytes { Array($0) }
                }
                try put(Tiles.tilePath(level: level, index: k, width: w), hashes, full: w == Tiles.width)
            }
        }
        beforeCheckpoint()
        try writeAtomically(cpPath, Array(try ledger.checkpoint(keys: keys).text.utf8))
        return result
    }
}

/// Where a published log is read from: a folder, or (in the CLI) an http(s) URL.
package protocol LogSource {
    /// The file at `path` (relative, e.g. `checkpoint`), or nil when it does not exist.
    func fetch(_ path: String) throws -> [UInt8]?
    /// The file at `path`, for messages.
    func describe(_ path: String) -> String
}

package struct FolderSource: LogSource {
    package let folder: String
    package init(_ folder: String) { self.folder = folder }
    package func fetch(_ path: String) throws -> [UInt8]? { try readIfPresent(folder + "/" + path) }
    package func describe(_ path: String) -> String { folder + "/" + path }
}

/// The hashes of a published tree of `size` leaves, read from its tiles on demand.
package final class RemoteTree: SubtreeHashes {
    let source: any LogSource
    package let size: Int
    var cache: [String: [Digest]] = [:]

    package init(source: any LogSource, size: Int) {
        self.source = source
        self.size = size
    }

    package func perfect(level k: Int, index i: Int) throws -> Digest {
        let (l, r) = (k / Tiles.height, k % Tiles.height)
        let first = i << r
        let (t, pos) = (first / Tiles.width, first % Tiles.width)
        let count = size >> (Tiles.height * l)
        let w = t < count / Tiles.width ? Tiles.width : count % Tiles.width
        guard pos + (1 << r) <= w else { throw TlogError("the tree of \(size) records has no node \(k)/\(i)", exitCode: 1) }
        let path = Tiles.tilePath(level: l, index: t, width: w)
        let hashes: [Digest]
        if let c = cache[path] {
            hashes = c
        } else {
            guard let bytes = try source.fetch(path) else {
                throw TlogError("bad tile: \(source.describe(path)) is missing, though the checkpoint commits to \(size) records", exitCode: 1)
            }
            guard bytes.count == w * 32 else {
                throw TlogError("bad tile: \(source.describe(path)) is \(bytes.count) bytes, not \(w * 32)", exitCode: 1)
            }
            hashes = (0..<w).map { Digest(bytes: Array(bytes[($0 * 32)..<($0 * 32 + 32)])) }
            cache[path] = hashes
        }
        var level = Array(hashes[pos..<(pos + (1 << r))])
        while level.count > 1 {
            level = stride(from: 0, to: level.count, by: 2).map { Merkle.nodeHash(level[$0], level[$0 + 1]) }
        }
        return level[0]
    }

    /// The record lines `from ..< to` (0-based), from the entry bundles.
    package func entries(_ from: Int, _ to: Int) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        try forEachBundle(from, to) { out += $0 }
        return out
    }

    /// The record lines `from ..< to` (0-based), a bundle's worth at a time,
    /// so that a long log is never held in memory whole.
    package func forEachBundle(_ from: Int, _ to: Int, _ body: ([[UInt8]]) throws -> Void) throws {
        guard from < to else { return }
        for k in (from / Tiles.width)...((to - 1) / Tiles.width) {
            let w = (k + 1) * Tiles.width <= size ? Tiles.width : size % Tiles.width
            let path = Tiles.entriesPath(index: k, width: w)
            guard let bytes = try source.fetch(path) else {
                throw TlogError("bad entry bundle: \(source.describe(path)) is missing, though the checkpoint commits to \(size) records", exitCode: 1)
            }
            guard let lines = Tiles.entries(ofBundle: bytes, count: w) else {
                throw TlogError("bad entry bundle: \(source.describe(path)) does not hold \(w) length-prefixed entries", exitCode: 1)
            }
            try body(lines.enumerated().filter { (from..<to).contains(k * Tiles.width + $0.offset) }.map(\.element))
        }
    }
}

/// A tree whose first `base.size` leaves are a local ledger's and the rest given as leaf hashes.
struct ExtendedTree: SubtreeHashes {
    let base: (any SubtreeHashes)?
    let baseSize: Int
    let extra: [Digest]

    func perfect(level: Int, index: Int) throws -> Digest {
        let (a, b) = (index << level, (index + 1) << level)
        if b <= baseSize, let base { return try base.perfect(level: level, index: index) }
        if a >= baseSize, level == 0 { return extra[a - baseSize] }
        return Merkle.nodeHash(try perfect(level: level - 1, index: 2 * index), try perfect(level: level - 1, index: 2 * index + 1))
    }
}

// MARK: - Files

func readIfPresent(_ path: String) throws -> [UInt8]? {
    do {
        return try readBytes(path)
    } catch LedgerError.missing {
        return nil
    }
}

func makeDirectories(_ path: String) throws {
    var built = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        built += "/" + part
        if mkdir(built, 0o755) != 0, errno != EEXIST {
            throw LedgerError.io(path: built, operation: "mkdir", errno: errno)
        }
    }
}

/// Writes a file whole through a temporary file, fsync and rename, then syncs
/// its folder: a reader sees the old file or the new, never a part.
package func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    if !parent.isEmpty { try makeDirectories(parent) }
    let tmp = "\(path).tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw LedgerError.io(path: tmp, operation: "create", errno: errno) }
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            unlink(tmp)
            throw LedgerError.io(path: tmp, operation: "write", errno: e)
        }
        done += n
    }
    guard fsync(fd) == 0 else {
        let e = errno
        close(fd)
        unlink(tmp)
        throw LedgerError.io(path: tmp, operation: "fsync", errno: e)
    }
    close(fd)
    guard rename(tmp, path) == 0 else {
        let e = errno
        unlink(tmp)
        throw LedgerError.io(path: path, operation: "rename", errno: e)
    }
    let dfd = open(parent.isEmpty ? "." : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
        fsync(dfd)
        close(dfd)
    }
}
