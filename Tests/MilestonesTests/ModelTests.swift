import Testing
@testable import MilestoneModel

@Suite struct ModelTests {
    @Test("the packed id entry keeps every field, at the ends of the date range too")
    func packedEntry() {
        for type in EventType.allCases {
            for precision in DatePrecision.allCases {
                for date in [CalendarDate(year: 1, month: 1, day: 1)!, CalendarDate(year: 9999, month: 12, day: 31)!, CalendarDate("2025-04-14")!] {
                    for retracted in [false, true] {
                        var e = ReferenceIndex.IdEntry(type: type, subject: .max - 1, retracted: retracted, date: date, precision: precision)
                        #expect(e.type == type && e.precision == precision && e.date == date && e.retracted == retracted && e.subject == .max - 1)
                        e.retracted.toggle()
                        e.date = CalendarDate("2000-02-29")!
                        #expect(e.retracted != retracted && e.date == CalendarDate("2000-02-29")! && e.type == type)
                    }
                }
            }
        }
    }

    @Test("calendar dates: days round trip, leap years, real dates only")
    func dates() {
        var d = CalendarDate(year: 1, month: 1, day: 1)!
        while d < CalendarDate(year: 2401, month: 1, day: 1)! {
            #expect(CalendarDate(d.description) == d)
            d = d.adding(days: 13)
        }
        #expect(CalendarDate("2024-02-29") != nil)
        #expect(CalendarDate("2023-02-29") == nil)
        #expect(CalendarDate("1900-02-29") == nil)
        #expect(CalendarDate("2000-02-29") != nil)
        #expect(CalendarDate("2025-04-31") == nil)
        #expect(Timestamp("2025-04-14T23:59:59Z")?.description == "2025-04-14T23:59:59Z")
        #expect(Timestamp("2025-04-14T24:00:00Z") == nil)
        #expect(Timestamp.endOfDay(CalendarDate("2025-04-14")!).description == "2025-04-14T23:59:59Z")
    }
}
