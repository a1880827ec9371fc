import Foundation
import MilestoneLedger

/// Where the read models are (docs/cli.md, "Where the data is"): `--db`, else
/// `MILESTONES_DB`, else the SQLite file beside the ledger; a
/// `postgresql://` (or `postgres://`) URL names a PostgreSQL database.
package enum ReadModelsLocation: Sendable {
    case sqlite(String)
    case postgres(PostgresLocation)

    package init(db: String?, ledger: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let named = db ?? environment["MILESTONES_DB"].flatMap { $0.isEmpty ? nil : $0 }
        if let named, PostgresLocation.isURL(named) {
            self = .postgres(try PostgresLocation(url: named, environment: environment))
        } else {
            self = .sqlite(named ?? ReadModels.path(forLedger: ledger))
        }
    }

    /// The SQLite read models a catch-up works in: the file named, or for
    /// PostgreSQL the one beside the ledger (its working copy).
    package func workingPath(ledger: String) -> String {
        if case .sqlite(let path) = self { return path }
        return ReadModels.path(forLedger: ledger)
    }
}

/// Opens the read models for a command that reads them: caught up with the
/// ledger's settled size first, or, `readOnly`, as they are (with the head
/// they reflect, which the command reports).
package func openReadModels(ledger: String, at location: ReadModelsLocation, rebuild: Bool, readOnly: Bool,
                            progress: ((Int) -> ((Int, Int) -> Void)?)? = nil) throws -> (store: any ReadModelStore, readOnlyHead: ChainHead?) {
    if readOnly {
        switch location {
        case .sqlite(let path):
            let models = try ReadModels(readingOnly: path)
            guard let head = try models.head() else {
                throw ReadModelsServiceError(message: "\(path): the read models are empty; run a command without --read-only to project the ledger", exitCode: 69)
            }
            return (models, head)
        case .postgres(let pg):
            let models = try PostgresReadModels(pg, readOnly: true)
            return (models, try models.requireHead())
        }
    }
    let file = try LedgerFile.open(ledger, writable: false)
    let size = try file.settledSize()
    guard size > 0 else { throw LedgerError.empty(path: ledger) }
    let report = progress?(size)
    let working = try ReadModels(path: location.workingPath(ledger: ledger))
    switch location {
    case .sqlite:
        try working.catchUp(file, upTo: size, rebuild: rebuild, progress: report)
        return (working, nil)
    case .postgres(let pg):
        let models = try PostgresReadModels(pg)
        try models.catchUp(file, upTo: size, working: working, rebuild: rebuild, progress: report)
        return (models, nil)
    }
}
