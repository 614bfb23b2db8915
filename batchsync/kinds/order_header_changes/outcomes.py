"""What became of each change request of a file: its status, its reason, its write-back text, and what the
ERP got of the lines of a change handed off. A rejected change is an integration error of its PO."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from batchsync.config import Config
from batchsync.layouts import PO_KEY
from batchsync.parse import LINE
from batchsync.transform import Transformed

CHANGE_RULE = "change_rule"  # the check of an integration error that is a rejected change request
STATUS = {"accept": "accepted", "reject": "rejected", "wait": "waiting"}


def rule_errors(headers: pl.DataFrame, judged: pl.DataFrame, changes: pl.DataFrame, file: str) -> pl.DataFrame:
    """A change request a rule rejected (quantity below received, an approver said no, a wait too long) is an
    integration error of its PO, as the PO's own are: ``errors`` and ``status`` list it until a later change
    to that PO is accepted, or a later version of the PO is handed off."""
    decided = changes.filter(pl.col("status") == "rejected")["id"].implode()
    rejected = judged.filter((pl.col("decision") == "reject") & pl.col("id").is_in(decided))
    return rejected.join(headers.select("id", pl.col(LINE).alias("line")), on="id").select(
        pl.lit(file).alias("file"),
        "line",
        pl.lit("header").alias("record_type"),
        pl.col("id").alias("doc_id"),  # the PO's once of_their_pos has named them
        pl.lit("change").alias("column"),
        pl.lit(CHANGE_RULE).alias("check"),
        pl.col("id").alias("value"),
        pl.col("reason").alias("message"),
    )


def of_their_pos(errors: pl.DataFrame, headers: pl.DataFrame) -> pl.DataFrame:
    """A change request's errors (validation, mapping, rules) are its PO's, named by the change, so the PO's
    later hand-off or accepted change resolves them (the ledger resolves a PO's errors by its id)."""
    changes = headers.select(pl.col("id").alias("doc_id"), pl.col(PO_KEY).alias("_po")).unique("doc_id", keep="first")
    named = errors.join(changes, on="doc_id", how="left", maintain_order="left")
    of_change = pl.col("_po").is_not_null()
    return named.with_columns(
        pl.when(of_change).then(pl.col("_po")).otherwise(pl.col("doc_id")).alias("doc_id"),
        pl.when(of_change).then(pl.format("change {}: {}", "doc_id", "message")).otherwise("message").alias("message"),
    ).drop("_po")


def change_outcomes(
    headers: pl.DataFrame,
    invalid: pl.DataFrame,
    judged: pl.DataFrame,
    transformed: Transformed,
    handoff: Any,
    decided: set[str],
) -> pl.DataFrame:
    """One row per change request not decided before: id, po_id, version, status, reason, handoff_name,
    mapped_values (what the ERP got of a change handed off: erp.py)."""
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


def handed_off_lines(changes: pl.DataFrame, transformed: Transformed) -> pl.DataFrame | None:
    """The lines of each change handed off, as the ERP got them: what it has after the change."""
    marks = transformed.line_fingerprints
    if marks is None:
        return None
    sent = changes.filter(pl.col("handoff_name").is_not_null())["id"].implode()
    return marks.filter(pl.col("po_id").is_in(sent)).select(
        pl.col("po_id").alias("change_id"), "line_number", "line_change", "mapped_values"
    )


def change_writeback_rows(changes: pl.DataFrame, config: Config, now: datetime) -> pl.DataFrame:
    """Accepted and rejected changes tell Coupa, in the change status field; waiting ones wait."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    told = changes.filter(pl.col("status").is_in(["accepted", "rejected"]) & pl.col("po_id").str.contains(r"^\d+$"))
    text = (
        pl.when((pl.col("status") == "accepted") & pl.col("handoff_name").is_null())
        .then(pl.format(f"Unchanged for ERP {stamp}: change {{}}: {{}}", "id", "reason"))
        .when(pl.col("status") == "accepted")
        .then(pl.format(f"Accepted by ERP validation {stamp} (change {{}}, {{}})", "id", "handoff_name"))
        .otherwise(pl.format("Rejected: change {}: {}", "id", "reason"))
    )
    return told.select(
        "po_id", "version", pl.lit(config.writeback.change_status_field).alias("field"), text.alias("text")
    )
