"""Validate parsed frames: pandera models per record type, then cross-record rules.

A document (PO or change request) with any invalid record is rejected whole;
every failure becomes one row of the error frame (file, line, record type,
document id, column, check, value, message). ``failure_cases`` of a lazy
pandera validation are joined back to the records' physical line numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl
from pandera.api.function_dispatch import Dispatcher
from pandera.api.polars.types import PolarsData
from pandera.errors import SchemaErrors

from batchsync.checks import message_for
from batchsync.errors import DataError
from batchsync.layouts import Layout
from batchsync.parse import LINE, TYPE, ParsedFile, keep_rows

Rule = Callable[[dict[str, pl.DataFrame]], list[pl.DataFrame]]

ERROR_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "line": pl.Int64(),
    "record_type": pl.String(),
    "doc_id": pl.String(),
    "column": pl.String(),
    "check": pl.String(),
    "value": pl.String(),
    "message": pl.String(),
}


@dataclass
class Validated:
    frames: dict[str, pl.DataFrame]  # records of accepted documents only
    errors: pl.DataFrame  # ERROR_SCHEMA, one row per failure, in line order
    rejected: pl.DataFrame  # doc_id, reason: documents rejected whole, with their first failure

    @property
    def accepted_ids(self) -> pl.Series:
        return self.frames["header"]["id"]


def validate(
    parsed: ParsedFile,
    layout: Layout,
    models: dict[str, type[pa.DataFrameModel]],
    rules: Sequence[Rule],
) -> Validated:
    doc_keys = {r.role: r.doc_key for r in layout.records}
    found = [_model_failures(parsed.frames[role], role, doc_keys[role], model) for role, model in models.items()]
    found += [rows for rule in rules for rows in rule(parsed.frames)]
    found.append(_unknown_record_rows(parsed.unknown, layout))
    errors = _finish(found, parsed.name)
    return split(parsed.frames, errors, doc_keys)


def document_rules(layout: Layout) -> list[Rule]:
    """The rules every record-typed file keeps, whatever its kind: each record points at a header of the
    same file, a document's header appears once, and a line number once per document."""
    noun = layout.noun

    def orphans(frames: dict[str, pl.DataFrame]) -> list[pl.DataFrame]:
        ids = frames["header"]["id"].implode()
        message = f"points at a {noun} header that is not in this file"
        return [
            rule_errors(frames[r.role].filter(~pl.col(r.doc_key).is_in(ids)), r.role, r.doc_key, r.doc_key,
                        "header_exists", message)
            for r in layout.records[1:]
        ]  # fmt: skip

    def unique(frames: dict[str, pl.DataFrame]) -> list[pl.DataFrame]:
        line = layout.role("line")
        number = line.order[0]
        headers = frames["header"].filter(pl.col("id").is_duplicated())
        lines = frames["line"].filter(pl.struct(line.doc_key, number).is_duplicated())
        return [
            rule_errors(headers, "header", "id", "id", "unique", f"the {noun} appears more than once in this file"),
            rule_errors(lines, "line", line.doc_key, number, "unique", f"line number repeats within the {noun}"),
        ]

    return [orphans, unique]


def rule_errors(
    frame: pl.DataFrame,
    role: str,
    doc_key: str,
    column: str,
    check: str,
    message: pl.Expr | str,
    value: pl.Expr | None = None,
) -> pl.DataFrame:
    """A cross-record rule's failures in the error-frame shape (ERROR_SCHEMA without file)."""
    return frame.select(
        pl.col(LINE).alias("line"),
        pl.lit(role).alias("record_type"),
        pl.col(doc_key).alias("doc_id"),
        pl.lit(column).alias("column"),
        pl.lit(check).alias("check"),
        (pl.col(column) if value is None else value).cast(pl.String).alias("value"),
        (message if isinstance(message, pl.Expr) else pl.lit(message)).alias("message"),
    )


