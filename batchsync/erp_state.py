"""What the ERP has of a PO: the fingerprints of what it received, and what it has after changes.

For every version handed off, the ledger keeps a *fingerprint* of what the target received: a hash of
the header's mapped fields and one of each line's (the fields a mapping marks ``compare``; by default
every field that is not a constant, a segment number or one of the reserved columns that say *how* a
document is sent), and the compared values themselves (``mapped_values``, JSON). Each feed kind
compares its documents with this (``kinds/<kind>/erp.py``: a PO version with the latest version the
ERP got, a change request field by field on what it carries); once a change is handed off, the ERP
has the PO version plus the change (``apply_changes``: the values overlaid and hashed again).

A version handed off before fingerprints were kept has none: its next change counts as changed
everywhere (header and items). Pure: DataFrames in, DataFrames out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

import polars as pl

from batchsync.mapping_model import CompiledRecord

Row = dict[str, Any]
LINE_KEY = "line-number"  # what the ERP knows a PO line by (ORDERS05 E1EDP01-POSEX)
CHANGED = ("header", "items", "header_items")


HEAD_SCHEMA = {"id": pl.String, "_erp_version": pl.Int64, "_erp_hash": pl.String, "_erp_values": pl.String}
LINE_SCHEMA = {c: pl.String for c in ("_erp_po", "_erp_line", "_erp_hash", "_erp_source", "_erp_values")}


@dataclass(frozen=True)
class ErpState:
    """Per PO, what the ERP has: the latest version handed off plus the changes handed off after it."""

    headers: pl.DataFrame  # HEAD_SCHEMA: the PO's id
    lines: pl.DataFrame  # LINE_SCHEMA
    po_key: str | None = None  # the column naming the PO, for a feed whose documents are not POs (a change)
    line_key: str = LINE_KEY  # what the feed's lines call the PO line number

    @staticmethod
    def nothing(po_key: str | None = None, line_key: str = LINE_KEY) -> ErpState:
        return ErpState(pl.DataFrame(schema=HEAD_SCHEMA), pl.DataFrame(schema=LINE_SCHEMA), po_key, line_key)


def compared_parts(records: list[CompiledRecord]) -> list[tuple[str, pl.Expr]]:
    """What the ERP receives of a row, value by value: ``RECORD.FIELD`` (or ``RECORD`` for text lines)."""
    parts: list[tuple[str, pl.Expr]] = []
    for record in records:
        if record.lines_of is not None:  # the text lines come from one value: compare that value
            parts.append((record.name, record.lines_of[0].fill_null("")))
            continue
        for f in record.fields:
            if f.compared:
                value = f.value if record.when is None else pl.when(record.when).then(f.value)
                parts.append((f"{record.name}.{f.name}", value.fill_null("").cast(pl.String)))
    return parts


def fingerprint_expr(records: list[CompiledRecord]) -> pl.Expr:
    """The compared values of a row's records, as one text (hashed by ``with_fingerprint``)."""
    parts = [value if "." not in key else pl.lit(f"{key}=") + value for key, value in compared_parts(records)]
    return pl.concat_str(parts, separator="\x1f") if parts else pl.lit("")


def fingerprint_text(values: dict[str, str]) -> str:
    """The same text as ``fingerprint_expr``, from the values the ledger keeps."""
    return "\x1f".join(v if "." not in k else f"{k}={v}" for k, v in values.items())


def digest(text: str) -> str:
    return sha256(text.encode()).hexdigest()[:32]


def with_fingerprint(frame: pl.DataFrame, records: list[CompiledRecord]) -> pl.DataFrame:
    """Adds ``_mapped_hash`` (SHA-256 of the compared values, stable across polars releases) and
    ``_mapped_values`` (the values, a JSON object in the mapping's order)."""
    parts = compared_parts(records)
    values = pl.struct([v.alias(k) for k, v in parts]).struct.json_encode() if parts else pl.lit("{}")
    # with_columns, not select: a target with no records at this level still gets one value per row
    found = frame.with_columns(fingerprint_expr(records).alias("t"), values.alias("v")).select("t", "v")
    hashes = [digest(t) for t in found["t"].to_list()]
    return frame.with_columns(pl.Series("_mapped_hash", hashes, dtype=pl.String), found["v"].alias("_mapped_values"))


def differs(mine: str, theirs: str | None) -> bool:
    """Whether a change's values change what the ERP has (``theirs`` null: nothing known, so yes). An empty
    value is one the change does not carry (Layout.partial): it changes nothing."""
    if theirs is None:
        return True
    known = json.loads(theirs)
    return any(v != "" and known.get(k, "") != v for k, v in json.loads(mine).items())


def line_source(lines: pl.DataFrame, columns: list[str]) -> pl.Expr:
    """A line's Coupa columns as JSON: enough to send it again as deleted once it leaves the PO."""
    return pl.struct([pl.col(c) for c in columns if c in lines.columns]).struct.json_encode()


