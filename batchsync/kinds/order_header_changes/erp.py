"""A change request against what the ERP has, and what the ERP has after it.

A Coupa change request (Order Header Change export) lists the PO's header as changed and the lines it
changes; the ERP keeps everything else. So a change is compared field by field with the values the
ledger keeps of what the ERP has (erp_state.py), and only on the fields the change carries:

* the header is changed when one of its compared values differs (``002``); a listed line is
  ``added`` (``001``) when the ERP does not have it, ``changed`` (``002``) when one of its values
  differs, ``unchanged`` (``004``) otherwise; a line marked pending-delete stays ``cancelled`` (``003``);
* nothing that differs: the change is not sent, it is recorded and written back as unchanged.

Once a change is handed off, the ERP has the PO version plus the change: ``erp_state.apply_changes``
overlays the change's values on the version's and hashes them again, so the next PO version from Coupa
(the one that approving the change creates) is compared with that, and is unchanged when it is only the
change. Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from batchsync.erp_state import (
    ErpState,
    differs,
    document_change,
    with_decided,
    with_fingerprint,
)
from batchsync.mapping_model import CompiledRecord


def compare_change_with_erp(
    levels: dict[str, pl.DataFrame], records: dict[str, list[CompiledRecord]], state: ErpState
) -> dict[str, pl.DataFrame]:
    """Sets ``_line_change`` per listed line and ``_change`` per change request."""
    assert state.po_key is not None
    header = with_fingerprint(levels["header"], records["header"])
    known = state.headers.select(
        pl.col("id").alias(state.po_key), "_erp_version", "_erp_values", pl.lit(True).alias("_erp_known")
    )
    header = header.join(known, on=state.po_key, how="left", maintain_order="left")
    header = header.with_columns(
        pl.Series(
            "_header_changed",
            [differs(m, e) for m, e in header.select("_mapped_values", "_erp_values").rows()],
            dtype=pl.Boolean,
        )
    )
    lines = with_fingerprint(levels["line"], records["line"]).with_columns(pl.lit(False).alias("_erp_deleted"))
    po_of = dict(header.select("id", state.po_key).rows())
    erp_lines = {
        (po, line): values for po, line, values in state.lines.select("_erp_po", "_erp_line", "_erp_values").rows()
    }
    decided = [
        _item(change, (po_of.get(doc), line), values, erp_lines)
        for doc, line, change, values in lines.select("doc_id", state.line_key, "_line_change", "_mapped_values").rows()
    ]
    # what the ERP has of each listed line: the X flags of a changed item say which of its fields differ
    had = [erp_lines.get((po_of.get(doc), line)) for doc, line in lines.select("doc_id", state.line_key).rows()]
    lines = lines.with_columns(
        pl.Series("_line_change", decided, dtype=pl.String), pl.Series("_erp_values", had, dtype=pl.String)
    )
    items = lines.group_by("doc_id").agg((pl.col("_line_change") != "unchanged").any().alias("_items_changed"))
    header = header.join(items.rename({"doc_id": "id"}), on="id", how="left", maintain_order="left")
    header = header.with_columns(document_change(pl.lit(False), pl.col("_header_changed")).alias("_change"))
    return with_decided(levels, header, lines)


def _item(change: str, key: tuple[Any, Any], values: str, erp_lines: dict[tuple[Any, Any], str | None]) -> str:
    if change == "cancelled":
        return change
    if key not in erp_lines:
        return "added"
    return "changed" if differs(values, erp_lines[key]) else "unchanged"


def change_line_decision() -> pl.Expr:
    """``_line_change``: a line marked pending-delete is cancelled, one without an order line is added."""
    deleted = pl.col("pending-delete").str.to_lowercase().is_in(["true", "1", "yes"])
    return (
        pl.when(deleted)
        .then(pl.lit("cancelled"))
        .when(pl.col("order-line-id").is_null())
        .then(pl.lit("added"))
        .otherwise(pl.lit("changed"))
    )
