"""The Oracle E-Business Suite target (mappings/oracle_po_interface*.yaml): three interface-table files
per PO export, read back by the csv module against the interface's columns and the Coupa rows; ids
unique across files, versions and reprocesses; what the interface cannot carry rejected with its reason.

Refresh on purpose only: ``UPDATE_GOLDEN=1 pytest tests/test_oracle.py``, then read the diff.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from batchsync import pipeline
from batchsync.config import Config, FeedConfig, load_config
from batchsync.demo import build_workspace
from batchsync.feeds import prepare_feed
from batchsync.kinds.purchase_orders.layout import PO_ALLOCATION, PO_HEADER
from batchsync.offline import check_file, map_file
from batchsync.process import PreparedFeed
from batchsync.resources import shipped
from tests.change_files import change_file
from tests.conftest import CHANGE_SAMPLE, FIXED_NOW, Workspace
from tests.coupa_files import po_file
from tests.targets import csv_table, demo_handoff, files_match_golden, matches_golden, pointed_at, samples_over_sshd
from tests.test_idoc_layout import SAMPLES, source_pos

GOLDEN = Path(__file__).resolve().parent / "golden" / "oracle_po_interface"
ROOT = Path(__file__).resolve().parent.parent
# the interface tables' columns this target fills, written out from Oracle's table definitions
HEADERS = [
    "INTERFACE_HEADER_ID",
    "INTERFACE_SOURCE_CODE",
    "ACTION",
    "DOCUMENT_TYPE_CODE",
    "DOCUMENT_NUM",
    "VENDOR_NUM",
    "CURRENCY_CODE",
    "APPROVAL_STATUS",
    "COMMENTS",
]
LINES = ["INTERFACE_LINE_ID", "INTERFACE_HEADER_ID", "ACTION", "LINE_NUM", "SHIPMENT_NUM", "ITEM"]
LINES += ["ITEM_DESCRIPTION", "LINE_TYPE", "UNIT_OF_MEASURE", "QUANTITY", "UNIT_PRICE", "AMOUNT", "NEED_BY_DATE"]
# a change request updates lines only: no line type (the ERP has the line), no distributions
CHANGE_LINES = [c for c in LINES if c != "LINE_TYPE"]
DISTRIBUTIONS = ["INTERFACE_HEADER_ID", "INTERFACE_LINE_ID", "INTERFACE_DISTRIBUTION_ID", "DISTRIBUTION_NUM"]
DISTRIBUTIONS += ["QUANTITY_ORDERED", "AMOUNT_ORDERED"]
DISTRIBUTIONS += ["CHARGE_ACCOUNT_SEGMENT1", "CHARGE_ACCOUNT_SEGMENT2", "CHARGE_ACCOUNT_SEGMENT3"]


TARGET = "oracle_po_interface"


def _workspace(folder: Path) -> Config:
    return load_config(pointed_at(build_workspace(folder), TARGET))


@pytest.fixture(scope="module")
def handoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_handoff(tmp_path_factory.mktemp("oracle") / "ws", TARGET)


def test_handoff_files_are_the_golden_ones(handoff: Path) -> None:
    names = matches_golden(handoff, GOLDEN)
    assert len([n for n in names if n.endswith(".csv")]) == 9  # three PO files, three tables each


def _number(text: object) -> Decimal | None:
    return Decimal(str(text)) if str(text).strip() else None


def _vendors() -> dict[str, str]:
    with (ROOT / "mappings" / "xref" / "oracle_vendors.csv").open(encoding="utf-8") as stream:
        return {r["coupa_supplier_number"]: r["oracle_vendor_num"] for r in csv.DictReader(stream)}


def _golden_tables() -> list[tuple[Path, Path, Path]]:
    mains = sorted(GOLDEN.glob("*.oracle_po_interface.csv"))
    return [
        (m, m.with_name(m.name[:-4] + ".lines.csv"), m.with_name(m.name[:-4] + ".distributions.csv")) for m in mains
    ]


@pytest.mark.parametrize("files", _golden_tables(), ids=lambda f: f[0].name[:40])
def test_each_table_reads_right_against_its_columns_and_the_coupa_rows(files: tuple[Path, Path, Path]) -> None:
    (head_cols, heads), (line_cols, lines), (dist_cols, dists) = (csv_table(p) for p in files)
    assert (head_cols, line_cols, dist_cols) == (HEADERS, LINES, DISTRIBUTIONS)
    pos, vendors = source_pos(SAMPLES), _vendors()
    by_header: dict[str, tuple[dict[str, str], dict[str, object]]] = {}
    for h in heads:
        version = h["COMMENTS"].rsplit(" ", 1)[1]
        po = pos[(h["DOCUMENT_NUM"], version)]
        by_header[h["INTERFACE_HEADER_ID"]] = (h, po)
        assert h["ACTION"] == ("ORIGINAL" if version == "1" else "UPDATE")
        assert h["VENDOR_NUM"] == vendors[po["header"]["supplier-number"]]  # type: ignore[index]
    quantities: dict[str, Decimal] = defaultdict(Decimal)
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for d in dists:
        quantities[d["INTERFACE_LINE_ID"]] += _number(d["QUANTITY_ORDERED"]) or 0
        amounts[d["INTERFACE_LINE_ID"]] += _number(d["AMOUNT_ORDERED"]) or 0
    for line in lines:
        h, po = by_header[line["INTERFACE_HEADER_ID"]]
        source = next(x for x in po["lines"] if x["line-number"] == line["LINE_NUM"])  # type: ignore[index]
        assert line["ITEM_DESCRIPTION"] == source["description"] and line["ITEM"] == source["source-part-num"]
        assert _number(line["QUANTITY"]) == _number(source["quantity"])  # an amount line has none
        if source["line-type"] == "OrderAmountLine":  # amount-based in Oracle: its amount, no unit price
            assert (line["LINE_TYPE"], line["UNIT_PRICE"]) == ("Fixed Price Services", "")
            assert Decimal(line["AMOUNT"]) == Decimal(source["total"]) == amounts[line["INTERFACE_LINE_ID"]]
        else:
            assert (line["LINE_TYPE"], line["AMOUNT"]) == ("Goods", "")
            assert Decimal(line["UNIT_PRICE"]) == Decimal(source["price"])
            assert amounts[line["INTERFACE_LINE_ID"]] == 0
        assert line["ACTION"] in (("",) if h["ACTION"] == "ORIGINAL" else ("ADD", "UPDATE"))
        # the distributions of a line add up to its quantity, up to the rounding of each share
        assert abs(quantities[line["INTERFACE_LINE_ID"]] - (_number(line["QUANTITY"]) or 0)) <= Decimal("0.002")


def test_the_samples_amount_line_goes_amount_based_with_its_allocation_amounts() -> None:
    """Sample PO 4204's maintenance line is an OrderAmountLine (no quantity): the check above must see it."""
    found = [
        (line, [d for d in csv_table(dist_path)[1] if d["INTERFACE_LINE_ID"] == line["INTERFACE_LINE_ID"]])
        for _, lines_path, dist_path in _golden_tables()
        for line in csv_table(lines_path)[1]
        if line["LINE_TYPE"] == "Fixed Price Services"
    ]
    assert found, "no amount-based line in the golden files"
    for line, dists in found:
        assert line["QUANTITY"] == "" and dists and all(d["QUANTITY_ORDERED"] == "" for d in dists)
        assert sum(Decimal(d["AMOUNT_ORDERED"]) for d in dists) == Decimal(line["AMOUNT"])


