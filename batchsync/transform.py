"""Apply a compiled mapping: frames in, one row of finished record text per document out.

Pure: DataFrames in, DataFrames out, ``now`` passed in. polars builds every
record's text (padding, number and date formats, CSV quoting) as columns,
and joins a document's line-level records into one text, so the template
only lays out documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from batchsync.layouts import Layout
from batchsync.mapping import CompiledMapping, CompiledRecord
from batchsync.parse import LINE
from batchsync.validate import ERROR_SCHEMA

LineDecision = Callable[[], pl.Expr]  # per line record, from the document's _decision and the line's own columns


def same_as_document() -> pl.Expr:
    return pl.col("_decision")


@dataclass
class Transformed:
    documents: pl.DataFrame  # id, version, _decision, a column per header record, "<role>_records" per child role
    rejected: pl.DataFrame  # doc_id, reason (the first problem)
    problems: pl.DataFrame  # every problem, validate.ERROR_SCHEMA without file

    @staticmethod
    def concat(parts: list[Transformed]) -> Transformed:
        """One file's batches as one result, problems in line order."""
        return Transformed(
            pl.concat([p.documents for p in parts]),
            pl.concat([p.rejected for p in parts]),
            pl.concat([p.problems for p in parts]).sort("line"),
        )


def transform(
    frames: dict[str, pl.DataFrame],
    decisions: pl.DataFrame,
    mapping: CompiledMapping,
    layout: Layout,
    *,
    now: datetime,
    source_file: str,
    erp_file: str,
    line_decision: LineDecision = same_as_document,
) -> Transformed:
    """``decisions`` (id, _decision) names the documents to send and how."""
    levels = _level_frames(frames, decisions, mapping, layout, _context(now, source_file, erp_file), line_decision)
    problems = pl.concat([_problems(levels[role], mapping.at_level(role), role) for role in levels]).sort("line")
    rejected = problems.group_by("doc_id", maintain_order=True).agg(
        pl.format("line {}: {}", "line", "message").first().alias("reason")
    )
    bad = rejected["doc_id"].implode()
    documents = (
        levels["header"]
        .filter(~pl.col("id").is_in(bad))
        .select("id", "version", "_decision", *[_record_text(r) for r in mapping.at_level("header")])
    )
    for role in layout.roles[1:]:
        text = _joined_level_text(levels[role], mapping.at_level(role), role, bad)
        documents = documents.join(text, on="id", how="left").with_columns(pl.col(f"{role}_records").fill_null(""))
    return Transformed(documents, rejected, problems)


def _level_frames(
    frames: dict[str, pl.DataFrame],
    decisions: pl.DataFrame,
    mapping: CompiledMapping,
    layout: Layout,
    context: list[pl.Expr],
    line_decision: LineDecision,
) -> dict[str, pl.DataFrame]:
    # e.g. the PO's own id for a change
    extra = [c for c in decisions.columns if c not in ("id", "_decision", "_doc_seq")]
    header = frames["header"].drop(extra, strict=False).join(decisions, on="id", how="inner", maintain_order="left")
    if "_doc_seq" not in header.columns:  # a batch of a large file comes numbered across the file
        header = header.with_row_index("_doc_seq", offset=1)
    header = header.with_columns(*context, pl.lit(1).alias("_row"), pl.col("id").alias("doc_id"))
    parent = header.select(
        pl.col("id").alias("_parent"),
        "_decision",
        "_doc_seq",
        *context,
        *[pl.col(c).alias(f"header.{c}") for c in sorted(mapping.header_columns)],
    )
    levels = {"header": header}
    for record in layout.records[1:]:
        children = _children(frames[record.role], parent, record.doc_key, list(record.order))
        decided = line_decision() if record.role == "line" else same_as_document()
        levels[record.role] = children.with_columns(decided.alias("_line_decision"))
    return levels


def _context(now: datetime, source_file: str, erp_file: str) -> list[pl.Expr]:
    """The reserved columns every record may use (mapping.RESERVED)."""
    return [
        pl.lit(now.strftime("%Y%m%d")).alias("_now_date"),
        pl.lit(now.strftime("%H%M%S")).alias("_now_time"),
        pl.lit(now.strftime("%Y-%m-%dT%H:%M:%SZ")).alias("_now"),
        pl.lit(source_file).alias("_source_file"),
        pl.lit(erp_file).alias("_erp_file"),
    ]


