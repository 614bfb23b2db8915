"""Read-only views of the ledger for people and monitors: status, history, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from batchsync import ledger_events as events
from batchsync.ledger import Ledger


def status(ledger: Ledger, now: datetime, runs: int = 5) -> dict[str, Any]:
    """Last runs, files per state, rejected files, unresolved errors, and how old the last success is."""
    last_ok = ledger.query(
        "SELECT id, finished_at FROM runs WHERE status IN ('successful', 'errored') ORDER BY id DESC LIMIT 1"
    )
    age = None
    if last_ok and last_ok[0]["finished_at"]:
        age = int((now - datetime.fromisoformat(last_ok[0]["finished_at"])).total_seconds())
    last_success = ledger.query("SELECT id, finished_at FROM runs WHERE status = 'successful' ORDER BY id DESC LIMIT 1")
    return {
        "last_successful_run": _with_age(last_success[0], now) if last_success else None,
        "last_runs": ledger.query(f"SELECT * FROM runs ORDER BY id DESC LIMIT {int(runs)}"),
        "last_completed_run": {**last_ok[0], "age_seconds": age} if last_ok else None,
        "files_by_state": {
            r["state"]: r["n"]
            for r in ledger.query("SELECT state, count(*) AS n FROM files GROUP BY state ORDER BY state")
        },
        "rejected_files": ledger.query(
            "SELECT id, feed, name, reason, error_report, processed_at FROM files "
            "WHERE state = 'rejected' ORDER BY id DESC"
        ),
        "waiting_changes": [
            {**c, "age_seconds": int((now - datetime.fromisoformat(c["first_seen"])).total_seconds())}
            for c in ledger.waiting_changes()
        ],
        "unresolved_errors": ledger.query("SELECT count(*) AS n FROM integration_errors WHERE resolved_at IS NULL")[0][
            "n"
        ],
        "writeback_rows_pending": ledger.query(
            "SELECT count(*) AS n FROM writeback_rows r LEFT JOIN writebacks w ON w.name = r.writeback_name "
            "WHERE w.uploaded_at IS NULL"
        )[0]["n"],
    }


def feeds_run(ledger: Ledger) -> set[str]:
    """Every feed name a run of this ledger included."""
    return {name for row in ledger.query("SELECT DISTINCT feeds FROM runs") for name in (row["feeds"] or "").split(",")}


def history(
    ledger: Ledger, feed: str | None = None, since: datetime | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Runs, newest first, each with its own events and the files they touched."""
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    if feed:
        where.append("instr(',' || feeds || ',', ',' || ? || ',') > 0")
        params.append(feed)
    if since:
        where.append("started_at >= ?")  # both sides UTC ISO 8601, so text order is time order
        params.append(since.astimezone(UTC).isoformat())
    runs = ledger.query(f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", [*params, limit])
    for run in runs:
        run["events"] = events.of_run(ledger.query, run["id"])
        touched = sorted({e["file_id"] for e in run["events"] if e["file_id"] is not None})
        if run["events"]:
            marks = ",".join("?" * len(touched))
            sql = f"SELECT id, feed, name, state, reason, handoff_name FROM files WHERE id IN ({marks}) ORDER BY id"
            run["files"] = ledger.query(sql, touched) if touched else []
        else:  # a run of a release before events: the files it was the last to touch
            run["files"] = ledger.query(
                "SELECT id, feed, name, state, reason, handoff_name FROM files WHERE run_id = ? ORDER BY id",
                [run["id"]],
            )
    return runs


def file_history(ledger: Ledger, file: str) -> list[dict[str, Any]]:
    """One file (ledger id or name) through every run: each event, oldest first."""
    return events.of_file(ledger.query, file)


def po_history(ledger: Ledger, po_id: str) -> list[dict[str, Any]]:
    """One PO through every run, oldest first: each version's outcome, each change request, each problem
    found, each status told to Coupa."""
    parts = [
        """SELECT v.recorded_at AS at, v.run_id, 'version ' || coalesce(v.version, '?') || ': ' || v.outcome
               || CASE WHEN v.decision IS NOT v.outcome THEN coalesce(' (' || v.decision || ')', '') ELSE '' END
               AS what,
               coalesce(v.handoff_name, v.reason, '') AS detail, f.name AS file
           FROM po_versions v LEFT JOIN files f ON f.id = v.file_id WHERE v.po_id = ?""",
        """SELECT coalesce(c.decided_at, c.last_seen) AS at, c.run_id, 'change ' || c.id || ': ' || c.status AS what,
               coalesce(c.handoff_name, c.reason, '') AS detail, f.name AS file
           FROM change_requests c LEFT JOIN files f ON f.id = c.file_id WHERE c.po_id = ?""",
        """SELECT e.created_at AS at, e.run_id, 'error' || CASE WHEN e.resolved_at IS NULL THEN '' ELSE ' (resolved)'
               END AS what, coalesce(e."column" || ': ', '') || e.message AS detail, f.name AS file
           FROM integration_errors e LEFT JOIN files f ON f.id = e.file_id WHERE e.po_id = ?""",
        """SELECT created_at AS at, run_id, 'told Coupa (' || field || ')' AS what, text AS detail,
               writeback_name AS file FROM writeback_rows WHERE po_id = ?""",
    ]
    return ledger.query(" UNION ALL ".join(parts) + " ORDER BY at, run_id", [po_id] * len(parts))


def errors(
    ledger: Ledger,
    file_id: int | str | None = None,
    po_id: str | None = None,
    unresolved: bool = False,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Integration errors, newest first."""
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    if file_id is not None:  # the ledger id, or the file's name (as reprocess --file takes it)
        by_id = isinstance(file_id, int) or str(file_id).isdigit()
        where.append("e.file_id = ?" if by_id else "f.name = ?")
        params.append(int(file_id) if by_id else file_id)
    if po_id:
        where.append("e.po_id = ?")
        params.append(po_id)
    if unresolved:
        where.append("e.resolved_at IS NULL")
    return ledger.query(
        f"""SELECT e.id, e.created_at, f.name AS file, e.file_id, e.line, e.record_type, e.po_id, e."column", e."check",
                   e.value, e.message, e.resolved_at
            FROM integration_errors e LEFT JOIN files f ON f.id = e.file_id
            WHERE {" AND ".join(where)} ORDER BY e.id DESC LIMIT ?""",
        [*params, limit],
    )


def _with_age(run: dict[str, Any], now: datetime) -> dict[str, Any]:
    age = int((now - datetime.fromisoformat(run["finished_at"])).total_seconds()) if run["finished_at"] else None
    return {**run, "age_seconds": age}
