/// A table built once and kept for the life of the process, read without
/// reference counting.
///
/// Reading a global Swift array retains and releases its buffer. When the
/// workers of `verify` did that at once on the same tables (field lists,
/// type names), they fought over the buffer header's cache line, and the
/// reference counting showed high in profiles.
public struct StaticTable<Element>: RandomAccessCollection, @unchecked Sendable {
    public let base: UnsafePointer<Element>
    public let count: Int

    public init(_ elements: [Element]) {
        let p = UnsafeMutablePointer<Element>.allocate(capacity: Swift.max(1, elements.count))
        p.initialize(from: elements, count: elements.count)
        base = UnsafePointer(p)
        count = elements.count
    }

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { count }

    @inlinable @inline(__always)
    public subscript(i: Int) -> Element {
        precondition(i >= 0 && i < count, "index out of range")
        return base[i]
    }
}

extension StaticTable: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: Element...) { self.init(elements) }
}
