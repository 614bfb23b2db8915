"""One run (product.md §2): lock, discover and fetch, process, write back, report.

The config is read first; one source connection serves the run. Mappings and templates are
compiled (feeds.py) when the run first has a file to fetch or process, before anything is fetched:
a run with nothing to do never imports polars, pandera or jinja2.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchsync import progress
from batchsync.clock import utcnow
from batchsync.config import Config, FeedConfig, SourceConfig, ledger_path
from batchsync.discover import Discovery, discover, remove_stale_staging
from batchsync.dryrun import DryRunSource, no_server, scratch_config, would_hand_off
from batchsync.errors import (
    BatchsyncError,
    MissingFolder,
    NothingSelected,
    RemoteRefused,
    StateError,
)
from batchsync.faults import checkpoint
from batchsync.feeds import RunFeeds
from batchsync.handoff import remove_stale_temporaries
from batchsync.ledger import Ledger
from batchsync.lock import RunLock
from batchsync.logs import log_context
from batchsync.prune import replayable
from batchsync.run_summary import FeedSummary, RunSummary
from batchsync.sources import open_source
from batchsync.transfer import Source

if TYPE_CHECKING:
    from batchsync.process import PreparedFeed, Read, Replay

    _Ahead = tuple[dict[str, Any], Read | None]

log = logging.getLogger("batchsync.pipeline")

READ_AHEAD_MAX_BYTES = 32 << 20  # larger files are parsed when their turn comes (memory)
Clock = Callable[[], datetime]
Work = Callable[["_Session"], None]
Connect = Callable[[SourceConfig], AbstractContextManager[Source]]  # open_source, or no_server for a dry replay


@dataclass
class _Session:
    """What one run's work needs: the config, ledger, open source, run id, clock, and per-feed summaries."""

    config: Config
    feeds: RunFeeds
    ledger: Ledger
    source: Source
    run_id: int
    clock: Clock
    summaries: dict[str, FeedSummary]

    def process(
        self, feed: PreparedFeed, file_row: dict[str, Any], replay: Replay | None = None, ahead: Read | None = None
    ) -> None:
        from batchsync.process import process_file

        summary = self.summaries[feed.name]
        with log_context(file=file_row["name"]):
            result = process_file(self.config, feed, self.ledger, file_row, self.run_id, self.clock(), replay, ahead)
        summary.files_processed += 1
        summary.files_rejected += int(result.state == "rejected")
        if result.handoff:
            summary.handoff_files.append(result.handoff)
        for key, value in result.counts.items():
            summary.counts[key] = summary.counts.get(key, 0) + value


def run(
    config: Config,
    *,
    feeds: list[str] | None = None,
    trigger: str = "nightly",
    clock: Clock = utcnow,
    sleep: Callable[[float], None] = time.sleep,
    dry_run: bool = False,
    meter: progress.Meter | None = None,
) -> RunSummary:
    """The nightly job: every selected feed's new files, then the write-back."""
    selected = RunFeeds(config, feeds)

    def work(session: _Session) -> None:
        for feed in session.feeds.configs:
            with log_context(feed=feed.name):
                _run_feed(session, feed, sleep)

    with progress.using(meter):  # bytes while downloading, documents while mapping (progress.py)
        return _execute(config, selected, trigger, clock, work, dry_run=dry_run)


def reprocess(
    config: Config,
    *,
    file: str | None = None,
    run_id: int | None = None,
    po: str | None = None,
    version: int | None = None,
    force: bool = False,
    clock: Clock = utcnow,
    dry_run: bool = False,
) -> RunSummary:
    """Replay archived files with today's mappings; no download. A version the ERP has is resent only with force."""
    from batchsync.process import Replay

    selected = RunFeeds(config)
    selected.compile()
    replay = Replay(force=force, po_id=po, version=version)
    _something_to_replay(config, file, run_id, po, version)

    def work(session: _Session) -> None:
        files = session.ledger.files_for_replay(file=file, run=run_id, po=po, version=version)
        for file_row in replayable(files, skip_pruned=po is not None and version is None):
            with log_context(feed=file_row["feed"]):
                session.process(session.feeds.prepared(file_row["feed"]), file_row, replay)

    # a replay downloads nothing; its dry run uploads nothing either, so it needs no server (nor key)
    connect = no_server if dry_run else open_source
    return _execute(config, selected, "reprocess", clock, work, dry_run=dry_run, connect=connect)