def test_a_distribution_per_allocation_is_its_share_of_the_line() -> None:
    allocations = _allocations()
    checked = 0
    for _, lines_path, dist_path in _golden_tables():
        lines = {r["INTERFACE_LINE_ID"]: r for r in csv_table(lines_path)[1]}
        for d in csv_table(dist_path)[1]:
            line = lines[d["INTERFACE_LINE_ID"]]
            if d["INTERFACE_DISTRIBUTION_ID"].endswith("1"):  # from an allocation
                percent = allocations[(line["INTERFACE_HEADER_ID"], line["LINE_NUM"], d["DISTRIBUTION_NUM"])]
                quantity = _number(line["QUANTITY"])
                share = None if quantity is None else (quantity * percent / 100).quantize(Decimal("0.001"))
                assert _number(d["QUANTITY_ORDERED"]) == share
                checked += 1
            else:  # a line without allocations: one distribution of all of it
                assert d["DISTRIBUTION_NUM"] == "1" and d["QUANTITY_ORDERED"] == line["QUANTITY"]
    assert checked >= 2


def _allocations() -> dict[tuple[str, str, str], Decimal]:
    """(INTERFACE_HEADER_ID of the PO in the golden files, line number, sequence) -> percent, from the CSV sources."""
    heads = {}
    for main, _, _ in _golden_tables():
        for h in csv_table(main)[1]:
            heads[(h["DOCUMENT_NUM"], h["COMMENTS"].rsplit(" ", 1)[1])] = h["INTERFACE_HEADER_ID"]
    found: dict[tuple[str, str, str], Decimal] = {}
    for path in sorted(SAMPLES.glob("*.csv")):
        names, version = {"Header": PO_HEADER, "Allocation": PO_ALLOCATION}, ""
        with path.open(encoding="utf-8", newline="") as stream:
            for row in csv.reader(stream):
                if row[0] not in names:
                    continue
                if "order-header-id" in row or "version" in row:  # a column-name row
                    names[row[0]] = ["type", *row[1:]]
                    continue
                record = dict(zip(names[row[0]], row, strict=False))
                if row[0] == "Header":
                    po, version = record["id"], record["version"]
                elif (po, version) in heads:
                    key = (heads[(po, version)], record["order-line-num"], record["account-allocation-sequence"])
                    found[key] = Decimal(record["account-allocation-percent"])
    return found


