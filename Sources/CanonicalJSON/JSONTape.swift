#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a text is not JSON of the restricted model, and where (byte offset).
package struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    package enum Code: Equatable, Sendable {
        case syntax, invalidUTF8, loneSurrogate, duplicateKey, number, tooDeep, notCanonical
    }
    package var code: Code
    /// Byte offset in the parsed text.
    package var offset: Int
    package var message: String

    package var description: String { "\(message) (byte \(offset))" }
}

/// A parsed JSON text as a flat array of nodes that point into the text's
/// bytes: the one JSON parser of the project.
///
/// Parsing allocates nothing per value (a tape is reused from line to line),
/// which is what lets `verify` check a million records in about the time
/// SHA-256 takes to read them. ``JSONReader`` builds ``JSONValue`` trees from
/// a tape; the event validator reads the tape directly through ``JSONView``.
///
/// It rejects duplicate keys, invalid UTF-8, lone surrogates, fractions and
/// exponents, integers beyond ±(2^53 − 1), and nesting deeper than
/// ``maxDepth``. In ``Mode/canonical`` it also rejects any text that is not
/// byte for byte its own canonical form (docs/ledger-format.md).
/// Its stored properties are `@exclusivity(unchecked)`: one owner uses them at a time, by construction, and the dynamic checks cost per record (bench/README.md).
package final class JSONTape {
    package enum Mode: Sendable { case input, canonical }
    package enum Kind: UInt8, Sendable {
        case null, bool, int, string, array, object

        /// A short name of the kind, for error messages ("an integer").
        package var name: String {
            switch self {
            case .null: "null"
            case .bool: "a boolean"
            case .int: "an integer"
            case .string: "a string"
            case .array: "an array"
            case .object: "an object"
            }
        }
    }

    /// Nesting limit: no event comes near it, and it bounds the recursion.
    package static let maxDepth = 32

    struct Node {
        var kind: Kind
        /// bool: its value; string: contains escapes.
        var flag: Bool
        /// string: the bytes between the quotes; array, object: from bracket to bracket.
        var start: Int32
        var end: Int32
        /// array: elements; object: members.
        var count: Int32
        /// Index of the node after this one's subtree.
        var next: Int32
        var int: Int64
    }

    /// Nodes and a copy of the text live in buffers the tape owns and reuses:
    /// reading them needs no reference counting (this is the hot path of verify).
    @exclusivity(unchecked) var nodes = NodeBuffer()
    @exclusivity(unchecked) private var owned = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    @exclusivity(unchecked) private var textCapacity = 1
    /// The text parsed last: `owned`, or the caller's bytes (``parse(_:mode:copy:)``).
    @exclusivity(unchecked) private var text = UnsafePointer<UInt8>(bitPattern: 1)!
    @exclusivity(unchecked) private(set) var textCount = 0
    @exclusivity(unchecked) private var canonical = false
    @exclusivity(unchecked) private var pos = 0

    package init() {}

    deinit {
        owned.deallocate()
        nodes.free()
    }

    /// The text of the last parse.
    package var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: text, count: textCount) }

    /// A growable array of nodes without copy-on-write or reference counting.
    struct NodeBuffer {
        var base = UnsafeMutablePointer<Node>.allocate(capacity: 64)
        var capacity = 64
        var count = 0

        @inline(__always)
        mutating func append(_ n: Node) {
            if count == capacity {
                let bigger = UnsafeMutablePointer<Node>.allocate(capacity: capacity * 2)
                bigger.moveInitialize(from: base, count: count)
                base.deallocate()
                base = bigger
                capacity *= 2
            }
            (base + count).initialize(to: n)
            count += 1
        }

        @inline(__always)
        subscript(i: Int) -> Node {
            get { base[i] }
            nonmutating set { base[i] = newValue }
        }

        mutating func removeAll() { count = 0 }

        func free() { base.deallocate() }
    }

    /// The root value of the last successful parse.
    package var root: JSONView { JSONView(nodes: nodes.base, text: text, index: 0) }

    /// Parses a whole text (leading and trailing whitespace allowed in input mode).
    /// With `copy: false` the views read `input` itself, which must then
    /// outlive them (verify's chunk of lines does): no copy is made.
    /// `depth`: how deep the text is nested in a larger one (the nesting
    /// limit counts from the outermost value).
    package func parse(_ input: UnsafeRawBufferPointer, mode: Mode = .input, copy: Bool = true, depth: Int = 0) throws(JSONError) {
        if !copy, let base = input.baseAddress {
            text = base.assumingMemoryBound(to: UInt8.self)
        } else {
            if input.count > textCapacity {
                owned.deallocate()
                textCapacity = max(input.count, textCapacity * 2)
                owned = UnsafeMutablePointer<UInt8>.allocate(capacity: textCapacity)
            }
            if input.count > 0 { memcpy(owned, input.baseAddress!, input.count) }
            text = UnsafePointer(owned)
        }
        textCount = input.count
        nodes.removeAll()
        canonical = mode == .canonical
        pos = 0
        let p = bytes
        skipSpace(p)
        try value(p, depth: depth)
        skipSpace(p)
        if pos != p.count { throw fail(.syntax, "unexpected text after the JSON value") }
    }

    package func parse(_ text: [UInt8], mode: Mode = .input) throws(JSONError) {
        let result = text.withUnsafeBytes { b -> Result<Void, JSONError> in
            do throws(JSONError) {
                try parse(b, mode: mode)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    func fail(_ code: JSONError.Code, _ message: String, at offset: Int? = nil) -> JSONError {
        JSONError(code: code, offset: offset ?? pos, message: message)
    }

    @inline(__always)
    func skipSpace(_ p: UnsafeBufferPointer<UInt8>) {
        if canonical { return }
        while pos < p.count {
            switch p[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    func value(_ p: UnsafeBufferPointer<UInt8>, depth: Int) throws(JSONError) {
        guard pos < p.count else { throw fail(.syntax, "unexpected end of text") }
        switch p[pos] {
        case UInt8(ascii: "{"): try object(p, depth: depth + 1)
        case UInt8(ascii: "["): try array(p, depth: depth + 1)
        case UInt8(ascii: "\""): try string(p)
        case UInt8(ascii: "t"): try literal(p, "true"); leaf(.bool, flag: true)
        case UInt8(ascii: "f"): try literal(p, "false"); leaf(.bool, flag: false)
        case UInt8(ascii: "n"): try literal(p, "null"); leaf(.null, flag: false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let v = try number(p)
            nodes.append(Node(kind: .int, flag: false, start: 0, end: 0, count: 0, next: Int32(nodes.count + 1), int: v))
        default: throw fail(.syntax, "unexpected character \(describe(p[pos]))")
        }
    }

    @inline(__always)
    func leaf(_ kind: Kind, flag: Bool) {
        nodes.append(Node(kind: kind, flag: flag, start: 0, end: 0, count: 0, next: Int32(nodes.count + 1), int: 0))
    }

    func describe(_ c: UInt8) -> String {
        c >= 0x21 && c < 0x7F ? "'\(Character(Unicode.Scalar(c)))'" : "0x" + String(c, radix: 16)
    }

    func literal(_ p: UnsafeBufferPointer<UInt8>, _ word: StaticString) throws(JSONError) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= p.count else { throw fail(.syntax, "unexpected end of text") }
        for i in 0..<n where p[pos + i] != word.utf8Start[i] {
            throw fail(.syntax, "invalid literal")
        }
        pos += n
    }

    func object(_ p: UnsafeBufferPointer<UInt8>, depth: Int) throws(JSONError) {
        if depth > JSONTape.maxDepth { throw fail(.tooDeep, "nesting deeper than \(JSONTape.maxDepth) levels") }
        let me = nodes.count
        nodes.append(Node(kind: .object, flag: false, start: Int32(pos), end: 0, count: 0, next: 0, int: 0))
        pos += 1
        skipSpace(p)
        var count: Int32 = 0
        if pos < p.count, p[pos] == UInt8(ascii: "}") {
            pos += 1
        } else {
            var previousKey = -1
            var sorted = true
            while true {
                guard pos < p.count, p[pos] == UInt8(ascii: "\"") else { throw fail(.syntax, "expected a member name") }
                let keyStart = pos
                let key = nodes.count
                try string(p)
                if previousKey >= 0 {
                    let order = compareKeys(previousKey, key)
                    if order >= 0 {
                        if canonical || order == 0 {
                            throw fail(order == 0 ? .duplicateKey : .notCanonical,
                                       order == 0 ? "duplicate member \(quotedKey(key))" : "members not in canonical order at \(quotedKey(key))",
                                       at: keyStart)
                        }
                        sorted = false
                    }
                }
                previousKey = key
                skipSpace(p)
                guard pos < p.count, p[pos] == UInt8(ascii: ":") else { throw fail(.syntax, "expected ':' after member name") }
                pos += 1
                skipSpace(p)
                try value(p, depth: depth)
                count += 1
                skipSpace(p)
                guard pos < p.count else { throw fail(.syntax, "unexpected end of text in an object") }
                if p[pos] == UInt8(ascii: ",") {
                    pos += 1
                    skipSpace(p)
                    continue
                }
                if p[pos] == UInt8(ascii: "}") {
                    pos += 1
                    break
                }
                throw fail(.syntax, "expected ',' or '}' in an object")
            }
            nodes[me].count = count
            nodes[me].next = Int32(nodes.count)
            if !sorted { try sortMembers(me) }
        }
        nodes[me].next = Int32(nodes.count)
        nodes[me].end = Int32(pos)
    }

    /// Input objects may come in any order: their members are put in key
    /// order on the tape, so that whoever reads it meets them sorted, as in
    /// a canonical text (the event checks walk their field table alongside,
    /// and the canonical writer copies them out without sorting again).
    /// Duplicates are refused. The text is not touched: the nodes still
    /// point at where each member was.
    func sortMembers(_ object: Int) throws(JSONError) {
        let count = Int(nodes[object].count)
        let (first, end) = (object + 1, Int(nodes[object].next))
        // A key sorts by its first eight bytes as one big-endian integer (zero
        // after its end), and by all its bytes only when those tie: most
        // comparisons are one of integers.
        typealias Key = (prefix: UInt64, node: Int)
        try withUnsafeTemporaryAllocation(of: Key.self, capacity: count) { (buffer: UnsafeMutableBufferPointer<Key>) throws(JSONError) in
            var keys = buffer
            var i = first
            for k in 0..<count {
                keys[k] = (keyPrefix(i), i)
                i = Int(nodes[i + 1].next)
            }
            keys.sort { $0.prefix != $1.prefix ? $0.prefix < $1.prefix : compareKeys($0.node, $1.node) < 0 }
            for k in 1..<count where keys[k - 1].prefix == keys[k].prefix && compareKeys(keys[k - 1].node, keys[k].node) == 0 {
                throw fail(.duplicateKey, "duplicate member \(quotedKey(keys[k].node))", at: Int(nodes[keys[k].node].start) - 1)
            }
            // Each member (its key node, then its value's subtree) moves as a
            // block; the `next` indices inside it move with it.
            withUnsafeTemporaryAllocation(of: Node.self, capacity: end - first) { moved in
                var to = 0
                for (_, k) in keys {
                    let stop = Int(nodes[k + 1].next)
                    let shift = Int32(first + to - k)
                    for j in k..<stop {
                        var n = nodes[j]
                        n.next += shift
                        moved.initializeElement(at: to, to: n)
                        to += 1
                    }
                }
                for j in 0..<to { nodes[first + j] = moved[j] }
            }
        }
    }

    /// The first eight bytes of a string node's decoded bytes, the first in
    /// the highest byte, zero after the end.
    func keyPrefix(_ node: Int) -> UInt64 {
        let n = nodes[node]
        var bytes: UInt64 = 0
        if n.flag {
            for (k, b) in decodedString(node).prefix(8).enumerated() { bytes |= UInt64(b) << (56 - 8 * k) }
        } else if Int(n.start) + 8 <= textCount {
            // One load; the bytes past the key's end masked off.
            let word = UInt64(bigEndian: UnsafeRawPointer(text + Int(n.start)).loadUnaligned(as: UInt64.self))
            let length = Int(n.end - n.start)
            return length >= 8 ? word : word & ~(UInt64.max >> (8 * length))
        } else {
            for k in 0..<min(8, Int(n.end - n.start)) { bytes |= UInt64(text[Int(n.start) + k]) << (56 - 8 * k) }
        }
        return bytes
    }

    func quotedKey(_ node: Int) -> String {
        JSONWriter.quotedForDisplay(String(decoding: decodedString(node), as: UTF8.self))
    }

    /// Compares two string nodes by their decoded bytes: <0, 0, >0.
    func compareKeys(_ a: Int, _ b: Int) -> Int { JSONTape.compareKeys(nodes[a], nodes[b], text) }

    static func compareKeys(_ na: Node, _ nb: Node, _ text: UnsafePointer<UInt8>) -> Int {
        if !na.flag && !nb.flag {
            return compareBytes(UnsafeBufferPointer(start: text + Int(na.start), count: Int(na.end - na.start)),
                                UnsafeBufferPointer(start: text + Int(nb.start), count: Int(nb.end - nb.start)))
        }
        let x = decodedString(na, text)
        let y = decodedString(nb, text)
        return x.withUnsafeBufferPointer { px in y.withUnsafeBufferPointer { py in compareBytes(px, py) } }
    }

    func array(_ p: UnsafeBufferPointer<UInt8>, depth: Int) throws(JSONError) {
        if depth > JSONTape.maxDepth { throw fail(.tooDeep, "nesting deeper than \(JSONTape.maxDepth) levels") }
        let me = nodes.count
        nodes.append(Node(kind: .array, flag: false, start: Int32(pos), end: 0, count: 0, next: 0, int: 0))
        pos += 1
        skipSpace(p)
        var count: Int32 = 0
        if pos < p.count, p[pos] == UInt8(ascii: "]") {
            pos += 1
        } else {
            while true {
                try value(p, depth: depth)
                count += 1
                skipSpace(p)
                guard pos < p.count else { throw fail(.syntax, "unexpected end of text in an array") }
                if p[pos] == UInt8(ascii: ",") {
                    pos += 1
                    skipSpace(p)
                    continue
                }
                if p[pos] == UInt8(ascii: "]") {
                    pos += 1
                    break
                }
                throw fail(.syntax, "expected ',' or ']' in an array")
            }
        }
        nodes[me].count = count
        nodes[me].next = Int32(nodes.count)
        nodes[me].end = Int32(pos)
    }

    func number(_ p: UnsafeBufferPointer<UInt8>) throws(JSONError) -> Int64 {
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

    func string(_ p: UnsafeBufferPointer<UInt8>) throws(JSONError) {
        // The position is kept in a local (not the tape's `pos`) while
        // scanning: this runs for every key and string value of every line.
        var i = pos &+ 1  // after the opening quote
        let start = i
        let n = p.count
        var escaped = false
        let base = UnsafeRawPointer(p.baseAddress!)
        while true {
            // Eight bytes at a time up to the first that needs a look: a
            // quote, a backslash, a control character, or a byte of a
            // multi-byte sequence. (Swift's SIMD16 compiled to eight times
            // the instructions here.)
            while i &+ 8 <= n {
                let m = JSONTape.specialBytes(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                if m != 0 {
                    i &+= m.trailingZeroBitCount >> 3
                    break
                }
                i &+= 8
            }
            guard i < n else { break }
            let c = base.load(fromByteOffset: i, as: UInt8.self)
            if c == UInt8(ascii: "\"") {
                nodes.append(Node(kind: .string, flag: escaped, start: Int32(start), end: Int32(i),
                                  count: 0, next: Int32(truncatingIfNeeded: nodes.count &+ 1), int: 0))
                pos = i &+ 1
                return
            }
            if c < 0x80 {
                if c == UInt8(ascii: "\\") {
                    escaped = true
                    pos = i
                    try escape(p)
                    i = pos
                    continue
                }
                if c < 0x20 {
                    pos = i
                    throw fail(.syntax, "unescaped control character in a string")
                }
                i &+= 1
            } else {
                pos = i
                try utf8Sequence(p)
                i = pos
            }
        }
        pos = i
        throw fail(.syntax, "unterminated string", at: start - 1)
    }

    /// A mask whose lowest set bit is in the first byte of `w` (little-endian)
    /// that is `"`, `\\`, below 0x20 or above 0x7F; 0 when there is none.
    /// (Bits above the first flagged byte may be false alarms; only the
    /// lowest is used.)
    @inline(__always)
    static func specialBytes(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func zeroBytes(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        let quote = zeroBytes(w ^ (ones &* 0x22))
        let backslash = zeroBytes(w ^ (ones &* 0x5C))
        let control = (w &- ones &* 0x20) & ~w & highs
        return quote | backslash | control | (w & highs)
    }

    /// Checks one escape at `pos` and steps over it.
    func escape(_ p: UnsafeBufferPointer<UInt8>) throws(JSONError) {
        let at = pos
        guard pos + 1 < p.count else { throw fail(.syntax, "unterminated escape") }
        let e = p[pos + 1]
        pos += 2
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "b"), UInt8(ascii: "t"), UInt8(ascii: "n"),
             UInt8(ascii: "f"), UInt8(ascii: "r"):
            return
        case UInt8(ascii: "/"):
            if canonical { throw fail(.notCanonical, "\\/ is not canonical", at: at) }
        case UInt8(ascii: "u"):
            let scalar = try hex4(p, lowercaseOnly: canonical)
            if canonical, scalar >= 0x20 || [0x08, 0x09, 0x0A, 0x0C, 0x0D].contains(scalar) {
                // Only control characters without a short escape are written as \u00xx.
                throw fail(.notCanonical, "\\u escape is not canonical here", at: at)
            }
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard pos + 1 < p.count, p[pos] == UInt8(ascii: "\\"), p[pos + 1] == UInt8(ascii: "u") else {
                    throw fail(.loneSurrogate, "lone surrogate in a string", at: at)
                }
                pos += 2
                let low = try hex4(p, lowercaseOnly: false)
                guard low >= 0xDC00 && low <= 0xDFFF else { throw fail(.loneSurrogate, "lone surrogate in a string", at: at) }
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw fail(.loneSurrogate, "lone surrogate in a string", at: at)
            }
        default:
            throw fail(.syntax, "invalid escape", at: at)
        }
    }

    func hex4(_ p: UnsafeBufferPointer<UInt8>, lowercaseOnly: Bool) throws(JSONError) -> UInt32 {
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

    /// Validates one multi-byte UTF-8 sequence at `pos` (Unicode, table 3-7)
    /// and steps over it.
    @inline(__always)
    func utf8Sequence(_ p: UnsafeBufferPointer<UInt8>) throws(JSONError) {
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
        var i = 2
        while i < n {
            guard p[pos + i] & 0xC0 == 0x80 else { throw fail(.invalidUTF8, "invalid UTF-8") }
            i += 1
        }
        pos += n
    }

    // MARK: Reading nodes

    /// The decoded UTF-8 bytes of a string node (escapes resolved).
    func decodedString(_ index: Int) -> [UInt8] { JSONTape.decodedString(nodes[index], text) }

    static func decodedString(_ n: Node, _ text: UnsafePointer<UInt8>) -> [UInt8] {
        let raw = UnsafeBufferPointer(start: text + Int(n.start), count: Int(n.end - n.start))
        return n.flag ? JSONTape.unescape(raw) : Array(raw)
    }

    /// Resolves the escapes of an already validated string's raw bytes.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 {
                let c = raw[at + k]
                v = v << 4 | UInt32(c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10)
            }
            return v
        }
        while i < raw.count {
            let c = raw[i]
            if c != UInt8(ascii: "\\") {
                out.append(c)
                i += 1
                continue
            }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "u"):
                var s = hex(i)
                i += 4
                if s >= 0xD800 && s <= 0xDBFF {
                    let low = hex(i + 2)
                    i += 6
                    s = 0x10000 + ((s - 0xD800) << 10) + (low - 0xDC00)
                }
                appendUTF8(s, to: &out)
            default: out.append(e)  // " \ /
            }
        }
        return out
    }

    static func appendUTF8(_ s: UInt32, to out: inout [UInt8]) {
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
}

@inline(__always)
func compareBytes(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Int {
    let n = min(x.count, y.count)
    if n > 0 {
        // Member names are short, and most comparisons are settled by the
        // first byte; then eight bytes at a time rather than a call to memcmp.
        let (a, b) = (UnsafeRawPointer(x.baseAddress!), UnsafeRawPointer(y.baseAddress!))
        let (a0, b0) = (a.load(as: UInt8.self), b.load(as: UInt8.self))
        if a0 != b0 { return a0 < b0 ? -1 : 1 }
        var i = 0
        while i + 8 <= n {
            let (u, v) = (a.loadUnaligned(fromByteOffset: i, as: UInt64.self), b.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            if u != v { return u.bigEndian < v.bigEndian ? -1 : 1 }
            i += 8
        }
        while i < n {
            let (u, v) = (a.load(fromByteOffset: i, as: UInt8.self), b.load(fromByteOffset: i, as: UInt8.self))
            if u != v { return u < v ? -1 : 1 }
            i += 1
        }
    }
    return x.count - y.count
}

/// One value in a ``JSONTape``: read it without building a tree.
///
/// A view is valid while its tape lives and until the tape's next `parse`;
/// it does not keep the tape alive (no reference counting on the hot path).
package struct JSONView {
    // The tape's buffers, not the tape: reading a view counts no references.
    let nodes: UnsafeMutablePointer<JSONTape.Node>
    let text: UnsafePointer<UInt8>
    let index: Int

    init(nodes: UnsafeMutablePointer<JSONTape.Node>, text: UnsafePointer<UInt8>, index: Int) {
        self.nodes = nodes
        self.text = text
        self.index = index
    }

    /// Another value of the same tape.
    @inline(__always)
    func at(_ i: Int) -> JSONView { JSONView(nodes: nodes, text: text, index: i) }

    var node: JSONTape.Node { nodes[index] }

    /// Bytes of the text.
    @inline(__always)
    func bytes(_ start: Int32, _ end: Int32) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: text + Int(start), count: Int(end - start))
    }

    package var kind: JSONTape.Kind { node.kind }

    package var kindName: String { kind.name }

    package var isNull: Bool { kind == .null }

    /// Where the value is in the text: a string's bytes between its quotes,
    /// an array or object from its opening to its closing bracket.
    package var byteRange: Range<Int>? {
        switch kind {
        case .string, .array, .object: Int(node.start)..<Int(node.end)
        default: nil
        }
    }
    package var int: Int64? { kind == .int ? node.int : nil }

    /// The string's text (made on demand).
    package var string: String? {
        guard kind == .string else { return nil }
        let n = node
        if n.flag { return String(decoding: JSONTape.decodedString(node, text), as: UTF8.self) }
        return String(decoding: bytes(n.start, n.end), as: UTF8.self)
    }

    /// The string's bytes where they are in the text, when it has no escapes
    /// (nil otherwise, or if not a string): valid as long as that text.
    package var unescapedUTF8: UnsafeBufferPointer<UInt8>? {
        guard kind == .string, !node.flag else { return nil }
        return bytes(node.start, node.end)
    }

    /// Calls `body` with the string's decoded UTF-8 bytes; nil if not a string.
    package func withUTF8<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R? {
        guard kind == .string else { return nil }
        let n = node
        if n.flag { return JSONTape.decodedString(node, text).withUnsafeBufferPointer(body) }
        return body(bytes(n.start, n.end))
    }

    /// Whether this is a string equal to `text`.
    package func equals(_ text: StaticString) -> Bool {
        equals(bytes: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Whether this is a string that sorts after `key` (byte order, as members are sorted).
    package func sortsAfter(_ key: StaticString) -> Bool {
        (compare(bytes: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)) ?? 0) > 0
    }

    package func equals(_ text: String) -> Bool {
        var t = text
        return t.withUTF8 { x in withUTF8 { compareBytes($0, x) == 0 } ?? false }
    }

    /// Elements of an array, or members' count of an object.
    package var count: Int { Int(node.count) }

    package var elements: [JSONView] {
        guard kind == .array else { return [] }
        var out: [JSONView] = []
        out.reserveCapacity(count)
        var i = index + 1
        for _ in 0..<count {
            out.append(at(i))
            i = Int(nodes[i].next)
        }
        return out
    }

    /// Calls `body` with each element of an array and its position (no array is made).
    package func forEachElement<E: Error>(_ body: (Int, JSONView) throws(E) -> Void) throws(E) {
        guard kind == .array else { return }
        var i = index + 1
        for k in 0..<count {
            try body(k, at(i))
            i = Int(nodes[i].next)
        }
    }

    /// The members (key, value) of an object, in text order (none for another kind).
    package var members: MemberSequence { MemberSequence(view: self) }

    package struct MemberSequence: Sequence {
        let view: JSONView

        package struct Iterator: IteratorProtocol {
            let view: JSONView
            var i: Int
            var left: Int

            @inline(__always)
            package mutating func next() -> (key: JSONView, value: JSONView)? {
                guard left > 0 else { return nil }
                left -= 1
                let member = (view.at(i), view.at(i + 1))
                i = Int(view.nodes[i + 1].next)
                return member
            }
        }

        package func makeIterator() -> Iterator {
            Iterator(view: view, i: view.index + 1, left: view.kind == .object ? view.count : 0)
        }
    }

    /// Calls `body` with each member (key, value) of an object, in text order.
    package func forEachMember(_ body: (JSONView, JSONView) throws -> Void) rethrows {
        guard kind == .object else { return }
        var i = index + 1
        for _ in 0..<count {
            let key = at(i)
            let value = at(i + 1)
            try body(key, value)
            i = Int(nodes[i + 1].next)
        }
    }

    /// The member named `key` of an object.
    package subscript(key: StaticString) -> JSONView? {
        guard kind == .object else { return nil }
        var i = index + 1
        for _ in 0..<count {
            if at(i).equals(key) { return at(i + 1) }
            i = Int(nodes[i + 1].next)
        }
        return nil
    }

    /// The last member of an object, when its key is `key` (in a canonical
    /// object, the member whose key sorts last): one comparison, not one per member.
    package func lastMember(named key: StaticString) -> JSONView? {
        guard kind == .object, count > 0 else { return nil }
        var i = index + 1
        for _ in 1..<count { i = Int(nodes[i + 1].next) }
        return at(i).equals(key) ? at(i + 1) : nil
    }

    /// The values of an object whose keys are exactly `keys`, in that order
    /// (a canonical object's members are sorted), passed to `body`; nil otherwise.
    package func members<R>(exactly keys: StaticTable<StaticString>, _ body: (UnsafeBufferPointer<JSONView>) -> R) -> R? {
        guard kind == .object, count == keys.count else { return nil }
        return withUnsafeTemporaryAllocation(of: JSONView.self, capacity: keys.count) { out -> R? in
            var i = index + 1
            for (n, k) in keys.enumerated() {
                guard at(i).equals(k) else { return nil }
                out.initializeElement(at: n, to: at(i + 1))
                i = Int(nodes[i + 1].next)
            }
            return body(UnsafeBufferPointer(out))
        }
    }

    /// The member named `key` of an object (a key known only at run time).
    package func member(named key: String) -> JSONView? {
        guard kind == .object else { return nil }
        var i = index + 1
        for _ in 0..<count {
            if at(i).equals(key) { return at(i + 1) }
            i = Int(nodes[i + 1].next)
        }
        return nil
    }

    /// Byte order of this string against `key`'s UTF-8: <0, 0, >0 (nil if not a string).
    package func compare(_ key: String) -> Int? {
        var k = key
        return k.withUTF8 { compare(bytes: $0) }
    }

    /// Byte order of this string against `key`: <0, 0, >0 (nil if not a string).
    package func compare(bytes key: UnsafeBufferPointer<UInt8>) -> Int? {
        guard kind == .string else { return nil }
        let n = node
        if !n.flag {
            return compareBytes(bytes(n.start, n.end), key)
        }
        return withUTF8 { compareBytes($0, key) }
    }

    /// Whether this is a string whose decoded bytes are `key`.
    package func equals(bytes key: UnsafeBufferPointer<UInt8>) -> Bool {
        guard kind == .string else { return false }
        let n = node
        if !n.flag {
            return Int(n.end - n.start) == key.count && compareBytes(bytes(n.start, n.end), key) == 0
        }
        return withUTF8 { compareBytes($0, key) == 0 } ?? false
    }

    /// The subtree as a ``JSONValue``.
    package var value: JSONValue {
        switch kind {
        case .null: return .null
        case .bool: return .bool(node.flag)
        case .int: return .int(node.int)
        case .string: return .string(string!)
        case .array: return .array(elements.map(\.value))
        case .object:
            var members: [JSONObject.Member] = []
            members.reserveCapacity(count)
            forEachMember { k, v in members.append(JSONObject.Member(key: k.string!, value: v.value)) }
            return .object(JSONObject(sortedUniqueMembers: members))  // sorted on the tape
        }
    }
}

extension JSONView {
    /// ``JSONObject/mergingTopLevel(_:)`` on parsed text, written as
    /// canonical JSON to `out`. Both objects' members are in key order on
    /// their tapes, so one merge of the two lists makes the result's order.
    /// False (nothing written) unless both are objects.
    package func mergingTopLevel(_ patch: JSONView, into out: inout ByteBuffer) -> Bool {
        guard kind == .object, patch.kind == .object else { return false }
        out.append(UInt8(ascii: "{"))
        var first = true
        func put(_ key: JSONView, _ value: JSONView) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            key.appendCanonical(to: &out)
            out.append(UInt8(ascii: ":"))
            value.appendCanonical(to: &out)
        }
        var (i, j) = (index + 1, patch.index + 1)
        var (left, right) = (count, patch.count)
        while left > 0 || right > 0 {
            // <0: this object's member comes first; >0: the patch's; 0: the patch's replaces it.
            let order = left == 0 ? 1 : right == 0 ? -1
                : (at(i).withUTF8 { patch.at(j).compare(bytes: $0).map { -$0 } } ?? nil) ?? 0
            if order < 0 {
                put(at(i), at(i + 1))
                (i, left) = (Int(nodes[i + 1].next), left - 1)
            } else {
                let value = patch.at(j + 1)
                if value.kind != .null { put(patch.at(j), value) }
                if order == 0 { (i, left) = (Int(nodes[i + 1].next), left - 1) }
                (j, right) = (Int(patch.nodes[j + 1].next), right - 1)
            }
        }
        out.append(UInt8(ascii: "}"))
        return true
    }

    /// Appends the canonical bytes of this value (members sorted, minimal
    /// escapes). An object's members are in key order on the tape already
    /// (``JSONTape/sortMembers(_:)``).
    package func appendCanonical(to out: inout ByteBuffer) {
        switch kind {
        case .null: out.append("null")
        case .bool: out.append(node.flag ? "true" : "false")
        case .int:
            let i = node.int
            out.append(atMost: JSONWriter.maxIntegerLength) { JSONWriter.writeInteger(i, to: $0) }
        case .string:
            let n = node
            if n.flag {
                var escaped: [UInt8] = []
                JSONTape.decodedString(node, text).withUnsafeBufferPointer { JSONWriter.appendString(utf8: $0, to: &escaped) }
                out.append(escaped)
            } else {
                // Unescaped JSON string bytes hold no quote, backslash or control
                // character: they are already canonical.
                let b = bytes(n.start, n.end)
                out.reserve(b.count + 2)
                out.append(UInt8(ascii: "\""))
                out.append(b)
                out.append(UInt8(ascii: "\""))
            }
        case .array:
            out.append(UInt8(ascii: "["))
            var i = index + 1
            for k in 0..<count {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                at(i).appendCanonical(to: &out)
                i = Int(nodes[i].next)
            }
            out.append(UInt8(ascii: "]"))
        case .object:
            out.append(UInt8(ascii: "{"))
            var i = index + 1
            for k in 0..<count {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                at(i).appendCanonical(to: &out)
                out.append(UInt8(ascii: ":"))
                at(i + 1).appendCanonical(to: &out)
                i = Int(nodes[i + 1].next)
            }
            out.append(UInt8(ascii: "}"))
        }
    }
}
