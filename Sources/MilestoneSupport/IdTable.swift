#if canImport(Glibc)
import Glibc
#endif

/// The ids (or subjects) a ledger holds, as 64-bit fingerprints mapped to
/// their packed entries: a bucketed cuckoo table. Each key has two buckets of
/// four 16-byte slots (a bucket is one 64-byte cache line), and lives in one
/// of them; when both are full, an entry is moved to its other bucket to make
/// room (up to `maxKicks` moves, else the table grows). Two buckets of four
/// let the slots fill to 96% where linear probing slowed past about 85%, so
/// a million ids cost about 17 MB; and a lookup reads at most two cache
/// lines, both known from the key at once. Fingerprints are uniformly random
/// (keyed SipHash), so a bucket is the fingerprint scaled to the bucket count
/// (the first from its high bits, the second from its low ones).
///
/// Its lookups are `public` and `@inlinable`, where the rest of this target is
/// `package`: Swift does not inline an `@inlinable package` body into another
/// module, and a lookup that is not inlined (nor specialised for its entry
/// type) costs verify and record a quarter more instructions (bench/README.md).
/// This target is not a product, so no other package sees it.
public struct FingerprintTable<Value: PackedValue> {
    /// The slots, shared between copies until one of them changes (copy on write).
    @usableFromInline final class Storage {
        /// Key and value side by side: a bucket is one cache line.
        @usableFromInline struct Slot {
            @usableFromInline var key: UInt64  // 0: empty
            @usableFromInline var value: UInt64
            @usableFromInline init(key: UInt64, value: UInt64) { (self.key, self.value) = (key, value) }
        }
        @usableFromInline static var bucketSize: Int { 4 }
        static var bucketBytes: Int { bucketSize * MemoryLayout<Slot>.stride }
        /// Where the slots are: it grows in place (``growInPlace(to:leaving:)``).
        private let memory: GrowableMemory
        @exclusivity(unchecked) @usableFromInline private(set) var slots: UnsafeMutablePointer<Slot>
        @exclusivity(unchecked) @usableFromInline private(set) var buckets: Int
        @usableFromInline var capacity: Int { buckets * Storage.bucketSize }
        @exclusivity(unchecked) @usableFromInline var count = 0
        /// Which slot of a full bucket gives way (xorshift; any sequence would do).
        @exclusivity(unchecked) @usableFromInline var random: UInt64 = 0x9E37_79B9_7F4A_7C15
        /// Where ``warm(_:)`` leaves what it read, so that the reads are not optimised away.
        @exclusivity(unchecked) @usableFromInline var sink: UInt64 = 0

        init(buckets: Int) {
            self.buckets = buckets
            memory = GrowableMemory(bytes: buckets * Storage.bucketBytes)  // zero-filled: every slot empty
            slots = memory.base.bindMemory(to: Slot.self, capacity: buckets * Storage.bucketSize)
            adviseHugePages()
        }

        /// A large table in huge pages (2 MiB): its lookups land anywhere,
        /// and with 4 KiB pages nearly each one missed the address cache.
        private func adviseHugePages() {
            if buckets * Storage.bucketBytes >= 4 << 20 { memory.adviseHugePages() }
        }

        /// The first slot of each of `key`'s buckets (they may be the same).
        @inlinable @inline(__always)
        func first(_ key: UInt64) -> Int {
            Int(truncatingIfNeeded: key.multipliedFullWidth(by: UInt64(buckets)).high) &* Storage.bucketSize
        }

        @inlinable @inline(__always)
        func second(_ key: UInt64) -> Int {
            Int(truncatingIfNeeded: key.byteSwapped.multipliedFullWidth(by: UInt64(buckets)).high) &* Storage.bucketSize
        }

        /// The slot holding `key`, if any.
        @inlinable @inline(__always)
        func find(_ key: UInt64) -> Int? {
            let a = first(key)
            for i in a..<(a + Storage.bucketSize) where slots[i].key == key { return i }
            let b = second(key)
            for i in b..<(b + Storage.bucketSize) where slots[i].key == key { return i }
            return nil
        }

