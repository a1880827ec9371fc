/// A C2SP signed note: a text body, a blank line, then signature lines
/// `— <key name> <base64(key id ‖ signature)>` (U+2014 and a space).
public struct SignedNote: Sendable, Equatable {
    public struct Signature: Sendable, Equatable {
        package var name: String
        package var keyID: UInt32
        package var signature: [UInt8]
    }

    /// The signed text, ending with LF.
    public var body: String
    public var signatures: [Signature]

    public init(body: String, signatures: [Signature] = []) {
        self.body = body
        self.signatures = signatures
    }

    /// The note's text.
    public var text: String {
        body + "\n" + signatures.map { s in
            var raw: [UInt8] = [UInt8(s.keyID >> 24), UInt8(s.keyID >> 16 & 0xFF), UInt8(s.keyID >> 8 & 0xFF), UInt8(s.keyID & 0xFF)]
            raw += s.signature
            return "— \(s.name) \(Base64.encode(raw))\n"
        }.joined()
    }

    /// Signs the body with `key` and adds the signature.
    public mutating func sign(with key: SignerKey) throws {
        guard key.algorithm == .ed25519 else {
            throw KeyError.wrongKind("\(key.name) is a witness (cosignature/v1) key; a checkpoint is signed with the log's key (keygen without --witness)")
        }
        signatures.append(Signature(name: key.name, keyID: key.verifier.keyID, signature: try key.sign(Array(body.utf8))))
    }

    /// Parses a note strictly: valid UTF-8, no control characters but LF, a
    /// body ending in LF, a blank line, and only well-formed signature lines.
    public init(parsing bytes: [UInt8]) throws(NoteError) {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed("not valid UTF-8") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" || $0.value == 0x7F }) else {
            throw .malformed("contains control characters")
        }
        var cut: Int?
        var i = bytes.count - 2
        while i >= 0 {
            if bytes[i] == 0x0A && bytes[i + 1] == 0x0A {
                cut = i
                break
            }
            i -= 1
        }
        guard let cut else { throw .malformed("no blank line between the text and its signatures") }
        _ = text
        body = String(decoding: bytes[...cut], as: UTF8.self)
        let sigText = String(decoding: bytes[(cut + 2)...], as: UTF8.self)
        guard sigText.hasSuffix("\n") else { throw .malformed("the signature lines must end with LF") }
        signatures = []
        for line in sigText.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("— ") else { throw .malformed("a signature line must start with \"— \"") }
            let rest = line.dropFirst(2)
            let parts = rest.split(separator: " ", omittingEmptySubsequences: false)
            // C2SP signed-note: a signature is a 4-byte key id and at least one
            // byte more; its length depends on the key's type, so lines of
            // unknown keys (cosignatures among them) are kept and ignored.
            guard parts.count == 2, isSignatureName(parts[0]), let raw = Base64.decode(String(parts[1])),
                  raw.count >= 5
            else { throw .malformed("a signature line is not `— <name> <base64(4-byte key id ‖ signature)>`") }
            let id = raw.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            signatures.append(Signature(name: String(parts[0]), keyID: id, signature: Array(raw[4...])))
        }
        guard !signatures.isEmpty else { throw .malformed("no signatures") }
        guard signatures.count <= 100 else { throw .malformed("more than 100 signatures") }
    }

    /// Checks that every key in `keys` signed the body. Signatures by other
    /// keys are ignored; a signature claiming one of `keys` must verify.
    public func verify(keys: [VerifierKey]) throws(NoteError) {
        guard !keys.isEmpty else { throw .unverified("no verifier key given") }
        let message = Array(body.utf8)
        for key in keys {
            guard key.algorithm == .ed25519 else {
                throw .unverified("\(key.name)+\(hex8(key.keyID)) is a witness (cosignature/v1) key: give it with --witness, and the log's key with --key")
            }
            // The first signature by the key is the one checked, as Go's note.Open does with repeats.
            let mine = signatures.filter { $0.name == key.name && $0.keyID == key.keyID }
            guard !mine.isEmpty else { throw .unverified("not signed by \(key.name)+\(hex8(key.keyID))") }
            guard Ed25519.verify(signature: mine[0].signature, message: message, publicKey: key.publicKey) else {
                throw .unverified("the signature by \(key.name)+\(hex8(key.keyID)) does not verify")
            }
        }
    }
}

/// C2SP tlog-cosignature `cosignature/v1`: a witness's Ed25519 signature of
/// "cosignature/v1\ntime <T>\n" followed by the checkpoint body; its bytes in
/// the note are the key id, T as 8 bytes big-endian, then the 64-byte
/// signature (docs/ledger-format.md, "Cosignatures").
public enum Cosignature {
    public static func message(body: String, time: UInt64) -> [UInt8] {
        Array("cosignature/v1\ntime \(time)\n".utf8) + Array(body.utf8)
    }
}

