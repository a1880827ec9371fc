import CanonicalJSON

/// `record`'s fast path: an input event in the plain case is read in one
/// pass, written out in its normalised canonical form (members sorted,
/// whitespace gone, defaults written), and that text is then checked by
/// verify's one-pass reader (``plainFacts(_:tape:)``).
///
/// The plain case of an input line: one object whose members are fields of
/// the domain types, in any order, each once, with JSON whitespace between
/// tokens; strings plain as ``plainFacts(_:tape:)`` takes them (no escapes,
/// controls, DEL or C1 controls; at most 2,000 bytes); numbers non-negative
/// integers in their shortest form; the small objects (amount, location,
/// due, a source) with their own members only. A correction's `changes` is
/// parsed and normalised by the full path's own code. Anything else returns
/// nil and goes to the full path (``JSONTape``, then
/// ``validate(_:appendingNormalizedTo:deriveID:)``), which stays the one
/// definition of what is valid and the only one that words a message.
///
/// The fast path cannot take an event the full path rejects: what it writes
/// is taken only if ``plainFacts(_:tape:trusted:names:)`` takes it, and that reader
/// takes only what the full path takes (`PlainEventTests`). It is told that
/// the strings are plain (each was checked as it was read, and only those,
/// the names of the tables and the defaults are written), so it does not
/// check them again. That it writes the
/// full path's bytes and gives its names is `PlainInputTests`' to check.
extension EventForm {
    /// The normalised canonical bytes of `line` appended to `out`, and the
    /// event; nil (and `out` as it was) when the line is not plain or not
    /// valid. `scratch` holds the small objects while the members are read;
    /// `tape` reads a correction's `changes`. An event without an `id` is
    /// given `deriveID` of its bytes without one, as the full path does.
    package static func plainInput(_ line: UnsafeRawBufferPointer, appendingNormalizedTo out: inout ByteBuffer,
                                  scratch: inout ByteBuffer, tape: JSONTape,
                                  deriveID: (UnsafeRawBufferPointer) -> String) -> Event? {
        guard let base = line.baseAddress else { return nil }
        let t = plainTables
        scratch.removeLast(from: 0)
        return withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: plainKeys.count) { spans -> Event? in
            // Inside the closure: a variable captured from outside and changed in it is checked at run time.
            var s = PlainScan(p: base.assumingMemoryBound(to: UInt8.self), end: line.count, i: 0, tables: t)
            // Each member's value: a range of the line, or of `scratch` (a `normalized` one).
            var present: UInt32 = 0, normalized: UInt32 = 0
            /// A correction's `changes` as written (the full path's event keeps them so, defaults unwritten).
            var changes: JSONObject?
            s.space()
            guard s.take(UInt8(ascii: "{")) else { return nil }
            repeat {
                s.space()
                guard let k = s.anyKey(t.pointee.keys, first: t.pointee.keyFrom), present & 1 << UInt32(k) == 0 else { return nil }
                s.space()
                guard s.take(UInt8(ascii: ":")) else { return nil }
                s.space()
                present |= 1 << UInt32(k)
                let from = s.i, at = scratch.count
                switch PlainKey(rawValue: k)! {
                case .amount: guard s.smallObject(t.pointee.amount, qualifier: t.pointee.amountQualifier, into: &scratch) else { return nil }
                case .location: guard s.smallObject(t.pointee.location, into: &scratch) else { return nil }
                case .due: guard s.smallObject(t.pointee.due, into: &scratch) else { return nil }
                case .sources:
                    guard s.array(into: &scratch, { s, out in s.smallObject(s.t.source, into: &out) }) else { return nil }
                case .partners:
                    guard s.array(into: &scratch, { s, out in s.scalar(into: &out) }) else { return nil }
                case .changes:
                    // The full path's own reading and normalising, on the value alone.
                    guard s.skipValue(),
                          (try? tape.parse(UnsafeRawBufferPointer(start: s.p + from, count: s.i - from), copy: false, depth: 1)) != nil,
                          tape.root.kind == .object
                    else { return nil }
                    appendNormalized(tape.root, amount: false, to: &scratch)
                    changes = tape.root.value.objectValue
                default:
                    guard s.scalar() else { return nil }
                    spans[k] = from..<s.i
                    s.space()
                    continue
                }
                spans[k] = at..<scratch.count
                normalized |= 1 << UInt32(k)
                s.space()
            } while s.take(UInt8(ascii: ","))
            guard s.take(UInt8(ascii: "}")) else { return nil }
            s.space()
            guard s.i == s.end else { return nil }
            // Read from here on through constants, not the variables the nested function would capture.
            let (lineStart, lineEnd, seen) = (s.p, s.end, present)

            let start = out.count
            /// The event in key order, with `id` when given: at most the
            /// line's and the small objects' bytes, and each key once more.
            func write(id: String?, to out: inout ByteBuffer) {
                var idText: [UInt8] = []
                if let id { JSONWriter.appendString(id, to: &idText) }
                let (line, small) = (UnsafeRawPointer(lineStart), UnsafeRawPointer(scratch.base))
                out.append(atMost: lineEnd + scratch.count + idText.count + 32 * plainKeys.count + 32) { base in
                    var q = base
                    q.storeBytes(of: UInt8(ascii: "{"), as: UInt8.self)
                    q += 1
                    for k in 0..<plainKeys.count {
                        let bit = UInt32(1) << UInt32(k)
                        if seen & bit != 0 {
                            q = PlainScan.put(t.pointee.keys[k], comma: q > base + 1, at: q)
                            let r = spans[k]
                            q.copyMemory(from: (normalized & bit != 0 ? small : line) + r.lowerBound, byteCount: r.count)
                            q += r.count
                        } else if k == PlainKey.precision.rawValue {
                            q = PlainScan.put(t.pointee.keys[k], comma: q > base + 1, at: q)
                            let day = EventForm.defaultPrecision
                            q.copyMemory(from: day.utf8Start, byteCount: day.utf8CodeUnitCount)
                            q += day.utf8CodeUnitCount
                        } else if k == PlainKey.id.rawValue, !idText.isEmpty {
                            q = PlainScan.put(t.pointee.keys[k], comma: q > base + 1, at: q)
                            idText.withUnsafeBytes { q.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                            q += idText.count
                        }
                    }
                    q.storeBytes(of: UInt8(ascii: "}"), as: UInt8.self)
                    return q + 1 - base
                }
            }
            write(id: nil, to: &out)
            var names = PlainNames()
            guard var plain = plainFacts(out.bytes(from: start), tape: tape, trusted: true, names: &names) else {
                out.removeLast(from: start)
                return nil
            }
            if names.id == nil {
                let id = deriveID(out.bytes(from: start))
                out.removeLast(from: start)
                write(id: id, to: &out)
                guard let withID = plainFacts(out.bytes(from: start), tape: tape, trusted: true, names: &names) else {
                    out.removeLast(from: start)
                    return nil
                }
                plain = withID
            }
            let text = out.bytes(from: start)
            func name(_ r: Range<Int>?) -> String? { r.map { String(decoding: UnsafeRawBufferPointer(rebasing: text[$0]), as: UTF8.self) } }
            return Event(facts: plain.facts, id: name(names.id), subject: name(plain.subject), reference: name(names.reference),
                         program: name(names.program), changes: plain.facts.changes == nil ? nil : changes)
        }
    }
}

