#if canImport(Glibc)
import Glibc
import MilestoneCrypto
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import Dispatch
import MilestoneModel

/// The clock that stamps `recorded_at`: the system's, or the one fixed by the
/// `MILESTONES_NOW` environment variable (`YYYY-MM-DDTHH:MM:SSZ`), which
/// tests use to make ledgers reproducible.
package enum LedgerClock {
    package static func now() -> Timestamp {
        if let fixed = getenv("MILESTONES_NOW").flatMap({ Timestamp(String(cString: $0)) }) { return fixed }
        return Timestamp(seconds: Int64(time(nil)))
    }
}

/// Creating a ledger (`init`).
public enum LedgerInit {
    /// Writes record 1, `ledger.created`, into a new file at `path`.
    @discardableResult
    package static func create(path: String, name: String, now: Timestamp = LedgerClock.now()) throws -> Digest {
        var o = JSONObject()
        o["type"] = .string(EventType.ledgerCreated.rawValue)
        o["name"] = .string(name)
        o["format"] = 1
        o["date"] = .string(now.date.description)
        do {
            _ = try EventForm.validate(.object(o))
        } catch {
            throw InputError(problems: ["init: --\(error)"])
        }
        o["id"] = .string(EventIDs.derived(for: o))
        var bytes: [UInt8] = []
        var hasher = SHA256()
        let digest = RecordLine.append(event: JSONWriter.bytes(.object(o)), seq: 1, prev: .zero, recordedAt: Array(now.description.utf8),
                                       to: &bytes, hasher: &hasher)
        try LedgerFile.create(path, bytes: bytes)
        return digest
    }
}

/// How ids are assigned to events recorded without one: `ev-` and the first
/// 20 hex digits of the SHA-256 of the normalised event's canonical JSON.
/// Derived from the content, so retrying an id-less event (or batch) after a
/// crash finds the same id and is a no-op instead of a duplicate.
package enum EventIDs {
    package static func derived(for object: JSONObject) -> String {
        var o = object
        o["id"] = nil
        return derived(fromCanonical: JSONWriter.bytes(.object(o)))
    }

    /// The id for the canonical bytes of a normalised event without id.
    package static func derived(fromCanonical bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes(derived(fromCanonical:))
    }

    package static func derived(fromCanonical bytes: UnsafeRawBufferPointer) -> String {
        "ev-" + String(SHA256.hash(bytes).hex.prefix(20))
    }
}