        /// Puts the entry in an empty slot of the bucket starting at `b`, if it has one.
        @inlinable @inline(__always)
        func place(_ entry: Slot, in b: Int) -> Bool {
            for i in b..<(b + Storage.bucketSize) where slots[i].key == 0 {
                slots[i] = entry
                return true
            }
            return false
        }

        /// How many slots of the bucket at `b` are empty (they are its last ones:
        /// a bucket fills from its first slot, and entries are never removed).
        @inlinable @inline(__always)
        func free(in b: Int) -> Int {
            var n = 0
            for i in b..<(b + Storage.bucketSize) where slots[i].key == 0 { n += 1 }
            return n
        }

        /// Moves that may be made for one insertion before the table grows.
        @inlinable static var maxKicks: Int { 500 }

        /// Adds an entry whose key is not held. Nil when it found a place;
        /// else the entry left without one (not necessarily this one: moves
        /// displace others), for a larger table.
        @inlinable func insert(_ entry: Slot) -> Slot? {
            count += 1
            var e = entry
            var b = first(e.key)
            let other = second(e.key)
            // Into the emptier of its two buckets: kept even, they fill
            // before an entry has to be moved.
            let (freeA, freeB) = (free(in: b), free(in: other))
            if freeA > 0 || freeB > 0 {
                let i = freeA >= freeB ? b + Storage.bucketSize - freeA : other + Storage.bucketSize - freeB
                slots[i] = e
                return nil
            }
            random ^= random << 13
            random ^= random >> 7
            random ^= random << 17
            if random & 1 == 1 { b = other }
            for _ in 0..<Storage.maxKicks {
                random ^= random << 13
                random ^= random >> 7
                random ^= random << 17
                let i = b + Int(truncatingIfNeeded: random >> 32) % Storage.bucketSize
                swap(&e, &slots[i])
                // `e` was in the bucket at `b`: to its other one.
                let f = first(e.key)
                b = f == b ? second(e.key) : f
                if place(e, in: b) { return nil }
            }
            count -= 1
            return e
        }

        /// Grows to `newBuckets` where the slots are. A bucket is the key
        /// scaled to the bucket count, so as the count grows each entry's
        /// buckets move up, never down. Rehashing from the last bucket down,
        /// the buckets from `b` up hold only entries already placed anew, and
        /// each entry of bucket `b` goes to one of its new buckets from `b` up;
        /// the few that find both full are left in `left`, to be inserted anew.
        @usableFromInline func growInPlace(to newBuckets: Int, leaving left: inout [Slot]) {
            let old = buckets
            memory.grow(to: newBuckets * Storage.bucketBytes)
            slots = memory.base.bindMemory(to: Slot.self, capacity: newBuckets * Storage.bucketSize)
            buckets = newBuckets
            adviseHugePages()
            let size = Storage.bucketSize
            for b in stride(from: (old - 1) * size, through: 0, by: -size) {
                withUnsafeTemporaryAllocation(of: Slot.self, capacity: size) { held in
                    for k in 0..<size {
                        held[k] = slots[b + k]
                        slots[b + k] = Slot(key: 0, value: 0)
                    }
                    for e in held where e.key != 0 {
                        let (f, s) = (first(e.key), second(e.key))
                        let (freeF, freeS) = (f >= b ? free(in: f) : 0, s >= b ? free(in: s) : 0)
                        if freeF == 0, freeS == 0 {
                            left.append(e)
                            count -= 1
                        } else {
                            slots[freeF >= freeS ? f + size - freeF : s + size - freeS] = e
                        }
                    }
                }
            }
        }

        @usableFromInline func copy(buckets newBuckets: Int) -> Storage {
            var size = newBuckets
            while true {
                let other = Storage(buckets: size)
                var fits = true
                for i in 0..<capacity where slots[i].key != 0 {
                    if other.insert(slots[i]) != nil {
                        fits = false
                        break
                    }
                }
                if fits { return other }
                size += size / 2 + 1
            }
        }
    }