def _something_to_replay(
    config: Config, file: str | None, run_id: int | None, po: str | None, version: int | None
) -> None:
    """Said before a run is started, so a mistyped id records no failed run."""
    path = ledger_path(config)
    wanted = f"file {file}" if file else f"run {run_id}" if run_id is not None else f"PO {po}"
    if not path.exists():
        raise NothingSelected(f"nothing to reprocess: no ledger at {path} yet, so no archived file for {wanted}")
    ledger = Ledger(path)
    try:
        found = ledger.files_for_replay(file=file, run=run_id, po=po, version=version)
    finally:
        ledger.close()
    if not found:
        raise NothingSelected(f"nothing to reprocess: no archived file for {wanted} in the ledger")
    replayable(found, skip_pruned=po is not None and version is None, warn=False)


def _execute(
    config: Config,
    feeds: RunFeeds,
    trigger: str,
    clock: Clock,
    work: Work,
    *,
    dry_run: bool,
    connect: Connect = open_source,
) -> RunSummary:
    if not dry_run:
        return _locked(config, feeds, trigger, clock, work, connect, dry=False)
    # the real lock keeps other runs from writing the ledger while the dry run copies it
    with RunLock(config.state_dir, clock().isoformat()), scratch_config(config, ledger_path(config)) as scratch:
        summary = _locked(scratch, feeds, trigger, clock, work, connect, dry=True)
        summary.dry_run = True
        summary.would_hand_off = would_hand_off(scratch)
        summary.handoff_dir = str(config.handoff_dir)
        summary.ledger = str(ledger_path(config))
        return summary


def _locked(
    config: Config,
    feeds: RunFeeds,
    trigger: str,
    clock: Clock,
    work: Work,
    connect: Connect,
    *,
    dry: bool,
) -> RunSummary:
    started = clock()
    with RunLock(config.state_dir, started.isoformat()):
        ledger = Ledger(ledger_path(config))
        try:
            for name in remove_stale_temporaries(config.handoff_dir) + remove_stale_staging(config.state_dir):
                log.warning("removed %s, left by an interrupted run (it was never complete)", name)
            for interrupted in ledger.close_interrupted_runs(started.isoformat()):
                log.warning("run %s was interrupted (the process ended mid-run); marked failed", interrupted)
            names = feeds.names
            run_id = ledger.start_run(trigger, names, started.isoformat(), os.getpid(), socket.gethostname())
            with log_context(run_id=run_id):
                summary = _session(config, feeds, ledger, run_id, clock, work, connect, dry=dry)
            summary.started_at = started.isoformat()
            return summary
        finally:
            ledger.close()


def _session(
    config: Config,
    selected: RunFeeds,
    ledger: Ledger,
    run_id: int,
    clock: Clock,
    work: Work,
    connect: Connect,
    *,
    dry: bool,
) -> RunSummary:
    summaries = {f.name: FeedSummary(f.name, f.kind) for f in selected.configs}
    feeds = list(summaries.values())
    would: list[str] = []
    try:
        with connect(config.source) as real:
            source: Source = DryRunSource(real, would) if dry else real
            work(_Session(config, selected, ledger, source, run_id, clock, summaries))
            refused: list[str] = []
            uploaded = upload_writeback(config, source, ledger, run_id, clock, refused)
    except (BatchsyncError, OSError) as exc:
        message = exc.message if isinstance(exc, BatchsyncError) else str(exc)
        ledger.finish_run(run_id, "failed", _totals(feeds), message, clock().isoformat())
        if isinstance(exc, BatchsyncError):
            raise
        raise StateError(f"run {run_id} failed: {exc}") from exc
    totals = _totals(feeds)
    attention = any(s.needs_attention for s in feeds) or bool(refused)
    # a change waiting for its approver, or for its PO within wait_days, is Coupa's normal state: no page
    status = "errored" if totals["rejected"] or totals["errors"] or attention else "successful"
    remote = [m for s in feeds for m in s.unread + s.after_action_failed] + refused
    finished = clock().isoformat()
    ledger.finish_run(run_id, status, totals, "; ".join(remote) or None, finished)
    return RunSummary(
        run_id,
        status,
        feeds,
        uploaded,
        refused,
        str(ledger.path),
        str(config.handoff_dir),
        would_do=would,
        finished_at=finished,
    )


