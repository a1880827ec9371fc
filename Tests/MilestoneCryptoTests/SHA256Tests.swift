import Foundation
import MilestoneCrypto
import Testing
import TestSupport

struct SHA256Vector: Decodable, Sendable, CustomTestStringConvertible {
    var message: String?
    var repeat_: String?
    var count: Int?
    var digest: String
    enum CodingKeys: String, CodingKey { case message, repeat_ = "repeat", count, digest }
    var input: [UInt8] {
        if let r = repeat_, let c = count { return Array(repeating: Array(r.utf8), count: c).flatMap { $0 } }
        return Array((message ?? "").utf8)
    }
    var testDescription: String { message.map { String($0.prefix(20)) } ?? "\(count ?? 0) × \(repeat_ ?? "")" }
}

func loadSHA256Vectors() -> [SHA256Vector] {
    struct File: Decodable { var vectors: [SHA256Vector] }
    let data = try! Data(contentsOf: URL(fileURLWithPath: Paths.fixture("vectors/sha256.json")))
    return try! JSONDecoder().decode(File.self, from: data).vectors
}

@Suite struct SHA256Tests {
    @Test("FIPS 180 known answers, one-shot", arguments: loadSHA256Vectors())
    func oneShot(_ v: SHA256Vector) {
        #expect(SHA256.hash(v.input).hex == v.digest)
    }

    @Test("FIPS 180 known answers, streamed in uneven pieces, with the context reused", arguments: loadSHA256Vectors())
    func streamed(_ v: SHA256Vector) {
        var h = SHA256()
        _ = h.finalize()  // reuse after a finalize must start over
        let input = v.input
        var i = 0
        var step = 1
        while i < input.count {
            let end = min(input.count, i + step)
            h.update(Array(input[i..<end]))
            i = end
            step = step * 3 + 1
        }
        #expect(h.finalize().hex == v.digest)
    }

    @Test func vectorsArePresent() {
        #expect(loadSHA256Vectors().count >= 4)
    }

    @Test func hexAndBase64() {
        let d = SHA256.hash(Array("abc".utf8))
        #expect(Digest(hex: d.hex) == d)
        #expect(Digest(hex: d.hex.uppercased()) == nil)
        #expect(Base64.decode(d.base64) == d.bytes)
        #expect(Base64.encode([]) == "")
        #expect(Base64.encode([0xFF]) == "/w==")
        #expect(Base64.decode("/w==") == [0xFF])
        #expect(Base64.decode("/x==") == nil)  // non-zero unused bits
        #expect(Base64.decode("/w=") == nil)
        #expect(Base64.decode("/w") == nil)
    }

    /// The word-at-a-time hex parser against a per-character reference: every
    /// byte value at every position, and random digests both ways.
    @Test func hexParserAgreesWithReference() {
        let digits = Array("0123456789abcdef".utf8)
        func reference(_ text: [UInt8]) -> [UInt8]? {
            guard text.count == 64 else { return nil }
            var out: [UInt8] = []
            for i in stride(from: 0, to: 64, by: 2) {
                guard let a = digits.firstIndex(of: text[i]), let b = digits.firstIndex(of: text[i + 1]) else { return nil }
                out.append(UInt8(a << 4 | b))
            }
            return out
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let d = Digest(bytes: bytes)
            #expect(Digest(hex: d.hex)?.bytes == bytes)
        }
        let base = Array(SHA256.hash(Array("abc".utf8)).hexBytes)
        for position in [0, 1, 7, 8, 15, 16, 31, 32, 47, 55, 63] {
            for c in 0...255 {
                var text = base
                text[position] = UInt8(c)
                let parsed = text.withUnsafeBytes { Digest(hex: $0) }
                #expect(parsed?.bytes == reference(text), "byte \(c) at \(position)")
            }
        }
    }
}
