"""What a compiled mapping is: its records and fields as polars expressions, and the keys a mapping may use.

mapping.py compiles the YAML into these; transform.py and records.py run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from batchsync.mapping_csv import CSV_RECORD_KEYS, CsvOptions

# columns the pipeline adds before transforming (see transform.context_columns)
RESERVED = {
    "_decision",
    "_change",
    "_line_change",
    "_docnum",
    "_text_line",
    "_text_format",
    "_doc_seq",
    "_row",
    "_now_date",
    "_now_time",
    "_now",
    "_source_file",
    "_erp_file",
    "_interface_key",  # digits unique to this row across hand-offs, runs and reprocesses (interface table ids)
    "_doc_interface_key",  # the document's _interface_key, at every level
    "_allocations",  # on a line: how many allocations it has
}
PRODUCERS = (
    "source",
    "const",
    "concat",
    "sequence",
    "segnum",
    "psgnum",
    "segment_name",
    "choose",
    "compute",
    "sent",
)
# reserved columns that say how a document is sent, not what it says: never part of the comparison with the ERP
NOT_COMPARED = RESERVED - {"_text_line", "_text_format"}
FIELD_KEYS = {
    *PRODUCERS,
    "name",
    "width",
    "max_length",
    "align",
    "fill",
    "map",
    "xref",
    "date",
    "number",
    "upper",
    "oneline",
    "default",
    "required",
    "short_text",
    "kind",
    "message",
    "compare",
    "on_missing",
}
RECORD_KEYS = {"name", "segment", "level", "layout", "length", "when", "where", "lines_of", "fields", *CSV_RECORD_KEYS}
TOP_KEYS = {
    "mapping_version",
    "target",
    "description",
    "template",
    "extension",
    "kind",
    "xref",
    "idoc",
    "encoding",
    "records",
    "records_from",
    "outputs",
    "line_ending",
}


@dataclass(frozen=True)
class Problem:
    """A row that does not fit: ``when`` is true for it, ``reason`` says why."""

    when: pl.Expr
    reason: pl.Expr
    field: str = ""  # RECORD.FIELD, filled in when the field is compiled
    check: str = "mapping"
    value: pl.Expr | None = None  # the value that did not fit, as the error row's ``value``


@dataclass(frozen=True)
class CompiledField:
    name: str
    value: pl.Expr  # the formatted text (before padding)
    width: int | None  # fixed: padded to it; xml: SAP's field length, not padded; csv: None
    align: str
    fill: str
    problems: list[Problem]
    constant: str | None = None  # the value when it is the same on every row: laid out once, not per row
    compared: bool = False  # part of what the ERP receives, compared with the version the ERP has
    width_in_bytes: bool = False  # the width counts UTF-8 bytes (a non-Unicode SAP), not characters

    def padded_constant(self) -> str | None:
        if self.constant is None:
            return None
        width = (self.width or 0) - (len(self.constant.encode()) - len(self.constant) if self.width_in_bytes else 0)
        return self.constant.rjust(width, self.fill) if self.align == "right" else self.constant.ljust(width, self.fill)


@dataclass(frozen=True)
class CompiledRecord:
    name: str
    level: str
    layout: str  # fixed | csv | xml
    length: int | None
    delimiter: str
    fields: list[CompiledField]
    segment: str = ""  # the IDoc segment (several records may write one segment, e.g. one per payment term)
    when: pl.Expr | None = None  # written only for the rows where this holds
    # repeated once per text line of this value, lines this wide (in UTF-8 bytes when the flag says so)
    lines_of: tuple[pl.Expr, int, bool] | None = None
    numbered: bool = False  # has a segnum field: counts in the document's segment numbers
    csv: CsvOptions = field(default_factory=CsvOptions)  # quoting, formula guard, column-name row (csv records)
    position: int = 0  # its segment's place in the IDoc basic type (idoc.order: by_segment sorts by it)
    encloses: bool = False  # IDoc-XML: its element holds the document's records after it (mapping_idoc.enclosing)

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass(frozen=True)
class Output:
    """One file a target writes per source file: the first is the main one (the write-back names it)."""

    name: str  # "" for the main file; else part of the file name: <stem>.<sha>.<target>.<name>.<extension>
    template: str
    extension: str
    column_row: str | None = None  # the file's first line (header_row of one of its records)
    records: tuple[str, ...] | None = None  # what it lays out (outputs:); None: every record
    newline: str = "\n"  # each line's ending in the file: line_ending lf or crlf
    decisions: tuple[str, ...] | None = None  # the documents it lays out, by _decision; None: every document

    def renamed(self, roles: list[str]) -> dict[str, str]:
        """What its template reads as ``line_records`` &c.: the texts of its own records only."""
        return {} if self.records is None else {f"{r}_records": f"{r}_records@{self.name}" for r in roles}


@dataclass(frozen=True)
class CompiledMapping:
    path: Path
    target: str
    kind: str
    records: list[CompiledRecord]
    outputs: list[Output]  # the files per source file: the main one first (template/extension, or outputs:)
    header_columns: set[str] = field(default_factory=set)  # header columns used by line/allocation records
    charset: str = "utf-8"  # the hand-off file's code page (``encoding: {charset}``)
    line_columns: set[str] = field(default_factory=set)  # line columns used by allocation records (line.<column>)
    where: dict[str, pl.Expr] = field(default_factory=dict)  # per level below the header: the rows the target takes
    by_segment: bool = False  # idoc.order: by_segment: each segment's occurrences together, in SAP's order

    @property
    def template(self) -> str:
        return self.outputs[0].template

    @property
    def extension(self) -> str:
        return self.outputs[0].extension

    @property
    def column_row(self) -> str | None:
        """The main file's first line, when one of its csv records asks for one (header_row)."""
        return self.outputs[0].column_row

    @property
    def more_outputs(self) -> list[Output]:
        return self.outputs[1:]

    def at_level(self, level: str) -> list[CompiledRecord]:
        return [r for r in self.records if r.level == level]
