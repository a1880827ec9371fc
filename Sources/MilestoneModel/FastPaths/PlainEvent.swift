import CanonicalJSON

/// Verify's fast path: the facts of a recorded event read in one pass over
/// its canonical bytes, with no tape and no second scan of any string.
///
/// It takes only the plain case: members in canonical order, strings without
/// escapes, DEL or C1 controls and of at most 2,000 bytes, numbers that are
/// non-negative integers, every member a field of the event's type with the
/// value its kind asks for. Anything else returns nil and is left to the full
/// path (``JSONTape`` in canonical mode, then ``EventForm/facts(of:)``),
/// which stays the one definition of what is valid and the only one that
/// words a message. So the fast path must never take what the full path
/// rejects, nor give other facts: `PlainEventTests` checks both over
/// valid events of every type and random changes to them.
///
/// A correction's `changes` (any value, with any escapes) is found by its
/// brackets and then read by the full path's own code.
extension EventForm {
    /// The member names of every type but `ledger.created`, from the field
    /// tables, in canonical order: a name's position is its key (a test
    /// checks that ``PlainKey`` names the same positions).
    static let plainKeys: StaticTable<StaticString> = {
        var seen = Set<String>()
        var names: [StaticString] = []
        for type in EventType.allCases where type != .ledgerCreated {
            for f in fields(type) where seen.insert(f.name).inserted { names.append(f.key) }
        }
        return sorted(StaticTable(names))
    }()

    enum PlainKey: Int, CaseIterable {
        case amount, areaSqft, changes, corrects, date, due, horizon, id, kind, location, milestone
        case name, operator_, partners, precision, product, program, quantity, reason, retracts, sources
        case sponsor, subject, summary, type

        /// Read by their own code in the pass (their kinds are fixed: `PlainEventTests.kinds`); the rest are strings.
        var isStructured: Bool {
            switch self {
            case .amount, .location, .due, .sources, .partners, .changes, .areaSqft, .quantity: true
            default: false
            }
        }
    }

    /// What a type allows and requires, a bit per plain key, and each
    /// key's kind (from ``fields(_:)``: the same tables as the full path).
    /// (The kinds are a ``StaticTable``, not an array: reading a type's
    /// entry then counts no references.)
    struct PlainType {
        var allowed: UInt32 = 0
        var required: UInt32 = 0
        var kinds: StaticTable<Kind?>
    }

    /// Per type ordinal; nil for a type the fast path leaves alone (`ledger.created`).
    static let plainTypes = StaticTable<PlainType?>(EventType.allCases.map { type -> PlainType? in
        guard type != .ledgerCreated else { return nil }
        var (allowed, required) = (UInt32(0), UInt32(0))
        var kinds = [Kind?](repeating: nil, count: plainKeys.count)
        for f in fields(type) {
            guard let k = plainKeys.firstIndex(where: { $0.description == f.name }) else { return nil }
            allowed |= 1 << UInt32(k)
            if f.required { required |= 1 << UInt32(k) }
            kinds[k] = f.kind
        }
        return PlainType(allowed: allowed, required: required, kinds: StaticTable(kinds))
    })

    /// The one kind each key has in every type, checked during the pass;
    /// nil for a key whose kind depends on the type (`milestone`: a target's
    /// milestone or text), checked once the type is known.
    static let plainKinds = StaticTable<Kind?>((0..<plainKeys.count).map { k -> Kind? in
        let kinds = plainTypes.compactMap { $0?.kinds[k] }
        guard let first = kinds.first, kinds.allSatisfy({ $0 == first }) else { return nil }
        return first
    })

    /// Members of the small objects, in canonical (sorted) order: the pass
    /// reads them by these positions (amount: currency, qualifier, value;
    /// location: city, country, region; due: earliest, latest; a source:
    /// published, publisher, title, url).
    static let plainAmount = sorted(amountMembers)
    static let plainLocation = sorted(locationMembers)
    static let plainDue = sorted(dueMembers)
    static let plainSource = sorted(sourceMembers)

    static func sorted(_ names: StaticTable<StaticString>) -> StaticTable<StaticString> {
        StaticTable(names.sorted { JSONObject.keyLess($0.description, $1.description) })
    }