def _run_feed(session: _Session, feed: FeedConfig, sleep: Callable[[float], None]) -> None:
    config, summary = session.config, session.summaries[feed.name]
    try:
        found = discover(
            session.source,
            feed,
            config.source,
            session.ledger,
            config.state_dir,
            run_id=session.run_id,
            clock=session.clock,
            sleep=sleep,
            before_fetch=session.feeds.compile,
        )
    except RemoteRefused as exc:  # this feed's folder only: the other feeds, and files already fetched, go on
        log.warning("%s; the other feeds go on", exc.message)
        found = Discovery(unread=[exc.message])
        summary.missing_folder = exc.message if isinstance(exc, MissingFolder) else None
    summary.files_fetched = found.fetched
    summary.files_duplicate = found.duplicates
    summary.files_not_yet_stable = found.not_yet_stable
    summary.refused_names = found.refused
    summary.unread = found.unread
    summary.after_action_failed = found.after_action_failed
    files = session.ledger.files_to_process(feed.name)
    if not files:
        return
    from batchsync.batches import read_ahead

    prepared = session.feeds.prepared(feed.name)
    reads = read_ahead(_reads(prepared, files, contextvars.copy_context()))
    for file_row, ahead in reads:
        session.process(prepared, file_row, ahead=ahead)


def _reads(feed: PreparedFeed, files: list[dict[str, Any]], context: contextvars.Context) -> Iterator[_Ahead]:
    """Each small file parsed and validated (read_ahead: one file ahead, in a second thread).

    While one file is mapped, rendered and recorded, the next one is read: on two
    cores that hides most of a small file's parse and validation. A large file is
    read when its turn comes, so two large files never sit in memory together.
    The run's log context (run, feed) goes along to the second thread.
    """
    for row in files:
        small = int(row.get("size") or 0) <= READ_AHEAD_MAX_BYTES
        yield row, (context.run(_read_logged, feed, row) if small else None)


def _read_logged(feed: PreparedFeed, row: dict[str, Any]) -> Read:
    from batchsync.process import read_file

    with log_context(file=row["name"]):
        return read_file(feed, row)


def upload_writeback(
    config: Config, source: Source, ledger: Ledger, run_id: int, clock: Clock, refused: list[str] | None = None
) -> list[str]:
    """Bundle every outcome not yet written back into files, then upload what is not uploaded yet.

    A file the server refuses stays pending (with the reason) for the next run; ``refused`` collects why.
    """
    now = clock()
    files = []
    if ledger.has_pending_writeback_rows():  # building the files imports polars: only when there are rows
        from batchsync.writeback import build_files

        rows = ledger.pending_writeback_rows()
        files = build_files(rows, config.writeback, f"{now.strftime('%Y%m%dT%H%M%SZ')}_r{run_id:06d}")
    folder = config.state_dir / "writeback"
    records = []
    for wb in files:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / wb.name
        path.write_bytes(wb.data)
        records.append(
            {
                "name": wb.name,
                "run_id": run_id,
                "rows": wb.rows,
                "bytes": len(wb.data),
                "sha256": wb.sha256,
                "local_path": str(path),
                "created_at": now.isoformat(),
            }
        )
    ledger.assign_writeback(records, [wb.row_ids for wb in files])
    uploaded = []
    for pending in ledger.writebacks_to_upload():
        # only a file an earlier run named can be there already (uploaded, then the run stopped)
        earlier = pending["run_id"] != run_id
        try:
            if not (earlier and source.exists(config.writeback.remote_dir, pending["name"])):
                source.upload(Path(pending["local_path"]), config.writeback.remote_dir, pending["name"])
                checkpoint("after-upload")
        except RemoteRefused as exc:
            log.warning("%s; it stays pending, and the next run uploads it", exc.message)
            ledger.record_upload_failure(pending["name"], exc.message, clock().isoformat())
            if refused is None:
                raise
            refused.append(exc.message)
            continue
        ledger.mark_uploaded(pending["name"], clock().isoformat())
        uploaded.append(pending["name"])
    return uploaded


def _totals(summaries: list[FeedSummary]) -> dict[str, int]:
    return {
        "files": sum(s.files_processed for s in summaries),
        "handed_off": sum(s.counts["handed_off"] for s in summaries),
        "rejected": sum(s.counts["rejected"] for s in summaries),
        "skipped": sum(
            s.counts["duplicate"] + s.counts["stale"] + s.counts["skipped"] + s.counts["unchanged"] for s in summaries
        ),
        "errors": sum(s.counts["errors"] for s in summaries),
        "waiting": sum(s.counts["waiting"] for s in summaries),
    }
