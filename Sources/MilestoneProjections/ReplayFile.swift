import CanonicalJSON
import Foundation
import GRDB
import MilestoneLedger
import MilestoneModel

extension ReadModelStore {
    /// Writes the state as of `pov` into a new SQLite file: facilities,
    /// programs, targets, timeline, and meta (the point of view and the head).
    package func replay(to path: String, _ pov: PointOfView, overwrite: Bool) throws {
        if FileManager.default.fileExists(atPath: path) {
            guard overwrite else { throw LedgerError.exists(path: path) }
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        let facilities = try self.facilities(pov)
        let programs = try self.programs(pov, facilities: facilities)
        let targets = try self.targets(pov)
        let timeline = try self.timeline(pov)
        let head = try self.head()
        let out = try DatabaseQueue(path: path)
        // One transaction; each INSERT compiled once (cached), not once per row.
        try out.write { db in
            try db.execute(sql: """
                CREATE TABLE meta (as_of TEXT NOT NULL, known_seq INTEGER NOT NULL, known_recorded_at TEXT,
                                   ledger_head_seq INTEGER, ledger_head_sha256 TEXT);
                CREATE TABLE facilities (subject TEXT PRIMARY KEY, name TEXT, kind TEXT, operator TEXT, program TEXT,
                                         phase TEXT NOT NULL, phase_date TEXT NOT NULL, phase_precision TEXT NOT NULL,
                                         city TEXT, region TEXT, country TEXT);
                CREATE TABLE programs (subject TEXT PRIMARY KEY, name TEXT, sponsor TEXT, committed_value INTEGER,
                                       committed_currency TEXT, committed_qualifier TEXT, horizon TEXT, facilities INTEGER NOT NULL);
                CREATE TABLE targets (subject TEXT NOT NULL, milestone TEXT NOT NULL, due_earliest TEXT NOT NULL,
                                      due_latest TEXT NOT NULL, actual TEXT, actual_latest TEXT, implied_by TEXT, state TEXT NOT NULL, slip_days INTEGER,
                                      slip_from_original_days INTEGER, revisions INTEGER NOT NULL, PRIMARY KEY (subject, milestone));
                CREATE TABLE timeline (seq INTEGER PRIMARY KEY, recorded_at TEXT NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
                                       date TEXT NOT NULL, precision TEXT NOT NULL, subject TEXT, summary TEXT, event TEXT NOT NULL);
                CREATE TABLE sources (seq INTEGER NOT NULL, publisher TEXT NOT NULL, url TEXT, published TEXT, title TEXT);
                """)
            let knownAt = try self.recordedAt(seqs: [pov.knownSeq])[pov.knownSeq]
            try db.execute(sql: "INSERT INTO meta VALUES (?, ?, ?, ?, ?)",
                           arguments: [pov.asOf.description, pov.knownSeq, knownAt, head?.seq, head?.sha256.hex])
            // Each facility's location, from its announcement as known in this view.
            var locations: [String: JSONObject] = [:]
            for e in timeline where e.type == EventType.facilityAnnounced.rawValue {
                if let subject = e.subject, let l = e.event["location"]?.objectValue { locations[subject] = l }
            }
            for f in facilities {
                let l = locations[f.subject]
                try db.cachedStatement(sql: "INSERT INTO facilities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").execute(
                    arguments: [f.subject, f.name, f.kind, f.operatorName, f.program, f.phase.rawValue, f.phaseDate.description,
                                f.phasePrecision.rawValue, l?["city"]?.stringValue, l?["region"]?.stringValue, l?["country"]?.stringValue])
            }
            for p in programs {
                try db.cachedStatement(sql: "INSERT INTO programs VALUES (?, ?, ?, ?, ?, ?, ?, ?)").execute(
                    arguments: [p.subject, p.name, p.sponsor, p.committed?["value"]?.intValue, p.committed?["currency"]?.stringValue,
                                p.committed?["qualifier"]?.stringValue, p.horizon?.description, p.facilities.values.reduce(0, +)])
            }
            for t in targets {
                try db.cachedStatement(sql: "INSERT INTO targets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").execute(
                    arguments: [t.subject, t.milestone, t.dueEarliest.description, t.dueLatest.description,
                                t.actual?.description, t.actualLatest?.description, t.impliedBy?.rawValue, t.state.rawValue,
                                t.slipDays, t.slipFromOriginalDays, t.revisions])
            }
            for e in timeline {
                try db.cachedStatement(sql: "INSERT INTO timeline VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)").execute(
                    arguments: [e.seq, e.recordedAt, e.id, e.type, e.date, e.precision, e.subject, e.summary, JSONWriter.string(.object(e.event))])
                for source in e.event["sources"]?.arrayValue ?? [] {
                    let o = source.objectValue
                    try db.cachedStatement(sql: "INSERT INTO sources VALUES (?, ?, ?, ?, ?)").execute(
                        arguments: [e.seq, o?["publisher"]?.stringValue ?? "", o?["url"]?.stringValue, o?["published"]?.stringValue,
                                    o?["title"]?.stringValue])
                }
            }
        }
    }
}
