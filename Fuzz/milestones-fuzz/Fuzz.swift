// libFuzzer entry points (`make fuzz`). The target is chosen by the
// environment variable MILESTONES_FUZZ_TARGET: json, event, plain, record, proof, note.
// Built with `-sanitize=fuzzer,address` (libFuzzer supplies main).
import CanonicalJSON
import MilestoneLedger
import MilestoneModel

#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) var target = "json"
nonisolated(unsafe) let tape = JSONTape()
nonisolated(unsafe) var inspector: RecordVerifier.Inspector?
nonisolated(unsafe) let slot = UnsafeMutablePointer<InspectedLine>.allocate(capacity: 1)

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    if let t = getenv("MILESTONES_FUZZ_TARGET") { target = String(cString: t) }
    inspector = RecordVerifier(rememberContent: true).makeInspector()
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    switch target {
    case "json":
        // The reader never crashes; what it accepts it writes back canonically,
        // and the canonical text reads back to the same value.
        for mode in [JSONTape.Mode.input, .canonical] {
            if let v = try? JSONReader.parse(Array(bytes), mode: mode) {
                let canonical = JSONWriter.bytes(v)
                guard let again = try? JSONReader.parse(canonical, mode: .canonical), again == v else { fatalError("canonical round trip") }
                if mode == .canonical, canonical != Array(bytes) { fatalError("accepted a non-canonical text") }
            }
        }
    case "event":
        // record's one pass over a plain input line takes only what the full
        // path takes, writing the same bytes and giving the same event.
        var fast = ByteBuffer(capacity: 64), scratch = ByteBuffer(capacity: 64)
        if let p = EventForm.plainInput(bytes, appendingNormalizedTo: &fast, scratch: &scratch, tape: JSONTape(), deriveID: { _ in "fuzz" }) {
            var out = ByteBuffer(capacity: 64)
            guard (try? tape.parse(bytes)) != nil, let f = try? EventForm.validate(tape.root, appendingNormalizedTo: &out, deriveID: { _ in "fuzz" }),
                  f == p, Array(out.bytes(from: 0)) == Array(fast.bytes(from: 0))
            else { fatalError("the one pass over an input line took what the full path does not, or wrote it otherwise") }
        } else if fast.count != 0 {
            fatalError("the one pass refused a line and left bytes")
        }
        if (try? tape.parse(bytes)) != nil {
            // Validating alone and validating while normalising agree; a valid
            // event normalises to a valid canonical event.
            var out = ByteBuffer(capacity: 64)
            let e = try? EventForm.validate(tape.root)
            let n = try? EventForm.validate(tape.root, appendingNormalizedTo: &out) { _ in "fuzz" }
            guard (e == nil) == (n == nil), e == nil || out.count > 0 else { fatalError("validation with normalising disagreed") }
            if e != nil {
                guard let again = try? JSONReader.parse(Array(out.bytes(from: 0)), mode: .canonical), (try? EventForm.validate(again)) != nil else {
                    fatalError("a valid event did not normalise to a valid canonical event")
                }
            }
        }
    case "plain":
        // Verify's one pass over a plain event takes only what the full path
        // takes (canonical parse nested in a record, then the form checks),
        // with the same facts and subject.
        if let p = EventForm.plainFacts(bytes, tape: JSONTape()) {
            guard (try? tape.parse(bytes, mode: .canonical, copy: true, depth: 1)) != nil, let f = try? EventForm.facts(of: tape.root),
                  f == p.facts, tape.root["subject"]?.string == String(decoding: bytes[p.subject], as: UTF8.self)
            else { fatalError("the one pass took what the full path does not, or read it otherwise") }
        }
    case "record":
        _ = inspector!.inspect(line: bytes, offset: 0, isFinal: size % 2 == 0, lineNumber: 1, into: slot)
        _ = RecordLine.tail(of: bytes)
    case "proof":
        if let v = try? JSONReader.parse(Array(bytes)) {
            if let p = try? InclusionProof(json: v) { _ = p.verify(recordLine: Array(bytes.prefix(64))) }
            if let p = try? ConsistencyProof(json: v) { _ = p.verify() }
            _ = try? ProofBundle(json: v)
        }
    case "note":
        if let note = try? SignedNote(parsing: Array(bytes)) {
            _ = try? Checkpoint(parsing: note.body)
            let key = VerifierKey(name: "fuzz", publicKey: [UInt8](repeating: 7, count: 32))
            _ = try? note.verify(keys: [key])
        }
        _ = try? VerifierKey(parsing: String(decoding: bytes, as: UTF8.self))
    default:
        fatalError("unknown MILESTONES_FUZZ_TARGET \(target)")
    }
    return 0
}

/// SwiftPM links an executable's entry point under this name; hand over to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("milestones_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    var c = argc
    var v: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    _ = initialize(&c, &v)
    return LLVMFuzzerRunDriver(&c, &v) { data, size in fuzz(data, size) }
}
