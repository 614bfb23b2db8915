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
    # what the ERP has of each listed line (its PO's line of that number): compared here, read by the X flags
    po_of = header.select(pl.col("id").alias("doc_id"), pl.col(state.po_key).alias("_erp_po"))
    lines = _with_erp_lines(lines, po_of, state)
    decided = [
        _item(change, has, values, theirs)
        for change, has, values, theirs in lines.select(
            "_line_change", "_erp_has_line", "_mapped_values", "_erp_values"
        ).rows()
    ]
    lines = lines.with_columns(pl.Series("_line_change", decided, dtype=pl.String)).drop("_erp_has_line")
    items = lines.group_by("doc_id").agg((pl.col("_line_change") != "unchanged").any().alias("_items_changed"))
    header = header.join(items.rename({"doc_id": "id"}), on="id", how="left", maintain_order="left")
    header = header.with_columns(document_change(pl.lit(False), pl.col("_header_changed")).alias("_change"))
    return with_decided(levels, header, lines)


def _with_erp_lines(lines: pl.DataFrame, po_of: pl.DataFrame, state: ErpState) -> pl.DataFrame:
    """``_erp_values`` and ``_erp_has_line`` of each change line, from its PO's line of the same number
    (``po_of``: doc_id, _erp_po)."""
    keys = ["_erp_po", state.line_key]
    erp = state.lines.select(
        "_erp_po", pl.col("_erp_line").alias(state.line_key), "_erp_values", pl.lit(True).alias("_erp_has_line")
    ).unique(keys, keep="last", maintain_order=True)
    of_po = lines.join(po_of.unique("doc_id", keep="last"), on="doc_id", how="left", maintain_order="left")
    return of_po.join(erp, on=keys, how="left", maintain_order="left").drop("_erp_po")


def _item(change: str, has_line: bool | None, values: str, theirs: str | None) -> str:
    if change == "cancelled":
        return change
    if not has_line:
        return "added"
    return "changed" if differs(values, theirs) else "unchanged"


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
