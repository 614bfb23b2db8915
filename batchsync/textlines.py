"""Long texts as SAP text lines (TDLINE with TDFORMAT), for records repeated per text line (``lines_of``).

SAPscript's format column says how a line joins the one before it: ``*`` starts a
paragraph, ``=`` continues the line above directly (SAP's "extended line"). A Coupa
line break starts a new paragraph; a paragraph longer than the line is split at a
space where there is one, and the space is kept at the start of the continuation,
so joining the lines back (``=`` directly, ``*`` with a line break) gives the text
exactly as Coupa had it, control characters aside (they become spaces).
"""

from __future__ import annotations

import re

import polars as pl

# what no fixed-width record may hold: it would end the record early (or look like it does)
CONTROL = r"\r\n|[\x00-\x1f\x7f\x85\u2028\u2029]"
_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")
_CONTROL = re.compile(CONTROL)
PARAGRAPH, CONTINUED = "*", "="


def text_lines(text: str | None, width: int) -> list[dict[str, str]]:
    """``[{"line": ..., "format": "*" or "="}, ...]``; none for an empty text."""
    if text is None or not text.strip():
        return []
    lines: list[dict[str, str]] = []
    for paragraph in _BREAK.split(text):
        pieces = _wrap(_CONTROL.sub(" ", paragraph), width)
        lines += [{"line": p, "format": PARAGRAPH if i == 0 else CONTINUED} for i, p in enumerate(pieces)]
    return lines


def _wrap(paragraph: str, width: int) -> list[str]:
    pieces = []
    while len(paragraph) > width:
        cut = paragraph.rfind(" ", 1, width + 1)
        cut = cut if cut > 0 else width  # one word longer than the line: cut it
        pieces.append(paragraph[:cut])
        paragraph = paragraph[cut:]
    return [*pieces, paragraph]


LINES_DTYPE = pl.List(pl.Struct({"line": pl.String, "format": pl.String}))


def text_lines_expr(value: pl.Expr, width: int) -> pl.Expr:
    """Per row, its text lines; Python only for texts that need splitting (most fit one line)."""

    def split(texts: pl.Series) -> pl.Series:
        return pl.Series([text_lines(t, width) for t in texts.to_list()], dtype=LINES_DTYPE)

    simple = value.str.len_chars().fill_null(0) <= width
    simple = simple & ~value.fill_null("").str.contains(CONTROL)
    one_line = pl.concat_list(pl.struct(value.alias("line"), pl.lit(PARAGRAPH).alias("format")))
    blank = value.is_null() | (value.str.strip_chars() == "")
    return (
        pl.when(blank)
        .then(pl.lit([], dtype=LINES_DTYPE))
        .when(simple)
        .then(one_line)
        .otherwise(value.map_batches(split, return_dtype=LINES_DTYPE))
    )
