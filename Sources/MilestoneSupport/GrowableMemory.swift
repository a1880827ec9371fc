#if canImport(Glibc)
import Glibc
#endif

/// Zero-filled memory that grows where it is: a range of address space is
/// reserved up front (nothing is allocated for it until it is used), and a
/// prefix of it is made readable and writable as it grows. Growing copies
/// nothing, so what grows costs its new size at its peak, where a copy
/// holds the old and the new both (for verify's tables, 3 bytes a record
/// of its peak memory). Only past its reservation, or where address space
/// cannot be reserved (a limit on it), does it move to a larger mapping.
/// Its stored properties are `@exclusivity(unchecked)`: one owner uses them at a time, by construction, and the dynamic checks cost per record (bench/README.md).
package final class GrowableMemory {
    @exclusivity(unchecked) package private(set) var base: UnsafeMutableRawPointer
    /// Bytes readable and writable from `base`.
    @exclusivity(unchecked) package private(set) var usable: Int
    /// Bytes of address space held from `base`.
    @exclusivity(unchecked) private var reserved: Int

    /// Address space reserved at first: 16 GiB (a billion 16-byte slots), of the 128 TiB a process has.
    package static let defaultReservation = 16 << 30
    private static let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    private static func pages(_ bytes: Int) -> Int { max(page, (bytes + page - 1) / page * page) }

    /// The address space it reserves (tests make it small).
    private let reservation: Int

    /// At least `bytes`, zero-filled.
    package init(bytes: Int, reservation: Int = GrowableMemory.defaultReservation) {
        self.reservation = reservation
        (base, usable, reserved) = GrowableMemory.map(GrowableMemory.pages(bytes), reservation)
    }

    /// A mapping of `usable` bytes, in a reservation of `reservation` bytes when it can be had.
    private static func map(_ usable: Int, _ reservation: Int) -> (UnsafeMutableRawPointer, Int, Int) {
        let size = max(usable, reservation)
        if let p = mmap(nil, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), p != MAP_FAILED {
            if mprotect(p, usable, PROT_READ | PROT_WRITE) == 0 { return (p, usable, size) }
            munmap(p, size)
        }
        guard let p = mmap(nil, usable, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory: \(usable) bytes could not be mapped (errno \(errno))")
        }
        return (p, usable, usable)
    }

    /// Makes at least the first `bytes` usable, keeping what they hold (the
    /// rest zero-filled). `base` stays unless the reservation is too small.
    package func grow(to bytes: Int) {
        let wanted = GrowableMemory.pages(bytes)
        guard wanted > usable else { return }
        if wanted <= reserved, mprotect(base, wanted, PROT_READ | PROT_WRITE) == 0 {
            usable = wanted
            return
        }
        let (p, u, r) = GrowableMemory.map(max(wanted, usable * 2), reservation)
        memcpy(p, base, usable)
        munmap(base, reserved)
        (base, usable, reserved) = (p, u, r)
    }

    /// Asks for huge pages (2 MiB) for what is usable: for a large table
    /// whose reads land anywhere, which with 4 KiB pages nearly each miss the
    /// address cache. The kernel may decline; then the pages stay small.
    package func adviseHugePages() {
        _ = madvise(base, usable, 14)  // MADV_HUGEPAGE
    }

    deinit { munmap(base, reserved) }
}

/// Bytes appended one after another, in ``GrowableMemory`` (growing copies
/// nothing; an array doubling holds its old and new buffers at once). A
/// value: copies share the bytes until one of them appends.
package struct GrowableBytes {
    private final class Storage {
        let memory: GrowableMemory
        @exclusivity(unchecked) var count = 0
        init(capacity: Int) { memory = GrowableMemory(bytes: capacity) }
    }

    private var storage = Storage(capacity: 0)

    package init() {}

    package var count: Int { storage.count }

    package subscript(i: Int) -> UInt8 { storage.memory.base.load(fromByteOffset: i, as: UInt8.self) }

    /// The bytes from `start`, `count` of them.
    package func bytes(from start: Int, count: Int) -> UnsafeRawBufferPointer {
        precondition(start >= 0 && count >= 0 && start + count <= storage.count)
        return UnsafeRawBufferPointer(start: storage.memory.base + start, count: count)
    }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let end = storage.count + bytes.count
        if !isKnownUniquelyReferenced(&storage) {
            let copy = Storage(capacity: end)
            memcpy(copy.memory.base, storage.memory.base, storage.count)
            copy.count = storage.count
            storage = copy
        }
        if end > storage.memory.usable { storage.memory.grow(to: max(end, storage.memory.usable + storage.memory.usable / 4)) }
        if let from = bytes.baseAddress { (storage.memory.base + storage.count).copyMemory(from: from, byteCount: bytes.count) }
        storage.count = end
    }
}
