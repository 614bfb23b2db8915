"""Check a file's bytes before polars reads it: UTF-8, NUL bytes, bare CRs, stray BOMs.

Streamed in chunks, so a large file is never held twice. Each fault names its
line and byte offset; line breaks are counted on the way for ``parse``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from batchsync.errors import DataError

_CHUNK = 16 * 1024 * 1024
BOM = b"\xef\xbb\xbf"
_BARE_CR = re.compile(rb'"\r(?=")')  # a closing quote, CR, an opening quote: a record break without LF
_STRAY_BOM = re.compile(rb"\n\xef\xbb\xbf")  # a BOM starting a line


@dataclass(frozen=True)
class ByteScan:
    size: int
    newlines: int
    ends_with_newline: bool
    has_bom: bool
    leading_blank_lines: int = 0  # skipped before reading: polars takes the table's width from the first line


def scan_bytes(path: Path, name: str) -> ByteScan:
    """Check UTF-8 and NUL bytes chunk by chunk; count line breaks on the way."""
    offset = newlines = 0
    carry = b""
    has_bom = False
    last = b""
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            if offset == 0:
                has_bom = chunk.startswith(BOM)
            data = carry + chunk
            base = offset - len(carry)
            carry = _check_chunk(data, base, newlines, name)
            newlines += data[: len(data) - len(carry)].count(b"\n")
            offset += len(chunk)
            last = chunk[-1:]
    if carry:
        raise _encoding_error(name, offset - len(carry), newlines + 1, "the file ends inside a UTF-8 character")
    return ByteScan(offset, newlines, last == b"\n", has_bom, _leading_blank_lines(path))


def _leading_blank_lines(path: Path) -> int:
    with path.open("rb") as stream:
        head = stream.read(64 * 1024).removeprefix(BOM)
    body = head.lstrip(b"\r\n")
    return head[: len(head) - len(body)].count(b"\n")


def _check_chunk(data: bytes, base: int, newlines: int, name: str) -> bytes:
    """Return the bytes of an incomplete character at the chunk's end, to carry over."""
    nul = data.find(b"\x00")
    try:
        _require_utf8(data)
        carry = b""
    except UnicodeDecodeError as exc:
        at_end = exc.end == len(data) and len(data) - exc.start < 4
        if not at_end or (0 <= nul < exc.start):
            bad = nul if 0 <= nul < exc.start else exc.start
            what = "a NUL byte" if bad == nul else f"byte 0x{data[bad]:02x} is not valid UTF-8"
            raise _encoding_error(name, base + bad, newlines + data[:bad].count(b"\n") + 1, what) from None
        carry = data[exc.start :]
    if nul >= 0:
        raise _encoding_error(name, base + nul, newlines + data[:nul].count(b"\n") + 1, "a NUL byte")
    # single-byte finds run at memory speed; the patterns are looked for only where those bytes occur
    stray_bom = _stray_bom(data, base) if BOM[:1] in data else None
    if stray_bom is not None:  # files glued together, or a BOM written twice: that row cannot be read
        line = newlines + data[:stray_bom].count(b"\n") + 1
        raise _encoding_error(name, base + stray_bom, line, "a byte order mark in the middle of the file")
    bare_cr = _BARE_CR.search(data) if b"\r" in data else None
    if bare_cr:  # polars would read the whole file as one row: records would vanish into extra columns
        line = newlines + data[: bare_cr.start()].count(b"\n") + 1
        raise DataError(
            f"{name}: line {line}, byte offset {base + bare_cr.start()}: records end with a bare CR (old Mac style)",
            file=name,
            line=line,
            offset=base + bare_cr.start(),
            hint="re-export the file with CRLF or LF line endings",
        )
    return carry


def _require_utf8(data: bytes) -> None:
    """Raise UnicodeDecodeError at the first bad byte; polars checks a valid chunk far faster than ``decode``."""
    try:
        pl.Series([data], dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.PolarsError:
        data.decode("utf-8")  # says where


def _stray_bom(data: bytes, base: int) -> int | None:
    """Offset of a BOM that starts a line, other than the one a file may begin with."""
    if base == 0 and data.startswith(BOM + BOM):
        return len(BOM)
    found = _STRAY_BOM.search(data)
    return found.start() + 1 if found else None


def _encoding_error(name: str, offset: int, line: int, what: str) -> DataError:
    return DataError(
        f"{name}: line {line}, byte offset {offset}: {what}; Coupa files are UTF-8",
        file=name,
        line=line,
        offset=offset,
        hint="re-export the file as UTF-8 (without BOM)",
    )
