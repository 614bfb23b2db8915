"""Apply a compiled mapping: frames in, one row of finished record text per document out.

Pure: DataFrames in, DataFrames out, ``now`` passed in. polars builds every
record's text (padding, number and date formats, CSV quoting) as columns,
and joins a document's line-level records into one text, so the template
only lays out documents.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import polars as pl

from batchsync.erp_state import ErpState, fingerprints
from batchsync.handoff import sequence_digits, unsequenced
from batchsync.layouts import Layout, RecordType
from batchsync.mapping_model import CompiledMapping, CompiledRecord
from batchsync.parse import LINE
from batchsync.records import number_records, record_texts, row_text, with_text_lines
from batchsync.segment_order import number_by_segment, texts_by_segment
from batchsync.validate import ERROR_SCHEMA, first_reasons

if TYPE_CHECKING:
    from batchsync.kinds.base import FeedKind

LineDecision = Callable[[], pl.Expr]  # per line record, from the document's _decision and the line's own columns


STALE_LINE = (
    "line {}: the ERP has it, and the mapping's where: leaves it out of this version: "
    "cancel it in Coupa or send it, so the ERP's copy stays true"
)


def same_as_document() -> pl.Expr:
    return pl.col("_decision")


def _ids() -> pl.DataFrame:
    return pl.DataFrame(schema={"id": pl.String, "_erp_version": pl.Int64})


@dataclass
class Transformed:
    documents: pl.DataFrame  # id, version, _decision, a column per header record, "<role>_records" per child role
    rejected: pl.DataFrame  # doc_id, reason (the first problem)
    problems: pl.DataFrame  # every problem, validate.ERROR_SCHEMA without file
    unchanged: pl.DataFrame = field(default_factory=_ids)  # id: nothing the ERP receives changed, not sent
    header_fingerprints: pl.DataFrame | None = None  # id, mapped_hash, mapped_values (erp_state.fingerprints)
    line_fingerprints: pl.DataFrame | None = None  # po_id (the document), line_number, line_change, mapped_hash, …

    @staticmethod
    def concat(parts: list[Transformed]) -> Transformed:
        """One file's batches as one result, problems in line order."""
        heads = [p.header_fingerprints for p in parts if p.header_fingerprints is not None]
        lines = [p.line_fingerprints for p in parts if p.line_fingerprints is not None]
        return Transformed(
            pl.concat([p.documents for p in parts]),
            pl.concat([p.rejected for p in parts]),
            pl.concat([p.problems for p in parts]).sort("line"),
            pl.concat([p.unchanged for p in parts]),
            pl.concat(heads) if heads else None,
            pl.concat(lines) if lines else None,
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
    kind: FeedKind[Any] | None = None,
    erp_state: ErpState | None = None,
) -> Transformed:
    """``decisions`` (id, _decision) names the documents to send and how; ``kind`` decides what their lines
    do (every line as its document without one); ``erp_state`` is what the ERP has (needs ``kind``)."""
    context = _context(now, source_file, erp_file)
    if kind is not None and erp_state is not None:
        frames = {**frames, "line": kind.with_erp_lines(frames["line"], decisions, erp_state)}
    line_decision = same_as_document if kind is None else kind.line_decision
    levels = _level_frames(frames, decisions, mapping, layout, context, line_decision)
    stale = _stale_erp_lines(frames["line"], levels["line"], layout, mapping, erp_state)
    if erp_state is not None:
        assert kind is not None, "comparing with the ERP takes the feed kind's line actions"
        by_level = {"header": mapping.at_level("header"), "line": mapping.at_level("line")}
        levels = kind.compare(levels, by_level, erp_state)
        unchanged = levels["header"].filter(pl.col("_change") == "unchanged").select("id", "_erp_version")
        levels = {
            role: frame.filter(~pl.col("doc_id").is_in(unchanged["id"].implode())) for role, frame in levels.items()
        }
    else:
        unchanged = _ids()
    levels = {role: _with_erp_values(frame) for role, frame in levels.items()}
    levels = number_by_segment(levels, mapping, layout) if mapping.by_segment else _numbered(levels, mapping)
    problems = pl.concat([_problems(levels[role], mapping.at_level(role), role) for role in levels] + [stale])
    problems = problems.sort("line")
    rejected = first_reasons(problems, levels)
    bad = rejected["doc_id"].implode()
    header_records = mapping.at_level("header")
    documents = record_texts(levels["header"].filter(~pl.col("id").is_in(bad)), header_records).select(
        "id",
        "version",
        "_decision",
        *[pl.col(f"_rec:{r.name}").fill_null("").alias(r.name) for r in header_records],
        row_text(header_records).alias("header_records"),
    )
    for role in layout.roles[1:]:
        texts = _level_texts(levels[role], mapping, role, bad)
        documents = documents.join(texts, on="id", how="left").with_columns(
            pl.col(c).fill_null("") for c in texts.columns if c != "id"
        )
    if mapping.by_segment:  # every record of the document in SAP's order, as one text
        ordered = texts_by_segment(levels, mapping, layout, bad)
        documents = documents.join(ordered, on="id", how="left").with_columns(pl.col("records").fill_null(""))
    if erp_state is None:
        return Transformed(documents, rejected, problems, unchanged)
    return Transformed(
        documents, rejected, problems, unchanged, *fingerprints(levels, documents["id"], erp_state.line_key)
    )


