"""Process one archived file of a feed, every kind the same way: read (parse, validate), judge, map and
hand off, conclude, record. What differs between kinds (how documents are judged, what their lines do
to the ERP's copy, what became of them) is the feed kind's (batchsync/kinds/).

Everything the file changes in the ledger is written in one transaction at
the end, after the hand-off is in place. A crash before that leaves the file
``fetched``: the next run processes it again, finds the hand-off's manifest
under the same deterministic name and adopts it, so nothing is sent twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from batchsync import progress
from batchsync.batches import document_batches, read_ahead
from batchsync.config import Config, FeedConfig
from batchsync.erp_state import ErpState
from batchsync.errors import DataError
from batchsync.faults import checkpoint
from batchsync.handoff import Body, Handoff, Holds, handoff_name, output_name, publish, sequence_prefix
from batchsync.kinds.base import FeedKind
from batchsync.layouts import Layout
from batchsync.ledger import FileOutcome, Ledger
from batchsync.mapping_model import CompiledMapping, Output
from batchsync.parse import ParsedFile, parse_file
from batchsync.records import guard_formula
from batchsync.render import render_to
from batchsync.streams import Sink
from batchsync.transform import Transformed, transform
from batchsync.validate import Validated, file_error_frame, validate

log = logging.getLogger("batchsync.process")


@dataclass(frozen=True)
class PreparedFeed:
    """A feed with its kind, layout, mapping and templates compiled before anything is fetched."""

    config: FeedConfig
    kind: FeedKind[Any]
    layout: Layout  # the kind's, with the feed's own columns
    mapping: CompiledMapping
    template: jinja2.Template
    more_templates: list[jinja2.Template] = field(default_factory=list)  # of mapping.more_outputs, in order

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class Replay:
    """A manual replay from the local archive (``batchsync reprocess``)."""

    force: bool = False  # send again a PO version the ERP already has
    po_id: str | None = None  # only this PO of the file
    version: int | None = None  # only this version of it

    def decisions(self, decisions: pl.DataFrame) -> pl.DataFrame:
        if self.po_id is not None:
            decisions = decisions.filter(pl.col("id") == self.po_id)
        if self.version is not None:
            decisions = decisions.filter(pl.col("version") == self.version)
        if self.force:  # a duplicate is the same version the ERP has: send it again, as a change
            resend = pl.col("decision") == "duplicate"
            decisions = decisions.with_columns(
                pl.when(resend).then(pl.lit("change")).otherwise(pl.col("decision")).alias("decision"),
                pl.when(resend).then(None).otherwise(pl.col("reason")).alias("reason"),
            )
        return decisions

    def keeps(self, frame: pl.DataFrame, column: str) -> pl.DataFrame:
        return frame if self.po_id is None else frame.filter(pl.col(column) == self.po_id)


def replay_suffix(ledger: Ledger, file_id: int, replay: Replay | None) -> str:
    """Each replay of a file hands off under its own name, the same again if a crash interrupts it."""
    return f"reprocess{ledger.handoff_count(file_id, '%.reprocess%') + 1}" if replay else ""


Read = tuple[ParsedFile, Validated] | DataError


def read_file(feed: PreparedFeed, file_row: dict[str, Any]) -> Read:
    """Parse and validate one archived file. Pure: it may run ahead, in another thread."""
    try:
        parsed = parse_file(Path(file_row["archive_path"]), feed.layout, display_name=str(file_row["name"]))
    except DataError as exc:
        return exc
    return parsed, validate(parsed, feed.layout, feed.kind.models, feed.kind.rules)


@dataclass(frozen=True)
class FileContext:
    """One archived file being processed in one run; the steps every feed kind shares."""

    config: Config
    feed: PreparedFeed
    ledger: Ledger
    file_row: dict[str, Any]
    run_id: int
    now: datetime
    replay: Replay | None = None
    ahead: Read | None = None  # parsed and validated already (pipeline reads small files one ahead)

    @property
    def name(self) -> str:
        return str(self.file_row["name"])

    def read(self) -> tuple[ParsedFile, Validated] | FileResult:
        """Parse and validate; a file that cannot be read as the feed's format is rejected whole."""
        read = self.ahead if self.ahead is not None else read_file(self.feed, self.file_row)
        if isinstance(read, DataError):
            return self.reject(read)
        return read

    def record(self, state: str, errors: pl.DataFrame, **outcome: Any) -> None:
        """What processing the file changed, in one ledger transaction (FileOutcome's named parts)."""
        now = self.now.isoformat()
        file_id, feed = self.file_row["id"], self.feed.name
        parts = {"file_id": file_id, "run_id": self.run_id, "feed": feed, "state": state, "errors": errors, "now": now}
        self.ledger.record_outcome(FileOutcome(**parts, **outcome))

    def reject(self, exc: DataError) -> FileResult:
        """The whole file cannot be read as the feed's format: keep it, say why, send nothing from it."""
        name = self.name
        log.error("%s rejected: %s", name, exc.message)
        error = file_error_frame(exc, kept=str(self.file_row["archive_path"]))  # a run archived it; validate does not
        report = self.error_report(error)
        self.record("rejected", error, reason=exc.message, error_report=report)
        return FileResult(name, "rejected", {"errors": 1}, reason=exc.message)

    def erp_name(self, suffix: str) -> str:
        mapping = self.feed.mapping
        sequence = sequence_prefix(self.run_id, self.ledger.handoffs_in_run(self.run_id) + 1)
        return handoff_name(self.name, self.file_row["sha256"], mapping.target, mapping.extension, suffix, sequence)

    def hand_off(
        self, validated: Validated, sends: pl.DataFrame, described: pl.DataFrame, erp_name: str
    ) -> tuple[Transformed, Handoff | None]:
        """Map the documents to send, batch by batch; render and publish them with their manifest, if any is left."""
        feed = self.feed
        mapped: list[Transformed] = []  # per batch: the documents' ids and record counts, rejections, problems
        erp_state = self.erp_state(sends)  # read here: the batches are mapped in another thread

        def batches() -> Iterator[pl.DataFrame]:
            for part, frames in document_batches(validated.frames, feed.layout, sends):
                batch = transform(
                    frames,
                    part,
                    feed.mapping,
                    feed.layout,
                    now=self.now,
                    source_file=self.name,
                    erp_file=erp_name,
                    kind=feed.kind,
                    erp_state=erp_state,
                )
                mapped.append(replace(batch, documents=_document_counts(batch.documents)))  # counts, not text
                progress.advance(part.height)
                yield batch.documents

        def manifest() -> dict[str, Any]:
            documents = pl.concat([m.documents for m in mapped])
            manifest = manifest_for(feed, self.file_row, self.run_id, self.now, documents, described)
            return manifest | {"reprocessed": self.replay is not None}

        kept: list[pl.DataFrame] = []  # the documents again, for a target's further outputs

        def kept_while_rendered() -> Iterator[pl.DataFrame]:
            for frame in rendered:
                kept.append(frame)
                yield frame

        def write(stream: Sink) -> Holds:
            documents = kept_while_rendered() if feed.more_templates else rendered
            main = feed.mapping.outputs[0]
            written = self.render_output(stream, feed.template, main, documents)
            total = sum(frame.height for frame in kept) if feed.more_templates else written
            return _holds(written, main) if total else Holds.NOTHING

        with progress.task(f"{self.name}: {sends.height:,} document(s)", sends.height):
            rendered = read_ahead(batches())
            more = self.more_outputs(erp_name, kept)
            split = self.decisions_by_file(erp_name)
            handoff = publish(self.config.handoff_dir, erp_name, write, manifest, more, split) if sends.height else None
            for _ in rendered:  # an adopted hand-off is not rendered again; its rejections still count
                pass
        if handoff is not None:
            checkpoint("after-handoff")
        return Transformed.concat(mapped), handoff

    def render_output(
        self, stream: Sink, template: jinja2.Template, output: Output, documents: Iterable[pl.DataFrame]
    ) -> int:
        """One output's file: its column-name row, then its template over the documents (its own records; only
        those sent as its ``decisions`` say, when it has them). How many documents it holds."""
        mapping, roles = self.feed.mapping, self.feed.layout.roles[1:]
        if output.decisions is not None:
            sent_so = pl.col("_decision").is_in(list(output.decisions))
            documents = (frame.filter(sent_so) for frame in documents)
        return render_to(
            stream,
            template,
            documents,
            charset=mapping.charset,
            first_line=output.column_row,
            renamed=output.renamed(roles),
            newline=output.newline,
        )

    def decisions_by_file(self, erp_name: str) -> dict[str, tuple[str, ...]]:
        """For a target whose outputs are split by decision: each file's name and the decisions it takes."""
        mapping = self.feed.mapping
        main, more = mapping.outputs[0], mapping.more_outputs
        named = [(erp_name, main), *[(output_name(erp_name, mapping.target, o.name, o.extension), o) for o in more]]
        return {name: o.decisions for name, o in named if o.decisions is not None}

    def more_outputs(self, erp_name: str, documents: list[pl.DataFrame]) -> list[tuple[str, Body]]:
        """A target's further files, each rendered from the documents the main file was (mapping outputs:)."""
        mapping = self.feed.mapping

        def writer(template: jinja2.Template, output: Output) -> Body:
            return lambda stream: _holds(self.render_output(stream, template, output, documents), output)

        return [
            (output_name(erp_name, mapping.target, o.name, o.extension), writer(t, o))
            for o, t in zip(mapping.more_outputs, self.feed.more_templates, strict=True)
        ]

    def erp_state(self, sends: pl.DataFrame) -> ErpState | None:
        """What the ERP has of the POs a batch changes; none for a forced replay (it sends everything again)."""
        if self.replay is not None and self.replay.force:
            return None
        return self.feed.kind.erp_state(self.ledger, sends)

    def replay_suffix(self) -> str:
        return replay_suffix(self.ledger, self.file_row["id"], self.replay)

    def error_report(self, errors: pl.DataFrame) -> str | None:
        return write_error_report(self.config.state_dir, self.file_row["id"], self.name, errors)

    def errors(self, validated: Validated, transformed: Transformed) -> pl.DataFrame:
        mapped = transformed.problems.select(pl.lit(self.name).alias("file"), pl.all())
        return pl.concat([validated.errors, mapped], how="vertical_relaxed")


