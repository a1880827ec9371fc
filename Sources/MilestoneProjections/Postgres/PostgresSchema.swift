extension PostgresReadModels {
    /// The layout in PostgreSQL (docs/read-models.md, "PostgreSQL"): the
    /// SQLite layout's tables and views, in the schema `milestones`, with the
    /// same rows; the summaries in rows of the same layout as SQLite's
    /// (``SubjectSummary``: `first`, `subjects`, `summaries`), though not
    /// necessarily cut at the same subjects. Raised with SQLite's (a row's
    /// layout is shared) or when this one changes; a database of another
    /// layout is emptied and built again by the next catch-up, never migrated.
    static var schemaVersion: Int { ReadModels.schemaVersion * 1000 + 2 }

    /// The advisory lock that catch-ups take in their transaction ("MLST").
    static let lockKey: Int64 = 0x4D4C_5354

    /// Text columns compare and sort byte-wise (`COLLATE "C"`), as SQLite's do:
    /// dates and times are text that sorts as it reads, subjects in byte order.
    static let tables: [String] = [
        """
        CREATE TABLE meta (
            id integer PRIMARY KEY CHECK (id = 1),
            schema_version integer NOT NULL,
            head_seq bigint NOT NULL DEFAULT 0,
            head_sha256 text,
            head_length bigint NOT NULL DEFAULT 0,
            head_recorded_at text,
            checked_identity text,
            checked_length bigint NOT NULL DEFAULT 0,
            updated_at timestamptz
        )
        """,
        """
        CREATE TABLE records (
            seq bigint PRIMARY KEY,
            id text COLLATE "C" NOT NULL UNIQUE,
            type text COLLATE "C" NOT NULL,
            subject text COLLATE "C",
            date text COLLATE "C" NOT NULL,
            precision text COLLATE "C" NOT NULL,
            recorded_at text COLLATE "C" NOT NULL,
            sha256 text COLLATE "C" NOT NULL,
            "offset" bigint NOT NULL,
            length bigint NOT NULL,
            content bigint NOT NULL,
            milestone text COLLATE "C",
            refers_to text COLLATE "C",
            corrections integer NOT NULL DEFAULT 0,
            retracted_by bigint,
            event text NOT NULL
        )
        """,
        """
        CREATE TABLE event_versions (
            event_seq bigint NOT NULL,
            from_seq bigint NOT NULL,
            to_seq bigint,
            id text COLLATE "C" NOT NULL,
            type text COLLATE "C" NOT NULL,
            subject text COLLATE "C" NOT NULL,
            date text COLLATE "C" NOT NULL,
            precision text COLLATE "C" NOT NULL,
            rank integer NOT NULL,
            name text COLLATE "C", kind text COLLATE "C", operator text COLLATE "C", program text COLLATE "C", sponsor text COLLATE "C",
            milestone text COLLATE "C",
            due_earliest text COLLATE "C", due_latest text COLLATE "C",
            amount_value bigint, amount_currency text COLLATE "C", amount_qualifier text COLLATE "C",
            horizon text COLLATE "C", summary text COLLATE "C",
            event text,
            PRIMARY KEY (event_seq, from_seq)
        )
        """,
        "CREATE TABLE organizations (slug text COLLATE \"C\" PRIMARY KEY, name text COLLATE \"C\" NOT NULL)",
        """
        CREATE TABLE version_roles (
            event_seq bigint NOT NULL, from_seq bigint NOT NULL, org text COLLATE "C" NOT NULL, role text COLLATE "C" NOT NULL,
            PRIMARY KEY (event_seq, from_seq, org, role)
        )
        """,
        "CREATE TABLE subject_status (first text COLLATE \"C\" PRIMARY KEY, subjects integer NOT NULL, summaries bytea NOT NULL)",
        "CREATE TABLE subject_targets (first text COLLATE \"C\" PRIMARY KEY, subjects integer NOT NULL, summaries bytea NOT NULL)",
        // Out of line but not compressed: every `status` or `targets` reads a whole table, and would decompress it each time.
        "ALTER TABLE subject_status ALTER COLUMN summaries SET STORAGE EXTERNAL",
        "ALTER TABLE subject_targets ALTER COLUMN summaries SET STORAGE EXTERNAL",
    ]

    /// Built after the tables, and again after a first projection's COPY (which loads without them).
    static let indexes: [String] = [
        "CREATE INDEX records_recorded_at ON records (recorded_at, seq)",
        "CREATE INDEX records_subject ON records (subject, type, milestone)",
        "CREATE INDEX records_refers_to ON records (refers_to) WHERE refers_to IS NOT NULL",
        "CREATE INDEX event_versions_known ON event_versions (type, subject, date, from_seq, to_seq)",
        "CREATE INDEX event_versions_dated ON event_versions (date, event_seq)",
    ]

    /// Views for psql and BI tools (docs/read-models.md); the commands read the tables.
    static let views: [String] = [
        """
        CREATE VIEW events AS
            SELECT r.seq, r.id, r.type, v.date, v.precision, r.subject, v.summary, r.recorded_at, r.sha256,
                   r.corrections, r.retracted_by, CASE WHEN v.event_seq IS NULL THEN NULL ELSE COALESCE(v.event, r.event)::jsonb END AS event
            FROM records r LEFT JOIN event_versions v ON v.event_seq = r.seq AND v.to_seq IS NULL
        """,
        """
        CREATE VIEW programs AS
            SELECT subject, name, sponsor, date AS announced, amount_value, amount_currency, amount_qualifier, horizon
            FROM event_versions WHERE type = 'program.announced' AND to_seq IS NULL
        """,
        """
        CREATE VIEW facilities AS
            SELECT v.subject, v.name, v.kind, v.operator, v.program, v.date AS announced,
                   COALESCE(v.event, r.event)::jsonb #>> '{location,city}' AS city,
                   COALESCE(v.event, r.event)::jsonb #>> '{location,region}' AS region,
                   COALESCE(v.event, r.event)::jsonb #>> '{location,country}' AS country
            FROM event_versions v JOIN records r ON r.seq = v.event_seq
            WHERE v.type = 'facility.announced' AND v.to_seq IS NULL
        """,
        """
        CREATE VIEW organization_roles AS
            SELECT o.slug, o.name, vr.role, v.subject
            FROM version_roles vr JOIN event_versions v ON v.event_seq = vr.event_seq AND v.from_seq = vr.from_seq
            JOIN organizations o ON o.slug = vr.org WHERE v.to_seq IS NULL
        """,
        """
        CREATE VIEW milestones AS
            SELECT event_seq AS seq, id, type, date, precision, subject, milestone, summary
            FROM event_versions WHERE to_seq IS NULL AND (rank > 0 OR type IN
                ('production.milestone', 'facility.paused', 'facility.resumed', 'facility.cancelled'))
        """,
        """
        CREATE VIEW targets AS
            SELECT event_seq AS seq, id, type, date, subject, milestone, due_earliest, due_latest
            FROM event_versions WHERE to_seq IS NULL AND type IN ('target.set', 'target.revised')
        """,
        """
        CREATE VIEW sources AS
            SELECT r.seq, r.id, s.value ->> 'publisher' AS publisher, s.value ->> 'url' AS url,
                   s.value ->> 'published' AS published, s.value ->> 'title' AS title
            FROM records r, jsonb_array_elements(COALESCE(r.event::jsonb -> 'sources', '[]'::jsonb)) s
        """,
    ]
}