    /// Every table the pass reads, as words to compare (``PlainName``),
    /// fetched once per event: on Linux each read of a global costs a call.
    struct PlainTables: @unchecked Sendable {
        let keys = PlainName.table(plainKeys)
        /// By a byte, the position of the first key whose first byte is not below it (keys in any order are looked for from there).
        let keyFrom = StaticTable<UInt8>((0..<256).map { (b: Int) -> UInt8 in UInt8(plainKeys.firstIndex { Int($0.utf8Start[0]) >= b } ?? plainKeys.count) })
        let kinds = plainKinds
        /// The keys read as strings whose kind depends on the type.
        let typeDependent: UInt32 = (0..<plainKeys.count).reduce(0) { mask, k in
            plainKinds[k] == nil && !PlainKey(rawValue: k)!.isStructured ? mask | 1 << UInt32(k) : mask
        }
        let types = plainTypes
        let amount = PlainName.table(plainAmount)
        let location = PlainName.table(plainLocation)
        let due = PlainName.table(plainDue)
        let source = PlainName.table(plainSource)
        /// Where `qualifier` is among an amount's members.
        let amountQualifier = plainAmount.firstIndex { $0.description == "qualifier" }!
        let precisions = PlainName.table(precisionNames)
        let facilityKinds = PlainName.table(facilityKindNames)
        let qualifiers = PlainName.table(EventForm.qualifiers)
        let targetMilestones = PlainName.table(targetMilestoneNames)
    }
    /// One copy for the process, reached through a pointer: no copying of
    /// the bundle, no reference counting shared between threads.
    nonisolated(unsafe) static let plainTables: UnsafePointer<PlainTables> = {  // written once, then only read
        let p = UnsafeMutablePointer<PlainTables>.allocate(capacity: 1)
        p.initialize(to: PlainTables())
        return UnsafePointer(p)
    }()

    /// The facts of a recorded event (`text`: its canonical bytes, nested at
    /// depth 1 in a record line), and where its subject's bytes are; nil
    /// when the event is not plain (see above) or not valid. `tape` is used
    /// for a correction's `changes` only.
    package static func plainFacts(_ text: UnsafeRawBufferPointer, tape: JSONTape) -> (facts: EventFacts, subject: Range<Int>)? {
        plainFacts(text, tape: tape, trusted: false)
    }

    /// The same; `names`, when given, is told where the event's names are.
    /// `trusted`: every string in the text (outside a correction's
    /// `changes`) was already checked plain, as ``plainInput`` checks what
    /// it writes: only its closing quote is looked for. (Not public: it
    /// turns off the checks of each string's bytes.)
    static func plainFacts(_ text: UnsafeRawBufferPointer, tape: JSONTape, trusted: Bool,
                           names: UnsafeMutablePointer<PlainNames>? = nil) -> (facts: EventFacts, subject: Range<Int>)? {
        guard let base = text.baseAddress else { return nil }
        let t = plainTables
        // Each key's value, as a byte range (strings: their bytes; numbers: their digits).
        return withUnsafeTemporaryAllocation(of: (Int32, Int32).self, capacity: 25) { spans -> (facts: EventFacts, subject: Range<Int>)? in
            // The scanner lives inside the closure: a variable captured from outside and
            // changed in it would be checked for exclusive access at run time on every use.
            var s = PlainScan(p: base.assumingMemoryBound(to: UInt8.self), end: text.count, i: 0, tables: t, trusted: trusted)
            var present: UInt32 = 0
            var next = 0
            guard s.take(UInt8(ascii: "{")), !s.take(UInt8(ascii: "}")) else { return nil }
            repeat {
                guard let k = s.key(t.pointee.keys, from: next), s.take(UInt8(ascii: ":")) else { return nil }
                next = k + 1
                present |= 1 << UInt32(k)
                let start = s.i
                switch PlainKey(rawValue: k)! {
                case .amount: guard s.amount() else { return nil }
                case .location: guard s.location() else { return nil }
                case .due: guard s.due() else { return nil }
                case .sources: guard s.sources() else { return nil }
                case .partners: guard s.orgs() else { return nil }
                case .changes: guard s.skipValue() else { return nil }
                case .areaSqft, .quantity: guard s.integer() != nil else { return nil }
                default:
                    guard let r = s.string() else { return nil }
                    if let kind = t.pointee.kinds[k], !s.check(kind, r) { return nil }
                    spans[k] = (Int32(r.lowerBound), Int32(r.upperBound))
                    continue
                }
                spans[k] = (Int32(start), Int32(s.i))
            } while s.take(UInt8(ascii: ","))
            guard s.take(UInt8(ascii: "}")), s.i == s.end else { return nil }
            // Read from here on through constants: a changed variable captured by the
            // functions below would be checked for exclusive access on every read.
            let scan = s, seen = present

            func bytes(_ k: PlainKey) -> UnsafeBufferPointer<UInt8>? {
                guard seen & 1 << UInt32(k.rawValue) != 0 else { return nil }
                let (a, b) = spans[k.rawValue]
                return scan.bytes(Int(a)..<Int(b))
            }
            guard let typeName = bytes(.type), let type = EventType(utf8: typeName), let plain = t.pointee.types[type.ordinal],
                  seen & ~plain.allowed == 0, plain.required & ~seen == 0
            else { return nil }
            func range(_ k: Int) -> Range<Int> { Int(spans[k].0)..<Int(spans[k].1) }
            func range(_ k: PlainKey) -> Range<Int> { range(k.rawValue) }
            // The strings whose kind depends on the type (`milestone`), checked now.
            var pending = seen & t.pointee.typeDependent
            while pending != 0 {
                let k = pending.trailingZeroBitCount
                guard let kind = plain.kinds[k], scan.check(kind, range(k)) else { return nil }
                pending &= pending &- 1
            }

            guard let date = CalendarDate(utf8: bytes(.date)!) else { return nil }
            let precision = bytes(.precision) == nil ? .day : DatePrecision.byOrdinal[scan.find(range(.precision), in: t.pointee.precisions)!]
            guard precision.admits(date) else { return nil }
            var changes: ChangeFacts?
            if let c = bytes(.changes) {
                // The full path's reading of `changes`, on its own text (a member of a member of the record).
                guard (try? tape.parse(UnsafeRawBufferPointer(c), mode: .canonical, copy: false, depth: 2)) != nil,
                      tape.root.kind == .object, tape.root.count > 0,
                      (try? check(tape.root, .changes, path: "changes")) != nil
                else { return nil }
                changes = changeFacts(tape.root)
            }
            var milestone: UInt8?
            if type.isTarget, bytes(.milestone) != nil {
                milestone = scan.find(range(.milestone), in: t.pointee.targetMilestones).map(UInt8.init)
            }
            func key(_ k: PlainKey) -> UInt64? { bytes(k).map(ReferenceIndex.fingerprint(utf8:)) }
            let facts = EventFacts(type: type, date: date, precision: precision, id: key(.id), subject: key(.subject),
                                   reference: key(.corrects) ?? key(.retracts), program: key(.program),
                                   milestone: milestone, changes: changes)
            if let names {
                func name(_ k: PlainKey) -> Range<Int>? { seen & 1 << UInt32(k.rawValue) == 0 ? nil : range(k) }
                names.pointee = PlainNames(id: name(.id), reference: name(.corrects) ?? name(.retracts), program: name(.program))
            }
            return (facts, range(.subject))
        }
    }

