"""Output records as text: which records a row writes, their segment numbers, and the text itself.

Pure polars. A record is written for a row when its ``when`` holds, once per text line
for a ``lines_of`` record, else once. Segment numbers (SEGNUM) count the records a
document actually writes, in the order the file holds them: the header records in
mapping order, then per line its line records in mapping order; PSGNUM is the number
of the parent record of the same row. Records that carry no ``segnum`` field (the
IDoc control record, CSV rows) are not counted.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import polars as pl

from batchsync.mapping_csv import CsvOptions
from batchsync.mapping_model import CompiledRecord
from batchsync.textlines import text_lines_expr


def with_text_lines(frame: pl.DataFrame, records: list[CompiledRecord]) -> pl.DataFrame:
    """Adds ``_lines:R``, the text lines of each ``lines_of`` record, and ``_segcount``, the row's numbered records."""
    frame = frame.with_columns(text_lines_expr(*r.lines_of).alias(f"_lines:{r.name}") for r in records if r.lines_of)
    counts = [count_expr(r) for r in records if r.numbered]
    return frame.with_columns((pl.sum_horizontal(counts) if counts else pl.lit(0, pl.Int64)).alias("_segcount"))


def number_records(frame: pl.DataFrame, records: list[CompiledRecord], base: pl.Expr) -> pl.DataFrame:
    """Adds ``_segnum:R``, the number of R's first occurrence in the row, counting on from ``base``."""
    running: pl.Expr = pl.lit(0, pl.Int64)
    numbers = []
    for record in records:
        if record.numbered:
            numbers.append((base + running + 1).alias(f"_segnum:{record.name}"))
            running = running + count_expr(record)
    return frame.with_columns(numbers)


def count_expr(record: CompiledRecord) -> pl.Expr:
    """How many times the record is written for the row (``_lines:R`` made by with_text_lines)."""
    count = pl.col(f"_lines:{record.name}").list.len().cast(pl.Int64) if record.lines_of else pl.lit(1, pl.Int64)
    return count if record.when is None else pl.when(record.when).then(count).otherwise(0)


def record_texts(frame: pl.DataFrame, records: list[CompiledRecord]) -> pl.DataFrame:
    """Adds ``_rec:R`` per record (its occurrences of the row joined by line breaks, null when not written)."""
    plain = [_written(r, record_text(r)).alias(f"_rec:{r.name}") for r in records if not r.lines_of]
    frame = frame.with_columns(plain)
    for record in (r for r in records if r.lines_of):
        frame = frame.with_columns(_repeated_text(frame, record))
    return frame


def row_text(records: list[CompiledRecord]) -> pl.Expr:
    """The row's records in mapping order, one per line."""
    if not records:
        return pl.lit("")
    columns = [pl.col(f"_rec:{r.name}") for r in records]
    return pl.concat_list(columns).list.drop_nulls().list.join("\n")


def _written(record: CompiledRecord, text: pl.Expr) -> pl.Expr:
    return text if record.when is None else pl.when(record.when).then(text)


def _repeated_text(frame: pl.DataFrame, record: CompiledRecord) -> pl.Series:
    """One record per text line: the row exploded to its lines, laid out, and joined back per row."""
    lines = f"_lines:{record.name}"
    segnum = f"_segnum:{record.name}"
    exploded = (
        frame.with_row_index("_row_index")
        .filter(pl.col(lines).list.len() > 0)
        .explode(lines)
        .unnest(lines)
        .rename({"line": "_text_line", "format": "_text_format"})
    )
    if segnum in exploded.columns:
        exploded = exploded.with_columns(pl.col(segnum) + pl.int_range(pl.len()).over("_row_index"))
    texts = exploded.group_by("_row_index", maintain_order=True).agg(
        _written(record, record_text(record)).str.join("\n").alias("text")
    )
    joined = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row_index")).join(
        texts, on="_row_index", how="left", maintain_order="left"
    )
    return joined["text"].alias(f"_rec:{record.name}")


def record_text(record: CompiledRecord) -> pl.Expr:
    return concat_text(_record_pieces(record))


def _record_pieces(record: CompiledRecord) -> list[pl.Expr | str]:
    """A record's text as expressions and literal strings, to be concatenated."""
    if record.layout == "csv":
        cells = [csv_cell(f.value, record.csv) for f in record.fields]
        return [pl.concat_str(cells, separator=record.csv.delimiter)]
    if record.layout == "xml":
        return _xml_pieces(record)
    pieces: list[pl.Expr | str] = []
    for f in record.fields:
        constant = f.padded_constant()
        width = f.width or 0
        if constant is not None:
            pieces.append(constant)
        else:
            value = f.value.fill_null("")
            # in a byte-wide field each character beyond one byte takes one padding character less
            pad = pl.lit(width) - (value.str.len_bytes() - value.str.len_chars()) if f.width_in_bytes else width
            pieces.append(value.str.pad_start(pad, f.fill) if f.align == "right" else value.str.pad_end(pad, f.fill))
    # every field is padded to its width, so the record's padding is a constant too; a value
    # too long for its field makes a longer text, but that row's document is rejected anyway
    pieces.append(" " * max(0, (record.length or 0) - sum(f.width or 0 for f in record.fields)))
    return pieces


def _xml_pieces(record: CompiledRecord) -> list[pl.Expr | str]:
    """IDoc-XML: the segment's element with SEGMENT="1", a child element per field that has a value (an empty
    field is left out, as SAP's XML port writes it); an element holding others is closed at the document's end.
    Nothing is padded but a zero-filled right-aligned field (a NUMC)."""
    pieces: list[pl.Expr | str] = [f'<{record.segment} SEGMENT="1">']
    for f in record.fields:
        if f.constant is not None:
            pieces.append(f"<{f.name}>{escape(f.constant)}</{f.name}>" if f.constant else "")
            continue
        value = f.value.fill_null("")
        if f.align == "right" and f.fill == "0":  # NUMC (PO_ITEM 00010): SAP reads the digits at their width
            value = pl.when(value != "").then(value.str.pad_start(f.width or 0, "0")).otherwise(value)
        escaped = value.str.replace_all("&", "&amp;", literal=True).str.replace_all("<", "&lt;", literal=True)
        element = pl.lit(f"<{f.name}>") + escaped.str.replace_all(">", "&gt;", literal=True) + pl.lit(f"</{f.name}>")
        pieces.append(pl.when(value != "").then(element).otherwise(pl.lit("")))
    if not record.encloses:
        pieces.append(f"</{record.segment}>")
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


def csv_cell(value: pl.Expr, options: CsvOptions | None = None) -> pl.Expr:
    """A CSV cell as the record declares it: quoted always or only where needed; the formula guard
    (on unless the record turns it off) puts a ' before a leading = + - @ other than a plain number."""
    options = options or CsvOptions()
    text = value.fill_null("")
    if options.formula_guard:
        text = guard_formula(text)
    quoted = pl.lit('"') + text.str.replace_all('"', '""', literal=True) + pl.lit('"')
    if options.quoting == "all":
        return quoted
    return pl.when(text.str.contains(options.needs_quotes())).then(quoted).otherwise(text)


def guard_formula(text: pl.Expr) -> pl.Expr:
    """A leading = + - @ (other than a plain number such as -5.00) gets a ' so a spreadsheet shows text."""
    formula = text.str.contains(r"^[=+\-@\t\r]") & ~text.str.contains(r"^[+-]?\d+(\.\d+)?$")
    return pl.when(formula).then(pl.lit("'") + text).otherwise(text)
