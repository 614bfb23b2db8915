"""Discover and fetch a feed's new files (product.md §2.2–2.3).

List, skip what the ledger knows by path, size and mtime, wait until the
rest is stable, download each into the content-addressed local archive,
record it, and only then apply the remote after-action. A file whose bytes
the ledger already has under another name is recorded as a duplicate.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from batchsync import progress
from batchsync.config import FeedConfig, SourceConfig
from batchsync.errors import RemoteRefused, StateError
from batchsync.faults import checkpoint
from batchsync.handoff import sync_dir
from batchsync.ledger import Ledger
from batchsync.transfer import RemoteFile, Source, unsafe_name_reason

log = logging.getLogger("batchsync.discover")


@dataclass
class Discovery:
    fetched: int = 0
    duplicates: int = 0
    not_yet_stable: int = 0
    refused: list[str] = field(default_factory=list)  # unsafe remote names, with the reason
    unread: list[str] = field(default_factory=list)  # matching files the server would not let us read, why
    after_action_failed: list[str] = field(default_factory=list)  # archive/delete refused: retried next run

    @property
    def needs_attention(self) -> bool:
        return bool(self.refused or self.unread or self.after_action_failed)


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
    before_fetch: Callable[[], None] = lambda: None,
) -> Discovery:
    """``before_fetch`` runs once there is something to fetch, before it is: the run compiles its mappings then."""
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
            continue
        file_id, sha256, remote_done_at = row
        if remote_done_at is None:  # an earlier run stopped before it, or the server refused it
            _after_action(source, feed, entry, sha256, ledger, file_id, clock, found)
    if fresh:
        before_fetch()
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
    for entry in waiting:
        log.info("waiting: %s is still changing or younger than min_age_seconds; a later run fetches it", entry.path)
    for entry in stable:
        try:
            duplicate = _fetch_one(source, feed, entry, ledger, state_dir, run_id, clock, found)
        except RemoteRefused as exc:  # this file only: the others, and the other feeds, go on
            log.warning("left unread: %s", exc.message)
            found.unread.append(exc.message)
            continue
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
    found: Discovery,
) -> bool:
    with progress.task(f"downloading {entry.name}", entry.size):
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
    _after_action(source, feed, entry, fetched.sha256, ledger, file_id, clock, found)
    return original is not None


def _after_action(
    source: Source,
    feed: FeedConfig,
    entry: RemoteFile,
    sha256: str,
    ledger: Ledger,
    file_id: int,
    clock: Callable[[], datetime],
    found: Discovery,
) -> None:
    """Archive or delete the remote file; a refusal is kept on the file and tried again by the next run.

    The file's bytes are in the ledger already: it is processed all the same, and
    the next run, listing it again under the same path, size and time, only
    retries this step (nothing is fetched or sent twice).
    """
    archived_as = None
    try:
        if feed.after_download == "archive":
            archived_as = source.archive(entry, feed.remote_archive_dir, sha256)
        elif feed.after_download == "delete":
            source.delete(entry)
    except RemoteRefused as exc:
        ledger.record_remote_failure(file_id, exc.message, clock().isoformat())
        log.warning("%s; the file is processed all the same, and the next run tries again", exc.message)
        found.after_action_failed.append(exc.message)
        return
    ledger.mark_remote_done(file_id, clock().isoformat(), archived_as)


def wait_until_stable(
    source: Source,
    remote_dir: str,
    pattern: str,
    candidates: list[RemoteFile],
    *,
    settle_seconds: float,
    min_age_seconds: float,
    now: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[RemoteFile], list[RemoteFile]]:
    """Split candidates into files done being written and files to leave for later."""
    if not candidates:
        return [], []
    if settle_seconds > 0:
        sleep(settle_seconds)
    again = {f.name: f for f in source.list(remote_dir, pattern)}
    stable: list[RemoteFile] = []
    not_yet: list[RemoteFile] = []
    for entry in sorted(candidates, key=lambda f: f.name):
        seen = again.get(entry.name)
        unchanged = seen is not None and (seen.size, seen.mtime) == (entry.size, entry.mtime)
        # with no minimum age the clocks need not agree: a server clock ahead of ours must not hold files back
        old_enough = min_age_seconds <= 0 or now - _latest_write(entry.mtime) >= min_age_seconds
        (stable if unchanged and old_enough else not_yet).append(entry)
    return stable, not_yet


def _latest_write(mtime: int) -> int:
    """Some servers give times in whole minutes: a file of 02:05:00 may have been written until 02:05:59."""
    return mtime + 59 if mtime % 60 == 0 else mtime
