"""Commands through click's CliRunner: demo, --json, errors as one line plus hint."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchsync.cli import cli
from tests.conftest import Workspace


def test_demo_runs_the_full_job_and_a_second_run_does_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", str(folder)])

    assert result.exit_code == 0, result.output
    assert "7 PO(s) handed off, 2 rejected, 1 duplicate" in result.stdout
    assert "1 change request(s) accepted, 2 rejected, 0 duplicate, 0 stale, 0 skipped, 2 waiting" in result.stdout
    assert len(list((folder / "handoff").glob("*.idoc.manifest.json"))) == 4  # 3 PO files, 1 change file
    assert len(list((folder / "remote" / "Incoming" / "PurchaseOrderChanges").glob("*.csv"))) == 1
    assert list((folder / "remote" / "Outgoing" / "PurchaseOrders").glob("*.csv")) == []

    again = CliRunner().invoke(cli, ["--config", str(folder / "batchsync.toml"), "run", "--json"])
    # nothing new: no PO file is read again; the change file is judged again for its 2 waiting changes
    assert again.exit_code == 0  # waiting is Coupa's normal state
    summary = json.loads(again.stdout)
    assert summary["status"] == "successful"
    assert summary["feeds"][0]["files_processed"] == 0 and summary["feeds"][0]["files_fetched"] == 0
    changes = summary["feeds"][1]
    assert changes["files_fetched"] == 0 and changes["counts"]["waiting"] == 2
    assert changes["handoff_files"] == [] and summary["writeback_files"] == []
    conn = sqlite3.connect(folder / "var" / "ledger.db")
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (2,)
    # the JSON carries the run's start and end, as the ledger has them
    started, finished = conn.execute("SELECT started_at, finished_at FROM runs WHERE id = 2").fetchone()
    assert (summary["started_at"], summary["finished_at"]) == (started, finished) and started <= finished


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["demo", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not a batchsync demo workspace" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_missing_config_is_a_usage_error_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BATCHSYNC_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "batchsync: error: config file batchsync.toml not found",
        "hint: pass --config PATH, set BATCHSYNC_CONFIG, or run where batchsync.toml is; "
        "`batchsync init DIR` writes a commented one (DIR/batchsync.toml) to start from",
    ]


def test_run_json_summary_over_sftp(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    result = ws.cli("run", "--json")
    summary = json.loads(result.stdout)
    assert summary["exit_code"] == result.exit_code == 1
    assert summary["status"] == "errored"
    feed = summary["feeds"][0]
    assert feed["counts"]["handed_off"] == 7 and feed["counts"]["rejected"] == 2
    assert len(feed["handoff_files"]) == 3 and len(summary["writeback_files"]) == 1


def test_password_from_environment_is_used_and_never_shown(
    sftp_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = sftp_workspace
    secret = "s3cret-Pa55-do-not-print"
    text = ws.config.read_text().replace(f'key_file = "{ws.server.client_key}"\n', "")  # type: ignore[union-attr]
    ws.config.write_text(text)
    monkeypatch.setenv("BATCHSYNC_SFTP_PASSWORD", secret)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    ws.put_samples()

    result = CliRunner().invoke(cli, ["--config", str(ws.config), "--log-level", "debug", "run"])

    assert result.exit_code == 2  # the test server takes keys only: the password is offered and refused
    assert "authentication" in result.stderr.lower()
    assert secret not in result.output
    dump = "\n".join(str(row) for row in ws.rows("SELECT * FROM runs"))
    assert secret not in dump
