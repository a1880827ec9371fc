internal import COpenSSL

/// A SHA-256 digest (32 bytes), held inline (no allocation).
public struct Digest: Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64  // big-endian words

    public init(bytes: [UInt8]) {
        precondition(bytes.count == 32)
        func word(_ i: Int) -> UInt64 { bytes[i..<i + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        w0 = word(0)
        w1 = word(8)
        w2 = word(16)
        w3 = word(24)
    }

    /// Calls `body` with the 32 bytes.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var words = (w0.bigEndian, w1.bigEndian, w2.bigEndian, w3.bigEndian)
        return withUnsafeBytes(of: &words) { body($0) }
    }

    /// Reads 32 bytes.
    public init(raw: UnsafeRawBufferPointer) {
        precondition(raw.count >= 32)
        w0 = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        w1 = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        w2 = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        w3 = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        for w in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: w >> UInt64(shift))) }
        }
        return out
    }

    /// Parses 64 lowercase hex digits, eight at a time (SWAR: each 8-byte
    /// word is range-checked and converted without a table or a branch per digit).
    public init?(hex: UnsafeRawBufferPointer) {
        guard hex.count == 64 else { return nil }
        func word(_ at: Int) -> UInt64 { UInt64(littleEndian: hex.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        let (a, b, c, d) = (Digest.hexWord(word(0)), Digest.hexWord(word(8)), Digest.hexWord(word(16)), Digest.hexWord(word(24)))
        let (e, f, g, h) = (Digest.hexWord(word(32)), Digest.hexWord(word(40)), Digest.hexWord(word(48)), Digest.hexWord(word(56)))
        guard (a.bad | b.bad | c.bad | d.bad | e.bad | f.bad | g.bad | h.bad) == 0 else { return nil }
        (w0, w1, w2, w3) = (a.value << 32 | b.value, c.value << 32 | d.value, e.value << 32 | f.value, g.value << 32 | h.value)
    }

    /// Eight hex digits (as loaded little-endian: the first in the low byte)
    /// → their 32-bit value, and nonzero `bad` unless all eight are `0-9a-f`.
    @inline(__always)
    static func hexWord(_ x: UInt64) -> (value: UInt64, bad: UInt64) {
        let high: UInt64 = 0x8080_8080_8080_8080
        let ones: UInt64 = 0x0101_0101_0101_0101
        // For 7-bit bytes, c + (0x80 - k) sets the byte's high bit iff c >= k (no carry between bytes).
        let low7 = x & ~high
        let ge30 = (low7 &+ ones &* 0x50) & high
        let ge3A = (low7 &+ ones &* 0x46) & high
        let ge61 = (low7 &+ ones &* 0x1F) & high
        let ge67 = (low7 &+ ones &* 0x19) & high
        let ok = (ge30 & ~ge3A) | (ge61 & ~ge67)
        // '0'…'9' → 0…9, 'a'…'f' → 10…15: the low nibble, plus 9 when bit 6 is set.
        let v = (x & 0x0F0F_0F0F_0F0F_0F0F) &+ ((x >> 6) & ones) &* 9
        // Bytes b0…b7 (b0 first) → b0b1 b2b3 b4b5 b6b7 → one 32-bit big-endian value.
        let pairs = ((v & 0x000F_000F_000F_000F) << 4) | ((v >> 8) & 0x000F_000F_000F_000F)
        let quads = (pairs | (pairs >> 8)) & 0x0000_FFFF_0000_FFFF
        let packed = UInt32(truncatingIfNeeded: quads | (quads >> 16))
        return (UInt64(packed.byteSwapped), (ok ^ high) | (x & high))
    }

    public init?(hex: String) {
        var h = hex
        guard let d = h.withUTF8({ Digest(hex: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = d
    }

    init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0
        self.w1 = w1
        self.w2 = w2
        self.w3 = w3
    }

    public static let zero = Digest(w0: 0, w1: 0, w2: 0, w3: 0)

    public var hex: String { String(decoding: hexBytes, as: UTF8.self) }

    public var hexBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(64)
        appendHex(to: &out)
        return out
    }

    /// Appends the 64 lowercase hex digits (no intermediate array).
    public func appendHex(to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: 64, alignment: 8) { buf in
            writeHex(to: buf.baseAddress!)
            out.append(contentsOf: UnsafeRawBufferPointer(buf))
        }
    }

    /// Writes the 64 lowercase hex digits at `out`, eight at a time.
    @inline(__always)
    public func writeHex(to out: UnsafeMutableRawPointer) {
        func put(_ w: UInt64, _ at: Int) {
            out.storeBytes(of: Digest.hex8(UInt32(truncatingIfNeeded: w >> 32)).bigEndian, toByteOffset: at, as: UInt64.self)
            out.storeBytes(of: Digest.hex8(UInt32(truncatingIfNeeded: w)).bigEndian, toByteOffset: at + 8, as: UInt64.self)
        }
        put(w0, 0)
        put(w1, 16)
        put(w2, 32)
        put(w3, 48)
    }

    /// The eight hex digits of `x`, the first (most significant) in the
    /// highest byte: each nibble spread to a byte of its own, then '0'…'9'
    /// or 'a'…'f' added to all eight bytes at once.
    @inline(__always)
    static func hex8(_ x: UInt32) -> UInt64 {
        var v = UInt64(x)
        v = (v | v << 16) & 0x0000_FFFF_0000_FFFF
        v = (v | v << 8) & 0x00FF_00FF_00FF_00FF
        v = (v | v << 4) & 0x0F0F_0F0F_0F0F_0F0F  // byte k: nibble k (from the least significant)
        let letters = ((v &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101  // 1 where the nibble is 10…15
        return v &+ 0x3030_3030_3030_3030 &+ letters &* 39
    }

    public var base64: String { Base64.encode(bytes) }

    /// The first 8 bytes as an integer (a compact content fingerprint).
    public var prefix64: UInt64 { w0 }

    public var description: String { hex }
}

/// Why the system OpenSSL failed: the function and OpenSSL's own error text.
package struct CryptoError: Error, CustomStringConvertible, Sendable {
    package var function: String
    package var detail: String
    package var description: String { "openssl: \(function) failed\(detail.isEmpty ? "" : ": " + detail)" }

    static func last(_ function: String) -> CryptoError {
        let code = ERR_get_error()
        var detail = ""
        if code != 0 {
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buf, buf.count)
            detail = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        ERR_clear_error()
        return CryptoError(function: function, detail: detail)
    }
}

/// SHA-256 through the system OpenSSL, streaming or one-shot.
///
///     var h = SHA256()
///     h.update([0x61, 0x62, 0x63])
///     let d = h.finalize()   // ba7816bf…
///
/// It calls OpenSSL's `SHA256_Init`/`_Update`/`_Final`, the same block
/// function (SHA-NI where the processor has it) as the EVP interface, without
/// EVP's per-call dispatch through a provider or the provider set-up a process
/// pays on its first hash. OpenSSL 3 marks them deprecated, not removed.
/// Every return code is checked: they fail only on a null context, and a
/// failure stops the process (``checked(_:_:)``) rather than let a wrong
/// digest into a ledger or a verdict.
public struct SHA256: ~Copyable {
    private let ctx: UnsafeMutablePointer<SHA256_CTX>

    public init() {
        ctx = .allocate(capacity: 1)
        SHA256.checked(SHA256_Init(ctx), "SHA256_Init")
    }

    /// OpenSSL's 1 for success; anything else is a broken library, not an input to report.
    @inline(__always)
    static func checked(_ rc: Int32, _ call: StaticString) {
        if rc != 1 { fatalError("OpenSSL's \(call) failed (returned \(rc)); no digest can be trusted") }
    }

    deinit { ctx.deallocate() }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        SHA256.checked(SHA256_Update(ctx, bytes.baseAddress, bytes.count), "SHA256_Update")
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public mutating func update(_ byte: UInt8) {
        withUnsafeBytes(of: byte) { update($0) }
    }

    /// Returns the digest of everything added since the last `finalize`, and
    /// starts over.
    public mutating func finalize() -> Digest {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { SHA256.checked(SHA256_Final($0.baseAddress!.assumingMemoryBound(to: UInt8.self), ctx), "SHA256_Final") }
        SHA256.checked(SHA256_Init(ctx), "SHA256_Init")
        return Digest(w0: words.0.bigEndian, w1: words.1.bigEndian, w2: words.2.bigEndian, w3: words.3.bigEndian)
    }

    public static func hash(_ bytes: [UInt8]) -> Digest {
        var h = SHA256()
        h.update(bytes)
        return h.finalize()
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> Digest {
        var h = SHA256()
        h.update(bytes)
        return h.finalize()
    }
}

/// Standard base64 with padding (RFC 4648 §4), as checkpoints and proofs use.
package enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    package static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], alphabet[Int(v & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], 0x3D, 0x3D]
        } else if rest == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(v >> 18)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], 0x3D]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Strict decoding: standard alphabet, padding required, no whitespace,
    /// and the unused bits of the last group zero (so every value has exactly
    /// one encoding, and a changed character never decodes to the same bytes).
    package static func decode(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 4 * 3)
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case 0x41...0x5A: UInt32(c - 0x41)
            case 0x61...0x7A: UInt32(c - 0x61 + 26)
            case 0x30...0x39: UInt32(c - 0x30 + 52)
            case 0x2B: 62
            case 0x2F: 63
            default: nil
            }
        }
        var i = 0
        while i < u.count {
            let last = i + 4 == u.count
            let pad = last ? (u[i + 3] == 0x3D ? (u[i + 2] == 0x3D ? 2 : 1) : 0) : 0
            guard let a = value(u[i]), let b = value(u[i + 1]) else { return nil }
            var v = a << 18 | b << 12
            if pad < 2 {
                guard let c = value(u[i + 2]) else { return nil }
                v |= c << 6
            }
            if pad < 1 {
                guard let d = value(u[i + 3]) else { return nil }
                v |= d
            }
            out.append(UInt8(v >> 16))
            if pad < 2 { out.append(UInt8(v >> 8 & 0xFF)) } else if v & 0xFFFF != 0 { return nil }
            if pad < 1 { out.append(UInt8(v & 0xFF)) } else if v & 0xFF != 0 { return nil }
            i += 4
        }
        return out
    }
}
