"""The Order Header Change feed end to end over the real sshd: every rule with its outcome
in the hand-off, the write-back and the ledger."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batchsync import pipeline
from batchsync.config import load_config
from tests.change_files import change_file
from tests.conftest import CHANGE_SAMPLE, Workspace
from tests.coupa_files import po_file
from tests.idoc_reader import read_idocs


def changes(ws: Workspace) -> dict[str, tuple[str, str | None]]:
    return {r["id"]: (r["status"], r["reason"]) for r in ws.rows("SELECT id, status, reason FROM change_requests")}


def change_validation(ws: Workspace) -> dict[str, list[str]]:
    """Order Header ID -> every ERP Change Validation text written back, across all write-back files."""
    found: dict[str, list[str]] = {}
    for path in sorted(ws.incoming.glob("*.csv")):
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
            if row["ERP Change Validation"]:
                found.setdefault(row["Order Header ID"], []).append(row["ERP Change Validation"])
    return found


def ordchg_manifests(ws: Workspace) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(ws.handoff.glob("R*_OrderHeaderChange_*.manifest.json"))]


def run_samples(ws: Workspace) -> None:
    ws.put_samples()
    ws.put_change(CHANGE_SAMPLE)
    result = ws.cli("run")
    assert result.exit_code == 1, result.output  # rejected and waiting changes


def test_each_rule_has_its_outcome_in_handoff_writeback_and_ledger(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    run_samples(ws)

    assert changes(ws) == {
        "9001": ("accepted", None),
        "9002": ("waiting", "waiting for PO 4209 to be handed off to the ERP"),
        "9003": ("waiting", "awaiting approval by cfo.approver"),
        "9004": ("rejected", "line 1: quantity 2 is below the 3.0 already received"),
        "9005": ("rejected", "rejected by approver dmiller: No budget for expedite fees"),
    }
    [manifest] = ordchg_manifests(ws)
    assert manifest["documents"] == [{"id": "9001", "po_id": "4201", "version": 1, "decision": "change"}]
    [idoc] = read_idocs(ws.handoff / manifest["file"])  # cut where SAP's ORDERS05 definition says
    assert idoc.control["MESTYP"] == "ORDCHG" and idoc.control["ARCKEY"] == "COUPA-PO-4201-CHG-9001"
    # the change's header (currency, terms, supplier) is what the ERP has of PO 4201: items changed only
    assert idoc.one("E1EDK01")["BELNR"] == "4201" and idoc.one("E1EDK01")["ACTION"] == "003"
    # pending-delete = true -> 003, changed line -> 002, line without an order line -> 001
    assert [item[0].values["ACTION"] for item in idoc.items()] == ["003", "002", "001"]
    texts = change_validation(ws)
    assert texts["4201"][0].startswith("Accepted by ERP validation ") and manifest["file"] in texts["4201"][0]
    assert texts["4202"] == ["Rejected: change 9004: line 1: quantity 2 is below the 3.0 already received"]
    assert texts["4208"] == ["Rejected: change 9005: rejected by approver dmiller: No budget for expedite fees"]
    assert "4209" not in texts and "4205" not in texts  # waiting changes are not written back
    [writeback] = list(ws.incoming.glob("*.csv"))  # one file holds both feeds' rows
    assert "Sent to ERP" in writeback.read_text(encoding="utf-8")
    [file] = ws.rows("SELECT state FROM files WHERE feed = 'order_header_changes'")
    assert file["state"] == "waiting"
    assert ws.remote_names(ws.changes) == []


def test_waiting_change_resolves_once_its_po_arrives_without_a_new_download(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    run_samples(ws)
    po_4209 = po_file(
        [{"id": "4209", "supplier-number": "SUP-1007", "accounting-total-currency": "USD"}],
        [{"id": "88190", "price": "21.50", "quantity": "40", "currency": "USD"}],
    )
    ws.put("OrderHeader_20261124_010000Z.csv", po_4209)

    result = ws.cli("run")

    assert changes(ws)["9002"] == ("accepted", None)
    assert changes(ws)["9003"][0] == "waiting"
    assert "1 change request(s) accepted" in result.stdout
    fetched = ws.rows("SELECT count(*) AS n FROM files WHERE feed = 'order_header_changes'")[0]["n"]
    assert fetched == 1  # judged again from the local archive, not downloaded again
    manifests = ordchg_manifests(ws)
    assert [[d["id"] for d in m["documents"]] for m in manifests] == [["9001"], ["9002"]]
    assert ".pass2." in manifests[1]["file"]
    texts = change_validation(ws)
    assert texts["4209"][0].startswith("Accepted by ERP validation")
    assert len(texts["4201"]) == 1  # the change accepted in the first run is not written back again


def test_age_limit_turns_a_wait_into_a_rejection(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    run_samples(ws)
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=8)

    summary = pipeline.run(load_config(ws.config), clock=lambda: later)

    assert changes(ws)["9002"] == ("rejected", "PO 4209 was not handed off to the ERP within 7 days")
    assert changes(ws)["9003"][0] == "waiting"  # an approval has no age limit: Coupa will export it again
    assert change_validation(ws)["4209"] == [
        "Rejected: change 9002: PO 4209 was not handed off to the ERP within 7 days"
    ]
    assert summary.status == "errored"


def test_a_newer_change_for_the_same_po_supersedes_a_waiting_older_one(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    run_samples(ws)
    newer = change_file(
        [{"id": "9006", "order-header-id": "4205", "supplier-number": "SUP-1005"}],
        [
            {
                "order-header-change-id": "9006",
                "order-line-id": "88141",
                "line-num": "2",
                "quantity": "6",
                "price": "64.90",
                "total": "389.40",
                "currency": "EUR",
                "uom": "EA",
                "description": "Gewindebohrer-Satz",
            }
        ],
        [{"order-header-change-id": "9006", "position": "1", "status": "approved", "approver-login": "jweber"}],
    )
    ws.put_change("OrderHeaderChange_20261124_010000Z.csv", newer)

    ws.cli("run")

    assert changes(ws)["9003"] == ("superseded", "superseded by change request 9006")
    assert changes(ws)["9006"] == ("accepted", None)
    [waiting] = ws.rows("SELECT id FROM change_requests WHERE status = 'waiting'")
    assert waiting["id"] == "9002"


def test_a_change_in_another_currency_is_rejected(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    run_samples(ws)
    usd = change_file(
        [{"id": "9007", "order-header-id": "4201", "currency": "USD"}],
        [
            {
                "order-header-change-id": "9007",
                "order-line-id": "88102",
                "line-num": "2",
                "quantity": "30",
                "price": "6.40",
                "currency": "USD",
                "description": "Kabelbinder",
            }
        ],
    )
    ws.put_change("OrderHeaderChange_20261124_020000Z.csv", usd)

    ws.cli("run")

    assert changes(ws)["9007"] == ("rejected", "currency USD differs from the PO's currency EUR")
    assert "Rejected: change 9007: currency USD differs from the PO's currency EUR" in change_validation(ws)["4201"]


def test_status_lists_waiting_changes_with_age_and_reason(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    run_samples(ws)

    text = ws.cli("status")
    as_json = json.loads(ws.cli("status", "--json").stdout)

    assert "waiting change 9002 for PO 4209, 0 d 0 h: waiting for PO 4209 to be handed off to the ERP" in text.stdout
    assert "waiting change 9003 for PO 4205" in text.stdout
    waiting = {c["id"]: c for c in as_json["waiting_changes"]}
    assert set(waiting) == {"9002", "9003"} and all(c["age_seconds"] >= 0 for c in waiting.values())


def test_a_change_file_rejected_whole_is_kept_and_reported(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_change("OrderHeaderChange_20261124_030000Z.csv", b'"Header","9008"\x00\n')
    result = ws.cli("run")
    assert result.exit_code == 1
    [file] = ws.rows("SELECT state, reason FROM files WHERE feed = 'order_header_changes'")
    assert file["state"] == "rejected" and "NUL" in file["reason"]


def test_a_run_whose_only_news_is_changes_still_waiting_is_successful(sftp_workspace: Workspace) -> None:
    """Waiting for an approver, or for the PO within wait_days, is Coupa's normal state: exit 0, no page."""
    ws = sftp_workspace
    run_samples(ws)  # exit 1: the samples hold rejected POs and changes

    result = ws.cli("run")

    assert result.exit_code == 0, result.output
    assert "2 waiting" in result.stdout
    assert [r["status"] for r in ws.rows("SELECT status FROM runs ORDER BY id")] == ["errored", "successful"]
    assert "last successful run: 2 " in ws.cli("status").stdout


