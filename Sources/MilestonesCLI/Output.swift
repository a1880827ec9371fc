import ArgumentParser
import CanonicalJSON
import Glibc
import MilestoneModel

/// Output formats of the query commands.
enum QueryFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, csv

    /// A table, piped or not (docs/cli.md, "Output"): scripts ask for `--format json` or `csv`.
    static var automatic: QueryFormat { .table }
}

/// A growable byte buffer for large outputs (tens of MB of JSON or CSV):
/// plain stores into memory it owns, without an array's checks on every byte.
///
/// At least `slack` bytes past `count` are always allocated,
/// so short copies move whole eight-byte words, reading and writing a little
/// past their ends.
final class ByteOutput {
    private var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int
    static let slack = 40

    /// The buffer is malloc'd and grown by realloc, not zeroed: a large one
    /// grows in place or by remapping its pages (no copy, no memset), and
    /// bytes past `count` are only ever read as padding, never used.
    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = ByteOutput.allocate(self.capacity, from: nil)
    }

    deinit {
        free(base)
        dateDays.deallocate()
        dateText.deallocate()
    }

    private static func allocate(_ n: Int, from old: UnsafeMutablePointer<UInt8>?) -> UnsafeMutablePointer<UInt8> {
        guard let p = realloc(old, n) else { fatalError("out of memory for \(n) bytes of output") }
        return p.assumingMemoryBound(to: UInt8.self)
    }

    @inline(__always)
    private func reserve(_ n: Int) {
        guard count + n + ByteOutput.slack > capacity else { return }
        capacity = max(capacity * 2, count + n + ByteOutput.slack)
        base = ByteOutput.allocate(capacity, from: base)
    }

    @inline(__always)
    func append(_ b: UInt8) {
        reserve(1)
        base[count] = b
        count += 1
    }

    /// Fixed text (`null`, a line end): copied, no array made.
    func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        if let p = bytes.baseAddress { (base + count).update(from: p.assumingMemoryBound(to: UInt8.self), count: bytes.count) }
        count += bytes.count
    }

    /// A JSON string: copied as it is unless it needs escapes, which JSONWriter writes.
    func appendJSONString(_ s: String) {
        var s = s
        s.withUTF8 { appendJSONString($0) }
    }

    func appendJSONString(_ b: UnsafeBufferPointer<UInt8>) {
        if JSONWriter.needsEscape(b) {
            var escaped: [UInt8] = []
            JSONWriter.appendString(utf8: b, to: &escaped)
            escaped.withUnsafeBytes { append($0) }
        } else {
            reserve(b.count + 2)
            base[count] = UInt8(ascii: "\"")
            if let p = b.baseAddress { (base + count + 1).update(from: p, count: b.count) }
            base[count + 1 + b.count] = UInt8(ascii: "\"")
            count += b.count + 2
        }
    }

    /// An integer in decimal: the canonical writer's own digits.
    func appendInteger(_ i: Int64) {
        reserve(JSONWriter.maxIntegerLength)
        count += JSONWriter.writeInteger(i, to: base + count)
    }

    /// What it holds.
    var bytes: UnsafePointer<UInt8> { UnsafePointer(base) }

    /// A few bytes (a key, a value) from a buffer with at least eight readable
    /// bytes past them (another ByteOutput's, or padded): copied in whole
    /// eight-byte words, without a call to memcpy; the bytes written past the
    /// end are in the slack, and `count` moves by `n` only.
    @inline(__always)
    func appendSmall(_ p: UnsafePointer<UInt8>, _ n: Int) {
        guard n <= 32 else { return append(UnsafeRawBufferPointer(start: p, count: n)) }
        reserve(n)
        let to = UnsafeMutableRawPointer(base + count), from = UnsafeRawPointer(p)
        var i = 0
        while i < n {
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        count += n
    }

    func removeAll() { count = 0 }

    /// A CSV field, quoted when it holds a comma, quote or line break.
    func appendCSVField(_ s: String) {
        var s = s
        s.withUTF8 { appendCSVField($0) }
    }

    func appendCSVField(_ b: UnsafeBufferPointer<UInt8>) {
        guard b.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }) else {
            return append(UnsafeRawBufferPointer(b))
        }
        append(UInt8(ascii: "\""))
        for c in b {
            if c == UInt8(ascii: "\"") { append(c) }
            append(c)
        }
        append(UInt8(ascii: "\""))
    }

    /// `YYYY-MM-DD`; the text of recent dates is kept by day (a few thousand
    /// distinct dates come back again and again in a large listing).
    func appendDate(_ d: CalendarDate) {
        let slot = Int(UInt32(bitPattern: d.days) & 4095)
        if dateDays[slot] != d.days || d.days == Int32.min {
            guard let iso = d.isoBytes else { return d.description.utf8.forEach { append($0) } }
            dateDays[slot] = d.days
            withUnsafeBytes(of: iso) { UnsafeMutableRawPointer(dateText + slot * 10).copyMemory(from: $0.baseAddress!, byteCount: 10) }
        }
        appendSmall(dateText + slot * 10, 10)  // the text has 8 readable bytes past it (the next slot, or the padding)
    }

    private let dateDays: UnsafeMutablePointer<Int32> = {
        let p = UnsafeMutablePointer<Int32>.allocate(capacity: 4096)
        p.initialize(repeating: Int32.min, count: 4096)
        return p
    }()
    private let dateText: UnsafeMutablePointer<UInt8> = {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 4096 * 10 + 8)
        p.initialize(repeating: 0, count: 4096 * 10 + 8)
        return p
    }()

    /// Writes what it holds from byte `from` on, and keeps it.
    func write(fd: Int32, from: Int) {
        writeAll(fd: fd, bytes: UnsafeBufferPointer(start: base + from, count: count - from))
    }

    /// Writes what it holds and empties.
    func flush(fd: Int32) {
        writeAll(fd: fd, bytes: UnsafeBufferPointer(start: base, count: count))
        count = 0
    }
}

