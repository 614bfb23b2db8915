"""`batchsync run` end to end against a real OpenSSH sshd and a real SQLite ledger."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from batchsync.lock import RunLock
from tests.conftest import SAMPLE_A, SAMPLE_B, SAMPLE_C, SAMPLES, Workspace
from tests.idoc_reader import read_idocs


def manifests(ws: Workspace) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(ws.handoff.glob("*.manifest.json"))}


def sent_ids(ws: Workspace) -> list[tuple[str, int, str]]:
    return sorted((str(d["id"]), d["version"], d["decision"]) for m in manifests(ws).values() for d in m["documents"])


def writeback_rows(ws: Workspace) -> list[dict[str, str]]:
    rows = []
    for path in sorted(ws.incoming.glob("*.csv")):
        rows += list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    return rows


def test_full_run_over_sftp(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()

    result = ws.cli("run")

    assert result.exit_code == 1, result.output  # errored: some POs were rejected
    assert "7 PO(s) handed off, 2 rejected, 1 duplicate" in result.stdout
    # hand-off: one IDoc and one manifest per source file with something to send
    assert len(ws.handoff_files()) == 3
    assert sent_ids(ws) == [
        ("4201", 1, "new"),
        ("4202", 1, "new"),
        ("4202", 2, "change"),
        ("4203", 1, "new"),
        ("4204", 1, "new"),
        ("4205", 1, "new"),
        ("4208", 1, "new"),
    ]
    for name, manifest in manifests(ws).items():
        erp = ws.handoff / manifest["file"]
        assert name == manifest["file"] + ".manifest.json"
        assert manifest["bytes"] == erp.stat().st_size
        assert manifest["record_counts"]["documents"] == len(manifest["documents"])
    # remote: outgoing emptied into the archive, write-back uploaded whole
    assert ws.remote_names(ws.outgoing) == []
    assert ws.remote_names(ws.archive) == [SAMPLE_A, SAMPLE_B, SAMPLE_C]
    assert [p.suffix for p in ws.incoming.iterdir()] == [".csv"]
    rows = writeback_rows(ws)
    assert {r["Transmission Method Override"] for r in rows} == {"do_not_transmit"}
    status = {r["Order Header ID"]: r["ERP Integration Status"] for r in rows}
    assert sorted(status) == ["4201", "4202", "4203", "4204", "4205", "4206", "4207", "4208"]
    assert status["4206"].startswith('Rejected: PO line 1: price "12,50" is not a number')
    assert status["4207"] == (
        "Rejected: supplier SUP-1042 has no ERP vendor number (add it to mappings/xref/suppliers.csv)"
    )
    assert status["4208"].startswith("Sent to ERP ") and status["4208"].endswith(".sap_orders05.idoc")
    # ledger
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["errored"]
    assert [r["state"] for r in ws.rows("SELECT state FROM files ORDER BY name")] == ["processed"] * 3
    outcomes = ws.rows("SELECT po_id, version, outcome FROM po_versions ORDER BY id")
    assert [(r["po_id"], r["outcome"]) for r in outcomes] == [
        ("4201", "handed_off"),
        ("4202", "handed_off"),
        ("4203", "handed_off"),
        ("4204", "handed_off"),
        ("4202", "handed_off"),
        ("4205", "handed_off"),
        ("4206", "rejected"),
        ("4207", "rejected"),
        ("4201", "duplicate"),
        ("4208", "handed_off"),
    ]
    assert ws.rows("SELECT count(*) AS n FROM writeback_rows WHERE writeback_name IS NULL")[0]["n"] == 0


def test_revision_is_sent_as_ordchg(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    ws.cli("run")
    idoc = next(ws.handoff.glob(f"R*_{SAMPLE_B.removesuffix('.csv')}*.idoc")).read_text(encoding="utf-8")
    controls = [line for line in idoc.splitlines() if line.startswith("EDI_DC40")]
    # MESTYP at 100-129, ARCKEY at 435-504 (SAP's EDI_DC40)
    by_po = {line[434:504].split("-")[2]: line[99:129].strip() for line in controls}
    assert by_po == {"4202": "ORDCHG", "4205": "ORDERS"}
    e1edk01 = [line for line in idoc.splitlines() if line.startswith("E1EDK01")]
    # 4202 v2 against what the ERP has of v1 (samples/README.md): only items changed; 4205 is new
    assert [line[63:66] for line in e1edk01] == ["003", "000"]
    first = read_idocs(next(ws.handoff.glob(f"R*_{SAMPLE_B.removesuffix('.csv')}*.idoc")))[0]
    # line 1 unchanged, line 2 changed (20 x 42.50 -> 30 x 41.25), line 3 unchanged, line 4 added
    assert [item[0].values["ACTION"] for item in first.items()] == ["004", "002", "004", "001"]


def test_second_run_does_nothing(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    ws.cli("run")
    before = (ws.handoff_files(), ws.remote_names(ws.incoming))

    result = ws.cli("run")

    assert result.exit_code == 0, result.output
    assert "0 file(s) processed" in result.stdout
    assert (ws.handoff_files(), ws.remote_names(ws.incoming)) == before
    assert [r["status"] for r in ws.rows("SELECT status FROM runs ORDER BY id")] == ["errored", "successful"]


def test_older_version_after_newer_is_stale_and_same_version_is_duplicate(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    ws.cli("run")
    # file A again, with different bytes (a trailing blank line), so it is not a byte-duplicate
    ws.put("OrderHeader_20261123_050000Z.csv", (SAMPLES / SAMPLE_A).read_bytes() + b"\n")

    result = ws.cli("run")

    outcomes = {
        r["po_id"]: (r["outcome"], r["reason"])
        for r in ws.rows("SELECT po_id, outcome, reason FROM po_versions WHERE file_id = (SELECT max(id) FROM files)")
    }
    assert outcomes["4202"] == ("stale", "version 1 is older than version 2 already sent to the ERP")
    assert outcomes["4201"][0] == outcomes["4203"][0] == outcomes["4204"][0] == "duplicate"
    assert len(ws.handoff_files()) == 3  # nothing new handed off
    assert result.exit_code == 0, result.output  # stale and duplicate versions are expected, not errors


def test_rejected_po_stays_out_with_its_error_report(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put(SAMPLE_B)
    ws.cli("run")

    assert "4206" not in {str(d["id"]) for m in manifests(ws).values() for d in m["documents"]}
    idoc = ws.handoff / next(iter(manifests(ws).values()))["file"]
    assert "4206" not in idoc.read_text(encoding="utf-8")
    [report] = (ws.state / "reports").glob("*.errors.csv")
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    assert [(r["line"], r["record_type"], r["po_id"], r["column"], r["check"], r["value"]) for r in rows] == [
        ("16", "line", "4206", "price", "number", "12,50")
    ]
    [error] = ws.rows("SELECT * FROM integration_errors")
    assert (error["po_id"], error["line"], error["resolved_at"]) == ("4206", 16, None)


def test_unknown_host_key_is_refused_before_anything_moves(sftp_workspace: Workspace, tmp_path: Path) -> None:
    ws = sftp_workspace
    ws.put_samples()
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    ws.write_config(known_hosts=empty)

    result = ws.cli("run")

    assert result.exit_code == 2  # a person must check the key first
    assert "SHA256:" in result.stderr and "unknown" in result.stderr.lower()
    assert "Traceback" not in result.output
    assert empty.read_text() == ""  # nothing auto-added
    assert ws.remote_names(ws.outgoing) == [SAMPLE_A, SAMPLE_B, SAMPLE_C]
    assert ws.handoff_files() == []
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["failed"]


def test_same_bytes_under_a_new_name_is_a_duplicate_file(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put(SAMPLE_A)
    ws.cli("run")
    ws.put("orders241126020000_.csv", sample=SAMPLE_A)

    result = ws.cli("run")

    assert result.exit_code == 0, result.output
    row = ws.rows("SELECT state, duplicate_of, remote_done_at FROM files WHERE name = 'orders241126020000_.csv'")[0]
    assert row["state"] == "duplicate" and row["duplicate_of"] == 1 and row["remote_done_at"]
    assert ws.remote_names(ws.outgoing) == []
    assert len(ws.handoff_files()) == 1


def test_after_download_keep_leaves_files_and_fetches_them_once(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.write_config(after_download="keep")
    ws.put_samples()
    ws.cli("run")

    result = ws.cli("run")

    assert ws.remote_names(ws.outgoing) == [SAMPLE_A, SAMPLE_B, SAMPLE_C]
    assert "0 file(s) processed" in result.stdout
    assert ws.rows("SELECT count(*) AS n FROM files")[0]["n"] == 3


def test_after_download_delete_removes_remote_files(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.write_config(after_download="delete")
    ws.put_samples()

    ws.cli("run")

    assert ws.remote_names(ws.outgoing) == []
    assert not ws.archive.exists()
    assert len(list((ws.state / "archive").rglob("*"))) >= 3  # the raw bytes are kept locally


def test_a_second_run_while_one_holds_the_lock_exits_4(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    with RunLock(ws.state, "2026-11-24T02:00:00+00:00"):
        result = ws.cli("run")
    assert result.exit_code == 4
    assert "another run holds the lock" in result.stderr and "started 2026-11-24T02:00:00+00:00" in result.stderr
    assert ws.remote_names(ws.outgoing) == [SAMPLE_A, SAMPLE_B, SAMPLE_C]


def test_mapping_error_is_reported_before_any_download(sftp_workspace: Workspace, tmp_path: Path) -> None:
    ws = sftp_workspace
    ws.put_samples()
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    shipped = (Path(__file__).resolve().parent.parent / "mappings" / "sap_orders05.yaml").read_text()
    (mappings / "sap_orders05.yaml").write_text(shipped.replace("source: supplier-name", "source: supplier-nmae"))
    (mappings / "xref").mkdir()
    (mappings / "xref" / "suppliers.csv").write_text("coupa_supplier_number,sap_vendor_number\n")
    ws.write_config(local_extra=f'mappings_dir = "{mappings}"')

    result = ws.cli("run")

    assert result.exit_code == 2
    assert str(mappings / "sap_orders05.yaml") in result.stderr
    assert "(E1EDKA1.NAME1).source: 'supplier-nmae' is not a column of header records" in result.stderr
    assert ws.remote_names(ws.outgoing) == [SAMPLE_A, SAMPLE_B, SAMPLE_C]
    # the mappings are compiled once there is something to fetch, so the run had started: it is recorded
    # as failed, with the reason, and nothing was fetched
    [run] = ws.rows("SELECT status, message FROM runs")
    assert run["status"] == "failed" and "supplier-nmae" in run["message"]
    assert ws.rows("SELECT * FROM files") == []


def test_check_reports_folders(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    result = ws.cli("check")
    assert result.exit_code == 0, result.output
    assert "host key known" in result.stdout and "all folders present and writable" in result.stdout

    ws.incoming.rmdir()
    result = ws.cli("check")
    assert result.exit_code == 2
    assert str(ws.incoming) in result.stderr
