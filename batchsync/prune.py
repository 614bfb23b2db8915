"""``batchsync prune``: remove the local copies the state folder no longer needs (docs/housekeeping.md).

Each kind of copy is kept for its ``[retention]`` days, and beyond them whenever something still
needs it: a file not yet settled, an unresolved error, a waiting change request, the latest version
of a PO handed off (``reprocess --po`` replays from it), a write-back not yet uploaded. Ledger rows
of files stay; only ``runs`` rows nothing refers to leave the history. Nothing outside ``state_dir``
is touched: not the hand-off folder, not the server. Light: sqlite only, no polars.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchsync.errors import NothingSelected

if TYPE_CHECKING:
    from batchsync.config import Config
    from batchsync.ledger import Ledger

log = logging.getLogger("batchsync.prune")

SETTLED = ("processed", "rejected", "empty", "duplicate")  # fetched and waiting files are read again
UNSETTLED = {
    "fetched": "not processed yet: the next run reads it",
    "waiting": "waiting: its change requests are judged again from it on every run",
}
# per file, how many POs (per feed, as reprocess finds them) it holds the latest version handed off of
_LATEST_HANDED_OFF = """WITH latest AS (
    SELECT feed, po_id, max(version) AS version FROM po_versions WHERE outcome = 'handed_off' GROUP BY feed, po_id)
