"""What a run did, per feed and in all: the summary lines, the JSON and the exit code a scheduler reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from batchsync.errors import ExitCode

# a document's outcomes in a PO file (process.py); change files count accepted ones as handed off
OUTCOMES = ("handed_off", "rejected", "unchanged", "duplicate", "stale", "skipped")


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
    unread: list[str] = field(default_factory=list)  # matching files the server would not let us read
    after_action_failed: list[str] = field(default_factory=list)  # remote archive/delete refused, retried next run
    handoff_files: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*OUTCOMES, "waiting", "errors"), 0))

    def line(self, dry: bool = False) -> str:
        """The feed's counts; a dry run's in the conditional (nothing was done)."""
        c = self.counts
        done = "would be " if dry else ""
        files = (
            f"{self.files_processed} file(s) {done}processed, {self.files_rejected} rejected, "
            f"{self.files_duplicate} duplicate"
        )
        documents = (
            f"change request(s) {done}accepted" if self.kind == "order_header_changes" else f"PO(s) {done}handed off"
        )
        pos = (
            f"{c['handed_off']} {documents}, {c['rejected']} rejected, {c['duplicate']} duplicate, "
            f"{c['stale']} stale, {c['skipped']} skipped"
            + (f", {c['unchanged']} unchanged for the ERP" if c["unchanged"] else "")
            + (f", {c['waiting']} waiting" if c["waiting"] else "")
        )
        remote = [f"{len(self.unread)} file(s) left unread"] if self.unread else []
        remote += [f"{len(self.after_action_failed)} remote after-action(s) failed"] if self.after_action_failed else []
        return f"{self.name}: {files}; {pos}" + "".join(f"; {r}" for r in remote)

    missing_folder: str | None = None  # the feed's remote folder does not exist: a person must act (exit 2)

    @property
    def needs_attention(self) -> bool:
        return bool(self.files_rejected or self.refused_names or self.unread or self.after_action_failed)


@dataclass
class RunSummary:
    run_id: int
    status: str
    feeds: list[FeedSummary]
    writeback_files: list[str] = field(default_factory=list)
    writeback_failed: list[str] = field(default_factory=list)  # uploads the server refused: pending for next run
    ledger: str = ""
    handoff_dir: str = ""
    dry_run: bool = False
    would_hand_off: list[str] = field(default_factory=list)  # dry run: ERP files and manifests
    would_do: list[str] = field(default_factory=list)  # dry run: remote moves, deletes, uploads
    started_at: str = ""  # UTC, ISO 8601, as the ledger's runs table has them
    finished_at: str = ""

    @property
    def exit_code(self) -> ExitCode:
        if any(f.missing_folder for f in self.feeds):  # no later run can succeed until someone acts
            return ExitCode.USAGE
        return {"successful": ExitCode.OK, "errored": ExitCode.ERRORED}.get(self.status, ExitCode.FAILED)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"exit_code": int(self.exit_code)}

    def lines(self) -> list[str]:
        failed = f", {len(self.writeback_failed)} refused (pending)" if self.writeback_failed else ""
        if self.dry_run:
            return [f.line(dry=True) for f in self.feeds] + [
                f"write-back: {len(self.writeback_files)} file(s) would be uploaded{failed}; "
                f"the run would end {self.status}"
            ]
        return [f.line() for f in self.feeds] + [
            f"write-back: {len(self.writeback_files)} file(s) uploaded{failed}; run {self.run_id} {self.status}"
        ]
