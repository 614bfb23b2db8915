"""The ledger's events: each run's own work, file by file, in the order it happened.

``files`` and ``po_versions`` say where things stand; events say who did what when, so ``history``
lists a run with what *that* run did (fetched, processed or reprocessed, handed off, after-action
done or failed, write-back uploaded) and ``history --file`` follows one file through every run.
Light: sqlite only, no polars.
"""

from __future__ import annotations

import sqlite3
from typing import Any

FETCHED = "fetched"
DUPLICATE = "duplicate"
PROCESSED = "processed"
REPROCESSED = "reprocessed"
HANDED_OFF = "handed off"
AFTER_ACTION = "after-action"
AFTER_ACTION_FAILED = "after-action failed"
WRITTEN_BACK = "written back"
UPLOAD_FAILED = "upload failed"


def record(
    conn: sqlite3.Connection, run_id: int | None, at: str, kind: str, file_id: int | None = None, detail: str = ""
) -> None:
    """One event of the current run (none outside a run: a ledger opened by ``status`` records nothing)."""
    if run_id is not None:
        conn.execute(
            "INSERT INTO events (run_id, at, kind, file_id, detail) VALUES (?, ?, ?, ?, ?)",
            (run_id, at, kind, file_id, detail),
        )


def outcome_detail(state: str, reason: str | None, outcomes: dict[str, int], changes: dict[str, int]) -> str:
    """What processing a file came to, in words: its state, then what became of its POs or change requests."""
    said = [f"{n} PO(s) {o.replace('_', ' ')}" for o, n in sorted(outcomes.items()) if n]
    said += [f"{n} change request(s) {s}" for s, n in sorted(changes.items()) if n]
    text = state + (f": {', '.join(said)}" if said else "")
    return f"{text}; {reason}" if reason else text


def of_run(query: Any, run_id: int) -> list[dict[str, Any]]:
    return query(
        "SELECT e.at, e.kind, e.file_id, f.name AS file, e.detail FROM events e LEFT JOIN files f ON f.id = e.file_id "
        "WHERE e.run_id = ? ORDER BY e.id",
        [run_id],
    )


def of_file(query: Any, file: str) -> list[dict[str, Any]]:
    """Every event of the file named (ledger id or name; a name fetched twice is both files)."""
    by = "f.id = ?" if file.isdigit() else "f.name = ?"
    return query(
        "SELECT e.run_id, e.at, e.kind, e.file_id, f.name AS file, e.detail FROM events e JOIN files f "
        f"ON f.id = e.file_id WHERE {by} ORDER BY e.id",
        [int(file) if file.isdigit() else file],
    )
