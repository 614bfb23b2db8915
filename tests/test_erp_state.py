"""A new PO version against what the ERP has (erp_state.py): ACTION codes by SAP's ORDERS05 definition.

Each test runs the whole job on a real sshd with a real ledger, then reads the IDoc back with SAP's
segment definition (tests/idoc_reader.py), not with batchsync's writer.
"""

from __future__ import annotations

import csv
import io
import sqlite3

from tests.change_files import change_file
from tests.conftest import Workspace
from tests.coupa_files import po_file
from tests.idoc_reader import Idoc, check_numbering, read_idocs

LINES = [
    {"id": "7001", "description": "Kabelbinder 300 x 4,8 mm", "price": "10.00", "quantity": "2"},
    {"id": "7002", "description": "Schrumpfschlauch-Set", "price": "14.90", "quantity": "5"},
    {"id": "7003", "description": "Einweghandschuhe Nitril", "price": "8.95", "quantity": "40"},
]


def send(ws: Workspace, name: str, data: bytes) -> Idoc | None:
    """Put one export, run, and return the IDoc handed off for it (None: nothing was)."""
    ws.put(name, data)
    result = ws.cli("run")
    assert result.exit_code == 0, ws.rows("SELECT po_id, version, outcome, reason FROM po_versions")
    found = sorted(ws.handoff.glob(f"R*_{name.removesuffix('.csv')}.*.idoc"))
    if not found:
        return None
    [idoc] = read_idocs(found[0])
    return idoc


def item_actions(idoc: Idoc) -> list[tuple[str, str]]:
    return [(item[0].values["POSEX"], item[0].values["ACTION"]) for item in idoc.items()]


def writeback_texts(ws: Workspace) -> list[str]:
    texts = []
    for path in sorted(ws.incoming.glob("*.csv")):
        texts += [r["ERP Integration Status"] for r in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))]
    return texts


def first_version(ws: Workspace) -> Idoc:
    idoc = send(ws, "OrderHeader_20261124_010000Z.csv", po_file([{"id": "4301", "version": "1"}], LINES))
    assert idoc is not None and idoc.one("E1EDK01")["ACTION"] == "000"
    assert item_actions(idoc) == [("000001", "001"), ("000002", "001"), ("000003", "001")]
    return idoc


