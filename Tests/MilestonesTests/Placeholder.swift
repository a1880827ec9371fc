import Testing
import CanonicalJSON
@Test func debugObject() {
    var o = JSONObject()
    o["type"] = .string("ledger.created")
    o["name"] = .string("x")
    o["format"] = 1
    print(JSONWriter.string(.object(o)))
}