@dataclass
class FileResult:
    name: str
    state: str
    counts: dict[str, int] = field(default_factory=dict)
    handoff: str | None = None
    reason: str | None = None


def process_file(
    config: Config,
    feed: PreparedFeed,
    ledger: Ledger,
    file_row: dict[str, Any],
    run_id: int,
    now: datetime,
    replay: Replay | None = None,
    ahead: Read | None = None,
) -> FileResult:
    """One file of any feed kind: the kind judges its documents and says what became of them."""
    ctx = FileContext(config, feed, ledger, file_row, run_id, now, replay, ahead)
    read = ctx.read()
    if isinstance(read, FileResult):
        return read
    parsed, validated = read
    judged = feed.kind.judge(ctx, parsed, validated)
    erp_name = ctx.erp_name(judged.suffix)
    transformed, handoff = ctx.hand_off(validated, judged.sends, judged.described, erp_name)
    done = feed.kind.conclude(ctx, parsed, validated, judged, transformed, handoff)
    ctx.record(done.state, done.errors, handoff=handoff_row(handoff, file_row, run_id, feed, now), **done.parts)
    log.info("%s: %s", ctx.name, ", ".join(f"{v} {k}" for k, v in done.counts.items() if v))
    return FileResult(ctx.name, done.state, done.counts, handoff.name if handoff else None)


