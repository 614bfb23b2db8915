"""The CSV side of the mapping language: a record's quoting, delimiter, formula guard and column-name row.

A ``csv`` record writes its fields as cells; widths, alignment and fill belong to ``fixed`` records
and are load errors here (``max_length`` limits a CSV value). The column-name row is built from the
field names, so it can never disagree with the cells below it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CSV_RECORD_KEYS = {"delimiter", "quoting", "formula_guard", "header_row"}
FIXED_ONLY_FIELD_KEYS = ("width", "align", "fill")
QUOTING = ("all", "minimal")


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str = ","
    quoting: str = "all"  # all: every cell quoted; minimal: only cells holding the delimiter, a quote or a line break
    formula_guard: bool = True  # a leading = + - @ gets a ' (for files a person opens in a spreadsheet)
    header_row: bool = False  # the file starts with the field names

    def needs_quotes(self) -> str:
        """A regex of what makes a cell need quotes under ``minimal`` (RFC 4180 §2.6)."""
        return "[" + re.escape(self.delimiter) + '"\\r\\n]'

    def cell(self, text: str) -> str:
        """One literal cell (a column name), quoted as the record's values are (``records.csv_cell``)."""
        if self.quoting == "all" or re.search(self.needs_quotes(), text):
            return '"' + text.replace('"', '""') + '"'
        return text


def csv_options(body: dict[str, Any], layout: str, where: str, problems: list[str]) -> CsvOptions:
    """The record's CSV keys, checked; on a fixed record each of them is a problem."""
    if layout != "csv":
        for key in sorted(CSV_RECORD_KEYS & set(body)):
            problems.append(f"{where}.{key}: applies to csv records only (this one is {layout})")
        return CsvOptions()
    if "length" in body:
        problems.append(f"{where}.length: applies to fixed records only (a csv record is as long as its cells)")
    delimiter = body.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        problems.append(f"{where}.delimiter: expected one character other than a quote or a line break")
        delimiter = ","
    quoting = body.get("quoting", "all")
    if quoting not in QUOTING:
        problems.append(f"{where}.quoting: {quoting!r} is not one of {', '.join(QUOTING)}")
        quoting = "all"
    flags = {}
    for key, default in (("formula_guard", True), ("header_row", False)):
        value = body.get(key, default)
        if not isinstance(value, bool):
            problems.append(f"{where}.{key}: expected true or false, got {value!r}")
            value = default
        flags[key] = value
    return CsvOptions(delimiter, quoting, **flags)


def fixed_only_keys(spec: dict[str, Any], where: str, problems: list[str]) -> None:
    for key in FIXED_ONLY_FIELD_KEYS:
        if key in spec:
            hint = "; max_length limits a csv value" if key == "width" else ""
            problems.append(f"{where}.{key}: applies to fixed records only{hint}")


def column_row(records: list[tuple[str, CsvOptions, list[str]]], problems: list[str]) -> str | None:
    """The column-name row of the one record that asks for it; two records cannot share one file's top row."""
    asking = [(name, options, columns) for name, options, columns in records if options.header_row]
    if len(asking) > 1:
        names = ", ".join(name for name, _, _ in asking)
        problems.append(f"records: header_row is set on {names}; a file has one column-name row (set it on one)")
    if not asking:
        return None
    _, options, columns = asking[0]
    return options.delimiter.join(options.cell(c) for c in columns)