extension PlainScan {
    /// A member name from `names` in any order: its position. `first`
    /// gives, by a byte, the first name that could start with it.
    @inline(__always)
    mutating func anyKey(_ names: StaticTable<PlainName>, first: StaticTable<UInt8>) -> Int? {
        guard i &+ 1 < end else { return nil }
        return key(names, from: Int(first[Int(p[i &+ 1])]))
    }

    /// Steps over JSON whitespace.
    @inline(__always)
    mutating func space() {
        while i < end, p[i] == 0x20 || p[i] == 0x09 || p[i] == 0x0D || p[i] == 0x0A { i &+= 1 }
    }

    /// A plain string or a non-negative integer in its shortest form (a
    /// leading zero fails at the next token).
    @inline(__always)
    mutating func scalar() -> Bool {
        guard i < end else { return false }
        if p[i] == UInt8(ascii: "\"") { return string() != nil }
        return integer() != nil
    }

    /// A scalar, appended to `out` as it is (its canonical form).
    mutating func scalar(into out: inout ByteBuffer) -> Bool {
        let from = i
        guard scalar() else { return false }
        out.append(UnsafeRawPointer(p + from), count: i - from)
        return true
    }

    /// Writes `"name":` at `q` (after a comma when `comma`), with up to 24
    /// bytes of room past it; returns where it ends.
    @inline(__always)
    static func put(_ name: PlainName, comma: Bool, at q: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        var q = q
        if comma {
            q.storeBytes(of: UInt8(ascii: ","), as: UInt8.self)
            q += 1
        }
        q.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        // The name's three words whole (zero-padded), then the quote and colon over the padding.
        q.storeBytes(of: name.w0.littleEndian, toByteOffset: 1, as: UInt64.self)
        q.storeBytes(of: name.w1.littleEndian, toByteOffset: 9, as: UInt64.self)
        q.storeBytes(of: name.w2.littleEndian, toByteOffset: 17, as: UInt64.self)
        q += 1 + name.count
        q.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        q.storeBytes(of: UInt8(ascii: ":"), toByteOffset: 1, as: UInt8.self)
        return q + 2
    }