def test_rejected_change_requests_are_integration_errors_until_a_later_change_is_accepted(
    sftp_workspace: Workspace,
) -> None:
    ws = sftp_workspace
    run_samples(ws)

    rows = json.loads(ws.cli("errors", "--json").stdout)
    changes_rejected = sorted((r["po_id"], r["value"], r["message"]) for r in rows if r["check"] == "change_rule")
    assert changes_rejected == [
        ("4202", "9004", "change 9004: line 1: quantity 2 is below the 3.0 already received"),
        ("4208", "9005", "change 9005: rejected by approver dmiller: No budget for expedite fees"),
    ]
    assert all(r["file"] == CHANGE_SAMPLE and r["line"] for r in rows if r["check"] == "change_rule")
    [report] = ws.rows("SELECT error_report FROM files WHERE feed = 'order_header_changes'")
    assert "change 9004: line 1: quantity 2" in Path(report["error_report"]).read_text(encoding="utf-8")

    later = change_file(
        [{"id": "9010", "order-header-id": "4202", "supplier-number": "SUP-1003", "currency": "USD"}],
        [
            {
                "order-header-change-id": "9010",
                "order-line-id": "88111",
                "line-num": "2",
                "quantity": "35",
                "price": "41.25",
                "total": "1443.75",
                "currency": "USD",
                "uom": "CS",
                "description": "Copy paper, letter",
            }
        ],
        [{"order-header-change-id": "9010", "position": "1", "status": "approved", "approver-login": "dmiller"}],
    )
    ws.put_change("OrderHeaderChange_20261124_010000Z.csv", later)
    ws.cli("run")

    assert changes(ws)["9010"] == ("accepted", None)
    open_ones = json.loads(ws.cli("errors", "--unresolved", "--json").stdout)
    assert [r["value"] for r in open_ones if r["check"] == "change_rule"] == ["9005"]  # 4202's is resolved
