#if canImport(Glibc)
import Glibc
#endif

/// The ids (or subjects) a ledger holds, as 64-bit fingerprints mapped to
/// their packed entries: an open-addressing table (linear probing) of 16-byte slots,
/// sized to the number of ids expected rather than to a power of two, so a
/// million ids cost about 19 MB instead of the 32 MB of a `Dictionary` (whose
/// buckets double). Fingerprints are uniformly random (keyed SipHash), so
/// the slot is the fingerprint scaled to the capacity.
struct FingerprintTable<Value: PackedValue> {
    /// The slots, shared between copies until one of them changes (copy on write).
    private final class Storage {
        /// Key and value side by side: a lookup touches one cache line.
        struct Slot {
            var key: UInt64  // 0: empty
            var value: UInt64
        }
        let slots: UnsafeMutablePointer<Slot>
        let capacity: Int
        private let mapped: Int
        var count = 0
        /// Where ``warm(_:)`` leaves what it read, so that the reads are not optimised away.
        var sink: UInt64 = 0

        init(capacity: Int) {
            self.capacity = capacity
            let bytes = capacity * MemoryLayout<Slot>.stride
            // A large table in huge pages (2 MiB): its lookups land anywhere,
            // and with 4 KiB pages nearly each one missed the address cache.
            if bytes >= 4 << 20, let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED {
                _ = madvise(p, bytes, 14)  // MADV_HUGEPAGE (the kernel may decline; then it is a plain mapping)
                slots = p.bindMemory(to: Slot.self, capacity: capacity)  // zero-filled by the kernel
                mapped = bytes
            } else {
                slots = .allocate(capacity: capacity)
                slots.initialize(repeating: Slot(key: 0, value: 0), count: capacity)
                mapped = 0
            }
        }

        deinit {
            if mapped > 0 { munmap(slots, mapped) } else { slots.deallocate() }
        }

        /// The slot holding `key`, or the empty slot where it would go.
        @inline(__always)
        func slot(_ key: UInt64) -> Int {
            var i = Int(truncatingIfNeeded: key.multipliedFullWidth(by: UInt64(capacity)).high)
            while slots[i].key != 0 && slots[i].key != key {
                i += 1
                if i == capacity { i = 0 }
            }
            return i
        }

        func copy(capacity newCapacity: Int) -> Storage {
            let other = Storage(capacity: newCapacity)
            for i in 0..<capacity where slots[i].key != 0 {
                other.slots[other.slot(slots[i].key)] = slots[i]
            }
            other.count = count
            return other
        }
    }

    /// Slots are filled to at most this fraction before the table grows by half.
    static var maxLoad: Double { 0.85 }
    private var storage: Storage

    init(expected: Int = 0) {
        storage = Storage(capacity: max(16, Int(Double(expected) / FingerprintTable.maxLoad) + 1))
    }

    /// Reads the home slots of `keys`, so that looking them up next finds
    /// them in the cache. The reads do not depend on one another: the
    /// processor has many in flight at once, where a lookup at a time waits
    /// for each (the table is far larger than the cache).
    func warm<S: Sequence<UInt64>>(_ keys: S) {
        let s = storage
        var acc: UInt64 = 0
        for key in keys {
            acc ^= s.slots[Int(truncatingIfNeeded: FingerprintTable.stored(key).multipliedFullWidth(by: UInt64(s.capacity)).high)].key
        }
        s.sink ^= acc
    }

    var count: Int { storage.count }

    /// Makes room for `more` keys beyond those held, in one copy (growing by
    /// half at a time would copy the table over and over).
    mutating func reserve(_ more: Int) {
        let needed = Int(Double(storage.count + more) / FingerprintTable.maxLoad) + 1
        if needed > storage.capacity { storage = storage.copy(capacity: needed) }
    }

    /// 0 is the empty slot's key; the one fingerprint that is 0 is stored as 1
    /// (one more of the 2^64 values a collision could take).
    @inline(__always)
    static func stored(_ key: UInt64) -> UInt64 { key == 0 ? 1 : key }

    /// Setting nil is not supported: a ledger never forgets an id.
    subscript(key: UInt64) -> Value? {
        get {
            let k = FingerprintTable.stored(key)
            let i = storage.slot(k)
            let slot = storage.slots[i]
            return slot.key == k ? Value(bits: slot.value) : nil
        }
        set {
            let k = FingerprintTable.stored(key)
            if !isKnownUniquelyReferenced(&storage) { storage = storage.copy(capacity: storage.capacity) }
            var i = storage.slot(k)
            if let newValue {
                if storage.slots[i].key != k {
                    if Double(storage.count + 1) > Double(storage.capacity) * FingerprintTable.maxLoad {
                        storage = storage.copy(capacity: storage.capacity + storage.capacity / 2)
                        i = storage.slot(k)
                    }
                    storage.slots[i].key = k
                    storage.count += 1
                }
                storage.slots[i].value = newValue.bits
            } else {
                preconditionFailure("ids are never removed from a ledger")
            }
        }
    }
}

/// A value packed into the 64 bits of a ``FingerprintTable`` slot.
protocol PackedValue {
    init(bits: UInt64)
    var bits: UInt64 { get }
}

typealias IdTable = FingerprintTable<ReferenceIndex.IdEntry>
