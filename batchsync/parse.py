"""Parse a record-typed Coupa CSV file into one DataFrame per record type.

The bytes are checked first (``bytescan``: UTF-8, no NUL, no bare CR).
polars then reads every field as text; a column
``_line`` keeps each record's physical line number for error reports. A file
that cannot be read as the feed's format raises ``DataError`` naming the
line (and byte offset for encoding faults).
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from batchsync.bytescan import BOM, ByteScan, scan_bytes
from batchsync.errors import DataError
from batchsync.layouts import Layout, RecordType

log = logging.getLogger("batchsync.parse")

LINE = "_line"
TYPE = "type"
_BARE_CR_TEXT = re.compile("\r(?!\n)")  # a CR that does not start a CRLF


@dataclass
class ParsedFile:
    """One frame per record role (header, line, ...), all values text, ``""`` read as null."""

    name: str
    frames: dict[str, pl.DataFrame]
    unknown: pl.DataFrame  # rows whose record type the layout does not know: _line, type
    warnings: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return all(frame.height == 0 for frame in self.frames.values())


def parse_file(path: Path, layout: Layout, display_name: str | None = None) -> ParsedFile:
    name = display_name or path.name
    scan = scan_bytes(path, name)
    warnings = [f"{name}: a UTF-8 byte order mark was stripped (Coupa files have none)"] if scan.has_bom else []
    for warning in warnings:
        log.warning(warning)
    raw = _read_text_table(path, name, scan)
    if raw is None:
        empty = {r.role: _empty_frame(r.columns) for r in layout.records}
        return ParsedFile(name, empty, _unknown_frame(None), warnings)
    raw = _drop_blank_rows(_canonical_types(raw, layout))
    if raw.width <= 2:  # the type column and _line: nothing was comma-separated
        raise DataError(
            f"{name}: line {raw[LINE][0] if raw.height else 1}: rows have a single field; "
            "expected Coupa's comma-separated record-typed CSV",
            file=name,
            line=int(raw[LINE][0]) if raw.height else 1,
            hint="check that this is a Coupa export (comma-delimited, every field quoted)",
        )
    _reject_short_rows(raw, name)
    frames = _record_frames(raw, layout, name)
    unknown = raw.filter(~pl.col(TYPE).is_in([r.word for r in layout.records])).select(LINE, TYPE)
    return ParsedFile(name, frames, unknown, warnings)


def _read_text_table(path: Path, name: str, scan: ByteScan) -> pl.DataFrame | None:
    if scan.size - (len(BOM) if scan.has_bom else 0) == 0:
        return None
    try:
        raw = pl.read_csv(
            path,
            has_header=False,
            infer_schema=False,
            quote_char='"',
            raise_if_empty=False,
            skip_lines=scan.leading_blank_lines,
        )
    except pl.exceptions.PolarsError as exc:
        raise _locate_csv_problem(path, name, str(exc)) from None
    if raw.height == 0:
        return None
    raw = raw.rename({c: f"c{i}" if i else TYPE for i, c in enumerate(raw.columns)})
    return raw.with_columns(_line_numbers(raw, scan))


def _line_numbers(raw: pl.DataFrame, scan: ByteScan) -> pl.Series:
    """Physical line where each record starts, counting line breaks inside quoted values."""
    first = scan.leading_blank_lines + 1
    simple = scan.newlines - scan.leading_blank_lines == raw.height - (0 if scan.ends_with_newline else 1)
    columns = () if simple else _columns_with_breaks(raw)
    if not columns:  # one record per line
        return pl.int_range(first, raw.height + first, eager=True, dtype=pl.Int64).alias(LINE)
    spans = raw.select(_line_span(columns)).to_series()
    return (spans.cum_sum() - spans + first).alias(LINE)


def _columns_with_breaks(raw: pl.DataFrame) -> tuple[str, ...]:
    """Only these are counted: a count per cell of every column would hold one integer column
    per field of a large file at once."""
    found = raw.select(pl.col(c).str.contains("\n", literal=True).any() for c in raw.columns).row(0)
    return tuple(c for c, has in zip(raw.columns, found, strict=True) if has)


@lru_cache(maxsize=16)
def _line_span(columns: tuple[str, ...]) -> pl.Expr:
    inner = [pl.col(c).str.count_matches("\n", literal=True).fill_null(0).cast(pl.Int64) for c in columns]
    return pl.sum_horizontal(*inner, pl.lit(1, pl.Int64)).alias(LINE)


def _canonical_types(raw: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """` Line`, `line`, `LINE` are Line records: a row lost to a stray space would leave its PO half sent."""
    words = {r.word.casefold(): r.word for r in layout.records}
    folded = pl.col(TYPE).str.strip_chars().str.to_lowercase()
    known = folded.replace_strict(words, default=None, return_dtype=pl.String)
    return raw.with_columns(pl.coalesce(known, pl.col(TYPE)).alias(TYPE))


def _drop_blank_rows(raw: pl.DataFrame) -> pl.DataFrame:
    return keep_rows(raw, _not_blank(tuple(c for c in raw.columns if c != LINE)))


@lru_cache(maxsize=16)
def _not_blank(columns: tuple[str, ...]) -> pl.Expr:
    return ~pl.all_horizontal(pl.col(c).is_null() for c in columns)


def keep_rows(frame: pl.DataFrame, condition: pl.Expr) -> pl.DataFrame:
    """``frame.filter(condition)``, without copying the frame when every row is kept (the usual case)."""
    keep = frame.select(condition.fill_null(False)).to_series()
    return frame if keep.all() else frame.filter(keep)


def _reject_short_rows(raw: pl.DataFrame, name: str) -> None:
    """Coupa pads every row to one width with quoted empty fields; a missing field means a ragged row."""
    last = raw.columns[-2]  # the column before _line
    short = raw.filter(pl.col(last).is_null())
    if short.height:
        line = short[LINE][0]
        raise DataError(
            f"{name}: line {line}: the row has fewer fields than the file's other rows ({raw.width - 1})",
            file=name,
            line=line,
            hint="the file is cut or hand-edited; re-export it from Coupa",
        )


def _record_frames(raw: pl.DataFrame, layout: Layout, name: str) -> dict[str, pl.DataFrame]:
    """One frame per record type, in the layout's order."""
    candidates = _name_row_candidates(raw, layout)
    plans = [_plan(raw, r, name, candidates) for r in layout.records]  # problems reported in layout order
    # the most numerous record type first: while it is built, the file's other record frames
    # do not exist yet, so a large file peaks lower
    counts = raw[TYPE].value_counts()
    rows = dict(zip(counts[TYPE].to_list(), counts["count"].to_list(), strict=True))
    largest_first = sorted(plans, key=lambda p: -rows.get(p.record.word, 0))
    built = {p.record.role: _record_frame(raw, p) for p in largest_first}
    return {r.role: built[r.role] for r in layout.records}