# the column that holds a record's PO line number, per record type (PO feed, change feed)
PO_LINE_COLUMNS = {"line": ("line-number", "line-num"), "allocation": ("order-line-num",)}


def buyer_reason(problems: pl.DataFrame, frames: dict[str, pl.DataFrame]) -> pl.Series:
    """A reason in a buyer's words: the PO's own line number, not the export file's physical line.

    ``problems``: line (physical), record_type, message. The physical line stays in the error report.
    """
    numbers = [
        frames[role].select(pl.col(LINE).alias("line"), pl.lit(role).alias("record_type"), pl.col(c).alias("po_line"))
        for role, names in PO_LINE_COLUMNS.items()
        if role in frames
        for c in names
        if c in frames[role].columns
    ]
    known = pl.concat(numbers).unique(["line", "record_type"]) if numbers else None
    frame = problems.select("line", "record_type", _with_value().alias("message"))
    if known is not None:
        frame = frame.join(known, on=["line", "record_type"], how="left", maintain_order="left")
    else:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("po_line"))
    said = pl.when(pl.col("po_line").is_not_null()).then(pl.format("PO line {}: {}", "po_line", "message"))
    return frame.select(said.otherwise(pl.col("message")).alias("reason"))["reason"]


def first_reasons(problems: pl.DataFrame, frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """doc_id, reason: each document's first problem, in a buyer's words (validation and mapping alike)."""
    first = problems.group_by("doc_id", maintain_order=True).first()
    return first.select("doc_id", buyer_reason(first, frames).alias("reason"))


def _with_value() -> pl.Expr:
    """``price is not a number`` becomes ``price "12,50" is not a number``: the buyer sees what Coupa holds."""
    if_named = pl.col("value").is_not_null() & pl.col("message").str.starts_with(pl.col("column") + pl.lit(" "))
    rest = pl.col("message").str.slice(pl.col("column").str.len_chars() + 1)
    return pl.when(if_named).then(pl.format('{} "{}" {}', "column", "value", rest)).otherwise(pl.col("message"))


def split(frames: dict[str, pl.DataFrame], errors: pl.DataFrame, doc_keys: dict[str, str]) -> Validated:
    """Keep only documents without errors; say why each other one was rejected."""
    header_ids = frames["header"]["id"]
    rejected = first_reasons(errors.filter(pl.col("doc_id").is_in(header_ids.implode())), frames)
    bad = rejected["doc_id"].implode()
    accepted = {
        role: keep_rows(frame, ~pl.col(doc_keys[role]).is_in(bad) & pl.col(doc_keys[role]).is_in(header_ids.implode()))
        for role, frame in frames.items()
    }
    return Validated(accepted, errors, rejected)


def _model_failures(frame: pl.DataFrame, role: str, doc_key: str, model: type[pa.DataFrameModel]) -> pl.DataFrame:
    if passes_every_check(frame, model.to_schema()):
        return pl.DataFrame(schema=ERROR_SCHEMA).drop("file")
    try:
        model.validate(frame, lazy=True)
        return pl.DataFrame(schema=ERROR_SCHEMA).drop("file")
    except SchemaErrors as exc:
        cases = exc.failure_cases.filter(pl.col("index").is_not_null())
    rows = frame.select(pl.col(LINE), pl.col(doc_key).alias("doc_id")).with_row_index("index")
    joined = cases.with_columns(pl.col("index").cast(pl.UInt32)).join(rows, on="index", how="left")
    messages = [f"{c} {message_for(k)}" for c, k in zip(joined["column"], joined["check"], strict=True)]
    return joined.select(
        pl.col(LINE).cast(pl.Int64).alias("line"),
        pl.lit(role).alias("record_type"),
        pl.col("doc_id"),
        pl.col("column"),
        pl.col("check").replace("not_nullable", "required"),
        pl.col("failure_case").cast(pl.String).alias("value"),
        pl.Series("message", messages, dtype=pl.String),
    )


def passes_every_check(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> bool:
    """Whether every row passes every column check of ``schema``, asked of polars in one query.

    pandera runs each check as its own query: on a small file that costs more than
    reading it. Only a frame that fails here goes through pandera, whose failure
    cases say which rows and why. A check this cannot evaluate (a built-in other
    than ``str_length``, frame-level checks, unique) sends the frame to pandera.
    """
    if frame.height == 0 or schema.checks or schema.unique:
        return False
    try:
        return _every_check_passes(frame, schema)
    except Exception:  # pandera's internals moved, or a check failed to run: pandera itself decides and says why
        return False


def _every_check_passes(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> bool:
    lazy, types = frame.lazy(), frame.schema
    outputs: list[pl.LazyFrame] = []
    for name, column in schema.columns.items():
        if name not in types or column.unique or column.regex or types[name] != column.dtype.type:
            return False
        if not column.nullable:
            outputs.append(lazy.select(pl.col(name).is_not_null()))
        for check in column.checks:
            out = _check_output(check, lazy, name)
            if out is None:
                return False
            first = pl.first()  # null output: what pandera makes of it (ignore_na)
            outputs.append(out.select(first | first.is_null() if check.ignore_na else first.fill_null(False)))
    if not outputs:
        return True
    named = [o.select(pl.first().alias(f"_{i}")) for i, o in enumerate(outputs)]
    every_row = pl.concat(named, how="horizontal").select(pl.all_horizontal(pl.all()).all())
    return bool(every_row.collect().item())


def _check_output(check: pa.Check, lazy: pl.LazyFrame, name: str) -> pl.LazyFrame | None:
    """One check's pass or fail per row, as a one-column frame; None when only pandera can tell."""
    if check.element_wise:
        return None
    if isinstance(check._check_fn, Dispatcher):  # a pandera built-in
        if check.name != "str_length":
            return None
        length = pl.col(name).str.len_chars()
        limits = check.statistics or {}
        low, high = limits.get("min_value"), limits.get("max_value")
        return lazy.select((length >= (low or 0)) & (length <= high if high is not None else pl.lit(True)))
    out = check._check_fn(PolarsData(lazy, name), **check._check_kwargs)  # a model's own @pa.check
    return out if isinstance(out, pl.LazyFrame) and len(out.collect_schema()) == 1 else None


def _unknown_record_rows(unknown: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    words = ", ".join(r.word for r in layout.records)
    return unknown.select(
        pl.col(LINE).alias("line"),
        pl.col(TYPE).alias("record_type"),
        pl.lit(None, pl.String).alias("doc_id"),
        pl.lit("type").alias("column"),
        pl.lit("record_type").alias("check"),
        pl.col(TYPE).alias("value"),
        pl.format("unknown record type {}; expected one of {}; the row was skipped", pl.col(TYPE), pl.lit(words)).alias(
            "message"
        ),
    )


def _finish(found: list[pl.DataFrame], file_name: str) -> pl.DataFrame:
    shape = {k: v for k, v in ERROR_SCHEMA.items() if k != "file"}
    parts = [f.select([pl.col(c).cast(t) for c, t in shape.items()]) for f in found if f.height]
    if not parts:
        return pl.DataFrame(schema=ERROR_SCHEMA)
    merged = pl.concat(parts).sort("line", maintain_order=True)
    return merged.select(pl.lit(file_name).alias("file"), pl.all())


def file_error_frame(exc: DataError, kept: str | None = None) -> pl.DataFrame:
    """A file-level rejection as one error row (line, byte offset, column when known); ``kept``: the raw copy."""
    return pl.DataFrame(
        [
            {
                "file": exc.file,
                "line": exc.line,
                "record_type": None,
                "doc_id": None,
                "column": exc.column,
                "check": "file",
                "value": None if exc.offset is None else f"byte offset {exc.offset}",
                "message": f"{exc.message}; {exc.hint}" + (f"; the raw copy is kept at {kept}" if kept else ""),
            }
        ],
        schema=ERROR_SCHEMA,
    )