def test_interface_ids_are_unique_across_files_and_a_reprocess(tmp_path: Path) -> None:
    config = _workspace(tmp_path / "ws")
    pipeline.run(config, clock=lambda: FIXED_NOW)
    pipeline.reprocess(config, run_id=1, force=True, clock=lambda: FIXED_NOW)

    ids: list[str] = []
    for path in sorted(config.handoff_dir.glob("*.csv")):
        header, rows = csv_table(path)
        own = "INTERFACE_DISTRIBUTION_ID" if "INTERFACE_DISTRIBUTION_ID" in header else header[0]
        ids += [r[own] for r in rows]
    assert len(list(config.handoff_dir.glob("*.reprocess*.csv"))) == 9  # the replay's three files, three tables
    assert len(ids) == len(set(ids)) > 30


def test_what_the_interface_cannot_carry_is_rejected_with_its_reason(tmp_path: Path) -> None:
    config = _workspace(tmp_path / "ws")
    summary = pipeline.run(config, clock=lambda: FIXED_NOW)

    changes = next(f for f in summary.feeds if f.kind == "order_header_changes")
    assert changes.handoff_files == []  # the samples' accepted change adds a line and cancels one
    report = next((config.state_dir / "reports").glob(f"*{CHANGE_SAMPLE}.errors.csv")).read_text(encoding="utf-8")
    assert "the change adds or cancels a line, which Oracle's Purchasing Documents Open Interface cannot take" in report