def test_a_revision_that_adds_changes_and_removes_lines(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    first_version(ws)
    # line 1 as it was, line 2 a new price, line 3 gone, a new line 4
    v2 = [LINES[0], {**LINES[1], "price": "13.90"}, {"id": "7004", "line-number": "4", "description": "Marker"}]

    idoc = send(ws, "OrderHeader_20261124_020000Z.csv", po_file([{"id": "4301", "version": "2"}], v2))

    assert idoc is not None and idoc.control["MESTYP"] == "ORDCHG"
    assert idoc.one("E1EDK01")["ACTION"] == "003"  # items changed, the header did not
    assert item_actions(idoc) == [("000001", "004"), ("000002", "002"), ("000003", "003"), ("000004", "001")]
    deleted = idoc.items()[2]
    assert deleted[0].values["MENGE"] == "40.000"  # sent as the ERP has it
    assert {r.segment: r.values for r in deleted}["E1EDP19"]["KTEXT"] == "Einweghandschuhe Nitril"
    # the ERP now has lines 1, 2 and 4: a version 3 equal to version 2 changes nothing
    assert send(ws, "OrderHeader_20261124_030000Z.csv", po_file([{"id": "4301", "version": "3"}], v2)) is None
    [row] = ws.rows("SELECT outcome, reason FROM po_versions WHERE po_id = '4301' AND version = 3")
    assert row == {"outcome": "unchanged", "reason": "nothing the ERP receives differs from version 2"}


def test_a_version_with_nothing_new_for_the_erp_is_recorded_not_sent(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    first_version(ws)
    # Coupa's bookkeeping moved (version, updated-at, received), nothing the IDoc carries
    v2 = [{**line, "received": "1", "updated-at": "2026-11-24T08:00:00+01:00"} for line in LINES]
    ws.put("OrderHeader_20261124_020000Z.csv", po_file([{"id": "4301", "version": "2"}], v2))

    result = ws.cli("run")

    assert result.exit_code == 0, result.output
    assert "1 unchanged for the ERP" in result.stdout
    assert len(ws.handoff_files()) == 1
    [row] = ws.rows("SELECT outcome, handoff_name FROM po_versions WHERE version = 2")
    assert row == {"outcome": "unchanged", "handoff_name": None}
    assert writeback_texts(ws)[-1].startswith("Unchanged for ERP ")
    assert writeback_texts(ws)[-1].endswith(": nothing the ERP receives differs from version 1")


def test_a_header_change_alone_is_002_with_every_item_unchanged(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    first_version(ws)
    header = {"id": "4301", "version": "2", "supplier-name": "Müller Industriebedarf AG"}

    idoc = send(ws, "OrderHeader_20261124_020000Z.csv", po_file([header], LINES))

    assert idoc is not None and idoc.one("E1EDK01")["ACTION"] == "002"
    assert idoc.one("E1EDKA1")["NAME1"] == "Müller Industriebedarf AG"
    assert [action for _, action in item_actions(idoc)] == ["004", "004", "004"]


def test_a_cancelled_po_reverses_the_whole_document(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    first_version(ws)

    idoc = send(
        ws, "OrderHeader_20261124_020000Z.csv", po_file([{"id": "4301", "version": "2", "status": "cancelled"}], LINES)
    )

    assert idoc is not None and idoc.one("E1EDK01")["ACTION"] == "001"
    assert [action for _, action in item_actions(idoc)] == ["003", "003", "003"]


def test_a_version_handed_off_before_fingerprints_counts_as_changed_everywhere(sftp_workspace: Workspace) -> None:
    """What an upgraded ledger holds: the version the ERP has, without a fingerprint (README, known limits)."""
    ws = sftp_workspace
    first_version(ws)
    with sqlite3.connect(ws.state / "ledger.db") as db:
        db.execute("UPDATE po_versions SET mapped_hash = NULL")
        db.execute("UPDATE po_lines SET mapped_hash = NULL, source = NULL")
    v2 = [LINES[0], LINES[1]]  # line 3 removed, but the ledger has nothing to send it again with

    idoc = send(ws, "OrderHeader_20261124_020000Z.csv", po_file([{"id": "4301", "version": "2"}], v2))

    assert idoc is not None and idoc.one("E1EDK01")["ACTION"] == "004"
    assert item_actions(idoc) == [("000001", "002"), ("000002", "002")]
    # from now on the ledger has fingerprints again
    assert all(r["mapped_hash"] for r in ws.rows("SELECT mapped_hash FROM po_lines WHERE version = 2"))


def test_two_change_requests_for_one_po_in_one_file_have_their_own_docnum(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    first_version(ws)
    line = {"line-num": "1", "order-line-id": "7001", "price": "10.00", "currency": "EUR", "description": "Kabelbinder"}
    lines = [{**line, "order-header-change-id": c, "quantity": q} for c, q in (("9101", "3"), ("9102", "4"))]
    approvals = [{"order-header-change-id": c, "position": "1", "status": "approved"} for c in ("9101", "9102")]
    changes = [{"id": c, "order-header-id": "4301", "supplier-number": "SUP-1001"} for c in ("9101", "9102")]
    ws.put_change("OrderHeaderChange_20261124_020000Z.csv", change_file(changes, lines, approvals))

    assert ws.cli("run").exit_code == 0

    [path] = ws.handoff.glob("R*_OrderHeaderChange_*.idoc")
    idocs = read_idocs(path)
    assert [i.control["ARCKEY"] for i in idocs] == ["COUPA-PO-4301-CHG-9101", "COUPA-PO-4301-CHG-9102"]
    docnums = [i.control["DOCNUM"] for i in idocs]
    assert len(set(docnums)) == 2
    for idoc in idocs:
        check_numbering(idoc)  # every data record carries its own control record's DOCNUM


def test_a_po_feed_under_any_name_is_compared_with_what_the_erp_has(sftp_workspace: Workspace) -> None:
    """Feeds are named in the configuration: ``[feeds.orders]`` judges ACTION codes as ``purchase_orders`` does."""
    ws = sftp_workspace
    ws.config.write_text(ws.config.read_text().replace("[feeds.purchase_orders]", "[feeds.orders]"))
    first_version(ws)
    v2 = [LINES[0], {**LINES[1], "price": "13.90"}, LINES[2]]

    idoc = send(ws, "OrderHeader_20261124_020000Z.csv", po_file([{"id": "4301", "version": "2"}], v2))

    assert idoc is not None and idoc.one("E1EDK01")["ACTION"] == "003"
    assert item_actions(idoc) == [("000001", "004"), ("000002", "002"), ("000003", "004")]
