import Foundation
import TestSupport
@testable import MilestoneLedger
import Testing

@Suite("record's spool: the events between the checking and the writing pass")
struct SpoolTests {
    /// Event `i`'s bytes: lengths from 1 to about 3,000, so pieces end mid-event.
    static func event(_ i: Int) -> [UInt8] {
        Array("{\"n\":\(i),\"pad\":\"".utf8) + [UInt8](repeating: UInt8(ascii: "a") + UInt8(i % 26), count: (i * 7919) % 3_000) + Array("\"}".utf8)
    }

    @Test("events past the buffer (in the temporary file) come back whole and in order, read in uneven pieces, and the file's pages are given back as they are read")
    func readBackGivesPagesBack() throws {
        let dir = TempDir()
        let spool = Spool(directory: dir.path)
        var expected: [UInt8] = []
        var i = 0
        while expected.count < 3 * Spool.bufferSize + 12_345 {
            let e = SpoolTests.event(i)
            let at = e.withUnsafeBytes { spool.append($0) }
            #expect(at == expected.count)
            expected += e + [0x0A]
            i += 1
        }
        // One read back for a content digest, from the file, as the checking pass does.
        let probe = SpoolTests.event(7)
        var firstPlace = 0
        for k in 0..<7 { firstPlace += SpoolTests.event(k).count + 1 }
        var back = [UInt8](repeating: 0, count: probe.count)
        #expect(back.withUnsafeMutableBytes { spool.read(at: firstPlace, count: probe.count, into: $0.baseAddress!) })
        #expect(back == probe)

        let reader = Spool.Reader(spool)
        let spilled = spool.allocatedBytes
        #expect(spilled >= 3 * Spool.bufferSize, "the whole spool in its file before reading back: \(spilled) bytes")
        var got: [UInt8] = []
        got.reserveCapacity(expected.count)
        var least = spilled
        var step = 0
        while let events = reader.available(), events.count > 0 {
            // Up to a varying number of whole events, as a piece of the ledger takes them.
            var used = 0, taken = 0
            while used < events.count, taken <= step % 97 {
                let lf = events[used...].firstIndex(of: 0x0A)!
                used = lf + 1
                taken += 1
            }
            got += events[..<used]
            reader.consume(used)
            least = min(least, spool.allocatedBytes)
            step += 1
        }
        #expect(spool.failure == nil)
        let same = got == expected
        #expect(same, "read back \(got.count) bytes of \(expected.count), not the same")
        #expect(spool.count == i)
        // Given back as read: at the end at most what the last read left (a buffer, a page).
        #expect(least <= Spool.bufferSize + 4096, "the file still holds \(least) of \(spilled) bytes after reading")
    }
}
