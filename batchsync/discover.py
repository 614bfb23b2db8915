"""Discover and fetch a feed's new files (product.md §2.2–2.3).

List, skip what the ledger knows by path, size and mtime, wait until the
rest is stable, download each into the content-addressed local archive,
record it, and only then apply the remote after-action. A file whose bytes
the ledger already has under another name is recorded as a duplicate.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from batchsync.config import FeedConfig, SourceConfig
from batchsync.errors import StateError
from batchsync.faults import checkpoint
from batchsync.handoff import sync_dir
from batchsync.ledger import Ledger
from batchsync.transfer import RemoteFile, Source, unsafe_name_reason, wait_until_stable

log = logging.getLogger("batchsync.discover")


@dataclass
class Discovery:
    fetched: int = 0
    duplicates: int = 0
    not_yet_stable: int = 0
    refused: list[str] = field(default_factory=list)  # unsafe remote names, with the reason


def remove_stale_staging(state_dir: Path) -> list[str]:
    """Partial downloads of an interrupted run: never recorded, safe to delete under the run lock."""
    staging = state_dir / "staging"
    stale = [p for p in staging.iterdir() if p.is_file()] if staging.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return [p.name for p in stale]


def archive_path(state_dir: Path, sha256: str) -> Path:
    return state_dir / "archive" / sha256[:2] / sha256


def discover(
    source: Source,
    feed: FeedConfig,
    source_config: SourceConfig,
    ledger: Ledger,
    state_dir: Path,
    *,
    run_id: int,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> Discovery:
    found = Discovery()
    listed = source.list(feed.remote_dir, feed.pattern)
    checkpoint("after-list")
    known = ledger.listing_index(feed.name)
    fresh: list[RemoteFile] = []
    for entry in listed:
        reason = unsafe_name_reason(entry.name)
        if reason:
            found.refused.append(f"{entry.path!r}: {reason}")
            log.warning("refusing remote file %r in %s: %s", entry.name, feed.remote_dir, reason)
            continue
        row = known.get((entry.path, entry.size, entry.mtime))
        if row is None:
            fresh.append(entry)
        elif row["remote_done_at"] is None:
            _after_action(source, feed, entry, ledger, row["id"], clock)  # an earlier run stopped before it
    stable, waiting = wait_until_stable(
        source,
        feed.remote_dir,
        feed.pattern,
        fresh,
        settle_seconds=source_config.settle_seconds,
        min_age_seconds=source_config.min_age_seconds,
        now=clock().timestamp(),
        sleep=sleep,
    )
    found.not_yet_stable = len(waiting)
    for entry in stable:
        duplicate = _fetch_one(source, feed, entry, ledger, state_dir, run_id, clock)
        found.fetched += 1
        found.duplicates += int(duplicate)
    return found


def _fetch_one(
    source: Source,
    feed: FeedConfig,
    entry: RemoteFile,
    ledger: Ledger,
    state_dir: Path,
    run_id: int,
    clock: Callable[[], datetime],
) -> bool:
    fetched = source.fetch(entry, state_dir / "staging")
    target = archive_path(state_dir, fetched.sha256)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(fetched.path, target) if not target.exists() else fetched.path.unlink()
        sync_dir(target.parent)
    except OSError as exc:
        raise StateError(f"cannot move {entry.name} into the local archive {target.parent}: {exc.strerror}") from exc
    checkpoint("after-download")
    original = ledger.first_file_with_sha(feed.name, fetched.sha256)
    now = clock().isoformat()
    row: dict[str, Any] = {
        "feed": feed.name,
        "name": entry.name,
        "remote_path": entry.path,
        "size": fetched.size,
        "mtime": entry.mtime,
        "sha256": fetched.sha256,
        "archive_path": str(target),
        "state": "duplicate" if original else "fetched",
        "run_id": run_id,
        "fetched_at": now,
        "remote_action": feed.after_download,
        "duplicate_of": original["id"] if original else None,
        "reason": f"same bytes as {original['name']} (file {original['id']}), already processed" if original else None,
    }
    file_id = ledger.record_fetch(row)
    checkpoint("after-fetch-record")
    log.info(
        "fetched %s (%d bytes, sha256 %s)%s",
        entry.path,
        fetched.size,
        fetched.sha256[:12],
        " - duplicate" if original else "",
    )
    _after_action(source, feed, entry, ledger, file_id, clock)
    return original is not None


def _after_action(
    source: Source, feed: FeedConfig, entry: RemoteFile, ledger: Ledger, file_id: int, clock: Callable[[], datetime]
) -> None:
    if feed.after_download == "archive":
        source.archive(entry, feed.remote_archive_dir)
    elif feed.after_download == "delete":
        source.delete(entry)
    ledger.mark_remote_done(file_id, clock().isoformat())