/// Rows written as JSON (an array of objects keyed by the column names, in
/// canonical form) or CSV (RFC 4180: a header line, CRLF line ends, fields
/// quoted when they hold a comma, quote or line break) as they come, to
/// stdout in pieces of about 1 MiB: tens of thousands of rows never sit in
/// memory, and a row is never an array.
///
/// A row is given as its cell by column index, asked for in the order the
/// format writes them: JSON wants the members in key order, CSV the columns
/// in order; so each value is written once, where it goes.
struct RowStream {
    let format: QueryFormat
    let columns: Int
    /// JSON: the columns in the members' order, and what goes before each
    /// member (`{"key":` for the first, `,"key":` for the others), all in
    /// `keys`, member m's from `keyStarts[m]` to `keyStarts[m + 1]`.
    let order: [Int]
    let keys: [UInt8]
    let keyStarts: [Int]
    let out = ByteOutput(capacity: (1 << 20) + 4096)
    var count = 0
    /// Where the rows go; -1: kept in memory until appended to another stream.
    let fd: Int32
    /// Rows that follow another stream's: no CSV header, and every JSON row,
    /// the first too, after a comma.
    let continuing: Bool

    init(columns: [String], format: QueryFormat, fd: Int32 = 1, continuing: Bool = false) {
        precondition(format != .table)
        self.format = format
        self.fd = fd
        self.continuing = continuing
        self.columns = columns.count
        let order = columns.indices.sorted { columns[$0].utf16.lexicographicallyPrecedes(columns[$1].utf16) }
        self.order = order
        var keys: [UInt8] = []
        var keyStarts: [Int] = []
        for (m, j) in order.enumerated() {
            keyStarts.append(keys.count)
            keys.append(m == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
            JSONWriter.appendString(columns[j], to: &keys)
            keys.append(UInt8(ascii: ":"))
        }
        keyStarts.append(keys.count)
        keys += [UInt8](repeating: 0, count: 8)  // readable past the last key (appendSmall)
        (self.keys, self.keyStarts) = (keys, keyStarts)
        if format == .csv, !continuing {
            for (k, c) in columns.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                out.appendCSVField(c)
            }
            out.append("\r\n")
        }
    }

    mutating func add(_ r: [Cell]) {
        add { r[$0] }
    }

    /// One row: `cell(j)` is its value in column j (asked once for each column).
    @inline(__always)
    mutating func add(_ cell: (Int) -> Cell) {
        if format == .json {
            out.append(count == 0 && !continuing ? UInt8(ascii: "[") : UInt8(ascii: ","))
            order.withUnsafeBufferPointer { order in
                keys.withUnsafeBufferPointer { keys in
                    keyStarts.withUnsafeBufferPointer { starts in
                        for m in 0..<order.count {
                            out.appendSmall(keys.baseAddress! + starts[m], starts[m + 1] - starts[m])
                            writeJSON(cell(order[m]))
                        }
                    }
                }
            }
            out.append(UInt8(ascii: "}"))
        } else {
            for j in 0..<columns {
                if j > 0 { out.append(UInt8(ascii: ",")) }
                writeCSV(cell(j))
            }
            out.append("\r\n")
        }
        count += 1
        if out.count >= 1 << 20, fd >= 0 { out.flush(fd: fd) }
    }

