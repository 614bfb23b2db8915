"""The value transforms a mapping field may apply, as polars expressions (mapping.py compiles the keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from batchsync.mapping_model import NOT_COMPARED, Problem
from batchsync.mapping_when import names_in


def constant_of(spec: dict[str, Any], producer: str) -> str | None:
    """A ``const`` that no transform can change per row (upper and default keep it constant)."""
    if producer != "const" or any(k in spec for k in ("map", "xref", "date", "number", "oneline", "required")):
        return None
    text = str(spec["const"])
    return text.upper() if spec.get("upper") else text


# the code pages a mapping may declare (``encoding: {charset}``), and the characters each cannot hold
CHARSETS = {"utf-8": None, "iso-8859-1": r"[^\x00-\xff]", "ascii": r"[^\x00-\x7f]"}
CHARSET_ALIASES = {"utf8": "utf-8", "latin-1": "iso-8859-1", "latin1": "iso-8859-1", "us-ascii": "ascii"}
WIDTH_UNITS = ("characters", "bytes")


def unencodable(value: pl.Expr, charset: str, label: str) -> Problem | None:
    """A value the file's code page cannot hold rejects its document: it is never replaced by '?'."""
    outside = CHARSETS[charset]
    if outside is None:
        return None
    shown = value.str.extract(f"({outside})", 1)
    message = pl.format(f"{label}: '{{}}' holds '{{}}', which {charset} cannot write", value, shown)
    return Problem(value.str.contains(outside), message, check="encoding", value=value)


def width_of(value: pl.Expr, in_bytes: bool) -> pl.Expr:
    return value.str.len_bytes() if in_bytes else value.str.len_chars()


def first_of(value: pl.Expr, width: int, in_bytes: bool) -> pl.Expr:
    """The first ``width`` characters, or as many whole characters as fit in ``width`` UTF-8 bytes."""
    cut = value.str.slice(0, width)
    if not in_bytes:
        return cut
    # each character beyond one byte costs one character more: never splits a character
    return cut.str.slice(0, pl.lit(width) - (cut.str.len_bytes() - cut.str.len_chars()))


def too_long(value: pl.Expr, width: int, label: str, in_bytes: bool = False) -> Problem:
    length = width_of(value, in_bytes)
    shown = pl.when(length > 40).then(value.str.slice(0, 37) + pl.lit("...")).otherwise(value)
    unit = "bytes" if in_bytes else "characters"
    message = pl.format(f"{label}: '{{}}' is {{}} {unit}, the field holds {width}", shown, length)
    return Problem(length > width, message, check="max_length", value=value)


def local_datetime(text: pl.Expr) -> pl.Expr:
    """Coupa's date-times as written (the offset dropped): the ERP wants the date the user saw."""
    normal = text.str.replace(" ", "T", literal=True)
    return pl.coalesce(
        normal.str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False),
        normal.str.slice(0, 16).str.to_datetime("%Y-%m-%dT%H:%M", strict=False),
        normal.str.slice(0, 10).str.to_datetime("%Y-%m-%d", strict=False),
    )


def decimal_number(value: pl.Expr, decimals: int, label: str, problems: list[Problem]) -> pl.Expr:
    """The value at a fixed scale; a value with more decimals than that is refused, never rounded."""
    rounded = value.cast(pl.Decimal(38, decimals), strict=False)
    # count the digits actually written: a cast to any fixed scale would itself round
    significant = value.str.extract(r"\.(\d*[1-9])0*$", 1).str.len_chars().fill_null(0)
    # rounding a price or quantity would change the order: refuse rather than guess
    lossy = value.is_not_null() & (rounded.is_null() | (significant > decimals))
    message = pl.format(f"{label}: '{{}}' is not a number with at most {decimals} decimals", value)
    problems.append(Problem(lossy, message, check="decimals", value=value))
    return rounded.cast(pl.String)


def read_xref_table(path: Path, key: str, value: str, where: str, problems: list[str]) -> dict[str, str]:
    """An xref CSV as key -> value; what is wrong with it goes to ``problems``, naming the mapping key."""
    try:
        table = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        problems.append(f"{where}.file: cannot read {path}: {str(exc).splitlines()[0]}")
        return {}
    missing = [c for c in (key, value) if c not in table.columns]
    if missing:
        problems.append(f"{where}: {path.name} has no column {', '.join(missing)} (it has {', '.join(table.columns)})")
        return {}
    dupes = table.filter(pl.col(key).is_duplicated())[key].unique().to_list()
    if dupes:
        problems.append(f"{where}: {path.name} lists key {dupes[0]!r} more than once")
    return dict(zip(table[key].to_list(), table[value].to_list(), strict=True))


def uses_reserved(spec: dict[str, Any], producer: str) -> bool:
    """A field made from the engine's own columns (how a document is sent): not compared with the ERP's copy."""
    body = spec[producer]
    if producer in ("choose", "compute"):  # from the engine's decisions: what follows is not compared
        return bool(names_in(body) & NOT_COMPARED)
    columns = (
        [body]
        if producer == "source"
        else [p["source"] for p in body if isinstance(p, dict)]
        if (producer == "concat" and isinstance(body, list))
        else []
    )
    return any(c in NOT_COMPARED for c in columns if isinstance(c, str))
