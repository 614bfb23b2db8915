"""A new PO version against what the ERP has (erp_state.py): ACTION codes by SAP's ORDERS05 definition.

Each test runs the whole job on a real sshd with a real ledger, then reads the IDoc back with SAP's
segment definition (tests/idoc_reader.py), not with batchsync's writer.
"""

from __future__ import annotations

import csv
import io
import json
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


def writeback_texts(ws: Workspace, field: str = "ERP Integration Status") -> list[str]:
    texts = []
    for path in sorted(ws.incoming.glob("*.csv")):
        texts += [r[field] for r in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))) if r.get(field)]
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


def test_a_closed_po_keeps_its_items_with_a_reason_for_rejection(sftp_workspace: Workspace) -> None:
    """SAP's form for an item that stays but expects nothing more: E1EDP01-ABGRU, the reason for rejection
    ("no further delivery of items", SAP's documentation of the data element ORDER_REJECTION)."""
    ws = sftp_workspace
    first_version(ws)

    closed = po_file([{"id": "4301", "version": "2", "status": "closed"}], LINES)
    idoc = send(ws, "OrderHeader_20261124_020000Z.csv", closed)

    assert idoc is not None and idoc.control["MESTYP"] == "ORDCHG"
    assert idoc.one("E1EDK01")["ACTION"] == "003"
    items = [item[0].values for item in idoc.items()]
    assert [(i["ACTION"], i["ABGRU"], i["ABGRT"]) for i in items] == [("002", "00", "Closed in Coupa")] * 3
    assert [i["MENGE"] for i in items] == ["2.000", "5.000", "40.000"]  # the items as they are, nothing cut
    manifest = json.loads(next(ws.handoff.glob("R*_OrderHeader_20261124_020000Z.*.manifest.json")).read_text())
    assert manifest["documents"][0]["decision"] == "close"
    # an open PO's items carry no reason for rejection
    [first] = read_idocs(next(ws.handoff.glob("R*_OrderHeader_20261124_010000Z.*.idoc")))
    assert {item[0].values["ABGRU"] for item in first.items()} == {""}


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


SAME_HEADER = {
    "supplier-number": "SUP-1001",
    "supplier-name": "Müller Industriebedarf GmbH",
    "payment-term-code": "Net 30",
}


def change_of_4301(change_id: str, lines: list[dict[str, str]], **header: str) -> bytes:
    """An approved change request of PO 4301 listing ``lines`` (PO line fields by the change export's names)."""
    listed = [
        {
            "order-header-change-id": change_id,
            "line-num": str(n),
            "order-line-id": line["id"],
            "description": line["description"],
            "price": line["price"],
            "quantity": line["quantity"],
            "total": f"{float(line['price']) * float(line['quantity']):.2f}",
            "currency": "EUR",
            "uom": "EA",
            "need-by-date": "2026-12-04T00:00:00+01:00",
        }
        for n, line in lines
    ]
    approvals = [{"order-header-change-id": change_id, "position": "1", "status": "approved"}]
    return change_file([{"id": change_id, "order-header-id": "4301", **SAME_HEADER, **header}], listed, approvals)


def sent_change(ws: Workspace, name: str, data: bytes) -> Idoc | None:
    ws.put_change(name, data)
    assert ws.cli("run").exit_code == 0
    found = sorted(ws.handoff.glob(f"R*_{name.removesuffix('.csv')}.*.idoc"))
    return read_idocs(found[0])[0] if found else None


def test_a_change_request_is_compared_with_what_the_erp_has_and_the_next_version_with_both(
    sftp_workspace: Workspace,
) -> None:
    ws = sftp_workspace
    first_version(ws)
    more = {**LINES[1], "quantity": "6"}
    # the change lists line 1 as the ERP has it and line 2 with a new quantity; its header is the PO's
    idoc = sent_change(ws, "OrderHeaderChange_20261124_020000Z.csv", change_of_4301("9201", [(1, LINES[0]), (2, more)]))

    assert idoc is not None and idoc.control["MESTYP"] == "ORDCHG"
    assert idoc.one("E1EDK01")["ACTION"] == "003"  # items changed, the header did not
    assert item_actions(idoc) == [("000001", "004"), ("000002", "002")]
    # approving it makes Coupa export version 2: the ERP has it already (version 1 plus change 9201)
    v2 = po_file([{"id": "4301", "version": "2"}], [LINES[0], more, LINES[2]])
    assert send(ws, "OrderHeader_20261124_030000Z.csv", v2) is None
    [row] = ws.rows("SELECT outcome FROM po_versions WHERE po_id = '4301' AND version = 2")
    assert row == {"outcome": "unchanged"}
    # and version 3 is compared with that: only line 3's price is news
    v3 = po_file([{"id": "4301", "version": "3"}], [LINES[0], more, {**LINES[2], "price": "9.10"}])
    idoc = send(ws, "OrderHeader_20261124_040000Z.csv", v3)
    assert idoc is not None and item_actions(idoc) == [("000001", "004"), ("000002", "004"), ("000003", "002")]


