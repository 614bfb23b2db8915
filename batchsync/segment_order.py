"""``idoc: {order: by_segment}``: a document's records grouped by segment, in the basic type's order.

A BAPI's IDoc (PORDCR1, PORDCH) defines each table of the BAPI as one segment under the root
(E1BPMEPOITEM up to 9999 times, then E1BPMEPOITEMX, ...), and SAP's syntax check and the XML
schema want every occurrence of a segment together, in that order: all items, then all their X
segments, then all schedule lines. So the records of a document are sorted by their segment's
position in SAP's definition, then by line, then by allocation, then by their place in the mapping;
SEGNUM counts them in that order. Pure polars, like records.py.
"""

from __future__ import annotations

import polars as pl

from batchsync.layouts import Layout
from batchsync.mapping_model import CompiledMapping, CompiledRecord
from batchsync.records import count_expr, record_texts, with_text_lines

_SORT = ["_doc_seq", "_position", "_line_order", "_allocation_order", "_record_order"]
_CLOSED_AFTER = 1 << 20  # closing tags come after every record, the innermost first


def number_by_segment(
    levels: dict[str, pl.DataFrame], mapping: CompiledMapping, layout: Layout
) -> dict[str, pl.DataFrame]:
    """Adds ``_segnum:R`` (R's first occurrence in the row) to every level, and the header's numbers below it."""
    keyed = _keyed({role: with_text_lines(frame, mapping.at_level(role)) for role, frame in levels.items()}, layout)
    numbered = [(i, r) for i, r in enumerate(mapping.records) if r.numbered]
    if not numbered:
        return {role: frame.drop("_rid") for role, frame in keyed.items()}
    occurrences = pl.concat(
        [
            _placed(keyed[r.level], r, i).select(
                *_SORT, "_rid", pl.lit(r.name).alias("_record"), count_expr(r).alias("_n")
            )
            for i, r in numbered
        ]
    ).sort(_SORT)
    starts = occurrences.with_columns((pl.col("_n").cum_sum().over("_doc_seq") - pl.col("_n") + 1).alias("_start"))
    result = {}
    for role, frame in keyed.items():
        for _, record in (pair for pair in numbered if pair[1].level == role):
            own = starts.filter(pl.col("_record") == record.name).select(
                "_rid", pl.col("_start").alias(f"_segnum:{record.name}")
            )
            frame = frame.join(own, on="_rid", how="left", maintain_order="left")
        result[role] = frame.drop("_rid")
    header_numbers = [f"_segnum:{r.name}" for _, r in numbered if r.level == "header"]
    below = result["header"].select("_doc_seq", *header_numbers)
    for role in layout.roles[1:]:
        result[role] = result[role].join(below, on="_doc_seq", how="left", maintain_order="left")
    return result


def texts_by_segment(
    levels: dict[str, pl.DataFrame], mapping: CompiledMapping, layout: Layout, bad: pl.Series
) -> pl.DataFrame:
    """Per document (``id``), every record it writes, one per line, in SAP's order (``records``)."""
    kept = {role: frame.filter(~pl.col("doc_id").is_in(bad)) for role, frame in levels.items()}
    keyed = _keyed(kept, layout)
    pieces = []
    for i, record in enumerate(mapping.records):
        placed = _placed(record_texts(keyed[record.level], [record]), record, i)
        text = pl.col(f"_rec:{record.name}")
        pieces.append(placed.select("doc_id", *_SORT, text.alias("_text")))
        if record.encloses:  # its element holds the document's later records: closed after all of them
            closing = placed.select(
                "doc_id",
                "_doc_seq",
                pl.lit(_CLOSED_AFTER - record.position).alias("_position"),
                *_SORT[2:],
                pl.when(text.is_not_null()).then(pl.lit(f"</{record.segment}>")).alias("_text"),
            )
            pieces.append(closing)
    # a text record with no lines (a deleted item's) writes nothing, not an empty line
    ordered = pl.concat(pieces, how="vertical_relaxed").filter(pl.col("_text") != "").sort(_SORT)
    return ordered.group_by(pl.col("doc_id").alias("id"), maintain_order=True).agg(
        pl.col("_text").str.join("\n").alias("records")
    )


def _placed(frame: pl.DataFrame, record: CompiledRecord, order: int) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(record.position, pl.Int64).alias("_position"), pl.lit(order, pl.Int64).alias("_record_order")
    )


def _keyed(levels: dict[str, pl.DataFrame], layout: Layout) -> dict[str, pl.DataFrame]:
    """Each level's rows with ``_rid`` and their place in the document: the line's, then the allocation's."""
    keyed: dict[str, pl.DataFrame] = {}
    for role, frame in levels.items():
        frame = frame.with_row_index("_rid")
        record_type = layout.role(role)
        if role == layout.roles[0]:
            keyed[role] = frame.with_columns(
                pl.lit(0, pl.Int64).alias("_line_order"), pl.lit(0, pl.Int64).alias("_allocation_order")
            )
        elif record_type.line_key is None:
            keyed[role] = frame.with_columns(
                pl.col("_row").cast(pl.Int64).alias("_line_order"), pl.lit(0, pl.Int64).alias("_allocation_order")
            )
        else:
            own, of_line = record_type.line_key
            # its line's place, and what became of the line once compared with the ERP (line._line_change)
            compared = ["_line_change"] if "line._line_change" in frame.columns else []
            lines = levels["line"].select(
                "doc_id",
                pl.col(of_line).alias(own),
                pl.col("_row").cast(pl.Int64).alias("_line_order"),
                *[pl.col(c).alias(f"line.{c}") for c in compared],
            )
            lines = lines.unique(["doc_id", own], keep="first", maintain_order=True)
            joined = frame.drop([f"line.{c}" for c in compared]).join(
                lines, on=["doc_id", own], how="left", maintain_order="left"
            )
            keyed[role] = joined.with_columns(pl.col("_row").cast(pl.Int64).alias("_allocation_order"))
    return keyed
