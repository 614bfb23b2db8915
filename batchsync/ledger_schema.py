"""The ledger's tables, as numbered migrations: a ledger of any earlier release is brought up to date in place.

Never edit a migration that has shipped; add one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "initial",
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY, trigger TEXT NOT NULL, feeds TEXT, status TEXT NOT NULL,
            started_at TEXT NOT NULL, finished_at TEXT, files INTEGER DEFAULT 0,
            handed_off INTEGER DEFAULT 0, rejected INTEGER DEFAULT 0, skipped INTEGER DEFAULT 0,
            errors INTEGER DEFAULT 0, message TEXT, pid INTEGER, host TEXT);
        CREATE TABLE files (
            id INTEGER PRIMARY KEY, feed TEXT NOT NULL, name TEXT NOT NULL, remote_path TEXT NOT NULL,
            size INTEGER NOT NULL, mtime INTEGER NOT NULL, sha256 TEXT NOT NULL, archive_path TEXT NOT NULL,
            state TEXT NOT NULL, reason TEXT, run_id INTEGER REFERENCES runs(id), fetched_at TEXT NOT NULL,
            processed_at TEXT, remote_action TEXT NOT NULL, remote_done_at TEXT, duplicate_of INTEGER,
            handoff_name TEXT, error_report TEXT);
        CREATE INDEX files_listing ON files(feed, remote_path, size, mtime);
        CREATE INDEX files_sha ON files(feed, sha256);
        CREATE TABLE po_versions (
            id INTEGER PRIMARY KEY, feed TEXT NOT NULL, po_id TEXT NOT NULL, version INTEGER,
            content_hash TEXT, status TEXT, decision TEXT, outcome TEXT NOT NULL, reason TEXT,
            file_id INTEGER REFERENCES files(id), run_id INTEGER REFERENCES runs(id), handoff_name TEXT,
            recorded_at TEXT NOT NULL);
        CREATE INDEX po_versions_po ON po_versions(po_id, outcome);
        CREATE TABLE integration_errors (
            id INTEGER PRIMARY KEY, file_id INTEGER REFERENCES files(id), run_id INTEGER, po_id TEXT,
            line INTEGER, record_type TEXT, "column" TEXT, "check" TEXT, value TEXT, message TEXT,
            created_at TEXT NOT NULL, resolved_at TEXT, resolved_run_id INTEGER);
        CREATE INDEX integration_errors_po ON integration_errors(po_id, resolved_at);
        CREATE TABLE handoffs (
            name TEXT PRIMARY KEY, manifest TEXT NOT NULL, file_id INTEGER, run_id INTEGER, target TEXT,
            sha256 TEXT, documents INTEGER, adopted INTEGER DEFAULT 0, created_at TEXT NOT NULL);
        CREATE TABLE writeback_rows (
            id INTEGER PRIMARY KEY, run_id INTEGER, feed TEXT, po_id TEXT NOT NULL, version INTEGER,
            field TEXT NOT NULL, text TEXT NOT NULL, created_at TEXT NOT NULL, writeback_name TEXT);
        CREATE INDEX writeback_rows_pending ON writeback_rows(writeback_name);
        CREATE TABLE writebacks (
            name TEXT PRIMARY KEY, run_id INTEGER, rows INTEGER, bytes INTEGER, sha256 TEXT,
            local_path TEXT, created_at TEXT NOT NULL, uploaded_at TEXT);
        """,
    ),
    (
        "change requests and handed-off PO lines",
        """
        CREATE TABLE change_requests (
            id TEXT PRIMARY KEY, po_id TEXT NOT NULL, version INTEGER, status TEXT NOT NULL, reason TEXT,
            first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, file_id INTEGER REFERENCES files(id),
            run_id INTEGER, handoff_name TEXT, decided_at TEXT);
        CREATE INDEX change_requests_po ON change_requests(po_id, status);
        CREATE TABLE po_lines (
            po_id TEXT NOT NULL, version INTEGER NOT NULL, line_number TEXT NOT NULL, line_id TEXT,
            quantity TEXT, received TEXT, currency TEXT, PRIMARY KEY (po_id, version, line_number));
        ALTER TABLE po_versions ADD COLUMN currency TEXT;
        ALTER TABLE runs ADD COLUMN waiting INTEGER DEFAULT 0;
        """,
    ),
    (
        "remote after-action and upload failures",
        """
        ALTER TABLE files ADD COLUMN remote_error TEXT;
        ALTER TABLE files ADD COLUMN remote_error_at TEXT;
        ALTER TABLE files ADD COLUMN remote_archived_as TEXT;
        ALTER TABLE writebacks ADD COLUMN upload_error TEXT;
        """,
    ),
    (
        "what the ERP has: fingerprints of the mapped header and lines of each version handed off",
        """
        ALTER TABLE po_versions ADD COLUMN mapped_hash TEXT;
        ALTER TABLE po_lines ADD COLUMN mapped_hash TEXT;
        ALTER TABLE po_lines ADD COLUMN source TEXT;
        """,
    ),
    (
        "what the ERP has, value by value, and the changes handed off after a version",
        """
        ALTER TABLE po_versions ADD COLUMN mapped_values TEXT;
        ALTER TABLE po_lines ADD COLUMN mapped_values TEXT;
        ALTER TABLE change_requests ADD COLUMN mapped_values TEXT;
        CREATE TABLE change_lines (
            change_id TEXT NOT NULL, line_number TEXT NOT NULL, line_change TEXT, mapped_values TEXT,
            PRIMARY KEY (change_id, line_number));
        """,
    ),
    (
        "events: what each run did to each file, in order (history --file, history of a run)",
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
            file_id INTEGER, detail TEXT);
        CREATE INDEX events_run ON events(run_id);
        CREATE INDEX events_file ON events(file_id);
        """,
    ),
    (
        "a target's further outputs beside its main file, one hand-off (mapping outputs:)",
        """
        ALTER TABLE handoffs ADD COLUMN outputs TEXT;
        """,
    ),
]
