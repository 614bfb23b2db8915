"""One run (product.md §2): lock, discover and fetch, process, write back, report.

Everything that can be checked without the network (config, mappings,
templates) is compiled first; then one source connection serves the run.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchsync.changes import process_change_file
from batchsync.config import Config, FeedConfig
from batchsync.discover import discover
from batchsync.errors import BatchsyncError, ConfigError, ExitCode, StateError
from batchsync.faults import checkpoint
from batchsync.handoff import remove_stale_temporaries
from batchsync.layouts import layout_for
from batchsync.ledger import Ledger
from batchsync.lock import RunLock
from batchsync.mapping import load_mapping
from batchsync.process import OUTCOMES, PreparedFeed, process_file
from batchsync.render import check_template, load_template
from batchsync.schemas import PO_MODELS, PO_RULES, po_line_decision
from batchsync.schemas_changes import CHANGE_MODELS, CHANGE_RULES, change_line_decision
from batchsync.transfer import Source, open_source
from batchsync.writeback import build_files

log = logging.getLogger("batchsync.pipeline")

SCHEMAS = {
    "purchase_orders": (PO_MODELS, PO_RULES, po_line_decision),
    "order_header_changes": (CHANGE_MODELS, CHANGE_RULES, change_line_decision),
}
PROCESSORS = {"purchase_orders": process_file, "order_header_changes": process_change_file}
PACKAGED = Path(__file__).resolve().parent.parent
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class FeedSummary:
    name: str
    kind: str = "purchase_orders"
    files_fetched: int = 0
    files_processed: int = 0
    files_rejected: int = 0
    files_duplicate: int = 0
    files_not_yet_stable: int = 0
    refused_names: list[str] = field(default_factory=list)
    handoff_files: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*OUTCOMES, "waiting", "errors"), 0))

    def line(self) -> str:
        c = self.counts
        files = (
            f"{self.files_processed} file(s) processed, {self.files_rejected} rejected, "
            f"{self.files_duplicate} duplicate"
        )
        documents = "change request(s) accepted" if self.kind == "order_header_changes" else "PO(s) handed off"
        pos = (
            f"{c['handed_off']} {documents}, {c['rejected']} rejected, {c['duplicate']} duplicate, "
            f"{c['stale']} stale, {c['skipped']} skipped" + (f", {c['waiting']} waiting" if c["waiting"] else "")
        )
        return f"{self.name}: {files}; {pos}"


@dataclass
class RunSummary:
    run_id: int
    status: str
    feeds: list[FeedSummary]
    writeback_files: list[str] = field(default_factory=list)
    ledger: str = ""
    handoff_dir: str = ""

    @property
    def exit_code(self) -> ExitCode:
        return {"successful": ExitCode.OK, "errored": ExitCode.ERRORED}.get(self.status, ExitCode.FAILED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"exit_code": int(self.exit_code)}

    def lines(self) -> list[str]:
        return [f.line() for f in self.feeds] + [
            f"write-back: {len(self.writeback_files)} file(s) uploaded; run {self.run_id} {self.status}"
        ]


def prepare_feeds(config: Config, names: list[str] | None = None) -> list[PreparedFeed]:
    """Compile every selected feed's layout, mapping and template; report all problems at once."""
    unknown = [n for n in names or [] if n not in config.feeds]
    if unknown:
        raise ConfigError(f"no feed named {', '.join(unknown)} in {config.path} (feeds: {', '.join(config.feeds)})")
    prepared, problems = [], []
    for feed in (config.feeds[n] for n in (names or list(config.feeds))):
        try:
            prepared.append(prepare_feed(feed, config.mappings_dir, config.templates_dir))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    # POs first: a change request of this run may need a PO handed off in this run
    return sorted(prepared, key=lambda f: f.config.kind != "purchase_orders")


def prepare_feed(feed: FeedConfig, mappings_dir: Path, templates_dir: Path) -> PreparedFeed:
    if feed.kind not in SCHEMAS:
        raise ConfigError(f"feeds.{feed.name}.kind: {feed.kind!r} is not supported yet")
    layout = layout_for(feed.kind, feed.columns)
    mapping = load_mapping(mappings_dir, feed.target, layout)
    template = load_template(templates_dir, mapping.template)
    check_template(template, [r.name for r in mapping.at_level("header")] + [f"{r}_records" for r in layout.roles[1:]])
    models, rules, line_decision = SCHEMAS[feed.kind]
    return PreparedFeed(feed, layout, models, list(rules), mapping, template, line_decision)


