import Foundation
import MilestoneLedger

/// A batch of events to append, with the index it is checked against: the
/// read models when they exist (a record on a large ledger catches them up
/// instead of rescanning the log), else one verifying pass over the ledger
/// (seconds at a million records, where building the read models takes
/// minutes; the next reading command builds them).
///
/// It never appends onto records that are not the ones checked
/// (docs/cli.md, "The read models never answer for a changed ledger"): the
/// lock is advisory, so another program may change the file while the
/// batch is being validated; ``commit()`` refuses then, and writes nothing.
///
///     let recording = try Recording(ledger: "ai.jsonl", readModels: "ai.sqlite", wait: 10)
///     recording.batch.add(event)
///     let outcomes = try recording.commit()
package final class Recording {
    package let batch: AppendBatch
    let models: ReadModels?
    /// PostgreSQL read models to catch up after the append (the SQLite ones are their working copy).
    let postgres: PostgresReadModels?
    /// The ledger file's identity as the catch-up checked it (nil: it changed while being checked).
    var checked: String?

    /// `readModels`: their path when they are to be used (they exist, or were asked for).
    package init(ledger path: String, readModels: String?, postgres: PostgresLocation? = nil, rebuild: Bool = false, wait: Double) throws {
        // Connected first: an unreachable server stops the command before anything is appended.
        let postgres = try postgres.map { try PostgresReadModels($0) }
        self.postgres = postgres
        guard let readModels else {
            models = nil
            batch = try AppendBatch(ledger: path, wait: wait)
            return
        }
        let models = try ReadModels(path: readModels)
        self.models = models
        var checked: String?
        batch = try AppendBatch(ledger: path, wait: wait) { file, length in
            checked = try models.catchUp(file, upTo: length, rebuild: rebuild).checkedIdentity
            guard let h = try models.head() else { throw LedgerError.notIntact(.emptyLedger, path: file.path) }
            return (h, models)
        }
        self.checked = checked
    }

    /// Appends the batch (all or nothing), if the ledger is still the one checked.
    package func commit() throws -> [RecordOutcome] {
        if let models {
            guard let checked, try batch.ledgerFile.identity() == checked else {
                throw LedgerError.stale(path: batch.ledgerFile.path, reason: "the ledger changed while this batch was being checked; nothing was written. Run `milestones verify`, then record again")
            }
            let outcomes = try batch.commit()
            // Appended under the lock onto what the catch-up checked: still checked.
            try models.markChecked(batch.ledgerFile)
            if let postgres {
                do {
                    try postgres.catchUp(batch.ledgerFile, upTo: try batch.ledgerFile.size(), working: models)
                } catch let e as ReadModelsServiceError {
                    let appended = outcomes.filter { $0.status == .appended }.count
                    throw ReadModelsServiceError(message: "\(appended) event(s) appended to the ledger, but the PostgreSQL read models were not caught up: \(e.message); the next command catches them up", exitCode: e.exitCode)
                }
            }
            return outcomes
        }
        return try batch.commit()
    }
}