    private func writeJSON(_ c: Cell) {
        switch c {
        case .null: out.append("null")
        case .string(let s): out.appendJSONString(s)
        case .utf8(let b): out.appendJSONString(b)
        case .int(let i): out.appendInteger(i)
        case .date(let d):
            out.append(UInt8(ascii: "\""))
            out.appendDate(d)
            out.append(UInt8(ascii: "\""))
        }
    }

    private func writeCSV(_ c: Cell) {
        switch c {
        case .null: break
        case .string(let s): out.appendCSVField(s)
        case .utf8(let b): out.appendCSVField(b)
        case .int(let i): out.appendInteger(i)
        case .date(let d): out.appendDate(d)
        }
    }

    /// Ends the output, after the rows of `next` (a stream made with
    /// `continuing`, kept in memory) when given: they are written as they are,
    /// not copied.
    func finish(followedBy next: RowStream? = nil) {
        var total = count
        if let next, next.count > 0 {
            precondition(next.continuing && next.fd < 0)
            // Its first row's comma opens the array when these rows are none.
            let skip = format == .json && count == 0 ? 1 : 0
            if skip == 1 { out.append(UInt8(ascii: "[")) }
            out.flush(fd: fd)
            next.out.write(fd: fd, from: skip)
            total += next.count
        }
        if format == .json {
            if total == 0 { out.append(UInt8(ascii: "[")) }
            out.append("]\n")
        }
        out.flush(fd: fd)
    }
}

/// One cell of a result row.
enum Cell {
    case null
    case string(String)
    /// Text as UTF-8 bytes that stay valid until the cell is written (a summary scan's row).
    case utf8(UnsafeBufferPointer<UInt8>)
    case int(Int64)
    case date(CalendarDate)

    /// The cell with its text in a String of its own (bytes last only for the call that gave them).
    var owned: Cell {
        if case .utf8(let b) = self { return .string(String(decoding: b, as: UTF8.self)) }
        return self
    }

    init(_ s: String?) { self = s.map { .string($0) } ?? .null }
    init(_ i: Int?) { self = i.map { .int(Int64($0)) } ?? .null }
    init(_ d: CalendarDate?) { self = d.map { .date($0) } ?? .null }
    /// A string or integer member of a JSON object (an amount's value, currency, qualifier).
    init(_ v: JSONValue?) {
        switch v {
        case .string(let s): self = .string(s)
        case .int(let i): self = .int(i)
        default: self = .null
        }
    }
}

/// Rows with named columns, written as an aligned table, JSON or CSV.
struct Rows {
    var columns: [String]
    var rows: [[Cell]]
    /// How a cell reads in a table, when not its plain value (e.g. "$500B").
    var display: [[String?]] = []

    func write(_ format: QueryFormat, title: String? = nil) {
        guard format != .table else { return writeStdout(table(title: title, width: terminalWidth(), colour: useColour())) }
        var stream = RowStream(columns: columns, format: format)
        for r in rows { stream.add(r) }
        stream.finish()
    }

    func plain(_ v: Cell) -> String {
        switch v {
        case .null: ""
        case .string(let s): s
        case .int(let i): String(i)
        case .date(let d): d.description
        case .utf8(let b): String(decoding: b, as: UTF8.self)
        }
    }

    /// An aligned table that fits `width` terminal columns: the widest text
    /// columns are cut (with …) until it does; `Int.max`: never cut. Widths
    /// are display widths (an East Asian wide character takes two columns).
    /// With `colour`, the states that need attention are coloured.
    func table(title: String?, width: Int = 80, colour: Bool = false) -> String {
        var cells: [[String]] = rows.enumerated().map { (i, r) in
            r.enumerated().map { (j, v) in
                let d = i < display.count && j < display[i].count ? display[i][j] : nil
                if case .null = v, d == nil { return "–" }
                return safe(d ?? plain(v))
            }
        }
        let header = columns.map { $0.replacingAll("_", with: " ") }
        var widths = header.indices.map { j in max(displayWidth(header[j]), cells.map { displayWidth($0[j]) }.max() ?? 0) }
        // Dates and numbers are never cut (a cut date misleads); text columns give way, widest first.
        let fixed = columns.indices.map { j in
            rows.contains { r in
                switch r[j] {
                case .date, .int: true
                default: false
                }
            }
        }
        while widths.reduce(0, +) + 2 * (widths.count - 1) > width,
              let j = widths.indices.filter({ !fixed[$0] }).max(by: { widths[$0] < widths[$1] }), widths[j] > 8 {
            widths[j] -= 1
        }
        func fit(_ s: String, _ w: Int) -> String {
            let n = displayWidth(s)
            if n <= w { return s + String(repeating: " ", count: w - n) }
            // Cut to w - 1 columns, then the ellipsis (and a space if a wide character did not fit).
            var out = ""
            var used = 0
            for ch in s {
                let cw = displayWidth(String(ch))
                if used + cw > w - 1 { break }
                out.append(ch)
                used += cw
            }
            return out + "…" + String(repeating: " ", count: w - 1 - used)
        }
        cells = cells.map { r in r.enumerated().map { fit($1, widths[$0]) } }
        var out = title.map { $0 + "\n" } ?? ""
        out += header.enumerated().map { fit($1, widths[$0]) }.joined(separator: "  ").trimmedRight() + "\n"
        out += widths.map { String(repeating: "─", count: $0) }.joined(separator: "  ") + "\n"
        for r in cells {
            let line = r.map { c -> String in
                guard colour, let code = Rows.colours[c.trimmedRight()] else { return c }
                return "\u{1B}[\(code)m" + c.trimmedRight() + "\u{1B}[0m" + String(repeating: " ", count: c.count - c.trimmedRight().count)
            }
            out += line.joined(separator: "  ").trimmedRight() + "\n"
        }
        if rows.isEmpty { out += "(none)\n" }
        return out
    }