def prepare_default_feed() -> PreparedFeed:
    """The shipped PO layout and SAP mapping, for checking a file without a config."""
    feed = FeedConfig("purchase_orders", "purchase_orders", "/Outgoing/PurchaseOrders", "*.csv", "sap_orders05")
    return prepare_feed(feed, PACKAGED / "mappings", PACKAGED / "templates")


def ledger_path(config: Config) -> Path:
    return config.state_dir / "ledger.db"


def run(
    config: Config,
    *,
    feeds: list[str] | None = None,
    trigger: str = "nightly",
    clock: Clock = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    prepared = prepare_feeds(config, feeds)
    started = clock()
    with RunLock(config.state_dir, started.isoformat()):
        ledger = Ledger(ledger_path(config))
        try:
            for name in remove_stale_temporaries(config.handoff_dir):
                log.warning("removed %s, left by an interrupted run (it was never complete)", name)
            for interrupted in ledger.close_interrupted_runs(started.isoformat()):
                log.warning("run %s was interrupted (the process ended mid-run); marked failed", interrupted)
            run_id = ledger.start_run(
                trigger, [f.name for f in prepared], started.isoformat(), os.getpid(), socket.gethostname()
            )
            return _run(config, prepared, ledger, run_id, clock, sleep)
        finally:
            ledger.close()


def _run(
    config: Config,
    prepared: list[PreparedFeed],
    ledger: Ledger,
    run_id: int,
    clock: Clock,
    sleep: Callable[[float], None],
) -> RunSummary:
    summaries = [FeedSummary(f.name, f.config.kind) for f in prepared]
    try:
        with open_source(config.source) as source:
            for feed, summary in zip(prepared, summaries, strict=True):
                _run_feed(config, feed, summary, source, ledger, run_id, clock, sleep)
            uploaded = upload_writeback(config, source, ledger, run_id, clock)
    except BatchsyncError as exc:
        ledger.finish_run(run_id, "failed", _totals(summaries), exc.message, clock().isoformat())
        raise
    except OSError as exc:
        ledger.finish_run(run_id, "failed", _totals(summaries), str(exc), clock().isoformat())
        raise StateError(f"run {run_id} failed: {exc}") from exc
    totals = _totals(summaries)
    attention = any(s.files_rejected or s.refused_names for s in summaries)
    status = "errored" if totals["rejected"] or totals["errors"] or totals["waiting"] or attention else "successful"
    ledger.finish_run(run_id, status, totals, None, clock().isoformat())
    return RunSummary(run_id, status, summaries, uploaded, str(ledger.path), str(config.handoff_dir))


def _run_feed(
    config: Config,
    feed: PreparedFeed,
    summary: FeedSummary,
    source: Source,
    ledger: Ledger,
    run_id: int,
    clock: Clock,
    sleep: Callable[[float], None],
) -> None:
    found = discover(
        source, feed.config, config.source, ledger, config.state_dir, run_id=run_id, clock=clock, sleep=sleep
    )
    summary.files_fetched = found.fetched
    summary.files_duplicate = found.duplicates
    summary.files_not_yet_stable = found.not_yet_stable
    summary.refused_names = found.refused
    for file_row in ledger.files_to_process(feed.name):
        result = PROCESSORS[feed.config.kind](config, feed, ledger, file_row, run_id, clock())
        summary.files_processed += 1
        summary.files_rejected += int(result.state == "rejected")
        if result.handoff:
            summary.handoff_files.append(result.handoff)
        for key, value in result.counts.items():
            summary.counts[key] = summary.counts.get(key, 0) + value


def upload_writeback(config: Config, source: Source, ledger: Ledger, run_id: int, clock: Clock) -> list[str]:
    """Bundle every outcome not yet written back into files, then upload what is not uploaded yet."""
    now = clock()
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
        # present already: an earlier run uploaded it and stopped before recording that
        if not source.exists(config.writeback.remote_dir, pending["name"]):
            source.upload(Path(pending["local_path"]), config.writeback.remote_dir, pending["name"])
            checkpoint("after-upload")
        ledger.mark_uploaded(pending["name"], clock().isoformat())
        uploaded.append(pending["name"])
    return uploaded


def _totals(summaries: list[FeedSummary]) -> dict[str, int]:
    return {
        "files": sum(s.files_processed for s in summaries),
        "handed_off": sum(s.counts["handed_off"] for s in summaries),
        "rejected": sum(s.counts["rejected"] for s in summaries),
        "skipped": sum(s.counts["duplicate"] + s.counts["stale"] + s.counts["skipped"] for s in summaries),
        "errors": sum(s.counts["errors"] for s in summaries),
        "waiting": sum(s.counts["waiting"] for s in summaries),
    }
