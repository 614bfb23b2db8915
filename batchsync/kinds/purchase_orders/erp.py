"""A PO version's line actions: what each line does to the ERP's copy, from comparing with what it has.

A new PO adds every line; a cancelled PO or line cancels it there. A new version of a PO is compared
with the latest version the ERP got (erp_state.py keeps its fingerprints): a line unchanged there is
``unchanged``, a different one ``changed``, one the ERP does not have ``added``, and a line the ERP
has that the version no longer lists is sent once more, as the ERP has it, ``deleted``. The document
is then ``header``, ``items`` or ``header_items`` changed, or ``unchanged`` (not sent again).
Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

import polars as pl

from batchsync.erp_state import LINE_KEY, ErpState, document_change, with_decided, with_fingerprint
from batchsync.mapping_model import CompiledRecord


def po_line_decision() -> pl.Expr:
    """What a line does to the ERP's copy (``_line_change``): a cancelled PO or line is cancelled there.

    A new PO adds every line; a line of a changed PO counts as changed until ``compare_with_erp``
    has compared it with what the ERP has (unchanged, added, deleted).
    """
    deleted = pl.col("status").str.to_lowercase().is_in(["cancelled", "canceled", "deleted"])
    return (
        pl.when((pl.col("_decision") == "cancel") | deleted)
        .then(pl.lit("cancelled"))
        .when(pl.col("_decision") == "new")
        .then(pl.lit("added"))
        .otherwise(pl.lit("changed"))
    )


def with_deleted_lines(lines: pl.DataFrame, changes: pl.Series, state: ErpState, doc_key: str) -> pl.DataFrame:
    """The PO's lines plus each line the ERP has that a changed PO no longer lists (``_erp_deleted``)."""
    lines = lines.with_columns(pl.lit(False).alias("_erp_deleted"))
    current = lines.select(pl.col(doc_key).alias("_erp_po"), pl.col(LINE_KEY).alias("_erp_line"))
    gone = state.lines.filter(pl.col("_erp_po").is_in(changes.implode()) & pl.col("_erp_source").is_not_null())
    gone = gone.join(current, on=["_erp_po", "_erp_line"], how="anti")
    if gone.height == 0:
        return lines
    schema = {c: t for c, t in lines.schema.items() if t == pl.String}
    rebuilt = gone.select(pl.col("_erp_source").str.json_decode(pl.Struct(schema)).alias("s")).unnest("s")
    rebuilt = rebuilt.with_columns(pl.lit(True).alias("_erp_deleted"))
    return pl.concat([lines, rebuilt], how="diagonal_relaxed")


def compare_with_erp(
    levels: dict[str, pl.DataFrame], records: dict[str, list[CompiledRecord]], state: ErpState
) -> dict[str, pl.DataFrame]:
    """Sets ``_line_change`` per line and ``_change`` per document from what the ERP has."""
    header = with_fingerprint(levels["header"], records["header"])
    known_heads = state.headers.select(
        "id", "_erp_version", "_erp_hash", "_erp_values", pl.lit(True).alias("_erp_known")
    )
    header = header.join(known_heads, on="id", how="left", maintain_order="left")
    lines = with_fingerprint(levels["line"], records["line"])
    known = state.lines.select(
        pl.col("_erp_po").alias("doc_id"),
        pl.col("_erp_line").alias(LINE_KEY),
        pl.col("_erp_hash").alias("_erp_lh"),
        "_erp_values",
    ).with_columns(pl.lit(True).alias("_erp_has_line"))
    lines = lines.join(known, on=["doc_id", LINE_KEY], how="left", maintain_order="left")
    legacy = header.filter(pl.col("_erp_known") & pl.col("_erp_hash").is_null())["id"].implode()
    lines = lines.with_columns(_line_change(legacy).alias("_line_change"))
    items = lines.group_by("doc_id").agg((pl.col("_line_change") != "unchanged").any().alias("_items_changed"))
    header = header.join(items.rename({"doc_id": "id"}), on="id", how="left", maintain_order="left")
    header = header.with_columns(_document_change().alias("_change"))
    return with_decided(levels, header, lines)


def _line_change(legacy: pl.Series) -> pl.Expr:
    change = pl.col("_decision") == "change"
    return (
        pl.when(~change | (pl.col("_line_change") == "cancelled"))
        .then(pl.col("_line_change"))
        .when(pl.col("_erp_deleted").fill_null(False))
        .then(pl.lit("deleted"))
        .when(pl.col("_erp_has_line").is_null())
        .then(pl.lit("added"))
        .when(pl.col("doc_id").is_in(legacy) | (pl.col("_erp_lh") != pl.col("_mapped_hash")).fill_null(True))
        .then(pl.lit("changed"))
        .otherwise(pl.lit("unchanged"))
    )


def _document_change() -> pl.Expr:
    legacy = pl.col("_erp_hash").is_null()
    header = (pl.col("_erp_hash") != pl.col("_mapped_hash")).fill_null(True)
    return document_change(legacy, header)
