"""Decide per PO version what to do, against what the ledger has handed off (product.md §2.6).

Pure: the PO headers with their content hash and the ledger's known
versions in, one decision per PO out.
"""

from __future__ import annotations

from hashlib import sha256

import polars as pl

from batchsync.batches import document_batches, read_ahead
from batchsync.layouts import Layout

CANCELLED = ["cancelled", "canceled"]
CLOSED = ["closed", "soft_closed"]
SENDS = ("new", "change", "close", "cancel")  # decisions that produce an ERP document
# columns that change without the order changing (Coupa's export bookkeeping)
VOLATILE = {"type", "exported", "_line"}
HASH_BATCH = 5_000  # documents whose hashed text is built at once: about 30 MB of polars memory per 1,000 POs


def content_hashes(frames: dict[str, pl.DataFrame], layout: Layout) -> pl.DataFrame:
    """SHA-256 per document over its records' known columns, independent of column and row order."""
    documents = frames["header"].select("id").unique(maintain_order=True)
    batches = document_batches(frames, layout, documents, HASH_BATCH)
    texts = read_ahead(_batch_texts(batch, layout) for _, batch in batches)
    # SHA-256 in Python, not polars' hash: the ledger keeps these across upgrades, and polars' hash may change
    hashed = [
        per_doc.select("id", pl.Series("content_hash", [sha256(t).hexdigest() for t in per_doc["text"].to_list()]))
        for per_doc in texts
    ]
    return pl.concat(hashed) if hashed else pl.DataFrame(schema={"id": pl.String, "content_hash": pl.String})


def _batch_texts(frames: dict[str, pl.DataFrame], layout: Layout) -> pl.DataFrame:
    """The hashed text: per record ``role:col=value\x1fcol=value...``, sorted, joined with ``\x1e``."""
    parts = []
    for record in layout.records:
        columns = sorted(c for c in record.columns if c not in VOLATILE)
        pieces: list[pl.Expr] = [pl.lit(f"{record.role}:")]
        for i, column in enumerate(columns):
            pieces += [pl.lit(("\x1f" if i else "") + column + "="), pl.col(column).fill_null("")]
        parts.append(
            frames[record.role].select(
                pl.col(record.doc_key).alias("id"),
                pl.lit(record.role).alias("role"),
                pl.concat_str(pieces).alias("text"),
            )
        )
    return (
        pl.concat(parts)
        .sort("id", "role", "text")
        .group_by("id", maintain_order=True)
        .agg(pl.col("text").str.join("\x1e").cast(pl.Binary))
    )


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
