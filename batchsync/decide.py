"""Decide per PO version what to do, against what the ledger has handed off (product.md §2.6).

Pure: the PO headers with their content hash and the ledger's known
versions in, one decision per PO out.
"""

from __future__ import annotations

import hashlib

import polars as pl

from batchsync.layouts import Layout

CANCELLED = ["cancelled", "canceled"]
CLOSED = ["closed", "soft_closed"]
SENDS = ("new", "change", "close", "cancel")  # decisions that produce an ERP document
# columns that change without the order changing (Coupa's export bookkeeping)
VOLATILE = {"type", "exported", "_line"}


def content_hashes(frames: dict[str, pl.DataFrame], layout: Layout) -> pl.DataFrame:
    """SHA-256 per document over its records' known columns, independent of column and row order."""
    parts = []
    for record in layout.records:
        columns = sorted(c for c in record.columns if c not in VOLATILE)
        row_text = pl.concat_str([pl.lit(c + "=") + pl.col(c).fill_null("") for c in columns], separator="\x1f")
        parts.append(
            frames[record.role].select(
                pl.col(record.doc_key).alias("id"), pl.lit(record.role).alias("role"), row_text.alias("text")
            )
        )
    per_doc = (
        pl.concat(parts)
        .sort("role", "text")
        .group_by("id", maintain_order=True)
        .agg(pl.concat_str("role", "text", separator=":").str.join("\x1e").alias("text"))
    )
    # SHA-256 in Python, not polars' hash: the ledger keeps these across upgrades, and polars' hash may change
    digests = [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in per_doc["text"]]
    return per_doc.select("id", pl.Series("content_hash", digests, dtype=pl.String))


def decide(headers: pl.DataFrame, known: pl.DataFrame) -> pl.DataFrame:
    """headers: id, version, status, content_hash; known: id, known_version, known_hash.

    Returns id, version, content_hash, status, decision, reason. ``decision`` is
    new / change / close / cancel (sent), duplicate / stale / skipped (not sent).
    """
    status = pl.col("status").str.to_lowercase()
    send = (
        pl.when(status.is_in(CANCELLED))
        .then(pl.lit("cancel"))
        .when(status.is_in(CLOSED))
        .then(pl.lit("close"))
        .otherwise(pl.lit("change"))
    )
    version = pl.col("version").cast(pl.Int64)
    decision = (
        pl.when(pl.col("known_version").is_null() & status.is_in(CANCELLED))
        .then(pl.lit("skipped"))
        .when(pl.col("known_version").is_null())
        .then(pl.lit("new"))
        .when(version < pl.col("known_version"))
        .then(pl.lit("stale"))
        .when((version == pl.col("known_version")) & (pl.col("content_hash") == pl.col("known_hash")))
        .then(pl.lit("duplicate"))
        .otherwise(send)
    )
    reason = (
        pl.when(decision == "stale")
        .then(
            pl.format("version {} is older than version {} already sent to the ERP", version, pl.col("known_version"))
        )
        .when(decision == "duplicate")
        .then(pl.format("version {} was already sent to the ERP with the same content", version))
        .when(decision == "skipped")
        .then(pl.lit("cancelled in Coupa before it was ever sent to the ERP"))
    )
    return (
        headers.join(known, on="id", how="left", maintain_order="left")
        .with_columns(version.alias("version"), decision.alias("decision"), reason.alias("reason"))
        .select("id", "version", "content_hash", "status", "decision", "reason")
    )
