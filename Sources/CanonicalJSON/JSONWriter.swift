/// Writes the canonical form of docs/ledger-format.md ("Canonical JSON"): sorted
/// members, no whitespace, minimal string escapes, integers in shortest form.
/// Python's `json.dumps(v, ensure_ascii=False, separators=(",", ":"), sort_keys=True)`
/// writes the same bytes for the same value.
public enum JSONWriter {
    /// Appends the canonical bytes of `value` to `out`.
    package static func append(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): appendInteger(i, to: &out)
        case .string(let s): appendString(s, to: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (n, v) in a.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                append(v, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (n, m) in o.members.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                appendString(m.key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(m.value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// The canonical bytes of `value`.
    package static func bytes(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        append(value, to: &out)
        return out
    }

    /// A string quoted for a message on a terminal: JSON string syntax, with
    /// C1 controls and DEL escaped too (JSON leaves them raw), and cut after 80
    /// characters; hostile text never reaches a terminal raw.
    package static func quotedForDisplay(_ s: String) -> String {
        var t = s
        if t.unicodeScalars.count > 80 { t = String(String.UnicodeScalarView(t.unicodeScalars.prefix(77))) + "…" }
        var out: [UInt8] = []
        appendString(t, to: &out)
        let text = String(decoding: out, as: UTF8.self)
        guard text.unicodeScalars.contains(where: { $0.value == 0x7F || ($0.value >= 0x80 && $0.value < 0xA0) }) else { return text }
        return text.unicodeScalars.map { u -> String in
            guard u.value == 0x7F || (u.value >= 0x80 && u.value < 0xA0) else { return String(u) }
            let h = String(u.value, radix: 16)
            return "\\u" + String(repeating: "0", count: 4 - h.count) + h
        }.joined()
    }

    /// The canonical text of `value`.
    package static func string(_ value: JSONValue) -> String {
        String(decoding: bytes(value), as: UTF8.self)
    }

    package static func appendInteger(_ i: Int64, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: maxIntegerLength, alignment: 1) { digits in
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: digits[..<writeInteger(i, to: digits.baseAddress!)]))
        }
    }

    /// The longest integer's text: `-9223372036854775808`.
    public static let maxIntegerLength = 20

    /// Writes the shortest text of `i` at `out` (room for ``maxIntegerLength``
    /// bytes) and returns its length.
    @inline(__always)
    public static func writeInteger(_ i: Int64, to out: UnsafeMutableRawPointer) -> Int {
        var n = i.magnitude
        var count = 1
        while n >= 10 {
            n /= 10
            count += 1
        }
        if i < 0 {
            out.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
            count += 1
        }
        n = i.magnitude
        var k = count
        repeat {
            k -= 1
            out.storeBytes(of: UInt8(ascii: "0") &+ UInt8(n % 10), toByteOffset: k, as: UInt8.self)
            n /= 10
        } while n > 0
        return count
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    package static func appendString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendString(utf8: $0, to: &out) }
    }

    /// A string given as UTF-8 bytes, quoted and escaped.
    package static func appendString(utf8 bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escape: one scan, one copy.
        guard needsEscape(bytes) else {
            out.append(contentsOf: bytes)
            out.append(UInt8(ascii: "\""))
            return
        }
        var start = 0
        for (i, c) in bytes.enumerated() where needsEscape(c) {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i]))
            start = i + 1
            out.append(UInt8(ascii: "\\"))
            switch c {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            default:
                out.append(contentsOf: "u00".utf8)
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 0xF)])
            }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
        out.append(UInt8(ascii: "\""))
    }

    /// Whether a byte must be escaped in a JSON string: a control character, `"` or `\`.
    @inline(__always)
    package static func needsEscape(_ c: UInt8) -> Bool { c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") }

    /// Whether any byte of the text must be escaped: eight bytes at a time
    /// (SWAR), the last bytes as the last eight, some of them checked twice.
    package static func needsEscape(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = b.baseAddress, b.count >= 8 else { return b.contains(where: needsEscape) }
        let n = b.count
        var i = 0
        while i + 16 <= n {
            if word(base + i) | word(base + i + 8) != 0 { return true }
            i += 16
        }
        if i + 8 <= n {
            if word(base + i) != 0 { return true }
            i += 8
        }
        return i < n && word(base + n - 8) != 0
    }

    /// Nonzero when a byte below 0x20, or equal to 0x22 or 0x5C, is among the eight at `at`.
    @inline(__always)
    static func word(_ at: UnsafePointer<UInt8>) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let w = UInt64(littleEndian: UnsafeRawPointer(at).loadUnaligned(as: UInt64.self))
        let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
        return ((w &- ones &* 0x20) & ~w | (quote &- ones) & ~quote | (backslash &- ones) & ~backslash) & (ones &* 0x80)
    }
}
