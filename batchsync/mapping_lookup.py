"""Value maps, xref lookups and dates in the mapping language: what a miss or a value that is no date becomes.

A code the table lacks rejects its document with the reason, unless the field declares otherwise
(``on_missing: default | empty``); a value that is there but is not a date rejects it too. Nothing
becomes an empty field without the mapping saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from batchsync.mapping_model import Problem
from batchsync.mapping_values import local_datetime


@dataclass(frozen=True)
class Lookup:
    where: str  # the key, for load errors: records[3] (E1EDKA1).fields[7] (E1EDKA1.PARTN).xref
    label: str  # RECORD.FIELD, for the reason a row is rejected
    what: str  # "is not in xref table suppliers"
    missing: str | None = None  # written for a miss instead of rejecting (on_missing)


def on_missing(spec: dict[str, Any], where: str, problems: list[str]) -> str | None:
    """``on_missing: reject | default | empty``: what a value the map or xref table lacks becomes;
    declared, never implied: None (the default) rejects the document, else the text written instead."""
    choice = spec.get("on_missing", "reject")
    if "on_missing" in spec and not {"map", "xref"} & set(spec):
        problems.append(f"{where}.on_missing: applies to a map or an xref lookup, and this field has neither")
    if choice not in ("reject", "default", "empty"):
        problems.append(f"{where}.on_missing: {choice!r} is not one of reject, default, empty")
        return None
    if choice == "default" and "default" not in spec:
        problems.append(f"{where}.on_missing: default needs a default: value on the field")
        return None
    return None if choice == "reject" else str(spec["default"]) if choice == "default" else ""


def lookup(value: pl.Expr, table: Any, how: Lookup, row_problems: list[Problem], problems: list[str]) -> pl.Expr:
    if not isinstance(table, dict):
        problems.append(f"{how.where}: expected a table of code: value")
        return value
    keys, values = [str(k) for k in table], [str(v) for v in table.values()]
    mapped = value.replace_strict(keys, values, default=None, return_dtype=pl.String)
    missed = value.is_not_null() & mapped.is_null()
    if how.missing is not None:  # declared by the mapping: written instead, nothing rejected
        return pl.when(missed).then(pl.lit(how.missing)).otherwise(mapped)
    reason = pl.format(f"{how.label}: {{}} {how.what}", pl.format("'{}'", value))
    check = "xref" if "xref" in how.where else "value_map"
    row_problems.append(Problem(missed, reason, check=check, value=value))
    return mapped


def checked_date(value: pl.Expr, layout: str, label: str, row_problems: list[Problem]) -> pl.Expr:
    """A value that is there but not a date rejects its document: never an empty field instead."""
    parsed = local_datetime(value)
    given = value.is_not_null() & (value.str.strip_chars() != "")
    reason = pl.format(f"{label}: '{{}}' is not a date", value)
    row_problems.append(Problem(given & parsed.is_null(), reason, check="date", value=value))
    return parsed.dt.to_string(layout)


def uncovered_decisions(spec: dict[str, Any], level: str, decisions: dict[str, tuple[str, ...]]) -> str | None:
    """A value map over one of the engine's decisions lists every value the decision can take in the feed's
    documents, or declares what a miss does (``on_missing``): a new decision value never slips through as a
    rejection nobody chose. The problem's text, or None."""
    column = spec.get("source")
    if "on_missing" in spec or not isinstance(column, str) or not isinstance(spec.get("map"), dict):
        return None
    if column == "_line_change" and level != "line":  # below a line, a record follows its document
        column = "_change"
    missing = [v for v in decisions.get(column, ()) if v not in {str(k) for k in spec["map"]}]
    if not missing:
        return None
    return (
        f"map: {column} can also be {', '.join(missing)}: map every value, or declare what a miss does "
        f"(on_missing: reject, default or empty)"
    )