def _with_erp_values(frame: pl.DataFrame) -> pl.DataFrame:
    """``_erp_values`` on every row (X flags read it: mapping_idoc.ERP_VALUES): null where the ERP has nothing."""
    return frame if "_erp_values" in frame.columns else frame.with_columns(pl.lit(None, pl.String).alias("_erp_values"))


def _numbered(levels: dict[str, pl.DataFrame], mapping: CompiledMapping) -> dict[str, pl.DataFrame]:
    """Segment numbers: the header's records first, then each line's records, line after line."""
    header = with_text_lines(levels["header"], mapping.at_level("header"))
    header = number_records(header, mapping.at_level("header"), pl.lit(0, pl.Int64))
    counted = header.select("_doc_seq", pl.col("_segcount").alias("_header_segcount"))
    lines = with_text_lines(levels["line"], mapping.at_level("line"))
    lines = lines.join(counted, on="_doc_seq", how="left", maintain_order="left")
    before = pl.col("_header_segcount") + pl.col("_segcount").cum_sum().over("_doc_seq") - pl.col("_segcount")
    lines = number_records(lines, mapping.at_level("line"), before)
    return {**levels, "header": header, "line": lines}


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
    header = header.with_columns(_docnum(context).alias("_docnum"), _header_change().alias("_change"))
    key = pl.col("_handoff_number") + pl.col("_doc_seq").cast(pl.String).str.pad_start(6, "0")
    header = header.with_columns(key.alias("_interface_key"), key.alias("_doc_interface_key"))
    parent = header.select(
        pl.col("id").alias("_parent"),
        "_decision",
        "_change",
        "_docnum",
        "_doc_seq",
        "_doc_interface_key",
        *context,
        *[pl.col(c).alias(f"header.{c}") for c in sorted(mapping.header_columns)],
    )
    levels = {"header": header}
    for record in layout.records[1:]:
        children = _children(frames[record.role], parent, record.doc_key, list(record.order))
        decided = line_decision() if record.role == "line" else pl.col("_change")
        levels[record.role] = _level_rows(children.with_columns(decided.alias("_line_change")), record, levels, mapping)
        if record.line_key is not None and "line" in levels:
            levels["line"] = _with_count(levels["line"], levels[record.role], record.line_key)
    return levels


def _level_rows(
    children: pl.DataFrame, record: RecordType, levels: dict[str, pl.DataFrame], mapping: CompiledMapping
) -> pl.DataFrame:
    """The rows of a level the target takes (``where:``; an allocation goes with its line), numbered."""
    below_line = record.line_key is not None and "line" in levels
    if below_line:  # an allocation: its line's values beside it, and only of a line the target takes
        assert record.line_key is not None
        children = _of_kept_lines(children, levels["line"], record.line_key, mapping)
    if record.role in mapping.where:  # a line the ERP has that the PO no longer lists is sent as deleted, always
        gone = pl.col("_erp_deleted").fill_null(False) if "_erp_deleted" in children.columns else pl.lit(False)
        children = children.filter(mapping.where[record.role].fill_null(False) | gone)
    elif not (below_line and "line" in mapping.where):  # nothing left out: _children's numbers hold
        return children.with_columns(_interface_key().alias("_interface_key"))
    return _numbered_rows(children)


