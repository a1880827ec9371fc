extension ReadModels {
    /// Covering indexes that `status` and `targets` scan in subject order.
    /// Each ends with `type`, which its condition implies but SQLite still
    /// reads, so the scans never visit the table.
    static let statusIndexes = """
        CREATE INDEX event_versions_lifecycle ON event_versions (subject, date, from_seq, to_seq, rank, type, event_seq, precision)
            WHERE rank > 0 OR type IN ('facility.paused', 'facility.resumed', 'facility.cancelled');
        CREATE INDEX event_versions_announced ON event_versions (subject, from_seq, to_seq, name, kind, operator, program, type)
            WHERE type = 'facility.announced';
        CREATE INDEX event_versions_targets ON event_versions
            (subject, milestone, date, event_seq, from_seq, to_seq, due_earliest, due_latest, type)
            WHERE type IN ('target.set', 'target.revised');
        """

    /// The tables and views of docs/read-models.md. Dates are `YYYY-MM-DD`
    /// text and times `YYYY-MM-DDTHH:MM:SSZ` text, so they sort and compare as text.
    static let schema = """
        CREATE TABLE meta (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            schema_version INTEGER NOT NULL,
            head_seq INTEGER NOT NULL DEFAULT 0,      -- the last projected record
            head_sha256 TEXT,                          -- its sha256
            head_length INTEGER NOT NULL DEFAULT 0,    -- the ledger's byte length up to its LF
            head_recorded_at TEXT,
            summary_split TEXT,                        -- where status and targets cut the summaries for two threads
            checked_identity TEXT,                     -- the ledger file's identity when it was last verified whole
            checked_length INTEGER NOT NULL DEFAULT 0, -- and its length then
            unsynced_load INTEGER NOT NULL DEFAULT 0   -- 1 while a first projection writes without syncing
        );
        INSERT INTO meta (id, schema_version) VALUES (1, 1);

        -- Every record of the ledger, as recorded.
        CREATE TABLE records (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            subject TEXT,
            date TEXT NOT NULL,
            precision TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            content INTEGER NOT NULL,                  -- first 8 bytes of the SHA-256 of the event's canonical JSON
            milestone TEXT,                            -- target events: the promised milestone
            refers_to TEXT,                            -- corrections and retractions: the id they name
            corrections INTEGER NOT NULL DEFAULT 0,    -- how many corrections name this event
            retracted_by INTEGER,                      -- the seq of its retraction, if any
            event TEXT NOT NULL                        -- the event JSON as recorded
        );
        CREATE INDEX records_recorded_at ON records (recorded_at);
        CREATE INDEX records_subject ON records (subject, type, milestone);
        CREATE INDEX records_refers_to ON records (refers_to) WHERE refers_to IS NOT NULL;

        -- Each event's content for a range of knowledge: the version made by record
        -- from_seq holds until record to_seq (a correction or retraction) is known.
        CREATE TABLE event_versions (
            event_seq INTEGER NOT NULL,                -- the event's own record
            from_seq INTEGER NOT NULL,
            to_seq INTEGER,                            -- NULL: still current
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            subject TEXT NOT NULL,
            date TEXT NOT NULL,
            precision TEXT NOT NULL,
            rank INTEGER NOT NULL,                     -- lifecycle phase reached: 1 announced … 6 volume production; 0 none
            name TEXT, kind TEXT, operator TEXT, program TEXT, sponsor TEXT,
            milestone TEXT,                            -- target milestone, or a production milestone's text
            due_earliest TEXT, due_latest TEXT,
            amount_value INTEGER, amount_currency TEXT, amount_qualifier TEXT,
            horizon TEXT, summary TEXT,
            event TEXT,                                -- the effective event JSON when a correction made it (else records.event)
            PRIMARY KEY (event_seq, from_seq)
        ) WITHOUT ROWID;
        CREATE INDEX event_versions_known ON event_versions (type, subject, date, from_seq, to_seq);

        -- Secondary indexes set aside during a first projection, built again at its end
        -- (and the mark that the subject summaries are to be rebuilt).
        CREATE TABLE pending_indexes (name TEXT PRIMARY KEY, sql TEXT NOT NULL) WITHOUT ROWID;

        CREATE TABLE organizations (slug TEXT PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE version_roles (
            event_seq INTEGER NOT NULL, from_seq INTEGER NOT NULL, org TEXT NOT NULL, role TEXT NOT NULL,
            PRIMARY KEY (event_seq, from_seq, org, role)
        ) WITHOUT ROWID;

        -- What the ledger says now (all records known, corrections applied, retractions dropped).
        CREATE VIEW events AS
            SELECT r.seq, r.id, r.type, v.date, v.precision, r.subject, v.summary, r.recorded_at, r.sha256,
                   r.corrections, r.retracted_by, CASE WHEN v.event_seq IS NULL THEN NULL ELSE COALESCE(v.event, r.event) END AS event
            FROM records r LEFT JOIN event_versions v ON v.event_seq = r.seq AND v.to_seq IS NULL;
        CREATE VIEW programs AS
            SELECT subject, name, sponsor, date AS announced, amount_value, amount_currency, amount_qualifier, horizon
            FROM event_versions WHERE type = 'program.announced' AND to_seq IS NULL;
        CREATE VIEW facilities AS
            SELECT subject, name, kind, operator, program, date AS announced,
                   json_extract(e, '$.location.city') AS city, json_extract(e, '$.location.region') AS region,
                   json_extract(e, '$.location.country') AS country
            FROM (SELECT v.*, COALESCE(v.event, r.event) AS e FROM event_versions v JOIN records r ON r.seq = v.event_seq)
            WHERE type = 'facility.announced' AND to_seq IS NULL;
        CREATE VIEW organization_roles AS
            SELECT o.slug, o.name, vr.role, v.subject
            FROM version_roles vr JOIN event_versions v ON v.event_seq = vr.event_seq AND v.from_seq = vr.from_seq
            JOIN organizations o ON o.slug = vr.org WHERE v.to_seq IS NULL;
        CREATE VIEW milestones AS
            SELECT event_seq AS seq, id, type, date, precision, subject, milestone, summary
            FROM event_versions WHERE to_seq IS NULL AND (rank > 0 OR type IN
                ('production.milestone', 'facility.paused', 'facility.resumed', 'facility.cancelled'))
            ORDER BY date, event_seq;
        CREATE VIEW targets AS
            SELECT event_seq AS seq, id, type, date, subject, milestone, due_earliest, due_latest
            FROM event_versions WHERE to_seq IS NULL AND type IN ('target.set', 'target.revised');
        CREATE VIEW sources AS
            SELECT r.seq, r.id, json_extract(s.value, '$.publisher') AS publisher, json_extract(s.value, '$.url') AS url,
                   json_extract(s.value, '$.published') AS published, json_extract(s.value, '$.title') AS title
            FROM records r, json_each(r.event, '$.sources') s;
        """
}