def test_a_change_of_the_header_alone_is_002_and_a_change_with_nothing_new_is_not_sent(
    sftp_workspace: Workspace,
) -> None:
    ws = sftp_workspace
    first_version(ws)
    terms = change_of_4301("9211", [(1, LINES[0])], **{"payment-term-code": "Net 45"})
    idoc = sent_change(ws, "OrderHeaderChange_20261124_020000Z.csv", terms)
    assert idoc is not None and idoc.one("E1EDK01")["ACTION"] == "002" and idoc.one("E1EDK01")["ZTERM"] == "Net 45"
    assert item_actions(idoc) == [("000001", "004")]

    same = change_of_4301("9212", [(2, LINES[1])], **{"payment-term-code": "Net 45"})  # what the ERP has now
    assert sent_change(ws, "OrderHeaderChange_20261124_030000Z.csv", same) is None
    [row] = ws.rows("SELECT status, reason, handoff_name FROM change_requests WHERE id = '9212'")
    assert row == {
        "status": "accepted",
        "reason": "nothing the ERP receives differs from what it has of version 1",
        "handoff_name": None,
    }
    told = [t for t in writeback_texts(ws, "ERP Change Validation") if "9212" in t]
    assert len(told) == 1 and told[0].startswith("Unchanged for ERP ") and "change 9212: nothing" in told[0]


def test_a_change_on_a_version_known_by_its_hash_alone_leaves_nothing_to_compare_with() -> None:
    """A version handed off by a release that kept hashes but not values cannot have a change overlaid:
    after the change the ERP's copy is unknown, so the next version counts as changed everywhere."""
    from batchsync.erp_state import apply_changes, digest, fingerprint_text

    heads = [{"id": "1", "_erp_version": 1, "_erp_hash": "h", "_erp_values": None}]
    values = '{"E1EDP01.MENGE":"2.000","E1EDPT2":"Kabelbinder"}'
    lines = [
        {"_erp_po": "1", "_erp_line": "1", "_erp_hash": "l1", "_erp_source": "{}", "_erp_values": None},
        {"_erp_po": "1", "_erp_line": "2", "_erp_hash": "l2", "_erp_source": "{}", "_erp_values": values},
        {"_erp_po": "1", "_erp_line": "3", "_erp_hash": "l3", "_erp_source": "{}", "_erp_values": values},
    ]
    changes = [{"change_id": "9", "po_id": "1", "mapped_values": '{"E1EDK01.ZTERM":"Net 45"}'}]
    change_lines = [
        {"change_id": "9", "line_number": "1", "line_change": "changed", "mapped_values": '{"E1EDP01.MENGE":"3.000"}'},
        {"change_id": "9", "line_number": "2", "line_change": "changed", "mapped_values": '{"E1EDP01.MENGE":"3.000"}'},
        {"change_id": "9", "line_number": "3", "line_change": "cancelled", "mapped_values": "{}"},
        {"change_id": "9", "line_number": "4", "line_change": "added", "mapped_values": '{"E1EDP01.MENGE":"1.000"}'},
    ]
    [head], merged = apply_changes(heads, lines, changes, change_lines)
    by_line = {row["_erp_line"]: row for row in merged}

    assert head["_erp_hash"] is None  # known by hash alone, then changed: unknown
    assert by_line["1"]["_erp_hash"] is None
    assert by_line["2"]["_erp_values"] == '{"E1EDP01.MENGE":"3.000","E1EDPT2":"Kabelbinder"}'
    assert by_line["2"]["_erp_hash"] == digest("E1EDP01.MENGE=3.000\x1fKabelbinder")
    assert "3" not in by_line  # cancelled by the change
    assert by_line["4"]["_erp_hash"] == digest(fingerprint_text({"E1EDP01.MENGE": "1.000"}))
    assert by_line["4"]["_erp_source"] is None