    /// ANSI colours of the states that need attention (on a terminal only).
    static let colours: [String: String] = ["overdue": "31", "missed": "31", "undetermined": "33", "cancelled": "31", "paused": "33"]

    /// Text fit for a terminal: newlines and tabs as spaces, control characters escaped.
    func safe(_ s: String) -> String {
        // Most text has nothing to replace: a scan of its scalars, no new string.
        guard s.unicodeScalars.contains(where: { $0.value < 0x20 || ($0.value >= 0x7F && $0.value < 0xA0) }) else { return s }
        return String(String.UnicodeScalarView(s.unicodeScalars.flatMap { u -> [Unicode.Scalar] in
            if u == "\n" || u == "\t" { return [" "] }
            if u.value < 0x20 || (u.value >= 0x7F && u.value < 0xA0) { return Array("\\u{\(String(u.value, radix: 16))}".unicodeScalars) }
            return [u]
        }))
    }
}

extension String {
    func replacingAll(_ a: String, with b: String) -> String {
        split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b)
    }

    func trimmedRight() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// An amount as people read it: "up to $500B", "≈ €2.5M", "¥ 61B".
func humanAmount(_ a: JSONObject?) -> String? {
    guard let a, let value = a["value"]?.intValue, let currency = a["currency"]?.stringValue else { return nil }
    let symbol = ["USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "CN¥", "TWD": "NT$", "KRW": "₩", "INR": "₹"][currency] ?? currency + " "
    let units: [(Int64, String)] = [(1_000_000_000_000, "T"), (1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")]
    var text = String(value)
    for (size, suffix) in units where value >= size {
        let whole = value / size
        let tenth = (value % size) * 10 / size
        text = tenth == 0 ? "\(whole)\(suffix)" : "\(whole).\(tenth)\(suffix)"
        break
    }
    let prefix = ["about": "≈", "up_to": "up to ", "at_least": "≥"][a["qualifier"]?.stringValue ?? "exact"] ?? ""
    return prefix + symbol + text
}


/// `--wide`: tables are never cut, on a terminal too (set once, by the command line).
nonisolated(unsafe) var wideTables = false

/// The width a table may take: the terminal's on a terminal (`COLUMNS`
/// overrides it), else unlimited: a table piped to a file or a program is never cut.
func terminalWidth() -> Int {
    guard isTerminal(1), !wideTables else { return .max }
    if let c = getenv("COLUMNS").flatMap({ Int(String(cString: $0)) }), c > 0 { return c }
    var size = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    return 80
}

/// Colour on a terminal only, and never when `NO_COLOR` is set (no-color.org).
func useColour() -> Bool {
    isTerminal(1) && (getenv("NO_COLOR").map { String(cString: $0).isEmpty } ?? true)
}

/// Columns a text takes on a terminal: East Asian wide and fullwidth
/// characters two, combining marks and zero-width characters none.
func displayWidth(_ s: String) -> Int {
    var n = 0
    for u in s.unicodeScalars {
        let v = u.value
        switch v {
        case 0x0300...0x036F, 0x200B...0x200F, 0xFE00...0xFE0F, 0x20D0...0x20FF: continue
        case 0x1100...0x115F, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xA000...0xA4CF,
             0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
             0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD:
            n += 2
        default:
            n += 1
        }
    }
    return n
}
