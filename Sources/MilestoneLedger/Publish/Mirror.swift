#if canImport(Glibc)
import Glibc
import MilestoneCrypto
#endif
import CanonicalJSON

/// Following a published ledger (`mirror`) and vouching for it as a witness
/// (`cosign`): docs/ledger-format.md, "Publishing" and "Cosignatures".
package enum Follower {
    /// A fetched checkpoint, its log signature checked (and the witnesses', when asked).
    package static func fetchCheckpoint(_ source: any LogSource, key: VerifierKey, witnesses: [VerifierKey] = [],
                                       quorum: Int? = nil) throws -> (note: SignedNote, checkpoint: Checkpoint) {
        guard let bytes = try source.fetch("checkpoint") else {
            throw TlogError("\(source.describe("checkpoint")): no checkpoint there; is it a folder or URL that `milestones publish` wrote?", exitCode: 66)
        }
        let note: SignedNote
        do {
            note = try SignedNote(parsing: bytes)
            try note.verify(keys: [key])
            if !witnesses.isEmpty { try note.verifyQuorum(witnesses: witnesses, quorum: quorum) }
            return (note, try Checkpoint(parsing: note.body))
        } catch {
            throw FollowError(reason: "\(source.describe("checkpoint")): \(error)", fetched: String(decoding: bytes, as: UTF8.self))
        }
    }

    /// A mismatch between what is published and what is known: exit 1, evidence kept.
    package struct FollowError: Error, CustomStringConvertible {
        package var reason: String
        package var fetched: String
        package var description: String { reason }
    }

    package struct Mirrored: Sendable {
        package var from: Int
        package var to: Int
        package var origin: String
    }

    /// Where mirror keeps the checkpoint the local copy was last checked against.
    package static func checkpointPath(forLedger ledger: String) -> String {
        (ledger.hasSuffix(".jsonl") ? String(ledger.dropLast(6)) : ledger) + ".mirror-checkpoint"
    }

    /// Brings the local ledger up to the published one, or throws
    /// ``FollowError`` (the local ledger untouched).
    package static func mirror(_ source: any LogSource, ledger path: String, key: VerifierKey,
                              witnesses: [VerifierKey], quorum: Int?) throws -> Mirrored {
        let (note, cp) = try fetchCheckpoint(source, key: key, witnesses: witnesses, quorum: quorum)
        func mismatch(_ why: String) -> FollowError { FollowError(reason: why, fetched: note.text) }
        // The writers' lock, held to the end: a `record` or another mirror waits, and the new
        // records are appended to this file, so nothing another writer adds is lost.
        let held: LedgerFile? = fileSize(path) == nil ? nil : try LedgerFile.open(path, writable: true)
        try held?.lock(exclusive: true, wait: 10)
        defer { held?.unlock() }
        let lengthBefore = try held?.size() ?? 0
        var local: ProvableLedger?
        if lengthBefore > 0 { local = try ProvableLedger(path: path, lockedBy: held) }
        let m = local?.size ?? 0
        if let local, local.origin != cp.origin {
            throw mismatch("another log: the published checkpoint's origin is \"\(cp.origin)\", the local ledger's \"\(local.origin)\"")
        }
        guard cp.size >= m else {
            throw mismatch("rollback: the published checkpoint commits to \(cp.size) records; the local copy already holds \(m)")
        }
        // A tree no ledger can be (tile level 63 is the last): refused before anything is fetched.
        guard cp.size <= 1 << 40 else {
            throw mismatch("the published checkpoint commits to \(cp.size) records, more than any ledger can hold")
        }
        let remote = RemoteTree(source: source, size: cp.size)
        do {
            if let local, m > 0 {
                let localRoot = try local.tree.root()
                let proof = m < cp.size ? try Merkle.consistencyProof(from: m, to: cp.size, remote) : []
                if !Merkle.verifyConsistency(size1: m, size2: cp.size, proof: proof, root1: localRoot, root2: cp.root) {
                    if try Merkle.root(size: cp.size, remote) != cp.root {
                        throw mismatch("bad tile: the published tiles do not give the checkpoint's root for \(cp.size) records")
                    }
                    throw mismatch("fork: the local ledger's first \(m) records have root \(localRoot.base64); the published tree's first \(m) have \(try Merkle.root(size: m, remote).base64)")
                }
            }
            guard m < cp.size else {
                let root = try Merkle.root(size: cp.size, ExtendedTree(base: local?.tree, baseSize: m, extra: []))
                guard root == cp.root else { throw mismatch("bad entries: the local \(m) records give root \(root.base64); the checkpoint says \(cp.root.base64)") }
                return Mirrored(from: m, to: m, origin: cp.origin)
            }
            // Every record verified as `verify` does, on a copy: the local ledger changes only once all have passed.
            // A name of this run's own, so that two runs never write into each other's copy.
            let tmp = path + ".mirror-tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
            if m > 0 { try copyFile(path, tmp) }
            // The new records, a bundle at a time, onto the copy; only their leaf hashes kept in memory.
            var leaves: [Digest] = []
            leaves.reserveCapacity(cp.size - m)
            do {
                let out = open(tmp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
                guard out >= 0 else { throw LedgerError.io(path: tmp, operation: "open", errno: errno) }
                defer { close(out) }
                try remote.forEachBundle(m, cp.size) { lines in
                    // One entry, one record line: an entry holding an LF would become two records of the copy.
                    if let k = lines.firstIndex(where: { $0.isEmpty || $0.contains(0x0A) }) {
                        throw mismatch("bad entries: published entry \(m + leaves.count + k + 1) is empty or holds a line break, so it is not one record line")
                    }
                    var chunk: [UInt8] = []
                    for l in lines {
                        leaves.append(Merkle.leafHash(l))
                        chunk += l
                        chunk.append(0x0A)
                    }
                    try writeAll(out, chunk, path: tmp)
                }
                guard fsync(out) == 0 else { throw LedgerError.io(path: tmp, operation: "fsync", errno: errno) }
                let root = try Merkle.root(size: cp.size, ExtendedTree(base: local?.tree, baseSize: m, extra: leaves))
                guard root == cp.root else {
                    throw mismatch("bad entries: the published records \(m + 1)…\(cp.size) with the local \(m) give root \(root.base64); the checkpoint says \(cp.root.base64)")
                }
            } catch {
                unlink(tmp)
                throw error
            }
            do {
                let f = try LedgerFile.open(tmp, writable: false)
                let v = try LedgerReader.verify(f, upTo: nil)
                guard v.records == cp.size else {
                    throw mismatch("bad entries: the copy holds \(v.records) records; the checkpoint commits to \(cp.size)")
                }
                guard v.origin == cp.origin else {
                    throw mismatch("another log: the published ledger's origin is \"\(v.origin)\", its checkpoint's \"\(cp.origin)\"")
                }
                if let head = cp.head, v.head.sha256 != head {
                    throw mismatch("bad entries: record \(cp.size) has sha256 \(v.head.sha256.hex); the checkpoint's head line says \(head.hex)")
                }
            } catch let e as FollowError {
                unlink(tmp)
                throw e
            } catch LedgerError.notIntact(let f, _) {
                unlink(tmp)
                throw mismatch("bad entries: published record \(f.seq.map(String.init) ?? "at line \(f.line)") is not a valid continuation of the local ledger: \(f.reason)")
            } catch {
                unlink(tmp)
                throw error
            }
            if let held {
                // The verified records, appended to the ledger itself (synced), read back from the copy.
                defer { unlink(tmp) }
                let copy = try LedgerFile.open(tmp, writable: false)
                let total = try copy.size() - lengthBefore
                // Whole lines at a time, read from the copy into the append's own room (nothing held whole).
                var at = lengthBefore
                try held.append(at: lengthBefore, total: total, longestLine: RecordLine.maxLength + 1) { room in
                    let want = min(room.count, lengthBefore + total - at)
                    guard want > 0 else { return 0 }
                    let n = pread(copy.fd, room.baseAddress, want, off_t(at))
                    guard n > 0 else { return 0 }  // a short fill fails the append, and it is undone
                    let bytes = UnsafeRawBufferPointer(rebasing: room[..<n])
                    guard let lastLF = bytes.lastIndex(of: 0x0A) else { return 0 }
                    at += lastLF + 1
                    return lastLF + 1
                }
            } else {
                // A new ledger: the verified copy becomes it, whole or not at all.
                guard link(tmp, path) == 0 else {
                    let e = errno
                    unlink(tmp)
                    throw e == EEXIST ? LedgerError.exists(path: path) : LedgerError.io(path: path, operation: "link", errno: e)
                }
                unlink(tmp)
            }
            try writeAtomically(checkpointPath(forLedger: path), Array(note.text.utf8))
            return Mirrored(from: m, to: cp.size, origin: cp.origin)
        } catch let e as TlogError where e.exitCode == 1 {
            throw mismatch(e.message)
        }
    }

    /// Writes the evidence of a mismatch beside the ledger (never over an
    /// earlier one) and returns its path: the checkpoint the local copy
    /// matched (the last one mirrored, when there is one, and the local
    /// state's unsigned body) and the fetched one.
    package static func keepEvidence(_ e: FollowError, ledger path: String, source: String, suffix: String = "mirror-evidence") throws -> String {
        let stem = path.hasSuffix(".jsonl") ? String(path.dropLast(6)) : path
        var localState: JSONValue = .null
        if let size = fileSize(path), size > 0, let local = try? ProvableLedger(path: path), let root = try? local.tree.root() {
            localState = .string(Checkpoint(origin: local.origin, size: local.size, root: root, extensions: ["head \(local.tree.lastRecord.hex)"]).body)
        }
        let last = (try? readIfPresent(checkpointPath(forLedger: path))).flatMap { $0 }.map { JSONValue.string(String(decoding: $0, as: UTF8.self)) } ?? .null
        return try writeEvidence(stem: stem, suffix: suffix, JSONObject(dictionary: [
            "kind": .string("milestones-\(suffix)"), "source": .string(source), "reason": .string(e.reason),
            "local_checkpoint": last, "local_state": localState, "fetched_checkpoint": .string(e.fetched),
        ]))
    }

    static func writeEvidence(stem: String, suffix: String, _ value: JSONObject) throws -> String {
        let text = JSONWriter.string(.object(value)) + "\n"
        var n = 1
        while true {
            let p = n == 1 ? "\(stem).\(suffix).json" : "\(stem).\(suffix).\(n).json"
            do {
                try writeNew(p, text, mode: 0o644)
                return p
            } catch LedgerError.exists {
                n += 1
            }
        }
    }

    // MARK: - Witness

    package struct Cosigned {
        package var note: SignedNote
        package var checkpoint: Checkpoint
        package var previous: Int?
    }

    /// The witness role: the published checkpoint, checked against the last
    /// one cosigned for its origin (in `state`), cosigned at `time`. On a fork
    /// or rollback, ``FollowError`` and nothing written.
    package static func cosign(_ source: any LogSource, logKey: VerifierKey, witness: SignerKey, state statePath: String,
                              out: String, time: UInt64) throws -> Cosigned {
        var note: SignedNote
        let cp: Checkpoint
        (note, cp) = try fetchCheckpoint(source, key: logKey)
        func mismatch(_ why: String) -> FollowError { FollowError(reason: why, fetched: note.text) }
        // One witness run at a time for a state file: two runs that read the same state
        // could each cosign another branch of a split view.
        let lockPath = statePath + ".lock"
        let lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw LedgerError.io(path: lockPath, operation: "open", errno: errno) }
        defer { close(lockFD) }
        guard flock(lockFD, LOCK_EX) == 0 else { throw LedgerError.io(path: lockPath, operation: "lock", errno: errno) }
        var logs = JSONObject()
        if let bytes = try readIfPresent(statePath) {
            guard let v = try? JSONReader.parse(bytes), let o = v.objectValue, o["kind"] == "milestones-witness-state",
                  let l = o["logs"]?.objectValue
            else { throw TlogError("\(statePath): not a witness state file (from `milestones cosign`); name another --state", exitCode: 65) }
            logs = l
        }
        var previous: Int?
        if let prevText = logs[cp.origin]?.stringValue {
            let prev: Checkpoint
            do {
                prev = try Checkpoint(parsing: try SignedNote(parsing: Array(prevText.utf8)).body)
            } catch {
                throw TlogError("\(statePath): the checkpoint kept for \(cp.origin) is unreadable: \(error)", exitCode: 65)
            }
            previous = prev.size
            guard cp.size >= prev.size else {
                throw mismatch("rollback: the published checkpoint commits to \(cp.size) records; \(witness.name) already cosigned \(prev.size)")
            }
            if cp.size == prev.size {
                guard cp.root == prev.root else {
                    throw mismatch("fork: the published checkpoint has root \(cp.root.base64) for \(cp.size) records; \(witness.name) cosigned \(prev.root.base64)")
                }
            } else if prev.size > 0 {
                let remote = RemoteTree(source: source, size: cp.size)
                do {
                    let proof = try Merkle.consistencyProof(from: prev.size, to: cp.size, remote)
                    guard Merkle.verifyConsistency(size1: prev.size, size2: cp.size, proof: proof, root1: prev.root, root2: cp.root) else {
                        throw mismatch("fork: the published tree of \(cp.size) records does not extend the \(prev.size) records \(witness.name) cosigned (root \(prev.root.base64))")
                    }
                } catch let e as TlogError where e.exitCode == 1 {
                    throw mismatch(e.message)
                }
            }
        }
        try note.cosign(with: witness, time: time)
        // The state first, then the cosigned checkpoint: a crash between them leaves the
        // witness committed to what it was about to sign, never a signature it did not remember.
        logs[cp.origin] = .string(note.text)
        let state = JSONObject(dictionary: ["kind": "milestones-witness-state", "logs": .object(logs)])
        try writeAtomically(statePath, Array((JSONWriter.string(.object(state)) + "\n").utf8))
        try writeAtomically(out, Array(note.text.utf8))
        return Cosigned(note: note, checkpoint: cp, previous: previous)
    }

    /// Keeps the evidence of a witness's refusal beside the state file.
    package static func keepWitnessEvidence(_ e: FollowError, state: String, source: String) throws -> String {
        var kept: JSONValue = .null
        if let bytes = try? readIfPresent(state), let v = try? JSONReader.parse(bytes), let logs = v.objectValue?["logs"]?.objectValue,
           let cp = try? Checkpoint(parsing: (try? SignedNote(parsing: Array(e.fetched.utf8)))?.body ?? ""),
           let t = logs[cp.origin] {
            kept = t
        }
        return try writeEvidence(stem: state, suffix: "cosign-evidence", JSONObject(dictionary: [
            "kind": "milestones-cosign-evidence", "source": .string(source), "reason": .string(e.reason),
            "cosigned_checkpoint": kept, "fetched_checkpoint": .string(e.fetched),
        ]))
    }
}

func fileSize(_ path: String) -> Int? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Int(st.st_size)
}

func copyFile(_ from: String, _ to: String) throws {
    let src = open(from, O_RDONLY | O_CLOEXEC)
    guard src >= 0 else { throw LedgerError.io(path: from, operation: "open", errno: errno) }
    defer { close(src) }
    let dst = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard dst >= 0 else { throw LedgerError.io(path: to, operation: "create", errno: errno) }
    defer { close(dst) }
    var buf = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = read(src, &buf, buf.count)
        if n < 0, errno == EINTR { continue }
        guard n >= 0 else { throw LedgerError.io(path: from, operation: "read", errno: errno) }
        if n == 0 { break }
        var done = 0
        while done < n {
            let w = buf.withUnsafeBytes { write(dst, $0.baseAddress! + done, n - done) }
            guard w > 0 else { throw LedgerError.io(path: to, operation: "write", errno: errno) }
            done += w
        }
    }
}

/// Writes all of `bytes` to `fd` (retrying short writes and EINTR).
func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
    var done = 0
    while done < bytes.count {
        let w = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if w < 0, errno == EINTR { continue }
        guard w > 0 else { throw LedgerError.io(path: path, operation: "write", errno: errno) }
        done += w
    }
}
