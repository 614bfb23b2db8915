"""The NetSuite CSV target (mappings/netsuite_po_csv*.yaml): golden files, read back by the csv module
against NetSuite's column contract and the Coupa source rows, and the same bytes over a real sshd.

Refresh on purpose only: ``UPDATE_GOLDEN=1 pytest tests/test_netsuite.py``, then read the diff.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import CHANGE_SAMPLE, Workspace
from tests.targets import csv_table, demo_handoff, matches_golden, samples_over_sshd
from tests.test_idoc_layout import SAMPLES, source_pos

GOLDEN = Path(__file__).resolve().parent / "golden" / "netsuite_po_csv"
CHANGE_SAMPLES = SAMPLES.parent / "OrderHeaderChanges"
ROOT = Path(__file__).resolve().parent.parent

# NetSuite's field labels (Import Assistant, Transactions > Purchase Order; the SOAP schema's
# PurchaseOrder body fields externalId, tranId, entity, tranDate, currency, memo and the
# PurchaseOrderItem fields line, item, description, quantity, units, rate, amount,
# expectedReceiptDate, isClosed), written out here independently of the mapping
LINE_COLUMNS = ["Line", "Item", "Description", "Quantity", "Units", "Rate", "Amount", "Expected Receipt Date", "Closed"]
PO_COLUMNS = ["External ID", "PO #", "Vendor", "Date", "Currency", "Memo", *LINE_COLUMNS]
CHANGE_COLUMNS = ["External ID", "PO #", "Vendor", "Currency", "Memo", *LINE_COLUMNS]


@pytest.fixture(scope="module")
def handoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_handoff(tmp_path_factory.mktemp("netsuite") / "ws", "netsuite_po_csv")


def test_handoff_files_are_the_golden_ones(handoff: Path) -> None:
    names = matches_golden(handoff, GOLDEN)
    assert len([n for n in names if n.endswith(".csv")]) == 4  # three PO files and the change file


def _us_date(iso: str) -> str:
    return f"{iso[5:7]}/{iso[8:10]}/{iso[:4]}"  # the date as written in Coupa's own offset


def _vendors() -> dict[str, str]:
    with (ROOT / "mappings" / "xref" / "netsuite_vendors.csv").open(encoding="utf-8") as stream:
        return {r["coupa_supplier_number"]: r["netsuite_vendor_id"] for r in csv.DictReader(stream)}


def _check_line(row: dict[str, str], line: dict[str, object]) -> None:
    assert row["Item"] == line["source-part-num"]
    assert row["Description"] == line["description"]  # whole: line breaks, quotes and all
    assert Decimal(row["Quantity"]) == Decimal(str(line["quantity"]))
    assert Decimal(row["Rate"]) == Decimal(str(line["price"]))
    assert Decimal(row["Amount"]) == Decimal(str(line["total"]))
    assert row["Units"] == line["uom"]
    assert row["Expected Receipt Date"] == _us_date(str(line["need-by-date"]))


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*OrderHeader_*.csv")))
def test_po_files_read_right_against_netsuites_columns_and_the_coupacsv_table(name: str) -> None:
    header, rows = csv_table(GOLDEN / name)
    assert header == PO_COLUMNS
    pos = source_pos(SAMPLES)
    vendors, seen = _vendors(), []
    for row in rows:
        version = row["Memo"].rsplit(" ", 1)[1]
        po = pos[(row["PO #"], version)]
        head = po["header"]  # type: ignore[index]
        assert row["External ID"] == f"COUPA-PO-{head['id']}"  # the same for every version: NetSuite's key
        assert row["Vendor"] == vendors[head["supplier-number"]]
        assert row["Date"] == _us_date(head["created-at"]) and row["Currency"] == head["accounting-total-currency"]
        line = next(x for x in po["lines"] if x["line-number"] == row["Line"])  # type: ignore[index]
        _check_line(row, line)
        assert row["Closed"] == ("T" if line["status"] in ("cancelled", "canceled") else "F")
        seen.append((row["External ID"], version))
    # every line of a PO version, one after another (NetSuite reads consecutive rows as one record)
    runs = [key for i, key in enumerate(seen) if i == 0 or seen[i - 1] != key]
    assert len(runs) == len(set(runs))
    for key in set(runs):
        assert seen.count(key) == len(pos[(key[0].removeprefix("COUPA-PO-"), key[1])]["lines"])  # type: ignore[arg-type]


def test_the_change_file_updates_the_po_by_its_external_id_with_the_lines_the_change_lists() -> None:
    name = next(p.name for p in GOLDEN.glob("*OrderHeaderChange_*.csv"))
    header, rows = csv_table(GOLDEN / name)
    assert header == CHANGE_COLUMNS
    text = (CHANGE_SAMPLES / CHANGE_SAMPLE).read_text(encoding="utf-8")
    for row in rows:
        change = row["Memo"].removeprefix("Coupa change request ")
        assert row["External ID"] == f"COUPA-PO-{row['PO #']}" and change in text
        assert row["Closed"] in ("T", "F")
    assert {r["External ID"] for r in rows} == {"COUPA-PO-4201"}  # the one change accepted in the samples
    assert [r["Line"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["Closed"] == "T" and rows[2]["Description"].endswith('"Sortiment A"')


def test_the_same_bytes_over_sshd(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace

    exit_code = samples_over_sshd(ws, "netsuite_po_csv", GOLDEN)

    assert exit_code == 1  # the samples' rejected POs (an unknown vendor, a bad price)
    assert csv_table(sorted(ws.handoff.glob("*.csv"))[0])[0] == PO_COLUMNS