    /// ``put(_:comma:at:)`` at the end of `out`.
    @inline(__always)
    static func key(_ name: PlainName, comma: Bool, to out: inout ByteBuffer) {
        out.append(atMost: 28) { put(name, comma: comma, at: $0) - $0 }
    }

    /// A small object of scalars whose members are among `names` (sorted),
    /// in any order, each once, appended in canonical form; the member at
    /// `qualifier` (an amount's), when absent, written as its default.
    mutating func smallObject(_ names: StaticTable<PlainName>, qualifier: Int? = nil, into out: inout ByteBuffer) -> Bool {
        guard take(UInt8(ascii: "{")) else { return false }
        return withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: names.count) { found -> Bool in
            var present = 0
            repeat {
                space()
                guard let k = key(names, from: 0), present & 1 << k == 0 else { return false }
                space()
                guard take(UInt8(ascii: ":")) else { return false }
                space()
                let from = i
                guard scalar() else { return false }
                found[k] = from..<i
                present |= 1 << k
                space()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")) else { return false }
            let start = out.count
            out.append(UInt8(ascii: "{"))
            for k in 0..<names.count {
                if present & 1 << k != 0 {
                    PlainScan.key(names[k], comma: out.count > start + 1, to: &out)
                    out.append(UnsafeRawPointer(p + found[k].lowerBound), count: found[k].count)
                } else if k == qualifier {
                    PlainScan.key(names[k], comma: out.count > start + 1, to: &out)
                    out.append(EventForm.defaultQualifier)
                }
            }
            out.append(UInt8(ascii: "}"))
            return true
        }
    }

    /// An array whose elements `element` reads and appends, appended in canonical form.
    mutating func array(into out: inout ByteBuffer, _ element: (inout PlainScan, inout ByteBuffer) -> Bool) -> Bool {
        guard take(UInt8(ascii: "[")) else { return false }
        out.append(UInt8(ascii: "["))
        space()
        if !take(UInt8(ascii: "]")) {
            var first = true
            repeat {
                space()
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                guard element(&self, &out) else { return false }
                space()
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "]")) else { return false }
        }
        out.append(UInt8(ascii: "]"))
        return true
    }
}
