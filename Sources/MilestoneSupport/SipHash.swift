/// SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012)
/// with `compression` rounds a word and `finalization` rounds at the end:
/// 1 and 3 for the fingerprints of names (``ReferenceIndex/fingerprint(utf8:)``),
/// 2 and 4 for the paper's test vectors. `public` and `@inlinable` to be
/// inlined into its callers (see ``FingerprintTable``).
public enum SipHash {
    @inlinable @inline(__always)
    public static func hash(_ bytes: UnsafeRawBufferPointer, key: (UInt64, UInt64), compression: Int, finalization: Int) -> UInt64 {
        var v0 = key.0 ^ 0x736f_6d65_7073_6575
        var v1 = key.1 ^ 0x646f_7261_6e64_6f6d
        var v2 = key.0 ^ 0x6c79_6765_6e65_7261
        var v3 = key.1 ^ 0x7465_6462_7974_6573
        @inline(__always) func rounds(_ n: Int) {
            for _ in 0..<n {
                v0 &+= v1
                v1 = v1.rotated(13) ^ v0
                v0 = v0.rotated(32)
                v2 &+= v3
                v3 = v3.rotated(16) ^ v2
                v0 &+= v3
                v3 = v3.rotated(21) ^ v0
                v2 &+= v1
                v1 = v1.rotated(17) ^ v2
                v2 = v2.rotated(32)
            }
        }
        @inline(__always) func absorb(_ m: UInt64) {
            v3 ^= m
            rounds(compression)
            v0 ^= m
        }
        let count = bytes.count
        let whole = count & ~7
        var i = 0
        while i < whole {
            absorb(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            i += 8
        }
        // The last 0–7 bytes, little-endian, under the length's low byte.
        var last = UInt64(truncatingIfNeeded: count) << 56
        for k in 0..<(count - whole) {
            last |= UInt64(bytes[whole + k]) << UInt64(8 * k)
        }
        absorb(last)
        v2 ^= 0xff
        rounds(finalization)
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inlinable @inline(__always) func rotated(_ n: UInt64) -> UInt64 { self << n | self >> (64 - n) }
}
