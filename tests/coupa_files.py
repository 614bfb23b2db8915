"""Build record-typed Coupa Purchase Order CSV bytes for tests (coupa-flat-files.md §2–3).

Every field is double-quoted (quotes doubled), every row is padded with ``""``
to the widest record type, and each Header is followed by its Lines and then
its Allocations, the way Coupa writes them. Lines and allocations whose
``order-header-id`` names no header come last (orphans). A test passes only
the fields it is about; the rest get valid defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

from batchsync.kinds.purchase_orders.layout import PO_ALLOCATION, PO_HEADER, PO_LINE

WORDS = {"header": "Header", "line": "Line", "allocation": "Allocation"}
DEFAULT_COLUMNS = {"header": PO_HEADER, "line": PO_LINE, "allocation": PO_ALLOCATION}
WIDTH = max(len(c) for c in DEFAULT_COLUMNS.values())  # 77: the Line record

HEADER_DEFAULTS = {
    "id": "4301",
    "version": "1",
    "status": "issued",
    "supplier-id": "501",
    "supplier-number": "SUP-1001",
    "supplier-name": "Müller Industriebedarf GmbH",
    "accounting-total-currency": "EUR",
    "created-at": "2026-11-23T09:30:00+01:00",
    "payment-terms-code": "Net 30",
    "payment-terms-days-for-net-payment": "30",
}
LINE_DEFAULTS = {
    "description": "Kabelbinder 300 x 4,8 mm",
    "price": "10.00",
    "quantity": "2",
    "currency": "EUR",
    "uom": "EA",
    "need-by-date": "2026-12-04T00:00:00+01:00",
}

Row = Mapping[str, object]
CENT = Decimal("0.01")


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return '"' + text.replace('"', '""') + '"'


def row(values: Sequence[object], width: int = WIDTH, *, crlf: bool = False) -> bytes:
    """One physical record: the values quoted, padded with "" to ``width`` fields."""
    if len(values) > width:
        raise ValueError(f"{len(values)} values do not fit in {width} fields")
    cells = [cell(v) for v in values] + ['""'] * (width - len(values))
    return (",".join(cells) + ("\r\n" if crlf else "\n")).encode("utf-8")


def line_total(price: object, quantity: object) -> str:
    """price × quantity rounded to 2 decimals; the price alone for an amount line; "" if unreadable."""
    try:
        p = Decimal(str(price))
        if quantity in (None, ""):
            return f"{p.quantize(CENT, ROUND_HALF_UP)}"
        return f"{(p * Decimal(str(quantity))).quantize(CENT, ROUND_HALF_UP)}"
    except InvalidOperation:
        return ""


def _values(role: str, given: Row, defaults: Mapping[str, object], columns: list[str]) -> list[object]:
    unknown = set(given) - set(columns)
    if unknown:
        raise KeyError(f"{role} record has no column {sorted(unknown)}; pass columns= to add one")
    merged = {**defaults, **given}
    return [WORDS[role], *[merged.get(c) for c in columns[1:]]]


def po_file(
    headers: Sequence[Row],
    lines: Sequence[Row],
    allocations: Sequence[Row] = (),
    *,
    names_rows: bool = False,
    crlf: bool = False,
    columns: Mapping[str, list[str]] | None = None,
) -> bytes:
    """A PO export: one row per dict, a key per column (``None`` = empty).

    ``columns`` replaces a record type's column order (role -> names, starting
    with ``type``); ``names_rows`` writes one column-name row per record type
    at the top, as Coupa import templates do.
    """
    cols = {**DEFAULT_COLUMNS, **(columns or {})}
    width = max(len(c) for c in cols.values())
    out = bytearray()
    if names_rows:
        for role in ("header", "line", "allocation"):
            out += row([WORDS[role], *cols[role][1:]], width, crlf=crlf)

    first_id = str(headers[0].get("id", HEADER_DEFAULTS["id"])) if headers else HEADER_DEFAULTS["id"]
    numbered: dict[str, int] = {}
    line_rows: list[tuple[str, list[object]]] = []
    for given in lines:
        po = str(given.get("order-header-id", first_id))
        numbered[po] = numbered.get(po, 0) + 1
        defaults = {**LINE_DEFAULTS, "order-header-id": po, "line-number": str(numbered[po])}
        merged = {**defaults, **given}
        if "total" not in given:
            defaults["total"] = line_total(merged.get("price"), merged.get("quantity"))
        line_rows.append((po, _values("line", given, defaults, cols["line"])))
    alloc_rows: list[tuple[str, list[object]]] = []
    for given in allocations:
        po = str(given.get("order-header-id", first_id))
        defaults = {"order-header-id": po, "order-line-num": "1", "account-allocation-percent": "100"}
        alloc_rows.append((po, _values("allocation", given, defaults, cols["allocation"])))

    header_ids = []
    for given in headers:
        values = _values("header", given, HEADER_DEFAULTS, cols["header"])
        po = str({**HEADER_DEFAULTS, **given}["id"])
        out += row(values, width, crlf=crlf)
        if po in header_ids:  # a repeated header: its records were written after the first one
            continue
        header_ids.append(po)
        for owner, values in (*line_rows, *alloc_rows):
            if owner == po:
                out += row(values, width, crlf=crlf)
    for owner, values in (*line_rows, *alloc_rows):
        if owner not in header_ids:
            out += row(values, width, crlf=crlf)
    return bytes(out)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