    /// Where ``plainFacts(_:tape:trusted:names:)`` found an event's names
    /// besides its subject (the bytes of each string).
    struct PlainNames {
        var id: Range<Int>?
        var reference: Range<Int>?
        var program: Range<Int>?
    }

}

/// A short name (at most 24 bytes) as three little-endian words, zero-padded,
/// so that a member name or a listed value is matched in three comparisons.
struct PlainName {
    let count: Int
    let w0: UInt64, w1: UInt64, w2: UInt64
    /// Which bits of three words loaded from the text are the name's.
    let m0: UInt64, m1: UInt64, m2: UInt64

    init(_ s: StaticString) {
        precondition(s.utf8CodeUnitCount < 24)
        var w: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &w) { $0.copyMemory(from: UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)) }
        (count, w0, w1, w2) = (s.utf8CodeUnitCount, UInt64(littleEndian: w.0), UInt64(littleEndian: w.1), UInt64(littleEndian: w.2))
        (m0, m1, m2) = (PlainName.mask(count), PlainName.mask(count - 8), PlainName.mask(count - 16))
    }

    /// The low `k` bytes of a word (all of it from 8, none below 1).
    @inline(__always)
    static func mask(_ k: Int) -> UInt64 { k >= 8 ? ~0 : k <= 0 ? 0 : (1 << UInt64(k &* 8)) &- 1 }

    static func table(_ names: StaticTable<StaticString>) -> StaticTable<PlainName> { StaticTable(names.map(PlainName.init)) }
}

/// A cursor over canonical bytes that says nil (or false) to anything but the plain case.
struct PlainScan {
    let p: UnsafePointer<UInt8>
    let end: Int
    var i: Int
    let tables: UnsafePointer<EventForm.PlainTables>
    /// Strings were checked before (``EventForm/plainFacts(_:tape:trusted:names:)``).
    var trusted = false
    var t: EventForm.PlainTables { _read { yield tables.pointee } }