def _children(frame: pl.DataFrame, parent: pl.DataFrame, doc_key: str, order: list[str]) -> pl.DataFrame:
    joined = frame.join(parent, left_on=doc_key, right_on="_parent", how="inner")
    keys = [pl.col(c).cast(pl.Int64, strict=False) for c in order]
    return joined.sort(["_doc_seq", *keys, LINE], maintain_order=True).with_columns(
        pl.int_range(1, pl.len() + 1).over("_doc_seq").alias("_row"), pl.col(doc_key).alias("doc_id")
    )


def _problems(frame: pl.DataFrame, records: list[CompiledRecord], level: str) -> pl.DataFrame:
    """Rows that do not fit the target, in the error-frame shape (validate.ERROR_SCHEMA without file)."""
    found = [
        pl.when(p.when).then(
            pl.struct(
                pl.lit(p.field).alias("column"),
                pl.lit(p.check).alias("check"),
                p.reason.cast(pl.String).alias("message"),
            )
        )
        for record in records
        for f in record.fields
        for p in f.problems
    ]
    if found and frame.height:
        # most rows fit: find them with plain booleans, and build the error rows only for the others
        any_problem = pl.any_horizontal(p.when.fill_null(False) for r in records for f in r.fields for p in f.problems)
        frame = frame.filter(any_problem)
    if not found or frame.height == 0:
        return pl.DataFrame(schema={k: v for k, v in ERROR_SCHEMA.items() if k != "file"})
    return (
        frame.select(pl.col(LINE).alias("line"), "doc_id", pl.concat_list(found).list.drop_nulls().alias("p"))
        .explode("p")
        .drop_nulls("p")
        .unnest("p")
        .select(
            "line",
            pl.lit(level).alias("record_type"),
            "doc_id",
            "column",
            "check",
            pl.lit(None, pl.String).alias("value"),
            "message",
        )
    )


def _record_text(record: CompiledRecord) -> pl.Expr:
    return concat_text(_record_pieces(record)).alias(record.name)


def _record_pieces(record: CompiledRecord) -> list[pl.Expr | str]:
    """A record's text as expressions and literal strings, to be concatenated."""
    if record.layout == "csv":
        cells = [csv_cell(f.value) for f in record.fields]
        return [pl.concat_str(cells, separator=record.delimiter)]
    pieces: list[pl.Expr | str] = []
    for f in record.fields:
        constant = f.padded_constant()
        width = f.width or 0
        if constant is not None:
            pieces.append(constant)
        elif f.align == "right":
            pieces.append(f.value.fill_null("").str.pad_start(width, f.fill))
        else:
            pieces.append(f.value.fill_null("").str.pad_end(width, f.fill))
    # every field is padded to its width, so the record's padding is a constant too; a value
    # too long for its field makes a longer text, but that row's document is rejected anyway
    pieces.append(" " * max(0, (record.length or 0) - sum(f.width or 0 for f in record.fields)))
    return pieces


def concat_text(pieces: list[pl.Expr | str]) -> pl.Expr:
    """Concatenate, with runs of literal strings joined first: they are laid out once, not per row."""
    merged: list[pl.Expr | str] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif not isinstance(piece, str) or piece:
            merged.append(piece)
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in merged])


def csv_cell(value: pl.Expr) -> pl.Expr:
    """Quoted CSV cell; a leading = + - @ (other than a plain number) gets a ' so a spreadsheet shows text."""
    guarded = guard_formula(value.fill_null(""))
    return pl.lit('"') + guarded.str.replace_all('"', '""', literal=True) + pl.lit('"')


def guard_formula(text: pl.Expr) -> pl.Expr:
    """A leading = + - @ (other than a plain number such as -5.00) gets a ' so a spreadsheet shows text."""
    formula = text.str.contains(r"^[=+\-@\t\r]") & ~text.str.contains(r"^[+-]?\d+(\.\d+)?$")
    return pl.when(formula).then(pl.lit("'") + text).otherwise(text)


def _joined_level_text(frame: pl.DataFrame, records: list[CompiledRecord], level: str, bad: pl.Series) -> pl.DataFrame:
    """Per document: its rows' records in order, one line each, as one text."""
    name = f"{level}_records"
    if not records:
        return pl.DataFrame(schema={"id": pl.String, name: pl.String})
    texts = [_record_text(r).alias(f"_record{i}") for i, r in enumerate(records)]
    # each record as its own column first: one concat_str over every piece of them all is slower
    return (
        frame.select(pl.col("doc_id").alias("id"), *texts)
        .filter(~pl.col("id").is_in(bad))
        .select("id", pl.concat_str([pl.col(f"_record{i}") for i in range(len(records))], separator="\n").alias(name))
        .group_by("id", maintain_order=True)
        .agg(pl.col(name).str.join("\n"))
    )
