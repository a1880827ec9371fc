#if canImport(Glibc)
import Glibc
#endif
import MilestoneCrypto

/// The signature types of C2SP signed-note this program knows: a log's
/// Ed25519 note signature, and a witness's C2SP tlog-cosignature
/// `cosignature/v1` (Ed25519 over a timestamped message).
public enum KeyAlgorithm: UInt8, Sendable {
    case ed25519 = 0x01
    case cosignatureV1 = 0x04
}

/// A key's name and public key, in the encodings of Go's
/// `golang.org/x/mod/sumdb/note` (so existing witnesses and tools read them):
/// verifier key `<name>+<8 hex key id>+<base64(alg ‖ public key)>`, alg 0x01
/// for a log's key, 0x04 for a witness's cosignature/v1 key (C2SP
/// tlog-cosignature; docs/ledger-format.md, "Cosignatures").
public struct VerifierKey: Sendable, Equatable {
    public var name: String
    public var publicKey: [UInt8]
    public var algorithm: KeyAlgorithm

    /// The first 4 bytes of SHA-256(name ‖ "\n" ‖ alg ‖ public key).
    public var keyID: UInt32 {
        var h = SHA256()
        h.update(Array(name.utf8) + [0x0A, algorithm.rawValue] + publicKey)
        return h.finalize().withBytes { b in b.prefix(4).reduce(0) { $0 << 8 | UInt32($1) } }
    }

    public var encoded: String { "\(name)+\(hex8(keyID))+\(Base64.encode([algorithm.rawValue] + publicKey))" }

    public var isWitness: Bool { algorithm == .cosignatureV1 }

    public init(name: String, publicKey: [UInt8], algorithm: KeyAlgorithm = .ed25519) {
        self.name = name
        self.publicKey = publicKey
        self.algorithm = algorithm
    }

    /// Parses the encoded form (one line; a final LF is allowed).
    public init(parsing text: String) throws(KeyError) {
        var t = text
        if t.hasSuffix("\n") { t.removeLast() }
        let parts = t.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, isValidKeyName(parts[0]) else { throw KeyError.malformed("a verifier key") }
        guard parts[1].utf8.count == 8, let id = UInt32(parts[1], radix: 16), parts[1] == hex8(id) else {
            throw KeyError.malformed("a verifier key")
        }
        guard let raw = Base64.decode(parts[2]), raw.count == 33, let alg = KeyAlgorithm(rawValue: raw[0]) else {
            throw KeyError.malformed("a verifier key (only Ed25519 keys are supported: algorithm 1 for a log, 4 for a cosignature/v1 witness)")
        }
        self.init(name: parts[0], publicKey: Array(raw[1...]), algorithm: alg)
        guard keyID == id else { throw KeyError.malformed("a verifier key (its key id does not match its name and key)") }
    }
}

/// A private signing key: Go note's `PRIVATE+KEY+<name>+<id>+<base64(alg ‖ seed)>`
/// (alg 0x01 for a log's key; 0x04 for a witness's cosignature/v1 key, whose
/// id is computed with 0x04 too: docs/ledger-format.md, "Witness keys").
public struct SignerKey: Sendable {
    public var name: String
    var seed: [UInt8]
    public let verifier: VerifierKey

    public init(name: String, seed: [UInt8], algorithm: KeyAlgorithm = .ed25519) throws {
        guard isValidKeyName(name) else { throw KeyError.badName(name) }
        self.name = name
        self.seed = seed
        verifier = VerifierKey(name: name, publicKey: try Ed25519.publicKey(seed: seed), algorithm: algorithm)
    }

    public static func generate(name: String, algorithm: KeyAlgorithm = .ed25519) throws -> SignerKey {
        try SignerKey(name: name, seed: try Ed25519.generateSeed(), algorithm: algorithm)
    }

    public var algorithm: KeyAlgorithm { verifier.algorithm }

    var encoded: String {
        "PRIVATE+KEY+\(name)+\(hex8(verifier.keyID))+\(Base64.encode([algorithm.rawValue] + seed))"
    }

    /// Parses the encoded form; the error never repeats the text.
    public init(parsing text: String) throws {
        var t = text
        if t.hasSuffix("\n") { t.removeLast() }
        let parts = t.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY", isValidKeyName(parts[2]),
              parts[3].utf8.count == 8, let id = UInt32(parts[3], radix: 16),
              let raw = Base64.decode(parts[4]), raw.count == 33, let alg = KeyAlgorithm(rawValue: raw[0])
        else { throw KeyError.malformed("a private key") }
        try self.init(name: parts[2], seed: Array(raw[1...]), algorithm: alg)
        guard verifier.keyID == id else { throw KeyError.malformed("a private key (its key id does not match)") }
    }

