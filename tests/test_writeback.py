"""writeback.build_files: Coupa Purchase Order Change import files (coupa-flat-files.md §5)."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest

from batchsync.config import WritebackConfig
from batchsync.kinds.purchase_orders.outcomes import rejected_text, sent_text
from batchsync.writeback import WritebackFile, build_files

STAMP = "20261124T020000Z"
STATUS, CHANGE = "ERP Integration Status", "ERP Change Validation"
# Coupa's Purchase Order Change import header, written out here on purpose rather than imported
# from writeback.HEADER_COLUMNS: the files are checked against the contract, not against themselves
COLUMNS = [
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
    STATUS,
    CHANGE,
]


def rows(n: int, field: str = STATUS, start: int = 1) -> pl.DataFrame:
    ids = list(range(start, start + n))
    return pl.DataFrame(
        {
            "id": ids,
            "po_id": [str(4200 + i) for i in ids],
            "field": [field] * n,
            "text": [sent_text("2026-11-24T02:00:00Z", f"ORDERS_{i:05d}.idoc") for i in ids],
        }
    )


def table(file: WritebackFile) -> list[list[str]]:
    assert file.data.endswith(b"\n")
    return list(csv.reader(io.StringIO(file.data.decode("utf-8"), newline="")))


def test_column_name_row_first_then_one_header_row_per_status() -> None:
    data = pl.DataFrame(
        {
            "id": [11, 12],
            "po_id": ["4201", "4206"],
            "field": [STATUS, CHANGE],
            "text": [
                sent_text("2026-11-24T02:00:00Z", "ORDERS_1.idoc"),
                rejected_text('line 16: price "12,50" is not a number'),
            ],
        }
    )

    files = build_files(data, WritebackConfig(), STAMP)

    assert len(files) == 1
    first_line = files[0].data.split(b"\n", 1)[0].decode()
    assert first_line == ",".join(f'"{c}"' for c in COLUMNS)  # every field quoted
    parsed = table(files[0])
    assert parsed[0] == COLUMNS
    assert len(parsed) == 3
    records = [dict(zip(COLUMNS, r, strict=True)) for r in parsed[1:]]
    for record in records:
        assert record["Header"] == "Header"
        assert record["Transmission Method Override"] == "do_not_transmit"
    assert [r["Order Header ID"] for r in records] == ["4201", "4206"]
    assert records[0][STATUS] == "Sent to ERP 2026-11-24T02:00:00Z ORDERS_1.idoc" and records[0][CHANGE] == ""
    assert records[1][CHANGE] == 'Rejected: line 16: price "12,50" is not a number' and records[1][STATUS] == ""
    assert '"Rejected: line 16: price ""12,50"" is not a number"' in files[0].data.decode()  # quotes doubled
    untouched = set(COLUMNS) - {"Header", "Action", "Order Header ID", "Transmission Method Override", STATUS, CHANGE}
    assert all(r[c] == "" for r in records for c in untouched)
    assert files[0].row_ids == [11, 12] and files[0].rows == 2


def test_action_and_field_names_come_from_the_config() -> None:
    config = WritebackConfig(status_field="Integration Note", change_status_field="Integration Note", action="submit")

    [file] = build_files(rows(1, field="Integration Note"), config, STAMP)

    parsed = table(file)
    assert parsed[0] == [*COLUMNS[:-2], "Integration Note"]  # one status column when both fields are the same
    assert parsed[1][1] == "submit"
    assert parsed[1][-1].startswith("Sent to ERP ")


def test_status_text_starting_with_a_formula_character_is_guarded() -> None:
    data = pl.DataFrame({"id": [1], "po_id": ["4201"], "field": [STATUS], "text": ["=cmd|' /C calc'!A0"]})

    [file] = build_files(data, WritebackConfig(), STAMP)

    assert table(file)[1][COLUMNS.index(STATUS)] == "'=cmd|' /C calc'!A0"


def test_multi_line_reason_stays_one_record() -> None:
    reason = rejected_text("line 11: E1EDP19.KTEXT: 'Armoire\nDimensions' is 179 characters")
    data = pl.DataFrame({"id": [1, 2], "po_id": ["4203", "4204"], "field": [STATUS, STATUS], "text": [reason, "ok"]})

    [file] = build_files(data, WritebackConfig(), STAMP)

    parsed = table(file)
    assert len(parsed) == 3
    assert parsed[1][COLUMNS.index(STATUS)] == reason


def test_no_rows_no_files() -> None:
    assert build_files(rows(0), WritebackConfig(), STAMP) == []


def test_split_at_max_rows() -> None:
    config = WritebackConfig(max_rows=3)

    files = build_files(rows(7), config, STAMP)

    assert [f.rows for f in files] == [3, 3, 1]
    assert [len(table(f)) - 1 for f in files] == [3, 3, 1]
    assert all(table(f)[0] == COLUMNS for f in files)  # each file has its own column-name row
    assert [f.name for f in files] == [f"PurchaseOrderChange_{STAMP}_{n:03d}.csv" for n in (1, 2, 3)]
    assert sorted(f.name for f in files) == [f.name for f in files]
    assert [i for f in files for i in f.row_ids] == list(range(1, 8))
    assert [r[2] for f in files for r in table(f)[1:]] == [str(4200 + i) for i in range(1, 8)]


def test_split_at_max_bytes() -> None:
    data = rows(5)
    title = (",".join(f'"{c}"' for c in COLUMNS) + "\n").encode()
    one = len(build_files(rows(1), WritebackConfig(), STAMP)[0].data) - len(title)
    config = WritebackConfig(max_bytes=len(title) + 2 * one)  # exactly two rows fit

    files = build_files(data, config, STAMP)

    assert [f.rows for f in files] == [2, 2, 1]
    assert all(len(f.data) <= config.max_bytes for f in files)
    assert len(files[0].data) == config.max_bytes
    assert sorted(i for f in files for i in f.row_ids) == [1, 2, 3, 4, 5]

    tighter = WritebackConfig(max_bytes=len(title) + 2 * one - 1)
    assert [f.rows for f in build_files(data, tighter, STAMP)] == [1, 1, 1, 1, 1]


def test_prefix_and_sha256() -> None:
    [file] = build_files(rows(2), WritebackConfig(prefix="POC"), STAMP)

    assert file.name == f"POC_{STAMP}_001.csv"
    assert len(file.sha256) == 64
    assert file.sha256 != build_files(rows(2, start=3), WritebackConfig(prefix="POC"), STAMP)[0].sha256


@pytest.mark.parametrize("n", [5000, 5001, 12000])
def test_default_limits_on_a_big_night(n: int) -> None:
    config = WritebackConfig()

    files = build_files(rows(n), config, STAMP)

    expected = -(-n // 5000)
    assert len(files) == expected
    assert all(f.rows <= 5000 and len(f.data) <= 8_000_000 for f in files)
    assert all(f.data.count(b"\n") == f.rows + 1 for f in files)
    ids = [i for f in files for i in f.row_ids]
    assert len(ids) == len(set(ids)) == n
    assert sorted(f.name for f in files) == [f.name for f in files]


def test_long_reasons_split_by_bytes_before_rows() -> None:
    n = 6000
    data = rows(n).with_columns(pl.format("Rejected: line {}: {}", pl.col("id"), pl.lit("x" * 1800)).alias("text"))

    files = build_files(data, WritebackConfig(status_max_length=10_000), STAMP)  # reasons kept whole

    assert len(files) == 2
    assert all(len(f.data) <= 8_000_000 and f.rows <= 5000 for f in files)
    assert files[0].rows < 5000  # the byte limit cut first
    assert [i for f in files for i in f.row_ids] == list(range(1, n + 1))


def test_a_status_longer_than_the_custom_field_is_cut_with_an_ellipsis() -> None:
    import polars as pl

    from batchsync.config import WritebackConfig
    from batchsync.writeback import build_files

    rows = pl.DataFrame({"id": [1], "po_id": ["4201"], "field": ["ERP Integration Status"], "text": ["x" * 300]})
    (file,) = build_files(rows, WritebackConfig(status_max_length=255), "20261202T000000Z")
    import csv
    import io

    row = next(iter(csv.DictReader(io.StringIO(file.data.decode("utf-8")))))
    cell = row["ERP Integration Status"]
    assert len(cell) == 255 and cell.endswith("…") and cell.startswith("x" * 254)