extension SignedNote {
    /// Adds a cosignature/v1 by the witness `key` at `time` (POSIX seconds).
    package mutating func cosign(with key: SignerKey, time: UInt64) throws {
        guard key.algorithm == .cosignatureV1 else {
            throw KeyError.wrongKind("\(key.name) is a log key; cosign needs a witness key (keygen --witness)")
        }
        signatures.removeAll { $0.name == key.name && $0.keyID == key.verifier.keyID }
        let t = (0..<8).map { UInt8(time >> (56 - 8 * UInt64($0)) & 0xFF) }
        signatures.append(Signature(name: key.name, keyID: key.verifier.keyID,
                                    signature: t + (try key.sign(Cosignature.message(body: body, time: time)))))
    }

    /// The time of a valid cosignature/v1 by `witness`, or nil when it did not
    /// cosign (or its cosignature does not verify).
    public func cosignatureTime(by witness: VerifierKey) -> UInt64? {
        guard witness.algorithm == .cosignatureV1 else { return nil }
        for s in signatures where s.name == witness.name && s.keyID == witness.keyID && s.signature.count == 72 {
            let time = s.signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard time <= UInt64(Int64.max) else { continue }
            if Ed25519.verify(signature: Array(s.signature[8...]), message: Cosignature.message(body: body, time: time),
                              publicKey: witness.publicKey) {
                return time
            }
        }
        return nil
    }

    /// Checks that at least `quorum` of `witnesses` (distinct keys) cosigned the body.
    /// `quorum`: how many of them must have cosigned (nil: all of them, counted once each).
    public func verifyQuorum(witnesses: [VerifierKey], quorum: Int?) throws(NoteError) {
        // A witness is its public key: two names for one key are one witness, and count once.
        var seen = Set<[UInt8]>()
        var good: [String] = []
        var missing: [String] = []
        for w in witnesses where seen.insert(w.publicKey).inserted {
            guard w.algorithm == .cosignatureV1 else {
                throw .unverified("\(w.name)+\(hex8(w.keyID)) is a log key, not a witness (cosignature/v1) key")
            }
            if cosignatureTime(by: w) != nil { good.append(w.name) } else { missing.append(w.name) }
        }
        let needed = quorum ?? seen.count
        guard good.count >= needed else {
            throw .unverified("\(good.count) valid cosignature\(good.count == 1 ? "" : "s") of the \(needed) required (--quorum); none valid from \(missing.joined(separator: ", "))")
        }
    }
}

public enum NoteError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case unverified(String)

    public var description: String {
        switch self {
        case .malformed(let why): "not a signed note: \(why)"
        case .unverified(let why): why
        }
    }
}

/// A C2SP tlog-checkpoint body: origin, tree size, base64 root hash, then
/// extension lines (we write `head <sha256 of record n>`).
public struct Checkpoint: Sendable, Equatable {
    public var origin: String
    public var size: Int
    public var root: Digest
    public var extensions: [String]

    public init(origin: String, size: Int, root: Digest, extensions: [String] = []) {
        self.origin = origin
        self.size = size
        self.root = root
        self.extensions = extensions
    }

    public var body: String {
        ([origin, String(size), root.base64] + extensions).map { $0 + "\n" }.joined()
    }

    /// The `head` extension: the sha256 of record n.
    public var head: Digest? {
        extensions.lazy.compactMap { line -> Digest? in
            guard line.hasPrefix("head ") else { return nil }
            return Digest(hex: String(line.dropFirst(5)))
        }.first
    }

    public init(parsing body: String) throws(NoteError) {
        var lines = body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.last == "" else { throw .malformed("the checkpoint body must end with LF") }
        lines.removeLast()
        guard lines.count >= 3 else { throw .malformed("a checkpoint has an origin, a size and a root line") }
        guard !lines[0].isEmpty else { throw .malformed("empty origin line") }
        guard let n = Int(lines[1]), n >= 0, String(n) == lines[1] else {
            throw .malformed("the size line is not a decimal number")
        }
        guard let raw = Base64.decode(lines[2]), raw.count == 32 else {
            throw .malformed("the root line is not a base64 SHA-256 hash")
        }
        for e in lines[3...] where e.isEmpty {
            throw .malformed("empty extension line")
        }
        if let h = lines[3...].first(where: { $0.hasPrefix("head ") }), Digest(hex: String(h.dropFirst(5))) == nil {
            throw .malformed("the head line is not `head <64 lowercase hex>`")
        }
        self.init(origin: lines[0], size: n, root: Digest(bytes: raw), extensions: Array(lines[3...]))
    }
}
