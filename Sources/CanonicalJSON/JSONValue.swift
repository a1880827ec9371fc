#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A JSON value in the restricted model of the ledger format: integers only
/// (within ±(2^53 − 1)), strings that are valid Unicode, objects with unique keys.
///
/// Objects keep their members sorted by key (byte order of the UTF-8 key), so
/// writing a value is writing its members in order: see ``JSONWriter``.
package enum JSONValue: Equatable, Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The largest magnitude an integer may have: 2^53 − 1.
    package static let maxInteger: Int64 = 9_007_199_254_740_991

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    package var intValue: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }
    package var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }
    package var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    package var kind: JSONTape.Kind {
        switch self {
        case .null: .null
        case .bool: .bool
        case .int: .int
        case .string: .string
        case .array: .array
        case .object: .object
        }
    }

    /// A short name of the value's kind, for error messages.
    package var kindName: String { kind.name }
}

/// A JSON object whose members are kept sorted by key and unique.
package struct JSONObject: Equatable, Hashable, Sendable {
    package struct Member: Equatable, Hashable, Sendable {
        package var key: String
        package var value: JSONValue
        package init(key: String, value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// Members in ascending key order; keys are unique.
    package private(set) var members: [Member]

    package init() { members = [] }

    /// This object with `patch`'s members put in: each replaces the member
    /// of its name or is added, and a null one removes it (a merge patch,
    /// RFC 7386, at the top level only). ``JSONView/mergingTopLevel(_:into:)``
    /// does the same on parsed canonical text; a test holds them together.
    package func mergingTopLevel(_ patch: JSONObject) -> JSONObject {
        var o = self
        for m in patch.members { o[m.key] = m.value == .null ? nil : m.value }
        return o
    }

    /// Builds an object from members already in strictly ascending key order
    /// (the reader checks that before calling this).
    init(sortedUniqueMembers: [Member]) { members = sortedUniqueMembers }

    /// Builds an object from members the caller keeps in strictly ascending
    /// key order (checked in debug builds).
    package init(sortedMembers: [Member]) {
        assert(zip(sortedMembers, sortedMembers.dropFirst()).allSatisfy { JSONObject.keyLess($0.key, $1.key) })
        members = sortedMembers
    }

    /// Builds an object; a later duplicate key replaces an earlier one.
    package init(_ pairs: KeyValuePairs<String, JSONValue>) {
        members = []
        for (k, v) in pairs { self[k] = v }
    }

    package init(dictionary: [String: JSONValue]) {
        members = dictionary.map { Member(key: $0.key, value: $0.value) }
            .sorted { JSONObject.keyLess($0.key, $1.key) }
    }

    package var count: Int { members.count }
    package var isEmpty: Bool { members.isEmpty }
    package var keys: [String] { members.map(\.key) }

    /// Key order of the canonical form: by UTF-8 bytes (for ASCII keys, as
    /// Python's `sort_keys` and RFC 8785 agree).
    package static func keyLess(_ a: String, _ b: String) -> Bool {
        var a = a
        var b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                let n = Swift.min(x.count, y.count)
                if n > 0 {
                    let c = memcmp(x.baseAddress!, y.baseAddress!, n)
                    if c != 0 { return c < 0 }
                }
                return x.count < y.count
            }
        }
    }

    private func index(of key: String) -> (found: Bool, at: Int) {
        // Event objects are small: a linear scan with == beats a binary search.
        if members.count <= 12 {
            for (i, m) in members.enumerated() {
                if m.key == key { return (true, i) }
            }
            if members.isEmpty || !JSONObject.keyLess(key, members[members.count - 1].key) { return (false, members.count) }
        }
        var lo = 0
        var hi = members.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let k = members[mid].key
            if k == key { return (true, mid) }
            if JSONObject.keyLess(k, key) { lo = mid + 1 } else { hi = mid }
        }
        return (false, lo)
    }

    /// The value for `key`; setting `nil` removes the member.
    package subscript(key: String) -> JSONValue? {
        get {
            let (found, i) = index(of: key)
            if found { return members[i].value }
            return nil
        }
        set {
            let (found, i) = index(of: key)
            switch (found, newValue) {
            case (true, .some(let v)): members[i].value = v
            case (true, .none): members.remove(at: i)
            case (false, .some(let v)): members.insert(Member(key: key, value: v), at: i)
            case (false, .none): break
            }
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    package init(stringLiteral value: String) { self = .string(value) }
    package init(integerLiteral value: Int64) { self = .int(value) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }
    package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    package init(dictionaryLiteral elements: (String, JSONValue)...) {
        var o = JSONObject()
        for (k, v) in elements { o[k] = v }
        self = .object(o)
    }
}
