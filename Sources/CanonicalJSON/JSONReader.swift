/// Why a text is not JSON of the restricted model, and where (byte offset).
public struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: Equatable, Sendable {
        case syntax, invalidUTF8, loneSurrogate, duplicateKey, number, tooDeep, notCanonical
    }
    public var code: Code
    /// Byte offset in the parsed text.
    public var offset: Int
    public var message: String

    public var description: String { "\(message) (byte \(offset))" }
}

/// A validating JSON reader of our own (Foundation's is far too slow for a
/// million ledger lines, and accepts what we must reject).
///
/// It rejects duplicate keys, invalid UTF-8, lone surrogates, fractions and
/// exponents, integers beyond ±(2^53 − 1), and nesting deeper than
/// ``maxDepth``. In ``Mode/canonical`` it also rejects any text that is not
/// byte for byte its own canonical form (ledger-format.md), which is how
/// `verify` checks record lines without writing them again.
public struct JSONReader {
    public enum Mode: Sendable { case input, canonical }

    /// Nesting limit: no event comes near it, and it bounds the recursion.
    public static let maxDepth = 32

    /// Parses a whole text (leading and trailing whitespace allowed in input mode).
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, mode: Mode = .input) throws(JSONError) -> JSONValue {
        var r = JSONReader(bytes: bytes, mode: mode)
        r.skipSpace()
        let v = try r.value(depth: 0)
        r.skipSpace()
        if r.pos != bytes.count { throw r.fail(.syntax, "unexpected text after the JSON value") }
        return v
    }

    public static func parse(_ bytes: [UInt8], mode: Mode = .input) throws(JSONError) -> JSONValue {
        do {
            return try bytes.withUnsafeBufferPointer { try parse($0, mode: mode) }
        } catch let e as JSONError {
            throw e
        } catch {
            fatalError("unreachable")
        }
    }

    public static func parse(_ text: String, mode: Mode = .input) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), mode: mode)
    }

    let p: UnsafeBufferPointer<UInt8>
    let canonical: Bool
    var pos = 0

    init(bytes: UnsafeBufferPointer<UInt8>, mode: Mode) {
        p = bytes
        canonical = mode == .canonical
    }

    func fail(_ code: JSONError.Code, _ message: String, at offset: Int? = nil) -> JSONError {
        JSONError(code: code, offset: offset ?? pos, message: message)
    }

    @inline(__always)
    mutating func skipSpace() {
        if canonical { return }
        while pos < p.count {
            switch p[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONError) -> JSONValue {
        guard pos < p.count else { throw fail(.syntax, "unexpected end of text") }
        switch p[pos] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .int(try number())
        default: throw fail(.syntax, "unexpected character \(describe(p[pos]))")
        }
    }

    func describe(_ c: UInt8) -> String {
        c >= 0x21 && c < 0x7F ? "'\(Character(Unicode.Scalar(c)))'" : "0x" + String(c, radix: 16)
    }

    mutating func literal(_ word: StaticString) throws(JSONError) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= p.count else { throw fail(.syntax, "unexpected end of text") }
        for i in 0..<n where p[pos + i] != word.utf8Start[i] {
            throw fail(.syntax, "invalid literal")
        }
        pos += n
    }

    mutating func object(depth: Int) throws(JSONError) -> JSONValue {
        if depth > JSONReader.maxDepth { throw fail(.tooDeep, "nesting deeper than \(JSONReader.maxDepth) levels") }
        pos += 1
        skipSpace()
        var members: [JSONObject.Member] = []
        if pos < p.count, p[pos] == UInt8(ascii: "}") {
            pos += 1
            return .object(JSONObject(sortedUniqueMembers: members))
        }
        var sorted = true
        while true {
            guard pos < p.count, p[pos] == UInt8(ascii: "\"") else { throw fail(.syntax, "expected a member name") }
            let keyStart = pos
            let key = try string()
            if let prev = members.last?.key {
                let order = prev == key ? 0 : (JSONObject.keyLess(prev, key) ? -1 : 1)
                if order >= 0 {
                    if canonical {
                        throw fail(order == 0 ? .duplicateKey : .notCanonical,
                                   order == 0 ? "duplicate member \"\(key)\"" : "members not in canonical order at \"\(key)\"",
                                   at: keyStart)
                    }
                    sorted = false
                }
            }
            skipSpace()
            guard pos < p.count, p[pos] == UInt8(ascii: ":") else { throw fail(.syntax, "expected ':' after member name") }
            pos += 1
            skipSpace()
            let v = try value(depth: depth)
            members.append(JSONObject.Member(key: key, value: v))
            skipSpace()
            guard pos < p.count else { throw fail(.syntax, "unexpected end of text in an object") }
            if p[pos] == UInt8(ascii: ",") {
                pos += 1
                skipSpace()
                continue
            }
            if p[pos] == UInt8(ascii: "}") {
                pos += 1
                break
            }
            throw fail(.syntax, "expected ',' or '}' in an object")
        }
        if !sorted {
            members.sort { JSONObject.keyLess($0.key, $1.key) }
            for i in 1..<members.count where members[i].key == members[i - 1].key {
                throw fail(.duplicateKey, "duplicate member \"\(members[i].key)\"")
            }
        }
        return .object(JSONObject(sortedUniqueMembers: members))
    }

    mutating func array(depth: Int) throws(JSONError) -> JSONValue {
        if depth > JSONReader.maxDepth { throw fail(.tooDeep, "nesting deeper than \(JSONReader.maxDepth) levels") }
        pos += 1
        skipSpace()
        var items: [JSONValue] = []
        if pos < p.count, p[pos] == UInt8(ascii: "]") {
            pos += 1
            return .array(items)
        }
        while true {
            items.append(try value(depth: depth))
            skipSpace()
            guard pos < p.count else { throw fail(.syntax, "unexpected end of text in an array") }
            if p[pos] == UInt8(ascii: ",") {
                pos += 1
                skipSpace()
                continue
            }
            if p[pos] == UInt8(ascii: "]") {
                pos += 1
                return .array(items)
            }
            throw fail(.syntax, "expected ',' or ']' in an array")
        }
    }

    mutating func number() throws(JSONError) -> Int64 {
        let start = pos
        var negative = false
        if p[pos] == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        guard pos < p.count, p[pos] >= UInt8(ascii: "0"), p[pos] <= UInt8(ascii: "9") else {
            throw fail(.syntax, "expected a digit")
        }
        if p[pos] == UInt8(ascii: "0"), pos + 1 < p.count, p[pos + 1] >= UInt8(ascii: "0"), p[pos + 1] <= UInt8(ascii: "9") {
            throw fail(.syntax, "leading zeros in a number", at: start)
        }
        var magnitude: Int64 = 0
        while pos < p.count, p[pos] >= UInt8(ascii: "0"), p[pos] <= UInt8(ascii: "9") {
            magnitude = magnitude * 10 + Int64(p[pos] - UInt8(ascii: "0"))
            if magnitude > JSONValue.maxInteger {
                throw fail(.number, "integer beyond ±(2^53 − 1)", at: start)
            }
            pos += 1
        }
        if pos < p.count, p[pos] == UInt8(ascii: ".") || p[pos] == UInt8(ascii: "e") || p[pos] == UInt8(ascii: "E") {
            throw fail(.number, "numbers must be integers (no fractions or exponents)", at: start)
        }
        if negative && magnitude == 0 && canonical { throw fail(.notCanonical, "-0 is not canonical", at: start) }
        return negative ? -magnitude : magnitude
    }

    mutating func string() throws(JSONError) -> String {
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes; validate UTF-8 and make the String from the slice.
        while pos < p.count {
            let c = p[pos]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: p[start..<pos]), as: UTF8.self)
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail(.syntax, "unescaped control character in a string") }
            if c < 0x80 {
                pos += 1
            } else {
                try utf8Sequence()
            }
        }
        guard pos < p.count else { throw fail(.syntax, "unterminated string", at: start - 1) }
        // Slow path: escapes.
        var out = Array(UnsafeBufferPointer(rebasing: p[start..<pos]))
        while pos < p.count {
            let c = p[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") {
                try escape(into: &out)
                continue
            }
            if c < 0x20 { throw fail(.syntax, "unescaped control character in a string") }
            if c < 0x80 {
                out.append(c)
                pos += 1
            } else {
                let s = pos
                try utf8Sequence()
                out.append(contentsOf: UnsafeBufferPointer(rebasing: p[s..<pos]))
            }
        }
        throw fail(.syntax, "unterminated string", at: start - 1)
    }

    mutating func escape(into out: inout [UInt8]) throws(JSONError) {
        let at = pos
        guard pos + 1 < p.count else { throw fail(.syntax, "unterminated escape") }
        let e = p[pos + 1]
        pos += 2
        switch e {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "/"):
            if canonical { throw fail(.notCanonical, "\\/ is not canonical", at: at) }
            out.append(0x2F)
        case UInt8(ascii: "u"):
            var scalar = try hex4(lowercaseOnly: canonical)
            if canonical {
                // Only control characters without a short escape are written as \u00xx.
                if scalar >= 0x20 || [0x08, 0x09, 0x0A, 0x0C, 0x0D].contains(scalar) {
                    throw fail(.notCanonical, "\\u escape is not canonical here", at: at)
                }
            }
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard pos + 1 < p.count, p[pos] == UInt8(ascii: "\\"), p[pos + 1] == UInt8(ascii: "u") else {
                    throw fail(.loneSurrogate, "lone surrogate in a string", at: at)
                }
                pos += 2
                let low = try hex4(lowercaseOnly: false)
                guard low >= 0xDC00 && low <= 0xDFFF else { throw fail(.loneSurrogate, "lone surrogate in a string", at: at) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw fail(.loneSurrogate, "lone surrogate in a string", at: at)
            }
            appendUTF8(scalar, to: &out)
        default:
            throw fail(.syntax, "invalid escape", at: at)
        }
    }

    mutating func hex4(lowercaseOnly: Bool) throws(JSONError) -> UInt32 {
        guard pos + 4 <= p.count else { throw fail(.syntax, "truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[pos]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"):
                if lowercaseOnly { throw fail(.notCanonical, "uppercase hex in \\u escape is not canonical") }
                d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail(.syntax, "invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    func appendUTF8(_ s: UInt32, to out: inout [UInt8]) {
        switch s {
        case 0..<0x80: out.append(UInt8(s))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (s >> 6)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (s >> 12)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (s >> 18)))
            out.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        }
    }

    /// Validates one multi-byte UTF-8 sequence at `pos` (Unicode 15, table 3-7)
    /// and steps over it.
    @inline(__always)
    mutating func utf8Sequence() throws(JSONError) {
        let c = p[pos]
        let n: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: n = 2
        case 0xE0: n = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: n = 3
        case 0xED: n = 3; hi = 0x9F  // no surrogates
        case 0xF0: n = 4; lo = 0x90
        case 0xF1...0xF3: n = 4
        case 0xF4: n = 4; hi = 0x8F
        default: throw fail(.invalidUTF8, "invalid UTF-8")
        }
        guard pos + n <= p.count else { throw fail(.invalidUTF8, "invalid UTF-8") }
        let c1 = p[pos + 1]
        guard c1 >= lo && c1 <= hi else { throw fail(.invalidUTF8, "invalid UTF-8") }
        for i in 2..<n where p[pos + i] & 0xC0 != 0x80 {
            throw fail(.invalidUTF8, "invalid UTF-8")
        }
        pos += n
    }
}