    /// The table grows by a quarter once its slots are this full.
    @inlinable public static var maxLoad: Double { 0.96 }
    @usableFromInline var storage: Storage

    private static func buckets(for entries: Int) -> Int {
        max(4, Int((Double(entries) / maxLoad / Double(Storage.bucketSize)).rounded(.up)))
    }

    package init(expected: Int = 0) {
        storage = Storage(buckets: FingerprintTable.buckets(for: expected))
    }

    /// Reads the buckets of `keys`, so that looking them up next finds
    /// them in the cache. The reads do not depend on one another: the
    /// processor has many in flight at once, where a lookup at a time waits
    /// for each (the table is far larger than the cache).
    @inlinable public func warm<S: Sequence<UInt64>>(_ keys: S) {
        let s = storage
        var acc: UInt64 = 0
        for key in keys {
            let k = FingerprintTable.stored(key)
            acc ^= s.slots[s.first(k)].key ^ s.slots[s.second(k)].key
        }
        s.sink ^= acc
    }

    @inlinable public var count: Int { storage.count }
    package var capacity: Int { storage.capacity }
    /// How many more entries fit before the table grows.
    package var room: Int { Int(Double(storage.capacity) * FingerprintTable.maxLoad) - storage.count }

    /// Makes room for `more` keys beyond those held, at once (growing by a
    /// quarter at a time would rehash the table over and over).
    package mutating func reserve(_ more: Int) {
        let needed = FingerprintTable.buckets(for: storage.count + more)
        guard needed > storage.buckets else { return }
        guard isKnownUniquelyReferenced(&storage) else {
            storage = storage.copy(buckets: needed)
            return
        }
        var waiting: [Storage.Slot] = []
        storage.growInPlace(to: needed, leaving: &waiting)
        insert(waiting)
    }

    /// Grows the table by a quarter, where it is (see
    /// ``Storage/growInPlace(to:leaving:)``): entries the rehash could not
    /// place are added to `waiting`.
    @usableFromInline mutating func grow(_ waiting: inout [Storage.Slot]) {
        storage.growInPlace(to: storage.buckets + storage.buckets / 4 + 1, leaving: &waiting)
    }

    /// Inserts entries whose keys are not held, growing the table as often as they need.
    @usableFromInline mutating func insert(_ entries: [Storage.Slot]) {
        var waiting = entries
        while let e = waiting.popLast() {
            if let homeless = storage.insert(e) {
                grow(&waiting)
                waiting.append(homeless)
            }
        }
    }

    /// 0 is the empty slot's key; the one fingerprint that is 0 is stored as 1
    /// (one more of the 2^64 values a collision could take).
    @inlinable @inline(__always)
    static func stored(_ key: UInt64) -> UInt64 { key == 0 ? 1 : key }

    /// Setting nil is not supported: a ledger never forgets an id.
    @inlinable public subscript(key: UInt64) -> Value? {
        get {
            let k = FingerprintTable.stored(key)
            return storage.find(k).map { Value(bits: storage.slots[$0].value) }
        }
        set {
            guard let newValue else { preconditionFailure("ids are never removed from a ledger") }
            let k = FingerprintTable.stored(key)
            if !isKnownUniquelyReferenced(&storage) { storage = storage.copy(buckets: storage.buckets) }
            if let i = storage.find(k) {
                storage.slots[i].value = newValue.bits
                return
            }
            let entry = Storage.Slot(key: k, value: newValue.bits)
            if Double(storage.count + 1) > Double(storage.capacity) * FingerprintTable.maxLoad {
                var waiting: [Storage.Slot] = []
                grow(&waiting)
                waiting.append(entry)
                insert(waiting)
            } else if let homeless = storage.insert(entry) {
                insert([homeless])
            }
        }
    }
}

/// A value packed into the 64 bits of a ``FingerprintTable`` slot.
public protocol PackedValue {
    init(bits: UInt64)
    var bits: UInt64 { get }
}