    public func sign(_ message: [UInt8]) throws -> [UInt8] { try Ed25519.sign(message, seed: seed) }

    /// Writes `PREFIX.key` (mode 0600, never over an existing file) and `PREFIX.vkey`.
    public func write(prefix: String) throws {
        try writeNew(prefix + ".key", encoded + "\n", mode: 0o600)
        do {
            try writeNew(prefix + ".vkey", verifier.encoded + "\n", mode: 0o644)
        } catch {
            unlink(prefix + ".key")
            throw error
        }
    }

    /// Loads a private key file, refusing one that group or others can read.
    public static func load(_ path: String) throws -> SignerKey {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { throw LedgerError.missing(path: path) }
            throw LedgerError.io(path: path, operation: "stat", errno: errno)
        }
        guard st.st_mode & 0o077 == 0 else {
            throw KeyError.exposed(path: path, mode: String(st.st_mode & 0o777, radix: 8))
        }
        let text = try readText(path)
        do {
            return try SignerKey(parsing: text)
        } catch let e as KeyError {
            throw KeyError.inFile(path: path, e)
        }
    }
}

/// Key names (C2SP signed-note): non-empty printable Unicode without spaces
/// or '+'. Printable as Go's unicode.IsPrint has it: letters, marks, numbers,
/// punctuation and symbols; so no control (C0, DEL, C1), format, private-use
/// or unassigned code point, and no whitespace or separator of any kind.
package func isValidKeyName(_ name: String) -> Bool {
    !name.isEmpty && !name.unicodeScalars.contains { s in
        if s == "+" || s.properties.isWhitespace { return true }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber,
             .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation, .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return false
        default:
            return true
        }
    }
}

/// The name in a signature line: checked only as far as telling it from the
/// signature (non-empty, no space, no '+'); a line by a key nobody asked
/// about is ignored, whatever else its name holds.
func isSignatureName(_ name: Substring) -> Bool {
    !name.isEmpty && !name.unicodeScalars.contains { $0 == "+" || $0.properties.isWhitespace }
}

func hex8(_ v: UInt32) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: 8 - h.count) + h
}

public enum KeyError: Error, CustomStringConvertible, Sendable {
    case malformed(String)
    case badName(String)
    /// A log key where a witness key is needed, or the other way round.
    case wrongKind(String)
    case exposed(path: String, mode: String)
    indirect case inFile(path: String, KeyError)

    public var description: String {
        switch self {
        case .malformed(let what): "not \(what) in the note format"
        case .badName(let name):
            "key name \(escapedName(name)) must be non-empty printable Unicode without whitespace, control characters or '+'; choose another --name"
        case .wrongKind(let why): why
        case .exposed(let path, let mode):
            "\(path): private key readable by group or others (mode \(mode)); refusing to use it. Run: chmod 600 \(path)"
        case .inFile(let path, let e): "\(path): \(e)"
        }
    }
}

func writeNew(_ path: String, _ text: String, mode: mode_t) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else {
        if errno == EEXIST { throw LedgerError.exists(path: path) }
        throw LedgerError.io(path: path, operation: "create", errno: errno)
    }
    defer { close(fd) }
    fchmod(fd, mode)  // whatever the umask
    let bytes = Array(text.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
        throw LedgerError.io(path: path, operation: "write", errno: errno)
    }
}

func readText(_ path: String) throws -> String {
    String(decoding: try readBytes(path), as: UTF8.self)
}

/// A whole small file (keys, checkpoints, proofs: at most 16 MiB).
package func readBytes(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
        if errno == ENOENT { throw LedgerError.missing(path: path) }
        throw LedgerError.io(path: path, operation: "open", errno: errno)
    }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw LedgerError.io(path: path, operation: "read", errno: errno)
        }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
        if out.count > 16 << 20 { throw LedgerError.tooLarge(path: path, what: "larger than 16 MiB; not a key, checkpoint or proof") }
    }
    return out
}

/// Writes a small file whole (replacing it), durably.
package func writeFile(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw LedgerError.io(path: path, operation: "create", errno: errno) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
        if n < 0 {
            if errno == EINTR { continue }
            throw LedgerError.io(path: path, operation: "write", errno: errno)
        }
        done += n
    }
    guard fsync(fd) == 0 else { throw LedgerError.io(path: path, operation: "fsync", errno: errno) }
}

/// A name for a message, its invisible characters as \u{…}.
func escapedName(_ name: String) -> String {
    "\"" + name.unicodeScalars.map { s in
        isValidKeyName(String(s)) || s == "+" ? String(s) : "\\u{\(String(s.value, radix: 16, uppercase: true))}"
    }.joined() + "\""
}