    /// A plain string's kind check (no escapes, controls or DEL in it; at
    /// most 2,000 bytes, so at most 2,000 characters).
    func check(_ kind: EventForm.Kind, _ r: Range<Int>) -> Bool {
        let u = bytes(r)
        switch kind {
        case .text, .org, .multilineText: return !u.allSatisfy { $0 == 0x20 }  // not empty, not blank
        case .slug: return EventForm.isSlug(u)
        case .eventID: return EventForm.isID(u)
        case .date: return CalendarDate.isValid(utf8: u)
        case .precision: return find(r, in: t.precisions) != nil
        case .facilityKind: return find(r, in: t.facilityKinds) != nil
        case .targetMilestone: return find(r, in: t.targetMilestones) != nil
        case .typeName: return true  // read once the members are all seen
        default: return false
        }
    }

    /// The position in `names` (from `from` on) of the name the bytes in `r` spell.
    @inline(__always)
    func find(_ r: Range<Int>, in names: StaticTable<PlainName>, from: Int = 0) -> Int? {
        let n = r.count
        guard n <= 24 else { return nil }
        var w: (UInt64, UInt64, UInt64) = (0, 0, 0)
        if r.lowerBound &+ 24 <= end {
            // Whole words, the bytes past the name masked off.
            let raw = UnsafeRawPointer(p + r.lowerBound)
            w = (UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self)) & PlainName.mask(n),
                 UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) & PlainName.mask(n &- 8),
                 UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) & PlainName.mask(n &- 16))
        } else {
            withUnsafeMutableBytes(of: &w) { $0.copyMemory(from: UnsafeRawBufferPointer(start: p + r.lowerBound, count: n)) }
            w = (UInt64(littleEndian: w.0), UInt64(littleEndian: w.1), UInt64(littleEndian: w.2))
        }
        var k = from
        while k < names.count {
            let name = names[k]
            if name.count == n, name.w0 == w.0, name.w1 == w.1, name.w2 == w.2 { return k }
            k &+= 1
        }
        return nil
    }

    func bytes(_ r: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: p + r.lowerBound, count: r.count) }

    @inline(__always)
    mutating func take(_ c: UInt8) -> Bool {
        guard i < end, p[i] == c else { return false }
        i &+= 1
        return true
    }

    /// A string with no escape, control character, DEL or C1 control, of
    /// valid UTF-8 and at most 2,000 bytes: the range of its bytes.
    mutating func string() -> Range<Int>? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = i
        let raw = UnsafeRawPointer(p)
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        if trusted {
            // Eight bytes at a time to the closing quote (the lowest flagged byte is exact).
            while i &+ 8 <= end {
                let x = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ (ones &* 0x22)
                let m = (x &- ones) & ~x & highs
                if m != 0 {
                    i &+= m.trailingZeroBitCount >> 3
                    break
                }
                i &+= 8
            }
            while i < end, p[i] != UInt8(ascii: "\"") { i &+= 1 }
            guard i < end else { return nil }
            i &+= 1
            return start..<(i - 1)
        }
        while true {
            // Eight bytes at a time up to the first quote, backslash, control, DEL or non-ASCII byte.
            while i &+ 8 <= end {
                let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                @inline(__always) func zeroBytes(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
                // The lowest flagged byte is exact (bits above it may be false alarms).
                let m = zeroBytes(w ^ (ones &* 0x22)) | zeroBytes(w ^ (ones &* 0x5C)) | zeroBytes(w ^ (ones &* 0x7F))
                    | ((w &- ones &* 0x20) & ~w & highs) | (w & highs)
                if m != 0 {
                    i &+= m.trailingZeroBitCount >> 3
                    break
                }
                i &+= 8
            }
            guard i < end else { return nil }
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                guard i - start <= EventForm.maxTextLength else { return nil }
                i &+= 1
                return start..<(i - 1)
            }
            guard c >= 0x80 else {
                if c >= 0x20 && c != 0x5C && c != 0x7F { i &+= 1; continue }  // one of the last few bytes, read one at a time
                return nil
            }
            // One multi-byte sequence (Unicode table 3-7), not a C1 control.
            var n = 0
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0xC2: n = 2; lo = 0xA0
            case 0xC3...0xDF: n = 2
            case 0xE0: n = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: n = 3
            case 0xED: n = 3; hi = 0x9F
            case 0xF0: n = 4; lo = 0x90
            case 0xF1...0xF3: n = 4
            case 0xF4: n = 4; hi = 0x8F
            default: return nil
            }
            guard i &+ n <= end, p[i &+ 1] >= lo, p[i &+ 1] <= hi else { return nil }
            var j = 2
            while j < n {
                guard p[i &+ j] & 0xC0 == 0x80 else { return nil }
                j &+= 1
            }
            i &+= n
        }
    }

    /// A member name from `names` at or after position `from` (so names come
    /// in order, each once): its position.
    @inline(__always)
    mutating func key(_ names: StaticTable<PlainName>, from: Int) -> Int? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        if i &+ 24 <= end {
            // Each candidate compared where it would be, closing quote included: no scan for the quote.
            let raw = UnsafeRawPointer(p + i)
            let w0 = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
            let w1 = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            let w2 = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            var k = from
            while k < names.count {
                let name = names[k]
                if w0 & name.m0 == name.w0, w1 & name.m1 == name.w1, w2 & name.m2 == name.w2, p[i &+ name.count] == UInt8(ascii: "\"") {
                    i &+= name.count &+ 1
                    return k
                }
                k &+= 1
            }
            return nil
        }
        let start = i
        while i < end, p[i] != UInt8(ascii: "\"") { i &+= 1 }
        guard i < end else { return nil }
        i &+= 1
        return find(start..<(i &- 1), in: names, from: from)
    }

    /// A non-negative integer of at most 2^53 − 1.
    mutating func integer() -> Int64? {
        guard i < end, p[i] >= 0x30, p[i] <= 0x39 else { return nil }
        if p[i] == 0x30 {  // "0"; a digit after it (a leading zero) fails the caller's `,` `}` `]`
            i &+= 1
            return 0
        }
        var v: Int64 = 0
        while i < end, p[i] >= 0x30, p[i] <= 0x39 {
            v = v &* 10 &+ Int64(p[i] &- 0x30)
            guard v <= JSONValue.maxInteger else { return nil }
            i &+= 1
        }
        return v
    }

    /// An object whose members are among `names` (in order), each read by
    /// `member` (given its position); false when it is anything else.
    mutating func object(_ names: StaticTable<PlainName>, _ member: (inout PlainScan, Int) -> Bool) -> Bool {
        guard take(UInt8(ascii: "{")), !take(UInt8(ascii: "}")) else { return false }
        var next = 0
        repeat {
            guard let k = key(names, from: next), take(UInt8(ascii: ":")), member(&self, k) else { return false }
            next = k + 1
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}"))
    }

    mutating func text() -> Bool {
        guard let r = string() else { return false }
        return check(.text, r)
    }

    mutating func date() -> CalendarDate? {
        guard let r = string() else { return nil }
        return CalendarDate(utf8: bytes(r))
    }

    mutating func amount() -> Bool {
        var value = false, currency = false
        return object(t.amount) { s, k in
            switch k {
            case 0:
                guard let r = s.string(), Codes.isCurrency(s.bytes(r)) else { return false }
                currency = true
                return true
            case 1:
                guard let r = s.string() else { return false }
                return s.find(r, in: s.t.qualifiers) != nil
            default:
                value = s.integer() != nil
                return value
            }
        } && value && currency
    }

    mutating func location() -> Bool {
        var country = false
        return object(t.location) { s, k in
            guard k == 1 else { return s.text() }
            guard let r = s.string(), Codes.isCountry(s.bytes(r)) else { return false }
            country = true
            return true
        } && country
    }

    mutating func due() -> Bool {
        var earliest: CalendarDate?, latest: CalendarDate?
        return object(t.due) { s, k in
            let d = s.date()
            if k == 0 { earliest = d } else { latest = d }
            return d != nil
        } && earliest != nil && latest != nil && earliest! <= latest!
    }

    mutating func sources() -> Bool {
        guard take(UInt8(ascii: "[")) else { return false }
        repeat {
            var publisher = false
            guard object(t.source, { s, k in
                switch k {
                case 0: return s.date() != nil
                case 1:
                    publisher = s.text()
                    return publisher
                case 2: return s.text()
                default:
                    guard let r = s.string() else { return false }
                    return EventForm.isHTTPURL(s.bytes(r))
                }
            }), publisher else { return false }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]"))
    }

    mutating func orgs() -> Bool {
        guard take(UInt8(ascii: "[")) else { return false }
        if take(UInt8(ascii: "]")) { return true }
        repeat {
            guard text() else { return false }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]"))
    }

    /// Steps over an object or array by its brackets (strings and their
    /// escapes stepped over whole); its form is for the full parser to check.
    mutating func skipValue() -> Bool {
        guard i < end, p[i] == UInt8(ascii: "{") || p[i] == UInt8(ascii: "[") else { return false }
        var depth = 0
        while i < end {
            switch p[i] {
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 {
                    i &+= 1
                    return true
                }
            case UInt8(ascii: "\""):
                i &+= 1
                while i < end, p[i] != UInt8(ascii: "\"") { i &+= p[i] == UInt8(ascii: "\\") ? 2 : 1 }
            default: break
            }
            i &+= 1
        }
        return false
    }
}
