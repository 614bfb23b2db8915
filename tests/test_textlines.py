"""The text-lines expression splits only the texts that need it, and splits them as text_lines does."""

from __future__ import annotations

import polars as pl
import pytest

from batchsync.textlines import text_lines, text_lines_expr

TEXTS = [
    "short",
    None,
    "",
    "   ",
    "a line\nbreak",
    "x" * 71,
    "word " * 30,
    "Kabelbinder 300 x 4,8 mm\r\nschwarz",
    "ÄÖÜ" * 30,
    "tab\there",
]


@pytest.mark.parametrize("in_bytes", [False, True])
def test_every_row_gets_the_lines_text_lines_gives_it(in_bytes: bool) -> None:
    frame = pl.DataFrame({"t": TEXTS}, schema={"t": pl.String})
    got = frame.select(text_lines_expr(pl.col("t"), 70, in_bytes).alias("lines"))["lines"].to_list()
    assert got == [text_lines(t, 70, in_bytes) for t in TEXTS]
    assert [len(lines) for lines in got][:6] == [1, 0, 0, 0, 2, 2]  # short and blank rows as well as split ones
