"""Process one Order Header Change file: judge each change request, hand off accepted ones, record all.

Same stages as the PO feed (parse, validate, transform, render, hand off,
record, write back); what differs is the decision, made against the ledger
by ``decide_changes``. A file with changes still waiting stays ``waiting``
and is judged again on later runs from the local archive, without a new
download; changes already decided are skipped then, so nothing is recorded
or written back twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import polars as pl

from batchsync.config import Config
from batchsync.decide_changes import judge_changes
from batchsync.layouts import PO_KEY
from batchsync.ledger import Ledger
from batchsync.parse import LINE
from batchsync.process import (
    FileContext,
    FileResult,
    PreparedFeed,
    Read,
    Replay,
    handoff_row,
    replay_suffix,
    write_error_report,
)
from batchsync.transform import Transformed
from batchsync.writeback import unchanged_text

log = logging.getLogger("batchsync.changes")
CHANGE_RULE = "change_rule"  # the check of an integration error that is a rejected change request
STATUS = {"accept": "accepted", "reject": "rejected", "wait": "waiting"}


def process_change_file(
    config: Config,
    feed: PreparedFeed,
    ledger: Ledger,
    file_row: dict[str, Any],
    run_id: int,
    now: datetime,
    replay: Replay | None = None,
    ahead: Read | None = None,
) -> FileResult:
    """``replay``: changes already decided stay decided; a replay judges the undecided ones again."""
    ctx = FileContext(config, feed, ledger, file_row, run_id, now, replay, ahead)
    read = ctx.read()
    if isinstance(read, FileResult):
        return read
    parsed, validated = read
    known = ledger.change_requests(parsed.frames["header"]["id"].drop_nulls().to_list())
    pos, po_lines = ledger.handed_off_pos(validated.frames["header"][PO_KEY].unique().to_list())
    judged = judge_changes(validated.frames, known, pos, po_lines, now=now, wait_days=feed.config.wait_days)
    sends = judged.filter(pl.col("decision") == "accept").select("id", "po_id", "version")
    to_map = sends.select("id", "po_id", pl.lit("change").alias("_decision"))
    described = sends.with_columns(pl.lit("change").alias("decision"))
    transformed, handoff = ctx.hand_off(validated, to_map, described, ctx.erp_name(_suffix(ctx)))
    decided = set(known.filter(pl.col("known_status") != "waiting")["id"].to_list())
    changes = _outcomes(parsed.frames["header"], validated.rejected, judged, transformed, handoff, decided)
    errors = ctx.errors(validated, transformed)
    if file_row["state"] == "waiting":  # judged before: record only what is new about changes not yet decided
        errors = errors.filter(pl.col("doc_id").is_in(changes["id"].implode()))
    errors = pl.concat(
        [errors, rule_errors(parsed.frames["header"], judged, changes, ctx.name)], how="vertical_relaxed"
    )
    report = write_error_report(config.state_dir, file_row["id"], ctx.name, errors) or file_row.get("error_report")
    counts = {s: int((changes["status"] == s).sum()) for s in ("accepted", "rejected", "waiting")}
    state = "waiting" if counts["waiting"] else ("empty" if parsed.is_empty else "processed")
    ctx.record(
        state,
        errors,
        writeback=_writeback_rows(changes, config, now),
        handoff=handoff_row(handoff, file_row, run_id, feed, now),
        error_report=report,
        change_requests=changes,
        change_lines=_handed_off_lines(changes, transformed),
    )
    counts = {"handed_off": counts.pop("accepted"), **counts, "errors": errors.height}
    log.info("%s: %s", ctx.name, ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    return FileResult(ctx.name, state, counts, handoff.name if handoff else None)


def rule_errors(headers: pl.DataFrame, judged: pl.DataFrame, changes: pl.DataFrame, file: str) -> pl.DataFrame:
    """A change request a rule rejected (quantity below received, an approver said no, a wait too long) is an
    integration error of its PO, as the PO's own are: ``errors`` and ``status`` list it until a later change
    to that PO is accepted, or a later version of the PO is handed off."""
    decided = changes.filter(pl.col("status") == "rejected")["id"].implode()
    rejected = judged.filter((pl.col("decision") == "reject") & pl.col("id").is_in(decided))
    return rejected.join(headers.select("id", pl.col(LINE).alias("line"), pl.col(PO_KEY).alias("po")), on="id").select(
        pl.lit(file).alias("file"),
        "line",
        pl.lit("header").alias("record_type"),
        pl.col("po").alias("doc_id"),
        pl.lit("change").alias("column"),
        pl.lit(CHANGE_RULE).alias("check"),
        pl.col("id").alias("value"),
        pl.format("change {}: {}", "id", "reason").alias("message"),
    )


def _suffix(ctx: FileContext) -> str:
    """A waiting file judged again may accept more changes: each pass hands off under its own name."""
    earlier = ctx.ledger.handoff_count(ctx.file_row["id"])
    return replay_suffix(ctx.ledger, ctx.file_row["id"], ctx.replay) or (f"pass{earlier + 1}" if earlier else "")


def _outcomes(
    headers: pl.DataFrame,
    invalid: pl.DataFrame,
    judged: pl.DataFrame,
    transformed: Transformed,
    handoff: Any,
    decided: set[str],
) -> pl.DataFrame:
    """One row per change request not decided before: id, po_id, version, status, reason, handoff_name,
    mapped_values (what the ERP got of a change handed off: erp_changes.py)."""
    sent = {str(d["id"]) for d in handoff.manifest["documents"]} if handoff else set()
    unchanged = transformed.unchanged.select(
        "id", pl.format("nothing the ERP receives differs from what it has of version {}", "_erp_version").alias("u")
    )
    marks = transformed.header_fingerprints
    values = pl.DataFrame(schema={"id": pl.String, "mapped_values": pl.String}) if marks is None else marks
    rows = (
        headers.select("id", pl.col(PO_KEY).alias("po_id"), pl.col("version").cast(pl.Int64, strict=False))
        .filter(~pl.col("id").is_in(list(decided)))
        .join(invalid.rename({"doc_id": "id", "reason": "v_reason"}), on="id", how="left")
        .join(judged.select("id", "decision", pl.col("reason").alias("j_reason")), on="id", how="left")
        .join(transformed.rejected.rename({"doc_id": "id", "reason": "m_reason"}), on="id", how="left")
        .join(unchanged, on="id", how="left")
        .join(values.select("id", "mapped_values"), on="id", how="left")
    )
    status = (
        pl.when(pl.col("v_reason").is_not_null() | pl.col("m_reason").is_not_null())
        .then(pl.lit("rejected"))
        .when(pl.col("id").is_in(list(sent)))
        .then(pl.lit("accepted"))
        .otherwise(pl.col("decision").replace_strict(STATUS, default=None))
    )
    return rows.select(
        "id",
        "po_id",
        "version",
        status.alias("status"),
        pl.coalesce("v_reason", "m_reason", "j_reason", "u").alias("reason"),
        pl.when(pl.col("id").is_in(list(sent))).then(pl.lit(handoff.name if handoff else None)).alias("handoff_name"),
        pl.when(pl.col("id").is_in(list(sent))).then(pl.col("mapped_values")).alias("mapped_values"),
    ).filter(pl.col("status").is_not_null())


def _handed_off_lines(changes: pl.DataFrame, transformed: Transformed) -> pl.DataFrame | None:
    """The lines of each change handed off, as the ERP got them: what it has after the change."""
    marks = transformed.line_fingerprints
    if marks is None:
        return None
    sent = changes.filter(pl.col("handoff_name").is_not_null())["id"].implode()
    return marks.filter(pl.col("po_id").is_in(sent)).select(
        pl.col("po_id").alias("change_id"), "line_number", "line_change", "mapped_values"
    )


def _writeback_rows(changes: pl.DataFrame, config: Config, now: datetime) -> pl.DataFrame:
    """Accepted and rejected changes tell Coupa, in the change status field; waiting ones wait."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    told = changes.filter(pl.col("status").is_in(["accepted", "rejected"]) & pl.col("po_id").str.contains(r"^\d+$"))
    text = (
        pl.when((pl.col("status") == "accepted") & pl.col("handoff_name").is_null())
        .then(pl.format(f"{unchanged_text(stamp, '')}change {{}}: {{}}", "id", "reason"))
        .when(pl.col("status") == "accepted")
        .then(pl.format(f"Accepted by ERP validation {stamp} (change {{}}, {{}})", "id", "handoff_name"))
        .otherwise(pl.format("Rejected: change {}: {}", "id", "reason"))
    )
    return told.select(
        "po_id", "version", pl.lit(config.writeback.change_status_field).alias("field"), text.alias("text")
    )