def test_a_change_of_quantities_updates_the_po_by_its_number(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    pointed_at(ws.config, TARGET)
    ws.put("OrderHeader_20261123_020000Z.csv")  # PO 4201: lines 1 and 2
    assert ws.cli("run").exit_code == 0
    line = {"order-header-change-id": "9301", "line-num": "2", "quantity": "30", "price": "6.40", "uom": "BOX"}
    header = {"id": "9301", "order-header-id": "4201", "supplier-number": "SUP-1001", "currency": "EUR"}
    ws.put_change("OrderHeaderChange_20261124_010000Z.csv", change_file([header], [{**line, "total": "192.00"}]))

    assert ws.cli("run").exit_code == 0

    main = next(ws.handoff.glob("*OrderHeaderChange_20261124_010000Z*.oracle_po_interface.csv"))
    (head,) = csv_table(main)[1]
    assert (head["ACTION"], head["DOCUMENT_NUM"], head["VENDOR_NUM"]) == ("UPDATE", "4201", "V-1001")
    (row,) = csv_table(main.with_name(main.name[:-4] + ".lines.csv"))[1]
    assert (row["ACTION"], row["LINE_NUM"], row["QUANTITY"], row["INTERFACE_HEADER_ID"]) == (
        "UPDATE",
        "2",
        "30.000",
        head["INTERFACE_HEADER_ID"],
    )
    assert (row["UNIT_PRICE"], row["AMOUNT"]) == ("6.4000", "")  # a quantity line: its price, no amount
    files = sorted(ws.handoff.glob("*OrderHeaderChange_20261124_010000Z*.csv"))
    assert [p.name.split(".")[-2] for p in files] == ["oracle_po_interface", "lines"]  # no distributions
    assert (csv_table(files[0])[0], csv_table(files[1])[0]) == (HEADERS, CHANGE_LINES)
    files_match_golden(files, GOLDEN.with_name("oracle_po_interface_change"))  # nothing of the run's clock


@pytest.mark.parametrize(("status", "verb"), [("cancelled", "cancel"), ("closed", "close")])
def test_a_cancelled_or_closed_po_is_rejected_with_what_to_do_in_oracle(
    sftp_workspace: Workspace, status: str, verb: str
) -> None:
    ws = sftp_workspace
    pointed_at(ws.config, TARGET)
    lines = [{"id": "7001", "line-number": "1", "description": "Kabelbinder", "price": "10.00", "quantity": "2"}]
    ws.put("OrderHeader_20261124_010000Z.csv", po_file([{"id": "4301", "version": "1"}], lines))
    assert ws.cli("run").exit_code == 0
    ws.put("OrderHeader_20261124_020000Z.csv", po_file([{"id": "4301", "version": "2", "status": status}], lines))

    result = ws.cli("run")

    assert result.exit_code == 1  # a PO rejected
    [row] = ws.rows("SELECT outcome, reason FROM po_versions WHERE po_id = '4301' AND version = 2")
    assert row["outcome"] == "rejected"
    assert row["reason"].endswith(
        f"Oracle's Purchasing Documents Open Interface cannot {verb} a purchase order: {verb} it in Oracle"
    )
    assert not list(ws.handoff.glob("*OrderHeader_20261124_020000Z*"))  # nothing half sent


def test_the_samples_over_sshd_give_the_golden_bytes(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    assert samples_over_sshd(ws, TARGET, GOLDEN) == 1  # the samples' rejected POs and change requests


def _change_feed() -> PreparedFeed:
    kind = "order_header_changes"
    return prepare_feed(FeedConfig(kind, kind, "/x", "*.csv", TARGET), shipped("mappings"), shipped("templates"))


def test_a_change_line_without_a_quantity_updates_its_amount(tmp_path: Path) -> None:
    """A change line carries no line type: without a quantity it is an amount line, its price the amount."""
    feed = _change_feed()
    header = {"id": "9302", "order-header-id": "4204", "supplier-number": "SUP-1004", "currency": "USD"}
    lines = [
        {"order-header-change-id": "9302", "line-num": "1", "price": "4600.00", "order-line-id": "1"},
        {"order-header-change-id": "9302", "line-num": "2", "quantity": "14", "price": "96.00", "order-line-id": "2"},
    ]
    path = tmp_path / "OrderHeaderChange_1.csv"
    path.write_bytes(change_file([header], lines))
    _, validated, mapped = map_file(path, feed, FIXED_NOW)
    assert validated.errors.height == 0, validated.errors.to_dicts()
    texts = mapped.documents["line_records"][0].splitlines()
    rows = list(csv.reader(texts))
    columns = next(csv.reader([feed.mapping.outputs[1].column_row or ""]))
    by_line = {r[columns.index("LINE_NUM")]: dict(zip(columns, r, strict=True)) for r in rows}
    assert (by_line["1"]["QUANTITY"], by_line["1"]["UNIT_PRICE"], by_line["1"]["AMOUNT"]) == ("", "", "4600.00")
    assert (by_line["2"]["QUANTITY"], by_line["2"]["UNIT_PRICE"], by_line["2"]["AMOUNT"]) == ("14.000", "96.0000", "")


def test_validate_checks_a_change_file_as_changes_not_as_new_pos() -> None:
    """``batchsync validate`` maps a change request as a run sends one: Oracle's interface takes a change,
    so only the sample change that adds and cancels lines (9001) is rejected, with that reason."""
    sample = shipped("samples") / "remote" / "Outgoing" / "OrderHeaderChanges" / CHANGE_SAMPLE
    check = check_file(sample, _change_feed(), FIXED_NOW)
    assert (check.documents, check.rejected) == (5, 1)
    assert set(check.errors["doc_id"]) == {"9001"}
    assert all("cannot take from a change request" in m for m in check.errors["message"])