def with_decided(levels: dict[str, pl.DataFrame], header: pl.DataFrame, lines: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Every level gets the document's ``_change`` as decided on the header."""
    decided = header.select("_doc_seq", pl.col("_change").alias("_decided"))
    levels = {"header": header, "line": lines} | {r: f for r, f in levels.items() if r not in ("header", "line")}
    return {role: _with_change(frame, decided, role) for role, frame in levels.items()}


def document_change(legacy: pl.Expr, header: pl.Expr) -> pl.Expr:
    """``header``, ``items``, ``header_items`` or ``unchanged``, for a change the ERP has a version of."""
    if_change = pl.col("_change").is_in(CHANGED) & pl.col("_erp_known").fill_null(False)
    items = pl.col("_items_changed").fill_null(False)
    return (
        pl.when(~if_change)
        .then(pl.col("_change"))
        .when(legacy | (header & items))
        .then(pl.lit("header_items"))
        .when(header)
        .then(pl.lit("header"))
        .when(items)
        .then(pl.lit("items"))
        .otherwise(pl.lit("unchanged"))
    )


def _with_change(frame: pl.DataFrame, decided: pl.DataFrame, role: str) -> pl.DataFrame:
    if role == "header":
        return frame
    frame = frame.join(decided, on="_doc_seq", how="left", maintain_order="left")
    frame = frame.with_columns(pl.col("_decided").alias("_change")).drop("_decided")
    if role == "line":
        return frame
    return frame.with_columns(pl.col("_change").alias("_line_change"))  # allocations follow their document


def fingerprints(
    levels: dict[str, pl.DataFrame], kept: pl.Series, line_key: str = LINE_KEY
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What the ledger keeps of the documents sent.

    Header: id, mapped_hash, mapped_values. Lines: po_id (the document's id), line_number, line_change,
    mapped_hash, mapped_values.
    """
    header = levels["header"].filter(pl.col("id").is_in(kept.implode()))
    lines = levels["line"].filter(pl.col("doc_id").is_in(kept.implode()) & ~pl.col("_erp_deleted").fill_null(False))
    return (
        header.select(
            "id", pl.col("_mapped_hash").alias("mapped_hash"), pl.col("_mapped_values").alias("mapped_values")
        ),
        lines.select(
            pl.col("doc_id").alias("po_id"),
            pl.col(line_key).alias("line_number"),
            pl.col("_line_change").alias("line_change"),
            pl.col("_mapped_hash").alias("mapped_hash"),
            pl.col("_mapped_values").alias("mapped_values"),
        ),
    )


def apply_changes(
    heads: list[Row], lines: list[Row], changes: list[Row], change_lines: list[Row]
) -> tuple[list[Row], list[Row]]:
    """What the ERP has after each change handed off since the version in ``heads``/``lines``, in order.

    heads: id, _erp_version, _erp_hash, _erp_values; lines: _erp_po, _erp_line, _erp_hash, _erp_source,
    _erp_values; changes: change_id, po_id, mapped_values; change_lines: change_id, line_number,
    line_change, mapped_values. A version known by its hash alone (an older ledger) cannot be overlaid:
    after a change it is known by nothing, so the next version counts as changed everywhere.
    """
    state = {h["id"]: dict(h) for h in heads}
    by_line = {(r["_erp_po"], r["_erp_line"]): dict(r) for r in lines}
    listed: dict[str, list[Row]] = {}
    for row in change_lines:
        listed.setdefault(row["change_id"], []).append(row)
    for change in changes:
        po = change["po_id"]
        if po in state:
            _overlay(state[po], change["mapped_values"])
        for row in listed.get(change["change_id"], []):
            key = (po, row["line_number"])
            if row["line_change"] == "cancelled":
                by_line.pop(key, None)
            elif key in by_line:
                _overlay(by_line[key], row["mapped_values"])
            else:  # a line the change added: no PO columns to send it again as deleted later
                values = row["mapped_values"]
                known = None if values is None else digest(fingerprint_text(json.loads(values)))
                by_line[key] = {"_erp_po": po, "_erp_line": row["line_number"], "_erp_hash": known,
                                "_erp_source": None, "_erp_values": values}  # fmt: skip
    return list(state.values()), list(by_line.values())


def _overlay(known: Row, change: str | None) -> None:
    """The change's values replace the ERP's on the fields the ERP has; then the hash is the merged values'."""
    if change is None:
        return
    if known["_erp_values"] is None:
        known["_erp_hash"] = None
        return
    values = json.loads(known["_erp_values"])
    values.update({k: v for k, v in json.loads(change).items() if k in values})
    known["_erp_values"] = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    known["_erp_hash"] = digest(fingerprint_text(values))
