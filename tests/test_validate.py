"""validate(): pandera models and cross-record rules of the PO feed (product.md §6, coupa-flat-files.md §3).

Each bad file holds the PO under test (4301, first) and a valid PO (4399, last):
the bad PO must be rejected whole, the valid one accepted untouched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from pandera.errors import SchemaErrors

from batchsync.kinds.purchase_orders.kind import KIND as PO
from batchsync.kinds.purchase_orders.layout import LAYOUT as PO_LAYOUT
from batchsync.parse import parse_file
from batchsync.validate import ERROR_SCHEMA, Validated, passes_every_check, validate

try:
    from tests.coupa_files import po_file, row, write
except ImportError:  # tests/ is on sys.path instead of the project root
    from coupa_files import po_file, row, write  # type: ignore[no-redef]

LAYOUT = PO_LAYOUT
NAME = "OrderHeader_20261124_020000Z.csv"
SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "remote" / "Outgoing" / "PurchaseOrders"
BAD, GOOD = "4301", "4399"
GOOD_HEADER = {"id": GOOD, "supplier-id": "599", "supplier-number": "SUP-1002"}
GOOD_LINES = [{"order-header-id": GOOD, "price": "4.85", "quantity": "24"}]
GOOD_ALLOCATIONS = [
    {"order-header-id": GOOD, "order-line-num": "1", "account-allocation-percent": "60.0000000000"},
    {"order-header-id": GOOD, "order-line-num": "1", "account-allocation-percent": "40.0000000000"},
]


def run(tmp_path: Path, data: bytes) -> Validated:
    return validate(parse_file(write(tmp_path, NAME, data), LAYOUT), LAYOUT, PO.models, PO.rules)


def with_good_po(headers: list[dict], lines: list[dict], allocations: Sequence[dict] = ()) -> bytes:
    return po_file([*headers, GOOD_HEADER], [*lines, *GOOD_LINES], [*allocations, *GOOD_ALLOCATIONS])


def error_rows(result: Validated) -> list[tuple]:
    return result.errors.select("line", "record_type", "doc_id", "column", "check").rows()


def assert_only_good_po_accepted(result: Validated) -> None:
    assert result.accepted_ids.to_list() == [GOOD]
    assert set(result.frames["line"]["order-header-id"]) == {GOOD}
    assert result.frames["line"].height == len(GOOD_LINES)
    assert set(result.frames["allocation"]["order-header-id"]) == {GOOD}
    assert result.frames["allocation"].height == len(GOOD_ALLOCATIONS)


@dataclass
class Case:
    headers: list[dict]
    lines: list[dict]
    errors: list[tuple]  # (line, record_type, doc_id, column, check)
    allocations: list[dict] = field(default_factory=list)
    value: str | None = None  # the offending value of the first error
    says: str = ""  # part of the first error's message


CASES = {
    "missing supplier-id": Case(
        [{"id": BAD, "supplier-id": None}], [{}], [(1, "header", BAD, "supplier-id", "required")], says="required"
    ),
    "price with decimal comma": Case(
        [{"id": BAD}],
        [{"price": "12,50", "total": "25.00"}],
        [(2, "line", BAD, "price", "number")],
        value="12,50",
        says="not a number",
    ),
    "price with nbsp thousands separator": Case(
        [{"id": BAD}],
        [{"price": "1\u00a0234.00", "quantity": "1", "total": "1234.00"}],
        [(2, "line", BAD, "price", "number")],
        value="1\u00a0234.00",
        says="not a number",
    ),
    "impossible header date": Case(
        [{"id": BAD, "created-at": "2026-11-31T09:30:00+01:00"}],
        [{}],
        [(1, "header", BAD, "created-at", "datetime")],
        value="2026-11-31T09:30:00+01:00",
        says="ISO 8601",
    ),
    "need-by-date in local format": Case(
        [{"id": BAD}],
        [{}, {"need-by-date": "24.12.2026"}],
        [(3, "line", BAD, "need-by-date", "datetime")],
        value="24.12.2026",
    ),
    "unknown status": Case(
        [{"id": BAD, "status": "open"}],
        [{}],
        [(1, "header", BAD, "status", "po_status")],
        value="open",
        says="not a PO status",
    ),
    "non-integer line-number": Case(
        [{"id": BAD}],
        [{}, {"line-number": "2a"}],
        [(3, "line", BAD, "line-number", "integer")],
        value="2a",
    ),
    "uom longer than 6": Case(
        [{"id": BAD}],
        [{"uom": "PIECES7"}],
        [(2, "line", BAD, "uom", "str_length(None, 6)")],
        value="PIECES7",
        says="longer than 6 characters",
    ),
    "supplier-name longer than 100": Case(
        [{"id": BAD, "supplier-name": "N" * 101}],
        [{}],
        [(1, "header", BAD, "supplier-name", "str_length(None, 100)")],
        says="longer than 100 characters",
    ),
    "line-number twice in a PO": Case(
        [{"id": BAD}],
        [{"line-number": "1"}, {"line-number": "1"}],
        [(2, "line", BAD, "line-number", "unique"), (3, "line", BAD, "line-number", "unique")],
        says="repeats",
    ),
    "total is not price x quantity": Case(
        [{"id": BAD}],
        [{"price": "10.00", "quantity": "2", "total": "20.50"}],
        [(2, "line", BAD, "total", "line_total")],
        value="20.50",
        says="price × quantity",
    ),
    "allocation percents add up to 90": Case(
        [{"id": BAD}],
        [{}],
        [(3, "allocation", BAD, "account-allocation-percent", "percent_sum")],
        allocations=[{"account-allocation-percent": "60"}, {"account-allocation-percent": "30"}],
        says="add up to 90",
    ),
    "line currency differs from the PO's": Case(
        [{"id": BAD, "accounting-total-currency": "EUR"}],
        [{"currency": "USD"}],
        [(2, "line", BAD, "currency", "one_currency")],
        value="USD",
        says="EUR",
    ),
    "same PO header twice": Case(
        [{"id": BAD}, {"id": BAD}],
        [{}],
        [(1, "header", BAD, "id", "unique"), (3, "header", BAD, "id", "unique")],
        says="more than once",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_po_is_rejected_whole_and_the_other_po_accepted(tmp_path: Path, case: Case) -> None:
    result = run(tmp_path, with_good_po(case.headers, case.lines, case.allocations))

    assert error_rows(result) == case.errors
    first = result.errors.row(0, named=True)
    assert first["file"] == NAME
    if case.value is not None:
        assert first["value"] == case.value
    assert case.says in first["message"]
    # the reason a buyer reads: the PO's own line number (the file's physical line stays in the errors)
    (reason,) = result.rejected.filter(pl.col("doc_id") == BAD)["reason"].to_list()
    said = first["message"]
    column = first["column"] or ""
    if first["value"] is not None and said.startswith(column + " "):  # the value as Coupa holds it, quoted
        said = f'{column} "{first["value"]}" {said[len(column) + 1 :]}'
    if first["record_type"] == "header":
        assert reason == said
    else:
        assert re.fullmatch(r"PO line \S+: " + re.escape(said), reason), reason
    assert_only_good_po_accepted(result)


def test_valid_file_has_no_errors_and_accepts_every_po(tmp_path: Path) -> None:
    result = run(tmp_path, with_good_po([{"id": BAD, "status": "ISSUED"}], [{}, {}]))  # status is case-insensitive

    assert result.errors.height == 0
    assert result.errors.schema == ERROR_SCHEMA
    assert result.rejected.height == 0
    assert result.accepted_ids.to_list() == [BAD, GOOD]
    assert result.frames["line"].height == 3


def test_amount_based_line_without_quantity_is_exempt_from_the_total_rule(tmp_path: Path) -> None:
    lines = [{"price": "4250.00", "quantity": None, "total": "4250.00"}, {"price": "96.00", "quantity": "12.5"}]

    result = run(
        tmp_path,
        with_good_po(
            [{"id": BAD, "accounting-total-currency": "USD"}], [{**line, "currency": "USD"} for line in lines]
        ),
    )

    assert result.errors.height == 0
    assert result.accepted_ids.to_list() == [BAD, GOOD]


@pytest.mark.parametrize(
    ("price", "quantity", "total"),
    [
        ("349.70", "1", "349.71"),
        ("87.425000", "4", "349.70"),
        ("10.00", "2", "20.01"),
        ("10.00", "2", "19.99"),
        ("1.015", "1", "1.02"),
        ("87.425", "1", "87.43"),
    ],
)
def test_total_within_one_cent_of_price_times_quantity_is_accepted(
    tmp_path: Path, price: str, quantity: str, total: str
) -> None:
    result = run(tmp_path, with_good_po([{"id": BAD}], [{"price": price, "quantity": quantity, "total": total}]))

    assert error_rows(result) == []
    assert result.accepted_ids.to_list() == [BAD, GOOD]


@pytest.mark.parametrize("total", ["20.02", "20.0110", "19.98", "0.00"])
def test_total_more_than_one_cent_off_is_rejected(tmp_path: Path, total: str) -> None:
    result = run(tmp_path, with_good_po([{"id": BAD}], [{"price": "10.00", "quantity": "2", "total": total}]))

    assert error_rows(result) == [(2, "line", BAD, "total", "line_total")]
    assert_only_good_po_accepted(result)


def test_allocation_percents_adding_up_to_100_with_ten_decimals_are_accepted(tmp_path: Path) -> None:
    thirds = [{"account-allocation-percent": p} for p in ("33.3333333333", "33.3333333333", "33.3333333334")]

    result = run(tmp_path, with_good_po([{"id": BAD}], [{}], thirds))

    assert result.errors.height == 0
    assert result.frames["allocation"].height == 3 + len(GOOD_ALLOCATIONS)


def test_orphan_line_and_allocation_are_reported_without_crashing(tmp_path: Path) -> None:
    data = po_file(
        [GOOD_HEADER],
        [*GOOD_LINES, {"order-header-id": "4388"}],
        [*GOOD_ALLOCATIONS, {"order-header-id": "4388", "order-line-num": "1", "account-allocation-percent": "100"}],
    )

    result = run(tmp_path, data)

    # the good PO (lines 1-4), then the orphans at the end
    assert error_rows(result) == [
        (5, "line", "4388", "order-header-id", "header_exists"),
        (6, "allocation", "4388", "order-header-id", "header_exists"),
    ]
    assert "not in this file" in result.errors["message"][0]
    assert result.rejected.height == 0  # there is no PO 4388 to reject
    assert_only_good_po_accepted(result)


def test_unknown_record_type_is_reported_and_pos_are_unaffected(tmp_path: Path) -> None:
    lines = with_good_po([{"id": BAD}], [{}]).split(b"\n")
    data = b"\n".join([*lines[:2], row(["Comment", "exported by job 17"]).rstrip(b"\n"), *lines[2:]])

    result = run(tmp_path, data)

    assert error_rows(result) == [(3, "Comment", None, "type", "record_type")]
    assert "unknown record type Comment" in result.errors["message"][0]
    assert result.rejected.height == 0
    assert result.accepted_ids.to_list() == [BAD, GOOD]


def test_several_problems_in_one_po_are_all_reported_and_the_reason_is_the_first(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        with_good_po([{"id": BAD, "status": "open"}], [{"price": "12,50", "total": "25.00"}, {"uom": "PIECES7"}]),
    )

    assert error_rows(result) == [
        (1, "header", BAD, "status", "po_status"),
        (2, "line", BAD, "price", "number"),
        (3, "line", BAD, "uom", "str_length(None, 6)"),
    ]
    assert result.rejected["reason"].to_list() == ['status "open" ' + result.errors["message"][0].split(" ", 1)[1]]
    assert_only_good_po_accepted(result)


def test_sample_b_rejects_po_4206_at_line_16_and_keeps_the_others() -> None:
    result = validate(parse_file(SAMPLES / "OrderHeader_20261123_030000Z.csv", LAYOUT), LAYOUT, PO.models, PO.rules)

    assert error_rows(result) == [(16, "line", "4206", "price", "number")]
    assert result.errors["value"].to_list() == ["12,50"]
    assert result.rejected["doc_id"].to_list() == ["4206"]
    assert result.rejected["reason"][0].startswith('PO line 1: price "12,50" is not a number')
    assert result.accepted_ids.to_list() == ["4202", "4205"]
    assert "4206" not in set(result.frames["line"]["order-header-id"])


@pytest.mark.parametrize("name", ["OrderHeader_20261123_020000Z.csv", "OrderHeader_20261123_040000Z.csv"])
def test_samples_a_and_c_are_valid(name: str) -> None:
    result = validate(parse_file(SAMPLES / name, LAYOUT), LAYOUT, PO.models, PO.rules)

    assert result.errors.height == 0
    assert result.rejected.height == 0


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_one_query_pass_check_agrees_with_pandera_on_every_record_type(tmp_path: Path, case: Case) -> None:
    """``passes_every_check`` lets a clean frame skip pandera: it must never pass a frame pandera fails."""
    parsed = parse_file(write(tmp_path, NAME, with_good_po(case.headers, case.lines, case.allocations)), LAYOUT)
    good_only = parse_file(write(tmp_path, "good.csv", po_file([GOOD_HEADER], GOOD_LINES, GOOD_ALLOCATIONS)), LAYOUT)
    for role, model in PO.models.items():
        for frame in (parsed.frames[role], good_only.frames[role]):
            try:
                model.validate(frame, lazy=True)
                pandera_passes = True
            except SchemaErrors:
                pandera_passes = False
            assert passes_every_check(frame, model.to_schema()) == pandera_passes, (role, frame)
