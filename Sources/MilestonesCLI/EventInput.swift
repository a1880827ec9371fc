import CanonicalJSON
import Foundation
import MilestoneLedger
import MilestoneModel
import SwiftCSV

/// An event given as flat fields named by their paths in the event
/// (`date`, `location.city`, `due.latest`, `amount.value`, `source.url`…):
/// the one conversion that `record`'s options and a CSV file's columns both
/// go through, so that `2025-Q3`, `$761M` and the rest mean the same in both
/// (docs/cli.md, "record"). What it builds is then validated like any event.
enum FlatEvent {
    struct Problem: Error {
        let path: String
        let message: String
    }

    static let textPaths: Set<String> = ["type", "id", "subject", "summary", "name", "sponsor", "operator", "kind", "program", "product",
                                         "milestone", "reason", "corrects", "retracts", "precision"]
    static let integerPaths: Set<String> = ["area_sqft", "quantity"]
    static let sourceFields: Set<String> = ["publisher", "url", "published", "title"]

    /// The paths a CSV header may name, for messages.
    static let described = "type, id, date, precision, subject, summary, name, sponsor, operator, kind, program, partners, area_sqft, "
        + "product, milestone, quantity, reason, corrects, retracts, changes, horizon, location.city|region|country, due.earliest|latest, "
        + "amount (or amount.value, amount.currency, amount.qualifier), source.publisher|url|published|title (source2.…, source3.… for more)"

    /// Builds the event; empty values are left out. `sources` come first, then any `source.*` columns.
    static func build(_ cells: [(path: String, value: String)], sources: [JSONObject] = []) throws(Problem) -> JSONObject {
        var o = JSONObject()
        var location = JSONObject(), due = JSONObject(), amount = JSONObject()
        var numbered: [Int: JSONObject] = [:]
        var partners: [JSONValue] = []
        var symbolCurrency: String?
        var partial: PartialDate?
        for (path, raw) in cells {
            let value = raw.trimmingCharacters(in: .whitespaces)
            if value.isEmpty { continue }
            let parts = path.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            switch parts[0] {
            case _ where parts.count == 1 && textPaths.contains(path):
                o[path] = .string(value)
            case "date" where parts.count == 1:
                // Anything else goes through as written: the validator names what is wrong with it.
                partial = PartialDate(value)
                o["date"] = .string(partial?.start.description ?? value)
            case "horizon" where parts.count == 1:
                o["horizon"] = .string(PartialDate(value)?.end.description ?? value)
            case _ where parts.count == 1 && integerPaths.contains(path):
                guard let n = Int64(value) else { throw Problem(path: path, message: "\(quoted(value)) is not a whole number") }
                o[path] = .int(n)
            case "partners" where parts.count == 1, "partner" where parts.count == 1:
                partners += value.split(separator: ";").map { .string($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 != .string("") }
            case "changes" where parts.count == 1:
                guard let v = try? JSONReader.parse(value), v.objectValue != nil else { throw Problem(path: path, message: "must be a JSON object") }
                o["changes"] = v
            case "amount" where parts.count == 1, "amount" where parts.count == 2 && parts[1] == "value":
                guard let (v, symbol) = AmountText.parse(value) else {
                    throw Problem(path: path, message: "\(quoted(value)) is not an amount in whole units (500000000, 500M, 1.2B, $761M)")
                }
                amount["value"] = .int(v)
                symbolCurrency = symbol
            case "amount" where parts.count == 2 && (parts[1] == "currency" || parts[1] == "qualifier"):
                amount[parts[1]] = .string(value)
            case "location" where parts.count == 2 && ["city", "region", "country"].contains(parts[1]):
                location[parts[1]] = .string(value)
            case "due" where parts.count == 2 && (parts[1] == "earliest" || parts[1] == "latest"):
                // A partial date stands for its period: the window opens on its first day and closes on its last.
                let p = PartialDate(value)
                due[parts[1]] = .string((parts[1] == "earliest" ? p?.start : p?.end)?.description ?? value)
            case let s where s.hasPrefix("source") && parts.count == 2 && sourceFields.contains(parts[1]):
                guard let n = s == "source" ? 1 : Int(s.dropFirst(6)), n >= 1 else { throw Problem(path: path, message: "unknown column (\(described))") }
                numbered[n, default: JSONObject()][parts[1]] = .string(value)
            default:
                throw Problem(path: path, message: "unknown column (\(described))")
            }
        }
        if let partial, partial.precision != .day {
            if let given = o["precision"]?.stringValue, given != partial.precision.rawValue {
                throw Problem(path: "precision", message: "\(quoted(given)) disagrees with the date, whose precision is \(partial.precision.rawValue)")
            }
            o["precision"] = .string(partial.precision.rawValue)
        }
        if !location.members.isEmpty { o["location"] = .object(location) }
        if !due.members.isEmpty { o["due"] = .object(due) }
        if !amount.members.isEmpty {
            if amount["currency"] == nil { amount["currency"] = .string(symbolCurrency ?? "USD") }
            o["amount"] = .object(amount)
        }
        if !partners.isEmpty { o["partners"] = .array(partners) }
        let all = sources + numbered.keys.sorted().map { numbered[$0]! }
        if !all.isEmpty { o["sources"] = .array(all.map { .object($0) }) }
        return o
    }
}

/// A CSV export of a spreadsheet tracker (`record --file events.csv`): a
/// header of field paths, one event a row, parsed by SwiftCSV. Each row's
/// problems name its line in the file (a quoted field may span lines) and
/// the column.
enum CSVInput {
    static func add(_ path: String, to batch: AppendBatch) throws {
        let name = (path as NSString).lastPathComponent == path ? path : path
        guard let data = FileManager.default.contents(atPath: path) else {
            if !FileManager.default.fileExists(atPath: path) { throw LedgerError.missing(path: path) }
            throw LedgerError.io(path: path, operation: "read", errno: EIO)
        }
        guard let text = String(data: data, encoding: .utf8) else { throw InputError(problems: ["\(path): not UTF-8 text"]) }
        let csv: CSV<Enumerated>
        do {
            csv = try CSV<Enumerated>(string: text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text, delimiter: .comma, loadColumns: false)
        } catch {
            throw InputError(problems: ["\(path): not CSV: \(error)"])
        }
        let header = csv.header.map { $0.trimmingCharacters(in: .whitespaces) }
        var line = 2 + header.reduce(0) { $0 + $1.filter(\.isNewline).count }
        var rows = 0
        for padded in csv.rows {
            defer { line += 1 + padded.reduce(0) { $0 + $1.filter(\.isNewline).count } }
            if padded.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            rows += 1
            // SwiftCSV pads every row to the longest: only cells with something in them count past the header.
            var row = padded
            while row.count > header.count, row.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { row.removeLast() }
            guard row.count <= header.count else {
                batch.reject(line: line, source: name, "\(row.count) cells but the header names \(header.count) columns; name every column in the header, or remove the extra cells")
                continue
            }
            do {
                batch.add(.object(try FlatEvent.build(Array(zip(header, row)).map { (path: $0.0, value: $0.1) })), line: line, source: name)
            } catch {
                let column = error.path.isEmpty ? "\"\" (column \((header.firstIndex(of: "") ?? 0) + 1))" : error.path
                batch.reject(line: line, source: name, "column \(column): \(error.message)")
            }
        }
        if rows == 0 { throw InputError(problems: ["\(path): no events (a header line of field paths, then one event a row)"]) }
    }
}
