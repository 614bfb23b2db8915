"""What became of each PO version of a file: its outcome, its write-back text, and what the ERP now has of its lines."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from batchsync.erp_state import line_source
from batchsync.handoff import Handoff
from batchsync.layouts import Layout
from batchsync.parse import ParsedFile
from batchsync.transform import Transformed
from batchsync.validate import Validated

TOLD = ["handed_off", "rejected", "unchanged"]  # the outcomes Coupa hears of; duplicates and stale versions not


def sent_text(now: str, erp_file: str) -> str:
    return f"Sent to ERP {now} {erp_file}"


def unchanged_text(now: str, reason: str) -> str:
    return f"Unchanged for ERP {now}: {reason}"


def rejected_text(reason: str) -> str:
    return f"Rejected: {reason}"


def po_outcomes(
    parsed: ParsedFile,
    validated: Validated,
    decisions: pl.DataFrame,
    transformed: Transformed,
    handoff: Handoff | None,
) -> pl.DataFrame:
    """po_id, version, content_hash, status, decision, currency, outcome, reason, handoff_name, mapped_hash,
    mapped_values."""
    handed = [str(d["id"]) for d in handoff.manifest["documents"]] if handoff else []
    headers = parsed.frames["header"].select(
        pl.col("id").alias("po_id"),
        pl.col("version").cast(pl.Int64, strict=False),
        "status",
        pl.col("accounting-total-currency").alias("currency"),
    )
    said = decisions.select(pl.col("id").alias("po_id"), "content_hash", "decision", pl.col("reason").alias("d_reason"))
    unchanged = transformed.unchanged.select(
        pl.col("id").alias("po_id"),
        pl.format("nothing the ERP receives differs from version {}", pl.col("_erp_version")).alias("u_reason"),
    )
    joined = (
        headers.join(validated.rejected.rename({"doc_id": "po_id", "reason": "v_reason"}), on="po_id", how="left")
        .join(said, on="po_id", how="left")
        .join(transformed.rejected.rename({"doc_id": "po_id", "reason": "m_reason"}), on="po_id", how="left")
        .join(unchanged, on="po_id", how="left")
        .join(_fingerprints(transformed), on="po_id", how="left")
    )
    rejected = pl.col("v_reason").is_not_null() | pl.col("m_reason").is_not_null()
    outcome = (
        pl.when(rejected)
        .then(pl.lit("rejected"))
        .when(pl.col("po_id").is_in(handed))
        .then(pl.lit("handed_off"))
        .when(pl.col("u_reason").is_not_null())
        .then(pl.lit("unchanged"))
        .otherwise(pl.col("decision"))
    )
    return joined.select(
        "po_id",
        "version",
        "content_hash",
        "status",
        "decision",
        "currency",
        outcome.alias("outcome"),
        pl.coalesce("v_reason", "m_reason", "u_reason", "d_reason").alias("reason"),
        pl.when(outcome == "handed_off").then(pl.lit(handoff.name if handoff else None)).alias("handoff_name"),
        pl.when(outcome == "handed_off").then(pl.col("mapped_hash")).alias("mapped_hash"),
        pl.when(outcome == "handed_off").then(pl.col("mapped_values")).alias("mapped_values"),
    )


def _fingerprints(transformed: Transformed) -> pl.DataFrame:
    if transformed.header_fingerprints is None:
        return pl.DataFrame(schema={"po_id": pl.String, "mapped_hash": pl.String, "mapped_values": pl.String})
    return transformed.header_fingerprints.rename({"id": "po_id"})


def handed_off_lines(
    lines: pl.DataFrame, versions: pl.DataFrame, transformed: Transformed, layout: Layout
) -> pl.DataFrame:
    """What the ERP now has of each PO line: the change feed checks quantities against what was received,
    the next version is compared with its fingerprint, and its Coupa columns let it go out as deleted."""
    # a Line record has its own version column; the PO's is the one that counts
    handed = versions.filter(pl.col("outcome") == "handed_off").select("po_id", pl.col("version").alias("_po"))
    marks = transformed.line_fingerprints
    if marks is not None:  # the ERP has the lines it was sent (a line where: left out is not among them)
        sent = marks.select(pl.col("po_id").alias("order-header-id"), pl.col("line_number").alias("line-number"))
        lines = lines.join(sent, on=["order-header-id", "line-number"], how="semi")
    if marks is None:
        marks = pl.DataFrame(schema={c: pl.String for c in ("po_id", "line_number", "mapped_hash", "mapped_values")})
    marks = marks.drop("line_change", strict=False)
    columns = list(layout.role("line").columns)
    kept = lines.join(handed, left_on="order-header-id", right_on="po_id", how="inner")
    return (
        kept.with_columns(line_source(kept, columns).alias("source"))  # JSON for the lines handed off only
        .select(
            pl.col("order-header-id").alias("po_id"),
            pl.col("_po").alias("version"),
            pl.col("line-number").alias("line_number"),
            pl.col("id").alias("line_id"),
            "quantity",
            "received",
            "currency",
            "source",
        )
        .join(marks, on=["po_id", "line_number"], how="left", maintain_order="left")
    )


def po_writeback_rows(
    versions: pl.DataFrame, status_field: str, now: datetime, files: dict[str, str] | None = None
) -> pl.DataFrame:
    """Handed off, rejected and unchanged POs tell Coupa; duplicates and stale versions do not. ``files``:
    for a hand-off split by decision, the file that holds a PO sent so (else the hand-off's name)."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    told = versions.filter(pl.col("outcome").is_in(TOLD) & pl.col("po_id").str.contains(r"^\d+$"))
    where = pl.col("handoff_name")
    if files:
        where = pl.col("decision").replace_strict(files, default=where, return_dtype=pl.String)
    text = (
        pl.when(pl.col("outcome") == "handed_off")
        .then(pl.lit(sent_text(stamp, "")) + where)
        .when(pl.col("outcome") == "unchanged")
        .then(pl.lit(unchanged_text(stamp, "")) + pl.col("reason"))
        .otherwise(pl.lit(rejected_text("")) + pl.col("reason"))
    )
    return told.select("po_id", "version", pl.lit(status_field).alias("field"), text.alias("text"))
