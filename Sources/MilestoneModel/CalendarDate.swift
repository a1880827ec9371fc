/// A proleptic Gregorian calendar date, `YYYY-MM-DD`, years 0001 to 9999.
public struct CalendarDate: Comparable, Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    /// Days since 1970-01-01 (negative before).
    public let days: Int32

    public init(days: Int32) { self.days = days }

    public init?(year: Int, month: Int, day: Int) {
        guard CalendarDate.isReal(year, month, day) else { return nil }
        days = Int32(CalendarDate.daysFromCivil(year, month, day))
    }

    /// The day counts of 0001-01-01 to 9999-12-31: every date a ledger can hold.
    public static let validDays = Int32(daysFromCivil(1, 1, 1))...Int32(daysFromCivil(9999, 12, 31))

    /// A day of the proleptic Gregorian calendar in years 0001–9999.
    static func isReal(_ year: Int, _ month: Int, _ day: Int) -> Bool {
        (1...9999).contains(year) && (1...12).contains(month) && day >= 1 && day <= daysIn(month: month, year: year)
    }

    /// Parses exactly `YYYY-MM-DD` naming a real date.
    public init?(_ text: String) {
        var t = text
        guard let (y, m, d) = t.withUTF8({ CalendarDate.fields($0) }) else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// Parses exactly `YYYY-MM-DD` from UTF-8 bytes.
    public init?(utf8 u: UnsafeBufferPointer<UInt8>) {
        guard let (y, m, d) = CalendarDate.fields(u) else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// Whether the bytes are exactly `YYYY-MM-DD` naming a real date (no day count is made).
    public static func isValid(utf8 u: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let (y, m, d) = fields(u) else { return false }
        return isReal(y, m, d)
    }

    static func fields(_ u: UnsafeBufferPointer<UInt8>) -> (Int, Int, Int)? {
        guard u.count == 10, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-") else { return nil }
        // Unrolled: this runs several times for every event a verify reads.
        let b = u.baseAddress!
        let (y0, y1, y2, y3) = (b[0] &- 0x30, b[1] &- 0x30, b[2] &- 0x30, b[3] &- 0x30)
        let (m0, m1, d0, d1) = (b[5] &- 0x30, b[6] &- 0x30, b[8] &- 0x30, b[9] &- 0x30)
        guard y0 < 10, y1 < 10, y2 < 10, y3 < 10, m0 < 10, m1 < 10, d0 < 10, d1 < 10 else { return nil }
        let y = Int(y0) * 1000 + Int(y1) * 100 + Int(y2) * 10 + Int(y3)
        return (y, Int(m0) * 10 + Int(m1), Int(d0) * 10 + Int(d1))
    }

    public static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    public var components: (year: Int, month: Int, day: Int) {
        let z = Int(days) + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    public var description: String {
        guard let iso = isoBytes else { return pad(components.year, 4) + "-" + pad(components.month, 2) + "-" + pad(components.day, 2) }
        return withUnsafeBytes(of: iso) { String(decoding: $0, as: UTF8.self) }
    }

    /// The ten bytes of `YYYY-MM-DD`; nil for years outside 0…9999, which no ledger holds.
    public var isoBytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)? {
        let (y, m, d) = components
        guard (0...9999).contains(y) else { return nil }
        let zero = UInt8(ascii: "0"), dash = UInt8(ascii: "-")
        let (c, yy) = (UInt8(truncatingIfNeeded: y / 100), UInt8(truncatingIfNeeded: y % 100))
        let (mm, dd) = (UInt8(truncatingIfNeeded: m), UInt8(truncatingIfNeeded: d))
        return (zero &+ c / 10, zero &+ c % 10, zero &+ yy / 10, zero &+ yy % 10, dash,
                zero &+ mm / 10, zero &+ mm % 10, dash, zero &+ dd / 10, zero &+ dd % 10)
    }

    public static func < (a: CalendarDate, b: CalendarDate) -> Bool { a.days < b.days }

    public func adding(days n: Int) -> CalendarDate { CalendarDate(days: days + Int32(n)) }

    /// Adds calendar months, clamping the day to the end of the month; nil past the years a ledger holds.
    public func adding(months n: Int) -> CalendarDate? {
        let (y, m, d) = components
        let total = y * 12 + (m - 1) + n
        let ny = total / 12
        let nm = total % 12 + 1
        guard (1...9999).contains(ny) else { return nil }
        return CalendarDate(year: ny, month: nm, day: min(d, CalendarDate.daysIn(month: nm, year: ny)))
    }
}

@inline(__always)
func pad(_ v: Int, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

/// A UTC instant at second precision, written `YYYY-MM-DDTHH:MM:SSZ` (the
/// `recorded_at` of a record: transaction time).
package struct Timestamp: Comparable, Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    /// Seconds since 1970-01-01T00:00:00Z.
    package let seconds: Int64

    package init(seconds: Int64) { self.seconds = seconds }

    /// Parses exactly the 20-character form.
    package init?(_ text: String) {
        var t = text
        guard let s = t.withUTF8({ Timestamp.seconds(utf8: $0) }) else { return nil }
        seconds = s
    }

    /// Parses exactly the 20-character form from UTF-8 bytes.
    package init?(utf8: UnsafeBufferPointer<UInt8>) {
        guard let s = Timestamp.seconds(utf8: utf8) else { return nil }
        seconds = s
    }

    static func seconds(utf8 u: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard let s = { () -> Int64? in
            guard u.count == 20, u[10] == UInt8(ascii: "T"), u[13] == UInt8(ascii: ":"), u[16] == UInt8(ascii: ":"),
                  u[19] == UInt8(ascii: "Z"),
                  let (y, mo, d) = CalendarDate.fields(UnsafeBufferPointer(rebasing: u[0..<10])),
                  let date = CalendarDate(year: y, month: mo, day: d)
            else { return nil }
            func num(_ i: Int) -> Int? {
                guard u[i] >= 0x30 && u[i] <= 0x39 && u[i + 1] >= 0x30 && u[i + 1] <= 0x39 else { return nil }
                return Int(u[i] - 0x30) * 10 + Int(u[i + 1] - 0x30)
            }
            guard let h = num(11), let m = num(14), let s = num(17), h < 24, m < 60, s < 60 else { return nil }
            return Int64(date.days) * 86400 + Int64(h * 3600 + m * 60 + s)
        }() else { return nil }
        return s
    }

    package var date: CalendarDate {
        CalendarDate(days: Int32((seconds >= 0 ? seconds : seconds - 86399) / 86400))
    }

    package var description: String {
        let d = date
        let rem = Int(seconds - Int64(d.days) * 86400)
        return d.description + "T" + pad(rem / 3600, 2) + ":" + pad(rem / 60 % 60, 2) + ":" + pad(rem % 60, 2) + "Z"
    }

    /// The last second of a day: what `--known-at DATE` means.
    package static func endOfDay(_ d: CalendarDate) -> Timestamp {
        Timestamp(seconds: Int64(d.days) * 86400 + 86399)
    }

    package static func < (a: Timestamp, b: Timestamp) -> Bool { a.seconds < b.seconds }


}

/// A date as people write it when they know only part of it: `2025`,
/// `2025-Q3`, `2025-09` or `2025-09-14` — the interval it covers and the
/// precision that says so (docs/events.md, "Dates as intervals").
package struct PartialDate: Sendable, Equatable {
    package let start: CalendarDate
    package let precision: DatePrecision
    package var end: CalendarDate { start.end(at: precision) }

    package init(start: CalendarDate, precision: DatePrecision) {
        self.start = start
        self.precision = precision
    }

    package init?(_ text: String) {
        if let d = CalendarDate(text) {
            self.init(start: d, precision: .day)
            return
        }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        // Digits only: Int() would take a sign ("+025").
        func digits(_ p: Substring) -> Bool { p.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        guard let first = parts.first, first.count == 4, digits(first), let year = Int(first), year >= 1 else { return nil }
        switch parts.count {
        case 1:
            self.init(start: CalendarDate(year: year, month: 1, day: 1)!, precision: .year)
        case 2 where parts[1].count == 2 && parts[1].first == "Q":
            guard digits(parts[1].dropFirst()), let q = Int(parts[1].dropFirst()), (1...4).contains(q) else { return nil }
            self.init(start: CalendarDate(year: year, month: 3 * q - 2, day: 1)!, precision: .quarter)
        case 2 where parts[1].count == 2:
            guard digits(parts[1]), let m = Int(parts[1]), (1...12).contains(m) else { return nil }
            self.init(start: CalendarDate(year: year, month: m, day: 1)!, precision: .month)
        default:
            return nil
        }
    }
}
