/// The ids a ledger holds, as 64-bit fingerprints mapped to their packed
/// entries: an open-addressing table (linear probing) of 16-byte slots,
/// sized to the number of ids expected rather than to a power of two, so a
/// million ids cost about 19 MB instead of the 32 MB of a `Dictionary` (whose
/// buckets double). Fingerprints are uniformly random (keyed SipHash), so
/// the slot is the fingerprint scaled to the capacity.
struct IdTable {
    /// The slots, shared between copies until one of them changes (copy on write).
    private final class Storage {
        let keys: UnsafeMutablePointer<UInt64>  // 0: empty
        let values: UnsafeMutablePointer<UInt64>
        let capacity: Int
        var count = 0

        init(capacity: Int) {
            self.capacity = capacity
            keys = .allocate(capacity: capacity)
            keys.initialize(repeating: 0, count: capacity)
            values = .allocate(capacity: capacity)
            values.initialize(repeating: 0, count: capacity)
        }

        deinit {
            keys.deallocate()
            values.deallocate()
        }

        /// The slot holding `key`, or the empty slot where it would go.
        @inline(__always)
        func slot(_ key: UInt64) -> Int {
            var i = Int(truncatingIfNeeded: key.multipliedFullWidth(by: UInt64(capacity)).high)
            while keys[i] != 0 && keys[i] != key {
                i += 1
                if i == capacity { i = 0 }
            }
            return i
        }

        func copy(capacity newCapacity: Int) -> Storage {
            let other = Storage(capacity: newCapacity)
            for i in 0..<capacity where keys[i] != 0 {
                let j = other.slot(keys[i])
                other.keys[j] = keys[i]
                other.values[j] = values[i]
            }
            other.count = count
            return other
        }
    }

    /// Slots are filled to at most this fraction before the table grows by half.
    static let maxLoad = 0.85
    private var storage: Storage

    init(expected: Int = 0) {
        storage = Storage(capacity: max(16, Int(Double(expected) / IdTable.maxLoad) + 1))
    }

    var count: Int { storage.count }

    /// 0 is the empty slot's key; the one fingerprint that is 0 is stored as 1
    /// (one more of the 2^64 values a collision could take).
    @inline(__always)
    private static func stored(_ key: UInt64) -> UInt64 { key == 0 ? 1 : key }

    /// Setting nil is not supported: a ledger never forgets an id.
    subscript(key: UInt64) -> ReferenceIndex.IdEntry? {
        get {
            let k = IdTable.stored(key)
            let i = storage.slot(k)
            return storage.keys[i] == k ? ReferenceIndex.IdEntry(bits: storage.values[i]) : nil
        }
        set {
            let k = IdTable.stored(key)
            if !isKnownUniquelyReferenced(&storage) { storage = storage.copy(capacity: storage.capacity) }
            var i = storage.slot(k)
            if let newValue {
                if storage.keys[i] != k {
                    if Double(storage.count + 1) > Double(storage.capacity) * IdTable.maxLoad {
                        storage = storage.copy(capacity: storage.capacity + storage.capacity / 2)
                        i = storage.slot(k)
                    }
                    storage.keys[i] = k
                    storage.count += 1
                }
                storage.values[i] = newValue.bits
            } else {
                preconditionFailure("ids are never removed from a ledger")
            }
        }
    }
}
