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
CONTROL_RE = re.compile(CONTROL)
PARAGRAPH, CONTINUED = "*", "="


def text_lines(text: str | None, width: int, in_bytes: bool = False) -> list[dict[str, str]]:
    """``[{"line": ..., "format": "*" or "="}, ...]``; none for an empty text. ``in_bytes``: width in UTF-8 bytes."""
    if text is None or not text.strip():
        return []
    lines: list[dict[str, str]] = []
    for paragraph in _BREAK.split(text):
        pieces = _wrap(CONTROL_RE.sub(" ", paragraph), width, in_bytes)
        lines += [{"line": p, "format": PARAGRAPH if i == 0 else CONTINUED} for i, p in enumerate(pieces)]
    return lines


def _fitting(text: str, width: int, in_bytes: bool) -> int:
    """How many characters of ``text`` fit in ``width`` (characters, or UTF-8 bytes)."""
    if not in_bytes:
        return min(len(text), width)
    size = 0
    for count, char in enumerate(text):
        size += len(char.encode())
        if size > width:
            return count
    return len(text)


def _wrap(paragraph: str, width: int, in_bytes: bool = False) -> list[str]:
    pieces = []
    while (fit := max(1, _fitting(paragraph, width, in_bytes))) < len(paragraph):
        cut = paragraph.rfind(" ", 1, fit + 1)
        cut = cut if cut > 0 else fit  # one word longer than the line: cut it
        pieces.append(paragraph[:cut])
        paragraph = paragraph[cut:]
    return [*pieces, paragraph]


LINES_DTYPE = pl.List(pl.Struct({"line": pl.String, "format": pl.String}))


def text_lines_expr(value: pl.Expr, width: int, in_bytes: bool = False) -> pl.Expr:
    """Per row, its text lines; Python only for texts that need splitting (most fit one line)."""

    def fits(texts: pl.Expr) -> pl.Expr:
        short = (texts.str.len_bytes() if in_bytes else texts.str.len_chars()).fill_null(0) <= width
        return short & ~texts.fill_null("").str.contains(CONTROL)

    def split(texts: pl.Series) -> pl.Series:
        # polars hands over the whole column (every branch of when/then is evaluated): split in Python only
        # the texts that need it, the others are the one_line branch's
        longer = texts.to_frame("t").select((~fits(pl.col("t"))).arg_true()).to_series().to_list()
        lines: list[list[dict[str, str]] | None] = [None] * len(texts)
        for row, text in zip(longer, texts.gather(longer).to_list(), strict=True):
            lines[row] = text_lines(text, width, in_bytes)
        return pl.Series(lines, dtype=LINES_DTYPE)

    simple = fits(value)
    one_line = pl.concat_list(pl.struct(value.alias("line"), pl.lit(PARAGRAPH).alias("format")))
    blank = value.is_null() | (value.str.strip_chars() == "")
    return (
        pl.when(blank)
        .then(pl.lit([], dtype=LINES_DTYPE))
        .when(simple)
        .then(one_line)
        .otherwise(value.map_batches(split, return_dtype=LINES_DTYPE))
    )
