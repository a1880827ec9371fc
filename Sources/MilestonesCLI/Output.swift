import ArgumentParser
import CanonicalJSON
import MilestoneModel

/// Output formats of the query commands.
enum QueryFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, csv

    /// Table on a terminal, JSON for scripts.
    static var automatic: QueryFormat { isTerminal(1) ? .table : .json }
}

/// Rows with named columns, written as an aligned table, JSON or CSV.
struct Rows {
    var columns: [String]
    var rows: [[JSONValue]]
    /// How a cell reads in a table, when not its plain value (e.g. "$500B").
    var display: [[String?]] = []

    func write(_ format: QueryFormat, title: String? = nil) {
        switch format {
        case .json:
            let objects: [JSONValue] = rows.map { r in
                var o = JSONObject()
                for (c, v) in zip(columns, r) { o[c] = v }
                return .object(o)
            }
            writeStdout(JSONWriter.string(.array(objects)) + "\n")
        case .csv:
            var out = columns.map(csvField).joined(separator: ",") + "\r\n"
            for r in rows { out += r.map { csvField(plain($0)) }.joined(separator: ",") + "\r\n" }
            writeStdout(out)
        case .table:
            writeStdout(table(title: title))
        }
    }

    func plain(_ v: JSONValue) -> String {
        switch v {
        case .null: ""
        case .string(let s): s
        case .int(let i): String(i)
        case .bool(let b): b ? "true" : "false"
        default: JSONWriter.string(v)
        }
    }

    func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            ? "\"" + s.replacingAll("\"", with: "\"\"") + "\"" : s
    }

    /// An aligned table that fits an 80-column terminal: the widest text
    /// columns are cut (with …) until it does.
    func table(title: String?, width: Int = 80) -> String {
        var cells: [[String]] = rows.enumerated().map { (i, r) in
            r.enumerated().map { (j, v) in
                let d = i < display.count && j < display[i].count ? display[i][j] : nil
                return safe(d ?? (v == .null ? "–" : plain(v)))
            }
        }
        let header = columns.map { $0.replacingAll("_", with: " ") }
        var widths = header.indices.map { j in max(header[j].count, cells.map { $0[j].count }.max() ?? 0) }
        while widths.reduce(0, +) + 2 * (widths.count - 1) > width, let j = widths.indices.max(by: { widths[$0] < widths[$1] }),
              widths[j] > 8 {
            widths[j] -= 1
        }
        func fit(_ s: String, _ w: Int) -> String {
            s.count <= w ? s + String(repeating: " ", count: w - s.count) : String(s.prefix(w - 1)) + "…"
        }
        cells = cells.map { r in r.enumerated().map { fit($1, widths[$0]) } }
        var out = title.map { $0 + "\n" } ?? ""
        out += header.enumerated().map { fit($1, widths[$0]) }.joined(separator: "  ").trimmedRight() + "\n"
        out += widths.map { String(repeating: "─", count: $0) }.joined(separator: "  ") + "\n"
        for r in cells { out += r.joined(separator: "  ").trimmedRight() + "\n" }
        if rows.isEmpty { out += "(none)\n" }
        return out
    }

    /// Text fit for a terminal: newlines and tabs as spaces, control characters escaped.
    func safe(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.flatMap { u -> [Unicode.Scalar] in
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

func jsonDate(_ d: CalendarDate?) -> JSONValue { d.map { .string($0.description) } ?? .null }
func jsonInt(_ i: Int?) -> JSONValue { i.map { .int(Int64($0)) } ?? .null }
func jsonString(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