def _name_row_candidates(raw: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """Rows that could be column-name rows of some record type: one pass over the file, usually none."""
    known = [tuple(c for c in r.columns if c != TYPE) for r in layout.records]
    every_known = tuple(sorted({c for names in known for c in names}))
    fewest = min(min(3, len(names)) for names in known)
    # only columns that hold a known name somewhere can make a row a name row (usually none)
    names = pl.Series(every_known, dtype=pl.String).implode()
    data = _data_columns(raw)
    found = raw.select(pl.col(c).is_in(names).any() for c in data).row(0)
    columns = tuple(c for c, hit in zip(data, found, strict=True) if hit)
    if len(columns) < fewest:
        return raw.clear()
    return raw.filter(_name_row_expr(columns, every_known, fewest))


def _data_columns(raw: pl.DataFrame) -> list[str]:
    return [c for c in raw.columns if c not in (LINE, TYPE)]


@dataclass(frozen=True)
class _RecordPlan:
    record: RecordType
    rows: pl.Expr  # which rows of the file are this type's records (its column-name row excluded)
    positions: dict[str, str]  # column name -> the file's column


def _plan(raw: pl.DataFrame, record: RecordType, name: str, candidates: pl.DataFrame) -> _RecordPlan:
    """Where the record type's columns are; raises DataError for a missing required column."""
    data_columns = _data_columns(raw)
    of_type = pl.col(TYPE) == record.word
    names_rows = candidates.filter(of_type & _is_name_row(data_columns, record))
    if names_rows.height:
        positions = _positions_from_name_row(names_rows.row(0, named=True), data_columns, record, name)
        of_type = of_type & ~pl.col(LINE).is_in(names_rows[LINE].implode())
    else:
        positions = _default_positions(data_columns, record)
    _require_columns(positions, record, name)
    return _RecordPlan(record, of_type, positions)


def _record_frame(raw: pl.DataFrame, plan: _RecordPlan) -> pl.DataFrame:
    absent = [c for c in plan.record.columns if c not in plan.positions and c != TYPE]
    # the record type's own columns picked first (no copy); streamed, so the filtered rows are
    # not held twice on the way (a 938 MB file peaked 170 MB lower, and built them in half the
    # time). Absent optional columns become empty ones: later stages see one shape per record type.
    return (
        raw.lazy()
        .select(LINE, TYPE, *plan.positions.values())
        .filter(plan.rows)
        .select(_record_columns(tuple(plan.positions.items()), tuple(absent)))
        .collect(engine="streaming")
    )


@lru_cache(maxsize=64)
def _record_columns(positions: tuple[tuple[str, str], ...], absent: tuple[str, ...]) -> list[pl.Expr]:
    """Renamed, ``""`` read as null; built once per file shape (building it cost more than running it)."""
    return [
        pl.col(LINE),
        pl.col(TYPE),
        *[pl.when(pl.col(src) != "").then(pl.col(src)).alias(dst) for dst, src in positions],
        *[pl.lit(None, pl.String).alias(c) for c in absent],
    ]


def _is_name_row(columns: list[str], record: RecordType) -> pl.Expr:
    """A column-name row repeats several of the record type's known column names."""
    known = tuple(c for c in record.columns if c != TYPE)
    return _name_row_expr(tuple(columns), known, min(3, len(known)))


@lru_cache(maxsize=64)
def _name_row_expr(columns: tuple[str, ...], known: tuple[str, ...], threshold: int) -> pl.Expr:
    # built once per file shape: building it (77 columns, a list each) cost more than running it on a small file
    names = pl.Series(known, dtype=pl.String).implode()
    hits = pl.sum_horizontal(pl.col(c).is_in(names).cast(pl.Int32) for c in columns)
    return hits >= threshold


def _positions_from_name_row(
    row: dict[str, str | None], columns: list[str], record: RecordType, name: str
) -> dict[str, str]:
    positions: dict[str, str] = {}
    for source in columns:
        label = (row[source] or "").strip()
        if not label:
            continue
        if label in positions:
            raise DataError(
                f"{name}: the {record.word} column-name row names column {label!r} twice",
                file=name,
                column=label,
                hint="fix the export's integration format in Coupa so every column appears once",
            )
        positions[label] = source
    return positions


def _default_positions(columns: list[str], record: RecordType) -> dict[str, str]:
    defaults = [c for c in record.columns if c != TYPE]
    return dict(zip(defaults, columns, strict=False))


def _require_columns(positions: dict[str, str], record: RecordType, name: str) -> None:
    missing = [c for c in record.required if c not in positions]
    if missing:
        raise DataError(
            f"{name}: {record.word} records have no column {', '.join(repr(m) for m in missing)}",
            file=name,
            column=missing[0],
            hint="add the column to the export's integration format in Coupa, "
            "or set the feed's columns in batchsync.toml",
        )


def _locate_csv_problem(path: Path, name: str, detail: str) -> DataError:
    """polars says only that the file is malformed; find the line for the person who has to fix it."""
    widths: list[tuple[int, int]] = []  # (line where the row starts, fields)
    line = 1
    # only LF ends a line here, as it does for polars; a stray CR stays inside its line
    with path.open(encoding="utf-8-sig", newline="\n") as stream:
        rows = (_BARE_CR_TEXT.sub("\x1e", text) for text in stream)
        reader = csv.reader(rows, strict=True)
        try:
            for row in reader:
                if row:
                    widths.append((line, len(row)))
                line = reader.line_num + 1
        except csv.Error as exc:
            return _shape_error(name, line, f"broken quoting ({exc}); a quote is not closed or not doubled")
    usual = Counter(w for _, w in widths).most_common(1)[0][0] if widths else 0
    odd = next(((at, w) for at, w in widths if w != usual), None)
    if odd:
        return _shape_error(name, odd[0], f"the row has {odd[1]} fields, the file's other rows {usual}")
    first = detail.splitlines()[0] if detail else "unreadable"
    return _shape_error(name, max(1, line - 1), f"not readable as CSV ({first})")


def _shape_error(name: str, line: int, what: str) -> DataError:
    return DataError(
        f"{name}: line {line}: {what}",
        file=name,
        line=line,
        hint="the file is cut or hand-edited; re-export it from Coupa",
    )


def _empty_frame(columns: list[str]) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {LINE: pl.Int64()}
    schema.update({c: pl.String() for c in columns})
    return pl.DataFrame(schema=schema)


def _unknown_frame(_: None) -> pl.DataFrame:
    return pl.DataFrame(schema={LINE: pl.Int64(), TYPE: pl.String()})
