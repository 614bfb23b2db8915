"""Coupa Purchase Order Change import files: what became of each PO (coupa-flat-files.md §5).

One ``Header`` row per outcome, ``Transmission Method Override`` =
``do_not_transmit`` (anything else would send the PO to the supplier again)
and the outcome text in the configured custom field. Files stay under
Coupa's 5,000 rows and 8 MB; their names sort in the order Coupa must read
them. Pure: rows in, file bytes out; ``pipeline`` uploads them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from batchsync.config import WritebackConfig
from batchsync.records import concat_text, csv_cell

HEADER_COLUMNS = [
    "Header",
    "Action",
    "Order Header ID",
    "Currency Code",
    "Payment Method",
    "Payment Term Code",
    "PCard Name",
    "Hide Price",
    "Shipping Term Code",
    "Ship To Location Code",
    "Ship To Attention",
    "Ship To Email",
    "Ship To Login",
    "Supplier Name",
    "Supplier Number",
    "Supplier Site Code",
    "Transmission Emails",
    "Transmission Method Override",
    "Department Name",
]
DO_NOT_TRANSMIT = "do_not_transmit"


@dataclass(frozen=True)
class WritebackFile:
    name: str
    data: bytes
    row_ids: list[int]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def rows(self) -> int:
        return len(self.row_ids)


def columns(config: WritebackConfig) -> list[str]:
    custom = [config.status_field] + (
        [config.change_status_field] if config.change_status_field != config.status_field else []
    )
    return HEADER_COLUMNS + custom


def build_files(rows: pl.DataFrame, config: WritebackConfig, stamp: str) -> list[WritebackFile]:
    """rows: id, po_id, field, text (in the order they happened)."""
    if rows.height == 0:
        return []
    names = columns(config)
    title = ",".join(f'"{n}"' for n in names) + "\n"
    fields = set(rows["field"].unique().to_list())
    lines = rows.select("id", _row_text(names, config, fields).alias("line"))
    files: list[WritebackFile] = []
    for number, (ids, text) in enumerate(_chunks(lines, len(title.encode()), config), start=1):
        files.append(WritebackFile(f"{config.prefix}_{stamp}_{number:03d}.csv", (title + text).encode("utf-8"), ids))
    return files


def _fitted(limit: int) -> pl.Expr:
    """No longer than the custom field holds: cut with an ellipsis (the ledger keeps the whole text)."""
    text = pl.col("text")
    return pl.when(text.str.len_chars() > limit).then(text.str.slice(0, limit - 1) + pl.lit("…")).otherwise(text)


def _row_text(names: list[str], config: WritebackConfig, fields: set[str]) -> pl.Expr:
    """One CSV row per outcome; a column no row's field names is the same empty cell on every row."""
    fixed = {
        "Header": pl.lit("Header"),
        "Action": pl.lit(config.action),
        "Order Header ID": pl.col("po_id"),
        "Transmission Method Override": pl.lit(DO_NOT_TRANSMIT),
    }
    cells: list[pl.Expr | str] = []
    for name in names:
        value = fixed.get(name)
        if value is None and name not in fields:
            cells.append('""')
            continue
        if value is None:
            value = pl.when(pl.col("field") == name).then(_fitted(config.status_max_length)).otherwise(pl.lit(""))
        cells.append(csv_cell(value))
    return concat_text([piece for i, cell in enumerate(cells) for piece in ([","] if i else []) + [cell]] + ["\n"])


def _chunks(lines: pl.DataFrame, title_bytes: int, config: WritebackConfig) -> list[tuple[list[int], str]]:
    """Greedy split under both limits (row count and bytes, the column-name row included)."""
    ends = lines["line"].str.len_bytes().cast(pl.Int64).cum_sum()  # bytes up to and including each row
    room = config.max_bytes - title_bytes
    chunks: list[tuple[list[int], str]] = []
    start = 0
    while start < lines.height:
        before = int(ends[start - 1]) if start else 0
        fitting = int(ends.search_sorted(before + room, side="right"))  # rows that fit the byte limit
        end = max(start + 1, min(fitting, start + config.max_rows))  # a row too large alone still goes
        part = lines.slice(start, end - start)
        chunks.append((part["id"].to_list(), part["line"].str.join("").item()))
        start = end
    return chunks
