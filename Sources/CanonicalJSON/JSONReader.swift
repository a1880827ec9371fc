/// Reads JSON text into a ``JSONValue`` tree, through ``JSONTape`` (the one
/// parser): the same rules, the same errors.
public enum JSONReader {
    public typealias Mode = JSONTape.Mode

    /// Nesting limit: no event comes near it, and it bounds the recursion.
    public static var maxDepth: Int { JSONTape.maxDepth }

    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, mode: Mode = .input) throws(JSONError) -> JSONValue {
        let tape = JSONTape()
        try tape.parse(UnsafeRawBufferPointer(bytes), mode: mode)
        return tape.root.value
    }

    public static func parse(_ bytes: [UInt8], mode: Mode = .input) throws(JSONError) -> JSONValue {
        let tape = JSONTape()
        try tape.parse(bytes, mode: mode)
        return tape.root.value
    }

    public static func parse(_ text: String, mode: Mode = .input) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), mode: mode)
    }
}
