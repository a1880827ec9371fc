/// Bytes appended one after another, in memory of its own: what canonical
/// text is written into on the batch's hot path, where an array's checks on
/// each append (uniqueness, capacity, its generic copy) showed in profiles
/// of a large `record`. Appends check capacity (one comparison) and
/// double it when short.
package struct ByteBuffer: ~Copyable {
    package private(set) var base: UnsafeMutableRawPointer
    package private(set) var count = 0
    package private(set) var capacity: Int

    package init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// The bytes from `offset` to the end.
    package func bytes(from offset: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + offset, count: count - offset)
    }

    /// Forgets the bytes from `offset` on.
    package mutating func removeLast(from offset: Int) {
        precondition(offset >= 0 && offset <= count)
        count = offset
    }

    /// Room for `n` more bytes.
    @inline(__always)
    package mutating func reserve(_ n: Int) {
        if count &+ n > capacity { grow(count + n) }
    }

    private mutating func grow(_ needed: Int) {
        let bigger = max(needed, capacity * 2)
        let p = UnsafeMutableRawPointer.allocate(byteCount: bigger, alignment: 16)
        p.copyMemory(from: base, byteCount: count)
        base.deallocate()
        (base, capacity) = (p, bigger)
    }

    @inline(__always)
    package mutating func append(_ byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    @inline(__always)
    package mutating func append(_ start: UnsafeRawPointer, count n: Int) {
        reserve(n)
        (base + count).copyMemory(from: start, byteCount: n)
        count &+= n
    }

    @inline(__always)
    package mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        if let start = bytes.baseAddress { append(UnsafeRawPointer(start), count: bytes.count) }
    }

    @inline(__always)
    package mutating func append(_ text: StaticString) {
        append(UnsafeRawPointer(text.utf8Start), count: text.utf8CodeUnitCount)
    }

    /// Appends what `body` writes (at most `most` bytes; it returns how many).
    @inline(__always)
    package mutating func append(atMost most: Int, _ body: (UnsafeMutableRawPointer) -> Int) {
        reserve(most)
        let n = body(base + count)
        precondition(n >= 0 && n <= most)
        count &+= n
    }

    package mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }
}
