"""Build Order Header Change export bytes for tests (coupa-flat-files.md §4 default layout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from batchsync.kinds.order_header_changes.layout import OHC_APPROVAL, OHC_HEADER, OHC_LINE

WIDTH = max(len(OHC_HEADER), len(OHC_LINE), len(OHC_APPROVAL))
Row = Mapping[str, object]


def _row(word: str, columns: list[str], values: Row) -> str:
    cells = [word, *[str(values.get(c, "") or "") for c in columns[1:]]]
    cells += [""] * (WIDTH - len(cells))
    return ",".join('"' + c.replace('"', '""') + '"' for c in cells)


def change_file(headers: Sequence[Row], lines: Sequence[Row] = (), approvals: Sequence[Row] = ()) -> bytes:
    """Each change header is followed by its lines and approvals (matched on ``order-header-change-id``)."""
    out = []
    for header in headers:
        change_id = header["id"]
        defaults = {"status": "approved", "version": "1", "currency": "EUR", "created-at": "2026-11-23T10:00:00+01:00"}
        out.append(_row("Header", OHC_HEADER, {**defaults, **header}))
        out += [_row("Line", OHC_LINE, line) for line in lines if line["order-header-change-id"] == change_id]
        out += [_row("Approval", OHC_APPROVAL, a) for a in approvals if a["order-header-change-id"] == change_id]
    return ("\n".join(out) + "\n").encode("utf-8")