def _stale_erp_lines(
    lines: pl.DataFrame, kept: pl.DataFrame, layout: Layout, mapping: CompiledMapping, state: ErpState | None
) -> pl.DataFrame:
    """A line the ERP has that a new version's ``where:`` leaves out would go stale there, and vanish from
    what the ledger knows the ERP has: it rejects its PO, with what to do (problems, ERROR_SCHEMA)."""
    schema = {k: v for k, v in ERROR_SCHEMA.items() if k != "file"}
    if state is None or state.po_key is not None or "line" not in mapping.where:
        return pl.DataFrame(schema=schema)
    doc_key, number = layout.role("line").doc_key, state.line_key
    left_out = lines.join(kept.select(pl.col("doc_id").alias(doc_key), number), on=[doc_key, number], how="anti")
    known = state.lines.select(pl.col("_erp_po").alias(doc_key), pl.col("_erp_line").alias(number))
    stale = left_out.join(known, on=[doc_key, number], how="semi")
    return stale.select(
        pl.col(LINE).alias("line"),
        pl.lit("line").alias("record_type"),
        pl.col(doc_key).alias("doc_id"),
        pl.lit(number).alias("column"),
        pl.lit("where").alias("check"),
        pl.col(number).cast(pl.String).alias("value"),
        pl.format(STALE_LINE, number).alias("message"),
    ).cast(schema)  # type: ignore[arg-type]


def _row_number() -> pl.Expr:
    """A row's place among its document's rows of the level, from 1."""
    return pl.int_range(1, pl.len() + 1).over("_doc_seq")


def _interface_key() -> pl.Expr:
    return pl.col("_doc_interface_key") + pl.col("_row").cast(pl.String).str.pad_start(4, "0")


def _numbered_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """``_row``, the row's place among its document's rows of the level (after ``where:``), and its interface key."""
    numbered = frame.with_columns(_row_number().alias("_row"))
    return numbered.with_columns(_interface_key().alias("_interface_key"))


def _of_kept_lines(
    frame: pl.DataFrame, lines: pl.DataFrame, key: tuple[str, str], mapping: CompiledMapping
) -> pl.DataFrame:
    """A record of a line (an allocation) goes with its line: left out with a line ``where:`` leaves out,
    and with ``line.<column>``, its line's values, beside it."""
    own, of_line = key
    if "line" in mapping.where:
        kept = lines.select("doc_id", pl.col(of_line).alias(own)).unique()
        frame = frame.join(kept, on=["doc_id", own], how="semi", maintain_order="left")
    return _with_line_columns(frame, lines, key, mapping)


def _with_count(lines: pl.DataFrame, below: pl.DataFrame, key: tuple[str, str]) -> pl.DataFrame:
    """``_allocations`` on each line: how many records of the level below belong to it."""
    own, of_line = key
    counts = below.group_by("doc_id", pl.col(own).alias(of_line)).agg(pl.len().cast(pl.Int64).alias("_allocations"))
    joined = lines.join(counts, on=["doc_id", of_line], how="left", maintain_order="left")
    return joined.with_columns(pl.col("_allocations").fill_null(0))


def _with_line_columns(
    frame: pl.DataFrame, lines: pl.DataFrame, key: tuple[str, str], mapping: CompiledMapping
) -> pl.DataFrame:
    """``line.<column>`` beside each record of a line (an allocation): its line's values, by line number."""
    if not mapping.line_columns:
        return frame
    own, of_line = key
    columns = [pl.col(c).alias(f"line.{c}") for c in sorted(mapping.line_columns)]
    values = lines.select("doc_id", pl.col(of_line).alias("_line_ref"), *columns)
    values = values.unique(["doc_id", "_line_ref"], keep="first", maintain_order=True)
    right = ["doc_id", "_line_ref"]
    return frame.join(values, left_on=["doc_id", own], right_on=right, how="left", maintain_order="left")


def _header_change() -> pl.Expr:
    """How the document changes what the ERP has: new, cancel, close, or header and items changed.

    Without a record of what the ERP has, a change counts as changed everywhere (header and items).
    """
    return pl.when(pl.col("_decision") == "change").then(pl.lit("header_items")).otherwise(pl.col("_decision"))


