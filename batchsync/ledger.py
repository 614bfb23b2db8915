"""The ledger: SQLite through sqlite-utils, WAL, numbered migrations.

It mirrors Coupa's monitoring model (coupa-flat-files.md §6): runs with a
status and counts, one record per file and per PO version with its outcome,
integration errors that stay unresolved until a later version of the PO is
handed off, and the write-back rows with the file that carried them. Every
state change is one transaction.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchsync import ledger_events as events
from batchsync.errors import StateError
from batchsync.ledger_schema import MIGRATIONS

log = logging.getLogger("batchsync.ledger")

if TYPE_CHECKING:
    import polars as pl
    import sqlite_utils
else:
    from batchsync.lazy import LazyModule

    pl = LazyModule("polars")  # status and history read the ledger without polars (start-up, issue 12)

# per wanted PO, its highest handed-off version and that version's currency and fingerprint
# (SQLite returns a bare column from the row that holds the max()); only PO feeds record po_versions
_LATEST_HANDED_OFF = """WITH latest AS (
    SELECT v.po_id, max(v.version) AS po_version, v.currency AS po_currency, v.mapped_hash AS po_mapped_hash,
        v.mapped_values AS po_mapped_values, v.handoff_name AS po_handoff
    FROM po_versions v JOIN wanted w ON w.id = v.po_id
    WHERE v.outcome = 'handed_off' GROUP BY v.po_id)"""

# the accepted change requests handed off after the PO version the ERP has, in hand-off order
_CHANGES_SINCE = f"""{_LATEST_HANDED_OFF}, since AS (
    SELECT c.id AS change_id, c.po_id, c.mapped_values, hc.rowid AS seq
    FROM change_requests c JOIN latest l ON l.po_id = c.po_id
    JOIN handoffs hc ON hc.name = c.handoff_name JOIN handoffs hv ON hv.name = l.po_handoff
    WHERE c.status = 'accepted' AND hc.rowid > hv.rowid)"""


@dataclass(frozen=True)
class FileOutcome:
    """Everything one processed file changes in the ledger, written in one transaction."""

    file_id: int
    run_id: int
    feed: str
    state: str  # processed | rejected | empty | waiting
    errors: pl.DataFrame  # validate.ERROR_SCHEMA
    now: str
    reason: str | None = None  # why the file was rejected whole
    # po_id, version, content_hash, status, decision, outcome, reason, handoff_name (a PO feed's file)
    po_versions: pl.DataFrame | None = None
    writeback: pl.DataFrame | None = None  # po_id, version, field, text: what Coupa is told
    handoff: dict[str, Any] | None = None
    error_report: str | None = None
    po_lines: pl.DataFrame | None = None  # po_id, version, line_number, line_id, quantity, received, currency,
    # mapped_hash, source (erp_state.py)
    change_requests: pl.DataFrame | None = None  # id, po_id, version, status, reason, handoff_name, mapped_values
    change_lines: pl.DataFrame | None = None  # change_id, line_number, line_change, mapped_values (handed off)


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id: int | None = None  # the run this connection works for: its events carry it
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fresh = not path.exists()
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            if fresh:
                os.chmod(path, 0o600)
            self.conn.execute("PRAGMA journal_mode = wal")
            self.conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StateError(f"ledger {path}: {exc}") from exc

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils on the same connection, imported when first needed: a nothing-to-do run, status and
        history read and write through plain SQL and never load it (bench S5)."""
        import sqlite_utils

        # no sqlite-utils plugins: nothing installed beside us may change the ledger's connection
        return sqlite_utils.Database(self.conn, execute_plugins=False)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One state change; inside another (sqlite-utils' own writes too) it is a savepoint."""
        nested = self.conn.in_transaction
        self.conn.execute("SAVEPOINT ledger" if nested else "BEGIN")
        try:
            yield
            self.conn.execute("RELEASE SAVEPOINT ledger" if nested else "COMMIT")
        except BaseException:
            if not self.conn.in_transaction:  # an error such as a failed COMMIT may have ended it already
                raise
            if nested:
                self.conn.execute("ROLLBACK TO SAVEPOINT ledger")
                self.conn.execute("RELEASE SAVEPOINT ledger")
            else:
                self.conn.execute("ROLLBACK")
            raise

    def _migrate(self) -> None:
        self.conn.execute("CREATE TABLE IF NOT EXISTS migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
        done = {row[0] for row in self.conn.execute("SELECT id FROM migrations").fetchall()}
        pending = [n for n in range(1, len(MIGRATIONS) + 1) if n not in done]
        if pending and done:  # a ledger of an earlier release: keep it as it was before changing it
            self._copy_aside(pending[0])
        for number, (name, sql) in enumerate(MIGRATIONS, start=1):
            if number in done:
                continue
            with self.transaction():
                for statement in filter(str.strip, sql.split(";")):
                    self.conn.execute(statement)
                self.conn.execute("INSERT INTO migrations VALUES (?, ?, datetime('now'))", [number, name])

    def _copy_aside(self, first_pending: int) -> None:
        """SQLite's online backup: a consistent copy even with the WAL in use; never overwrites an earlier one."""
        target = self.path.with_name(f"{self.path.name}.before-migration-{first_pending}")
        if target.exists():
            return
        copy = sqlite3.connect(target)
        try:
            self.conn.backup(copy)
        finally:
            copy.close()
        os.chmod(target, 0o600)
        log.warning(
            "ledger %s is upgraded from migration %d on; as it was, it is kept at %s", self.path, first_pending, target
        )

    def _table(self, name: str) -> sqlite_utils.db.Table:
        return self.db.table(name)

    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params or [])
        names = [c[0] for c in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _update(self, table: str, key: str, key_value: Any, values: dict[str, Any]) -> None:
        # plain SQL for the writes every run makes; the names are this module's own, never input
        assignments = ", ".join(f"{name} = ?" for name in values)
        self.conn.execute(f"UPDATE {table} SET {assignments} WHERE {key} = ?", [*values.values(), key_value])

    # runs --------------------------------------------------------------
    def close_interrupted_runs(self, now: str) -> list[int]:
        """Runs still 'started' while we hold the lock were killed: say so, so history does not lie."""
        stale = [r["id"] for r in self.query("SELECT id FROM runs WHERE status = 'started'")]
        with self.transaction():
            for run_id in stale:
                self._update(
                    "runs",
                    "id",
                    run_id,
                    {"status": "failed", "finished_at": now, "message": "interrupted: the process ended mid-run"},
                )
        return stale

    def start_run(self, trigger: str, feeds: list[str], now: str, pid: int, host: str) -> int:
        row = {
            "trigger": trigger,
            "feeds": ",".join(feeds),
            "status": "started",
            "started_at": now,
            "pid": pid,
            "host": host,
        }
        with self.transaction():
            marks = ", ".join("?" * len(row))
            cursor = self.conn.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({marks})", list(row.values()))
            self.run_id = int(cursor.lastrowid or 0)
            return self.run_id

    def finish_run(self, run_id: int, status: str, counts: dict[str, int], message: str | None, now: str) -> None:
        with self.transaction():
            self._update("runs", "id", run_id, {"status": status, "finished_at": now, "message": message, **counts})

    # files -------------------------------------------------------------
    def listing_index(self, feed: str) -> dict[tuple[str, int, int], tuple[int, str, str | None]]:
        """Per (remote path, size, mtime): (id, sha256, remote_done_at) of the file the ledger has.

        Plain tuples: the nothing-to-do run builds one entry per known file (10,000 and more)."""
        rows = self.conn.execute(
            "SELECT remote_path, size, mtime, id, sha256, remote_done_at FROM files WHERE feed = ?", [feed]
        ).fetchall()
        return {(path, size, mtime): (file_id, sha, done) for path, size, mtime, file_id, sha, done in rows}

    def first_file_with_sha(self, feed: str, sha256: str) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT * FROM files WHERE feed = ? AND sha256 = ? AND state != 'duplicate' ORDER BY id LIMIT 1",
            [feed, sha256],
        )
        return rows[0] if rows else None

    def record_fetch(self, row: dict[str, Any]) -> int:
        with self.transaction():
            file_id = int(self._table("files").insert(row).last_pk or 0)
            if row.get("state") == "duplicate":
                kind, detail = events.DUPLICATE, f"the same bytes as file {row.get('duplicate_of')}: not processed"
            else:
                kind, detail = events.FETCHED, f"{row['remote_path']} ({row['size']:,} bytes)"
            events.record(self.conn, self.run_id, row["fetched_at"], kind, file_id, detail)
            return file_id

    def mark_remote_done(self, file_id: int, now: str, archived_as: str | None = None) -> None:
        with self.transaction():
            done = {"remote_done_at": now, "remote_error": None, "remote_archived_as": archived_as}
            self._table("files").update(file_id, done)
            action = self._table("files").get(file_id)["remote_action"]
            said = {"archive": f"archived on the server as {archived_as}", "delete": "deleted from the server"}
            detail = said.get(action, "left on the server (after_download = keep)")
            events.record(self.conn, self.run_id, now, events.AFTER_ACTION, file_id, detail)

    def record_remote_failure(self, file_id: int, reason: str, now: str) -> None:
        """The after-action failed: kept on the file until a later run's attempt works."""
        with self.transaction():
            self._table("files").update(file_id, {"remote_error": reason, "remote_error_at": now})
            events.record(self.conn, self.run_id, now, events.AFTER_ACTION_FAILED, file_id, reason)

    def files_to_process(self, feed: str) -> list[dict[str, Any]]:
        """New files, and files with change requests still waiting (retried from the local archive)."""
        return self.query(
            "SELECT * FROM files WHERE feed = ? AND state IN ('fetched', 'waiting') ORDER BY name, id", [feed]
        )

    def files_for_replay(
        self, file: str | None = None, run: int | None = None, po: str | None = None, version: int | None = None
    ) -> list[dict[str, Any]]:
        """Files to replay: one by id or name, those a run fetched or processed, or those that carried a PO."""
        if file is not None:
            by = "id = ?" if file.isdigit() else "name = ?"
            return self.query(f"SELECT * FROM files WHERE {by} AND state != 'duplicate' ORDER BY id", [file])
        if run is not None:
            return self.query("SELECT * FROM files WHERE run_id = ? AND state != 'duplicate' ORDER BY name, id", [run])
        where = "po_id = ?" + (" AND version = ?" if version is not None else "")
        params: list[Any] = [po] + ([version] if version is not None else [])
        return self.query(
            f"SELECT * FROM files WHERE id IN (SELECT file_id FROM po_versions WHERE {where}) ORDER BY name, id", params
        )

    def handoff_count(self, file_id: int, like: str = "%") -> int:
        rows = self.query("SELECT count(*) AS n FROM handoffs WHERE file_id = ? AND name LIKE ?", [file_id, like])
        return int(rows[0]["n"])

    def handoffs_in_run(self, run_id: int) -> int:
        rows = self.query("SELECT count(*) AS n FROM handoffs WHERE run_id = ?", [run_id])
        return int(rows[0]["n"])

    def handed_off_versions(self, feed: str, po_ids: list[str]) -> pl.DataFrame:
        """Per PO the highest version handed off, with its content hash."""
        schema = {"id": pl.String, "known_version": pl.Int64, "known_hash": pl.String}
        self._want(po_ids)
        rows = self.conn.execute(
            """SELECT v.po_id, v.version, v.content_hash FROM po_versions v JOIN wanted w ON w.id = v.po_id
               WHERE v.feed = ? AND v.outcome = 'handed_off' ORDER BY v.po_id, v.version, v.id""",
            [feed],
        ).fetchall()
        frame = pl.DataFrame(rows, schema=schema, orient="row")
        return frame.group_by("id", maintain_order=True).last()

    def record_outcome(self, outcome: FileOutcome) -> None:
        with self.transaction():
            self._insert_outcome(outcome)

    def _insert_outcome(self, o: FileOutcome) -> None:
        if o.po_versions is not None and o.po_versions.height:
            versions = o.po_versions.with_columns(
                pl.lit(o.feed).alias("feed"),
                pl.lit(o.file_id).alias("file_id"),
                pl.lit(o.run_id).alias("run_id"),
                pl.lit(o.now).alias("recorded_at"),
            )
            self._insert_frame("po_versions", versions)
            handed = versions.filter(pl.col("outcome").is_in(["handed_off", "unchanged"]))["po_id"].to_list()
            self._resolve_errors(handed, o.run_id, o.now)
        errors = (
            o.errors.drop("file")
            .rename({"doc_id": "po_id"})
            .with_columns(
                pl.lit(o.file_id).alias("file_id"), pl.lit(o.run_id).alias("run_id"), pl.lit(o.now).alias("created_at")
            )
        )
        self._insert_frame("integration_errors", errors)
        if o.writeback is not None and o.writeback.height:
            told = (pl.lit(o.run_id).alias("run_id"), pl.lit(o.feed).alias("feed"), pl.lit(o.now).alias("created_at"))
            self._insert_frame("writeback_rows", o.writeback.with_columns(*told))
        if o.po_lines is not None and o.po_lines.height:
            self._insert_frame("po_lines", o.po_lines, verb="INSERT OR REPLACE")
        if o.change_requests is not None and o.change_requests.height:
            self._record_changes(o.change_requests, o.file_id, o.run_id, o.now)
            accepted = o.change_requests.filter(pl.col("status") == "accepted")["po_id"].to_list()
            self._resolve_errors(accepted, o.run_id, o.now, check="change_rule")
        if o.change_lines is not None:
            self._insert_frame("change_lines", o.change_lines, verb="INSERT OR REPLACE")
        if o.handoff:
            self._table("handoffs").insert(o.handoff, replace=True)
        self._outcome_events(o)
        update = {
            "state": o.state,
            "reason": o.reason,
            "processed_at": o.now,
            "run_id": o.run_id,
            "error_report": o.error_report,
        }
        if o.handoff:
            update["handoff_name"] = o.handoff["name"]
        self._table("files").update(o.file_id, update)

    def _outcome_events(self, o: FileOutcome) -> None:
        trigger = self._table("runs").get(o.run_id)["trigger"]
        outcomes, statuses = _counts(o.po_versions, "outcome"), _counts(o.change_requests, "status")
        kind = events.REPROCESSED if trigger == "reprocess" else events.PROCESSED
        detail = events.outcome_detail(o.state, o.reason, outcomes, statuses)
        events.record(self.conn, o.run_id, o.now, kind, o.file_id, detail)
        if o.handoff:
            handed = f"{o.handoff['name']} ({o.handoff.get('documents')} document(s))"
            events.record(self.conn, o.run_id, o.now, events.HANDED_OFF, o.file_id, handed)

    def _insert_frame(self, table: str, frame: pl.DataFrame, verb: str = "INSERT", upsert_on: str = "") -> None:
        """Rows straight from the frame: building a dict per row cost seconds for a large file.

        ``upsert_on``: the key column; on a conflict every other column is updated, ``first_seen`` excepted.
        """
        if frame.height == 0:
            return
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        marks = ", ".join("?" * frame.width)
        conflict = ""
        if upsert_on:
            kept = {upsert_on, "first_seen"}
            updates = ", ".join(f'"{c}" = excluded."{c}"' for c in frame.columns if c not in kept)
            conflict = f' ON CONFLICT("{upsert_on}") DO UPDATE SET {updates}'
        sql = f'{verb} INTO "{table}" ({columns}) VALUES ({marks}){conflict}'
        self.conn.executemany(sql, frame.iter_rows())

    def _resolve_errors(self, po_ids: list[str], run_id: int, now: str, check: str | None = None) -> None:
        """A later version handed off resolves the PO's earlier integration errors (seed 002); an accepted
        change request resolves the PO's rejected change requests (``check``)."""
        only = ' AND "check" = ?' if check else ""
        self.conn.executemany(
            "UPDATE integration_errors SET resolved_at = ?, resolved_run_id = ? "
            f"WHERE po_id = ? AND resolved_at IS NULL{only}",
            [(now, run_id, p, *([check] if check else [])) for p in po_ids],
        )

    # change requests ---------------------------------------------------
    def _record_changes(self, changes: pl.DataFrame, file_id: int, run_id: int, now: str) -> None:
        """Upsert the change requests, keeping when each was first seen; a newer one supersedes a waiting older one."""
        rows = changes.with_columns(
            pl.lit(file_id).alias("file_id"),
            pl.lit(run_id).alias("run_id"),
            pl.lit(now).alias("first_seen"),
            pl.lit(now).alias("last_seen"),
            pl.when(pl.col("status") != "waiting").then(pl.lit(now)).alias("decided_at"),
        )
        self._insert_frame("change_requests", rows, upsert_on="id")
        self.conn.executemany(
            "UPDATE change_requests SET status = 'superseded', decided_at = ?, reason = ? "
            "WHERE po_id = ? AND status = 'waiting' AND CAST(id AS INTEGER) < CAST(? AS INTEGER)",
            [(now, f"superseded by change request {c}", po, c) for c, po in rows.select("id", "po_id").iter_rows()],
        )

    def change_requests(self, ids: list[str]) -> pl.DataFrame:
        schema = {"id": pl.String, "known_status": pl.String, "first_seen": pl.String}
        self._want(ids)
        rows = self.conn.execute(
            "SELECT c.id, c.status, c.first_seen FROM change_requests c JOIN wanted w ON w.id = c.id"
        ).fetchall()
        return pl.DataFrame(rows, schema=schema, orient="row")

    def handed_off_pos(self, po_ids: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The latest handed-off version of each PO (po_id, po_version, po_currency) and that version's lines."""
        self._want(po_ids)
        heads = self.conn.execute(f"{_LATEST_HANDED_OFF} SELECT po_id, po_version, po_currency FROM latest").fetchall()
        lines = self.conn.execute(
            f"""{_LATEST_HANDED_OFF} SELECT l.po_id, l.line_number, l.line_id, l.quantity, l.received, l.currency
                FROM po_lines l JOIN latest h ON h.po_id = l.po_id AND h.po_version = l.version"""
        ).fetchall()
        head_schema = {"po_id": pl.String, "po_version": pl.Int64, "po_currency": pl.String}
        line_schema = {c: pl.String for c in ("po_id", "line_number", "line_id", "quantity", "received", "currency")}
        return pl.DataFrame(heads, schema=head_schema, orient="row"), pl.DataFrame(
            lines, schema=line_schema, orient="row"
        )

    def erp_state(self, po_ids: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """What the ERP has of each PO: its latest handed-off version plus the changes handed off after it.

        Headers and lines as ``erp_state.HEAD_SCHEMA`` and ``LINE_SCHEMA``: the hash is null for a version
        handed off before fingerprints were kept, the values for one handed off before they were.
        """
        from batchsync.erp_state import HEAD_SCHEMA, LINE_SCHEMA, apply_changes  # polars: not for status

        self._want(po_ids)
        heads = self.query(
            f"""{_LATEST_HANDED_OFF} SELECT po_id AS id, po_version AS _erp_version, po_mapped_hash AS _erp_hash,
                po_mapped_values AS _erp_values FROM latest"""
        )
        lines = self.query(
            f"""{_LATEST_HANDED_OFF} SELECT l.po_id AS _erp_po, l.line_number AS _erp_line, l.mapped_hash AS _erp_hash,
                l.source AS _erp_source, l.mapped_values AS _erp_values
                FROM po_lines l JOIN latest h ON h.po_id = l.po_id AND h.po_version = l.version"""
        )
        changes = self.query(f"{_CHANGES_SINCE} SELECT change_id, po_id, mapped_values FROM since ORDER BY seq")
        change_lines = self.query(
            f"""{_CHANGES_SINCE} SELECT c.change_id, c.line_number, c.line_change, c.mapped_values
                FROM change_lines c JOIN since s ON s.change_id = c.change_id"""
        )
        heads, lines = apply_changes(heads, lines, changes, change_lines)
        return pl.DataFrame(heads, schema=HEAD_SCHEMA, orient="row"), pl.DataFrame(
            lines, schema=LINE_SCHEMA, orient="row"
        )

    def _want(self, ids: list[str]) -> None:
        """Put the ids a query is about in a temporary table: one join, whatever their number."""
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id TEXT PRIMARY KEY)")
        self.conn.execute("DELETE FROM wanted")
        self.conn.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(i,) for i in ids])

    def waiting_changes(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM change_requests WHERE status = 'waiting' ORDER BY first_seen, id")

    # write-back --------------------------------------------------------
    def has_pending_writeback_rows(self) -> bool:
        return bool(self.query("SELECT 1 FROM writeback_rows WHERE writeback_name IS NULL LIMIT 1"))

    def pending_writeback_rows(self) -> pl.DataFrame:
        rows = self.query("SELECT id, po_id, field, text FROM writeback_rows WHERE writeback_name IS NULL ORDER BY id")
        return pl.DataFrame(rows, schema={"id": pl.Int64, "po_id": pl.String, "field": pl.String, "text": pl.String})

    def assign_writeback(self, files: list[dict[str, Any]], row_ids: list[list[int]]) -> None:
        with self.transaction():
            for file, ids in zip(files, row_ids, strict=True):
                self._table("writebacks").insert(file)
                self.conn.executemany(
                    "UPDATE writeback_rows SET writeback_name = ? WHERE id = ?", [(file["name"], i) for i in ids]
                )

    def writebacks_to_upload(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM writebacks WHERE uploaded_at IS NULL ORDER BY name")

    def mark_uploaded(self, name: str, now: str) -> None:
        with self.transaction():
            self._table("writebacks").update(name, {"uploaded_at": now, "upload_error": None})
            rows = self._table("writebacks").get(name)["rows"]
            events.record(self.conn, self.run_id, now, events.WRITTEN_BACK, None, f"{name} ({rows} row(s))")

    def record_upload_failure(self, name: str, reason: str, now: str) -> None:
        with self.transaction():
            self._table("writebacks").update(name, {"upload_error": reason})
            events.record(self.conn, self.run_id, now, events.UPLOAD_FAILED, None, f"{name}: {reason}")


def _counts(frame: pl.DataFrame | None, column: str) -> dict[str, int]:
    """How many rows hold each value of ``column``; none for a file without such rows."""
    return dict(frame[column].value_counts().iter_rows()) if frame is not None and frame.height else {}
