"""`batchsync reprocess`, `--dry-run` and JSON logs, against the real sshd and ledger."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_C, Workspace

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


@pytest.fixture
def ws(sftp_workspace: Workspace, tmp_path: Path) -> Workspace:
    """A workspace with its own copy of the mappings, so a test can fix an xref entry."""
    shutil.copytree(MAPPINGS, tmp_path / "mappings")
    sftp_workspace.write_config(local_extra=f'mappings_dir = "{tmp_path / "mappings"}"')
    sftp_workspace.put_samples()
    assert sftp_workspace.cli("run").exit_code == 1  # 4203, 4206, 4207 rejected
    return sftp_workspace


def add_supplier(ws: Workspace) -> None:
    xref = ws.config.parent.parent / "mappings" / "xref" / "suppliers.csv"
    xref.write_text(xref.read_text() + "SUP-1042,0000109999\n")


def status_texts(ws: Workspace, po: str) -> list[str]:
    texts = []
    for path in sorted(ws.incoming.glob("*.csv")):
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
            if row["Order Header ID"] == po and row["ERP Integration Status"]:
                texts.append(row["ERP Integration Status"])
    return texts


def tree_digest(*folders: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        if folder.exists()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_reprocess_one_po_after_fixing_the_xref(ws: Workspace) -> None:
    add_supplier(ws)
    result = ws.cli("reprocess", "--po", "4207")

    assert result.exit_code == 0, result.output
    [manifest_path] = ws.handoff.glob("*.reprocess1.idoc.manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["reprocessed"] is True
    assert [d["id"] for d in manifest["documents"]] == ["4207"]  # only the PO asked for
    assert "0000109999" in (ws.handoff / manifest["file"]).read_text(encoding="utf-8")
    texts = status_texts(ws, "4207")
    assert texts[0].startswith("Rejected:") and texts[1].startswith("Sent to ERP") and len(texts) == 2
    assert ws.rows("SELECT trigger FROM runs ORDER BY id DESC LIMIT 1")[0]["trigger"] == "reprocess"
    assert all(e["resolved_at"] for e in ws.rows("SELECT resolved_at FROM integration_errors WHERE po_id = '4207'"))
    assert ws.rows("SELECT count(*) AS n FROM files")[0]["n"] == 3  # nothing downloaded again


def test_reprocess_a_file_skips_versions_already_sent_unless_forced(ws: Workspace) -> None:
    add_supplier(ws)
    ws.cli("reprocess", "--file", SAMPLE_C)
    first = json.loads(next(ws.handoff.glob("*040000Z*.reprocess1.idoc.manifest.json")).read_text())
    # 4201 is a duplicate (sent from file A), 4208 was sent from this file: only 4207 goes
    assert [d["id"] for d in first["documents"]] == ["4207"]

    forced = ws.cli("reprocess", "--file", SAMPLE_C, "--force")

    assert forced.exit_code == 0, forced.output
    second = json.loads(next(ws.handoff.glob("*040000Z*.reprocess2.idoc.manifest.json")).read_text())
    assert sorted((d["id"], d["decision"]) for d in second["documents"]) == [
        ("4201", "change"),
        ("4207", "change"),
        ("4208", "change"),
    ]


def test_reprocess_a_run_replays_every_file_it_processed(ws: Workspace) -> None:
    add_supplier(ws)
    result = ws.cli("reprocess", "--run", "1", "--json")
    summary = json.loads(result.stdout)
    po_feed = summary["feeds"][0]
    assert po_feed["files_processed"] == 3 and po_feed["counts"]["handed_off"] == 1  # 4207 now maps
    assert summary["writeback_files"]


def test_reprocess_needs_exactly_one_selector_and_something_to_replay(ws: Workspace) -> None:
    assert ws.cli("reprocess").exit_code == 2
    assert ws.cli("reprocess", "--po", "1", "--run", "1").exit_code == 2
    runs_before = ws.rows("SELECT count(*) AS n FROM runs")[0]["n"]
    missing = ws.cli("reprocess", "--po", "999999")
    assert missing.exit_code == 2
    assert missing.stderr.splitlines() == [
        "batchsync: error: nothing to reprocess: no archived file for PO 999999 in the ledger",
        "hint: `batchsync history` and `batchsync errors` show the files, runs and POs the ledger has",
    ]
    assert ws.rows("SELECT count(*) AS n FROM runs")[0]["n"] == runs_before  # no failed run recorded


def test_dry_run_changes_nothing_and_says_what_it_would_do(ws: Workspace) -> None:
    ws.put("OrderHeader_20261124_020000Z.csv", (ws.archive / SAMPLE_C).read_bytes() + b"\n")
    ws.put_change("OrderHeaderChange_20261124_020000Z.csv", b"")
    before = tree_digest(ws.remote_base, ws.handoff, ws.state)

    result = ws.cli("run", "--dry-run")

    assert tree_digest(ws.remote_base, ws.handoff, ws.state) == before
    assert "dry run: nothing was changed" in result.stdout
    assert "would move" in result.stdout and "OrderHeader_20261124_020000Z.csv" in result.stdout
    assert "would upload PurchaseOrderChange_" in result.stdout
    assert ws.rows("SELECT count(*) AS n FROM runs")[0]["n"] == 1
    # the conditional throughout: nothing was done
    lines = result.stdout.splitlines()
    assert lines[0].startswith("purchase_orders: 1 file(s) would be processed, 0 rejected, 0 duplicate; 0 PO(s) would")
    assert lines[2].startswith("write-back: 1 file(s) would be uploaded; the run would end ")
    assert " handed off," not in lines[0].replace("would be handed off", "") and "run 2" not in result.stdout


def test_a_dry_replay_with_nothing_to_hand_off_says_so(ws: Workspace) -> None:
    result = ws.cli("reprocess", "--po", "4201", "--dry-run")  # the ERP has every version of it

    assert result.exit_code == 0, result.output
    assert f"dry run: nothing was changed; would hand off nothing to {ws.handoff}" in result.stdout
    assert "would hand off to" not in result.stdout


def test_reprocess_dry_run_changes_nothing(ws: Workspace) -> None:
    add_supplier(ws)
    before = tree_digest(ws.remote_base, ws.handoff, ws.state)
    result = ws.cli("reprocess", "--po", "4207", "--dry-run")
    assert result.exit_code == 0
    assert tree_digest(ws.remote_base, ws.handoff, ws.state) == before
    assert ".reprocess1.idoc" in result.stdout


def test_json_log_lines_parse_and_carry_run_feed_file_stage(ws: Workspace) -> None:
    ws.put("OrderHeader_20261124_030000Z.csv", (ws.archive / SAMPLE_C).read_bytes() + b"\n\n")
    result = ws.cli("--log-format", "json", "--log-level", "info", "run")
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines, result.stderr
    assert all({"time", "level", "stage", "message"} <= set(line) for line in lines)
    processed = [line for line in lines if line["stage"] == "process"]
    assert processed and processed[0]["run_id"] == 2 and processed[0]["feed"] == "purchase_orders"
    assert processed[0]["file"] == "OrderHeader_20261124_030000Z.csv"