def manifest_for(
    feed: PreparedFeed,
    file_row: dict[str, Any],
    run_id: int,
    now: datetime,
    documents: pl.DataFrame,
    decisions: pl.DataFrame,
) -> dict[str, Any]:
    described = [c for c in ("po_id", "version", "decision") if c in decisions.columns]
    sent = documents.select("id").join(decisions.select("id", *described), on="id", how="left")
    return {
        "target": feed.mapping.target,
        "feed": feed.name,
        "kind": feed.layout.kind,
        "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_id": run_id,
        "reprocessed": False,
        "source_files": [
            {"name": file_row["name"], "sha256": file_row["sha256"], "remote_path": file_row["remote_path"]}
        ],
        "documents": sent.to_dicts(),
        "record_counts": {"documents": documents.height, "line_records": int(documents["line_records"].sum())},
    }


def _holds(written: int, output: Output) -> Holds:
    """An output split by decision is left out without a document of its own; any other is written, even
    when it holds no record (a PO without distributions)."""
    if written or output.decisions is None:
        return Holds.DOCUMENTS
    return Holds.NONE_OF_ITS_OWN


def _document_counts(documents: pl.DataFrame) -> pl.DataFrame:
    """What the manifest needs of a batch's documents, without their text."""
    # the records written: a text record with no lines (a deleted item's text) adds none
    return documents.select("id", pl.col("line_records").str.count_matches(r"[^\n]+").alias("line_records"))


def handoff_row(
    handoff: Handoff | None, file_row: dict[str, Any], run_id: int, feed: PreparedFeed, now: datetime
) -> dict[str, Any] | None:
    if handoff is None:
        return None
    manifest = handoff.manifest
    return {
        "name": handoff.name,
        "manifest": handoff.manifest_path.name,
        "file_id": file_row["id"],
        "run_id": run_id,
        "target": feed.mapping.target,
        "sha256": manifest.get("sha256"),
        "documents": len(manifest.get("documents", [])),
        # the further outputs' names, as the manifest lists them (null for a target of one file)
        "outputs": json.dumps([o["file"] for o in manifest["outputs"]]) if manifest.get("outputs") else None,
        "adopted": int(handoff.adopted),
        "created_at": now.isoformat(),
    }


def write_error_report(state_dir: Path, file_id: int, name: str, errors: pl.DataFrame) -> str | None:
    """Per-file error report next to the ledger: one row per failure."""
    if errors.height == 0:
        return None
    folder = state_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{file_id:06d}_{name}.errors.csv"
    # people open these in a spreadsheet: a value like =1+1 must not run there
    shown = errors.rename({"doc_id": "po_id"}).with_columns(
        guard_formula(pl.col(c)).alias(c) for c in ("value", "message")
    )
    shown.write_csv(path, quote_style="non_numeric")
    path.chmod(0o600)
    return str(path)