SELECT v.file_id, count(DISTINCT v.po_id) AS n, min(v.po_id) AS first FROM po_versions v
JOIN latest l ON l.feed = v.feed AND l.po_id = v.po_id AND l.version IS v.version
WHERE v.outcome = 'handed_off' AND v.file_id IS NOT NULL GROUP BY v.file_id"""
_UNRESOLVED = "SELECT file_id FROM integration_errors WHERE resolved_at IS NULL AND file_id IS NOT NULL"
FOLDERS = {"archive": "archive", "error_report": "reports", "writeback": "writeback"}  # under state_dir


@dataclass(frozen=True)
class PruneItem:
    """A copy (or a run's ledger row) old enough to go: to be removed, or kept with the reason."""

    kind: str  # archive | error_report | writeback | run | runs (the runs the ledger refers to, said once)
    what: str  # "archive copy of file 1 NAME", "run 7 (successful, started …)"
    reason: str  # why it goes, or why it is kept
    path: Path | None = None  # None: a ledger row
    size: int = 0
    run_id: int | None = None
    kept: bool = False

    def to_dict(self) -> dict[str, Any]:
        path = str(self.path) if self.path else None
        said = {"what": self.what, "reason": self.reason}
        return {"kind": self.kind, "path": path, "size": self.size, "run_id": self.run_id} | said


@dataclass(frozen=True)
class PrunePlan:
    state_dir: Path
    items: list[PruneItem] = field(default_factory=list)

    @property
    def remove(self) -> list[PruneItem]:
        return [i for i in self.items if not i.kept]

    @property
    def kept(self) -> list[PruneItem]:
        return [i for i in self.items if i.kept]

    @property
    def runs(self) -> list[int]:
        return [i.run_id for i in self.remove if i.run_id is not None]


@dataclass
class PruneResult:
    removed: list[PruneItem] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "PATH: why", one per copy that would not go


def plan_prune(config: Config, ledger: Ledger, now: datetime) -> PrunePlan:
    """What ``apply_prune`` would remove, and what is old enough but kept, each with the reason. Reads only."""
    days, state_dir = config.retention, config.state_dir
    items = [
        *_archive_items(ledger, state_dir, now, days.archive_days),
        *_report_items(ledger, state_dir, now, days.error_report_days),
        *_writeback_items(ledger, state_dir, now, days.writeback_days),
        *_run_items(ledger, now, days.run_history_days),
    ]
    return PrunePlan(state_dir, items)


def apply_prune(plan: PrunePlan, ledger: Ledger) -> PruneResult:
    """Remove what the plan says (plan it under the same run lock); a copy that will not go is said, not fatal."""
    result = PruneResult()
    gone = _delete_runs(ledger, plan.runs)
    result.removed += [i for i in plan.remove if i.run_id in gone]
    for item in (i for i in plan.remove if i.path is not None):
        assert item.path is not None
        try:
            item.path.unlink(missing_ok=True)
        except OSError as exc:
            result.failed.append(f"{item.path}: {exc.strerror}")
            continue
        if item.kind == "archive":  # its <sha256[:2]> folder, once empty (the next fetch makes it again)
            with contextlib.suppress(OSError):
                item.path.parent.rmdir()
        result.removed.append(item)
    return result


def state_folder_size(state_dir: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under ``state_dir``; symbolic links are not followed."""
    total = count = 0
    for folder, _, names in os.walk(state_dir):
        for name in names:
            with contextlib.suppress(OSError):  # gone meanwhile
                info = os.lstat(os.path.join(folder, name))
                if stat.S_ISREG(info.st_mode):
                    total, count = total + info.st_size, count + 1
    return total, count


def replayable(files: list[dict[str, Any]], *, skip_pruned: bool = False, warn: bool = True) -> list[dict[str, Any]]:
    """The files a replay can read. A pruned archive copy stops the replay, naming the file; with
    ``skip_pruned`` (``reprocess --po`` without ``--version``) it is passed over (``warn``: said so),
    since prune keeps the file of each PO's latest version handed off, unless no file is left."""
    missing = [f for f in files if not Path(f["archive_path"]).is_file()]
    if skip_pruned and len(missing) < len(files):
        for f in missing if warn else []:
            log.warning("%s passed over: %s", _file(f), _gone(f))
        return [f for f in files if f not in missing]
    if not missing:
        return files
    first = missing[0]
    raise NothingSelected(
        f"{_file(first)} cannot be replayed: {_gone(first)}",
        hint=f"put its bytes back at {first['archive_path']} ({_still_at(first)}) and run again",
    )


def _still_at(row: Mapping[str, Any]) -> str:
    if row.get("remote_action") == "keep":
        return f"the server still has it at {row['remote_path']}"
    if row.get("remote_archived_as"):
        return f"the server keeps it as {row['remote_archived_as']}"
    return f"from a backup; its sha256 is {row['sha256']}"


def _gone(row: Mapping[str, Any]) -> str:
    return f"its archive copy {row['archive_path']} was pruned (`batchsync prune`, retention.archive_days)"


def _archive_items(ledger: Ledger, state_dir: Path, now: datetime, days: float) -> list[PruneItem]:
    """One item per archive copy old enough: the copy is content-addressed, so several file rows may share it."""
    sharing: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in ledger.query(
        "SELECT id, name, state, archive_path, coalesce(processed_at, fetched_at) AS at FROM files ORDER BY id"
    ):
        sharing[row["archive_path"]].append(row)
    held = _held_files(ledger)
    items = []
    for text, rows in sharing.items():
        path, newest = Path(text), max(_when(r["at"]) for r in rows)
        if newest > _cutoff(now, days) or not path.is_file():  # young, or removed already
            continue
        why = [f"{_file(r)}: {n}" if len(rows) > 1 else n for r in rows for n in _needs(r, held)]
        aged = f"{'/'.join(sorted({r['state'] for r in rows}))}, {_age(now, newest)} (archive_days = {days:g})"
        what = f"archive copy of {', '.join(_file(r) for r in rows)}"
        items.append(_item("archive", what, path, state_dir, why, aged))
    return items


def _needs(row: Mapping[str, Any], held: Mapping[int, list[str]]) -> list[str]:
    unsettled = [] if row["state"] in SETTLED else [UNSETTLED.get(row["state"], f"{row['state']}: not settled")]
    return [*held.get(row["id"], []), *unsettled]


def _held_files(ledger: Ledger) -> dict[int, list[str]]:
    """Per file id, what still needs its archive copy, in words."""
    held: dict[int, list[str]] = defaultdict(list)
    for r in ledger.query(f"SELECT file_id, count(*) AS n FROM ({_UNRESOLVED}) GROUP BY file_id"):
        held[r["file_id"]].append(f"{r['n']} unresolved error(s) refer to it")
    for r in ledger.query(
        "SELECT file_id, count(*) AS n, min(id) AS first FROM change_requests WHERE status = 'waiting' "
        "AND file_id IS NOT NULL GROUP BY file_id"
    ):
        waits = "s" if r["n"] > 1 else ""
        held[r["file_id"]].append(f"change request{waits} {r['first']}{_more(r['n'])} still wait{'' if waits else 's'}")
    for r in ledger.query(_LATEST_HANDED_OFF):
        latest = f"PO {r['first']}{_more(r['n'])}"
        held[r["file_id"]].append(f"it holds the latest version handed off of {latest} (`reprocess --po` replays it)")
    return held


def _report_items(ledger: Ledger, state_dir: Path, now: datetime, days: float) -> list[PruneItem]:
    """The reports the ledger names, and those an earlier pass of a file left (a replay without errors names none)."""
    unresolved = {r["file_id"] for r in ledger.query(_UNRESOLVED)}
    files = {r["id"]: r for r in ledger.query("SELECT id, name, error_report, processed_at, fetched_at FROM files")}
    named = {os.path.normpath(r["error_report"]): r for r in files.values() if r["error_report"]}
    found = [(Path(p), r, _when(r["processed_at"] or r["fetched_at"])) for p, r in named.items()]
    folder = state_dir / "reports"
    for path in sorted(folder.glob("*.errors.csv")) if folder.is_dir() else []:
        file_id = int(path.name[:6]) if path.name[:6].isdigit() else None  # batchsync names it <file id:06d>_<name>
        if str(path) not in named and file_id in files:
            found.append((path, files[file_id], datetime.fromtimestamp(path.stat().st_mtime, UTC)))
    items = []
    for path, row, at in found:
        if at > _cutoff(now, days) or not path.is_file():
            continue
        why = ["an unresolved error is in it"] if row["id"] in unresolved else []
        aged = f"{_age(now, at)}, its errors resolved (error_report_days = {days:g})"
        items.append(_item("error_report", f"error report of {_file(row)}", path, state_dir, why, aged))
    return items


def _writeback_items(ledger: Ledger, state_dir: Path, now: datetime, days: float) -> list[PruneItem]:
    """Uploaded write-back files; one not uploaded yet is the next run's to upload, whatever its age."""
    items = []
    for r in ledger.query("SELECT name, local_path, created_at, uploaded_at FROM writebacks ORDER BY name"):
        path, at = Path(r["local_path"] or ""), _when(r["uploaded_at"] or r["created_at"])
        if not r["local_path"] or at > _cutoff(now, days) or not path.is_file():
            continue
        why = [] if r["uploaded_at"] else ["not uploaded yet: the next run uploads it"]
        aged = f"uploaded, {_age(now, at)} (writeback_days = {days:g})"
        items.append(_item("writeback", f"write-back file {r['name']}", path, state_dir, why, aged))
    return items


def _item(kind: str, what: str, path: Path, state_dir: Path, why: list[str], aged: str) -> PruneItem:
    """Only a path in its own folder of the state folder may go (as recorded: a link is not followed out of it)."""
    folder = state_dir / FOLDERS[kind]
    if not Path(os.path.normpath(path)).is_relative_to(folder):
        why = [f"outside {folder}, where batchsync keeps these: prune never touches it", *why]
    size = path.stat().st_size
    if why:
        return PruneItem(kind, what, "; ".join(why), path, size, kept=True)
    return PruneItem(kind, what, aged, path, size)


def _run_items(ledger: Ledger, now: datetime, days: float) -> list[PruneItem]:
    """Finished runs old enough that nothing refers to; never the last completed or successful one (status)."""
    runs = ledger.query("SELECT id, status, started_at FROM runs WHERE status != 'started' ORDER BY id")
    old = [r for r in runs if _when(r["started_at"]) < _cutoff(now, days)]
    [last] = ledger.query(
        "SELECT max(CASE WHEN status IN ('successful', 'errored') THEN id END) AS completed, "
        "max(CASE WHEN status = 'successful' THEN id END) AS successful FROM runs"
    )
    keep = {last["completed"]: "completed", last["successful"]: "successful"}
    referenced, held, items = _referenced_runs(ledger), [], []
    for r in old:
        said = f"run {r['id']} ({r['status']}, started {r['started_at']})"
        if r["id"] in keep:
            why = f"the last {keep[r['id']]} run (`batchsync status` shows its age)"
            items.append(PruneItem("run", said, why, run_id=r["id"], kept=True))
        elif r["id"] in referenced:
            held.append(r["id"])
        else:
            aged = f"{_age(now, _when(r['started_at']))} (run_history_days = {days:g}), nothing refers to it"
            items.append(PruneItem("run", said, aged, run_id=r["id"]))
    if held:  # one line: a year of nightly runs would be a year of lines
        ids = f"run {held[0]}" if len(held) == 1 else f"runs {held[0]} to {held[-1]}"
        what = f"{len(held)} older run(s) ({ids})"
        items.append(PruneItem("runs", what, "the ledger's files, outcomes or events refer to them", kept=True))
    return items


def _referenced_runs(ledger: Ledger) -> set[int]:
    """Run ids any other table holds (files, PO versions, errors, change requests, write-backs, events, …)."""
    found: set[int] = set()
    for table in [r["name"] for r in ledger.query("SELECT name FROM sqlite_master WHERE type = 'table'")]:
        if table in ("runs", "migrations") or table.startswith("sqlite_"):
            continue
        for column in [c["name"] for c in ledger.query(f'PRAGMA table_info("{table}")')]:
            if column.endswith("run_id"):  # run_id, resolved_run_id
                rows = ledger.query(f'SELECT DISTINCT "{column}" AS id FROM "{table}" WHERE "{column}" IS NOT NULL')
                found.update(int(r["id"]) for r in rows)
    return found


def _delete_runs(ledger: Ledger, run_ids: list[int]) -> set[int]:
    """Checked again inside the transaction: a plan holds only while its lock is held."""
    if not run_ids:
        return set()
    with ledger.transaction():
        free = set(run_ids) - _referenced_runs(ledger)
        ledger.conn.executemany("DELETE FROM runs WHERE id = ? AND status != 'started'", [(i,) for i in free])
    return free


def _file(row: Mapping[str, Any]) -> str:
    return f"file {row['id']} {row['name']}"


def _more(n: int) -> str:
    return f" and {n - 1} more" if n > 1 else ""


def _when(text: str | None) -> datetime:
    """A ledger time (ISO 8601, UTC); none at all counts as new: what has no age is not old enough to go."""
    if not text:
        return datetime.max.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cutoff(now: datetime, days: float) -> datetime:
    try:
        return now - timedelta(days=days)
    except OverflowError:  # more days than a datetime holds: kept for ever
        return datetime.min.replace(tzinfo=UTC)


def _age(now: datetime, at: datetime) -> str:
    return f"{(now - at).days} d old"