def _docnum(context: list[pl.Expr]) -> pl.Expr:
    """16 digits, unique per document of a hand-off file and the same when the file is rendered again:
    8 from the hand-off's name (SHA-256, stable across upgrades), 8 from the document's place in its file."""
    prefix = next(e for e in context if e.meta.output_name() == "_docnum_prefix")
    return pl.concat_str(prefix, pl.col("_doc_seq").cast(pl.String).str.pad_start(8, "0"))


def _context(now: datetime, source_file: str, erp_file: str) -> list[pl.Expr]:
    """The reserved columns every record may use (mapping_model.RESERVED)."""
    return [
        pl.lit(now.strftime("%Y%m%d")).alias("_now_date"),
        pl.lit(now.strftime("%H%M%S")).alias("_now_time"),
        pl.lit(now.strftime("%Y-%m-%dT%H:%M:%SZ")).alias("_now"),
        pl.lit(source_file).alias("_source_file"),
        pl.lit(erp_file).alias("_erp_file"),
        # not the sequence prefix: the same file rendered again in a later run numbers its IDocs the same
        pl.lit(f"{int(sha256(unsequenced(erp_file).encode()).hexdigest(), 16) % 10**8:08d}").alias("_docnum_prefix"),
        # the hand-off's run and place in it (R0000012-0003_): no two hand-offs share it, a reprocess included
        pl.lit(sequence_digits(erp_file)).alias("_handoff_number"),
    ]


def _children(frame: pl.DataFrame, parent: pl.DataFrame, doc_key: str, order: list[str]) -> pl.DataFrame:
    joined = frame.join(parent, left_on=doc_key, right_on="_parent", how="inner")
    keys = [pl.col(c).cast(pl.Int64, strict=False) for c in order]
    return joined.sort(["_doc_seq", *keys, LINE], maintain_order=True).with_columns(
        _row_number().alias("_row"), pl.col(doc_key).alias("doc_id")
    )


def _problems(frame: pl.DataFrame, records: list[CompiledRecord], level: str) -> pl.DataFrame:
    """Rows that do not fit the target, in the error-frame shape (validate.ERROR_SCHEMA without file)."""
    # a lines_of record's text lines fit by construction; its other fields are the row's, checked elsewhere
    checks = [
        (p.when if r.when is None else p.when & r.when, p)
        for r in records
        if not r.lines_of
        for f in r.fields
        for p in f.problems
    ]
    found = [
        pl.when(when).then(
            pl.struct(
                pl.lit(p.field).alias("column"),
                pl.lit(p.check).alias("check"),
                (pl.lit(None, pl.String) if p.value is None else p.value.cast(pl.String)).alias("value"),
                p.reason.cast(pl.String).alias("message"),
            )
        )
        for when, p in checks
    ]
    if found and frame.height:
        # most rows fit: find them with plain booleans, and build the error rows only for the others
        frame = frame.filter(pl.any_horizontal(when.fill_null(False) for when, _ in checks))
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
            "value",
            "message",
        )
    )


def _level_texts(frame: pl.DataFrame, mapping: CompiledMapping, level: str, bad: pl.Series) -> pl.DataFrame:
    """Per document: its rows' records in order, one line each, as one text (``<level>_records``), and
    for each output of several the same of its own records (``<level>_records@<output>``). The
    records' texts are built once; a row none of whose records is written (``when:``) adds no line."""
    records = mapping.at_level(level)
    texts = {f"{level}_records": records}
    for output in mapping.outputs:
        if output.records is not None:  # an output of several lays out its own records only
            texts[output.renamed([level])[f"{level}_records"]] = [r for r in records if r.name in output.records]
    if not records:
        return pl.DataFrame(schema={"id": pl.String, **dict.fromkeys(texts, pl.String)})
    rows = record_texts(frame.filter(~pl.col("doc_id").is_in(bad)), records).select(
        pl.col("doc_id").alias("id"), *[row_text(own).alias(name) for name, own in texts.items()]
    )
    joined = [pl.col(n).filter(pl.col(n).fill_null("") != "").str.join("\n") for n in texts]
    return rows.group_by("id", maintain_order=True).agg(joined)
