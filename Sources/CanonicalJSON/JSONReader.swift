/// Reads JSON text into a ``JSONValue`` tree, through ``JSONTape`` (the one
/// parser): the same rules, the same errors.
package enum JSONReader {
    package typealias Mode = JSONTape.Mode

    /// Nesting limit: no event comes near it, and it bounds the recursion.
    package static var maxDepth: Int { JSONTape.maxDepth }

    package static func parse(_ bytes: UnsafeBufferPointer<UInt8>, mode: Mode = .input) throws(JSONError) -> JSONValue {
        let tape = JSONTape()
        try tape.parse(UnsafeRawBufferPointer(bytes), mode: mode)
        return tape.root.value
    }

    package static func parse(_ bytes: [UInt8], mode: Mode = .input) throws(JSONError) -> JSONValue {
        let tape = JSONTape()
        try tape.parse(bytes, mode: mode)
        return tape.root.value
    }

    package static func parse(_ text: String, mode: Mode = .input) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), mode: mode)
    }
}
