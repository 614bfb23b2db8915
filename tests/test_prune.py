"""``[retention]`` and ``batchsync prune``: what goes, what stays and why, against the real sshd and ledger.

Time passes by handing ``plan_prune`` a later ``now``, or, for the command, by moving the ledger's
timestamps back with SQL: nothing sleeps.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from batchsync.cli_prune import human_size
from batchsync.clock import utcnow
from batchsync.config import RetentionConfig, load_config
from batchsync.errors import NothingSelected
from batchsync.ledger import Ledger
from batchsync.lock import RunLock
from batchsync.prune import PrunePlan, apply_prune, plan_prune, replayable, state_folder_size
from tests.change_files import change_file
from tests.conftest import Workspace
from tests.coupa_files import po_file

# run 1: A hands off 4301 and 4302, B and C each reject one PO (a decimal comma), W's change waits for PO 4309
A = "OrderHeader_20261101_020000Z.csv"
B = "OrderHeader_20261101_030000Z.csv"
C = "OrderHeader_20261101_040000Z.csv"
W = "OrderHeaderChange_20261101_050000Z.csv"
# run 2: D brings 4301 and 4302 version 2 and the corrected 4303, resolving B's error; C's stays unresolved
D = "OrderHeader_20261102_020000Z.csv"
OLD = "2025-01-01T02:00:00+00:00"


def _po(*pos: tuple[str, int, str]) -> bytes:
    """One line per PO: (id, version, price)."""
    headers = [{"id": po, "version": str(version)} for po, version, _ in pos]
    return po_file(headers, [{"order-header-id": po, "price": price, "quantity": "2"} for po, _, price in pos])


def build(ws: Workspace) -> None:
    ws.put(A, _po(("4301", 1, "10.00"), ("4302", 1, "20.00")))
    ws.put(B, _po(("4303", 1, "12,50")))
    ws.put(C, _po(("4304", 1, "7,25")))
    ws.put_change(W, change_file([{"id": "9101", "order-header-id": "4309"}]))
    assert ws.cli("run").exit_code == 1  # 4303 and 4304 rejected
    ws.put(D, _po(("4301", 2, "11.00"), ("4302", 2, "21.00"), ("4303", 2, "12.50")))
    assert ws.cli("run").exit_code == 0


@pytest.fixture
def ws(sftp_workspace: Workspace) -> Workspace:
    build(sftp_workspace)
    return sftp_workspace


def plan_at(ws: Workspace, days_later: float) -> PrunePlan:
    config = load_config(ws.config)
    ledger = Ledger(ws.state / "ledger.db")
    try:
        return plan_prune(config, ledger, utcnow() + timedelta(days=days_later))
    finally:
        ledger.close()


def archive(ws: Workspace, name: str) -> Path:
    [row] = ws.rows("SELECT archive_path FROM files WHERE name = ?", (name,))
    return Path(row["archive_path"])


def report(ws: Workspace, name: str) -> Path:
    [row] = ws.rows("SELECT error_report FROM files WHERE name = ?", (name,))
    return Path(row["error_report"])


def writebacks(ws: Workspace) -> list[Path]:
    return [Path(r["local_path"]) for r in ws.rows("SELECT local_path FROM writebacks ORDER BY name")]


def said(plan: PrunePlan, kept: bool) -> dict[Path | str, str]:
    """Path (or "run N", "runs") -> "what: reason" of the plan's items."""
    items = plan.kept if kept else plan.remove
    return {i.path or (f"run {i.run_id}" if i.run_id else i.kind): f"{i.what}: {i.reason}" for i in items}


def age_everything(ws: Workspace) -> None:
    """The ledger's clock moved back, as if every run, file and upload were two years old."""
    for sql in (
        f"UPDATE files SET fetched_at = '{OLD}', processed_at = '{OLD}'",
        f"UPDATE writebacks SET created_at = '{OLD}', uploaded_at = CASE WHEN uploaded_at IS NULL THEN NULL "
        f"ELSE '{OLD}' END",
        f"UPDATE runs SET started_at = '{OLD}'",
    ):
        execute(ws, sql)


def execute(ws: Workspace, sql: str, params: tuple[object, ...] = ()) -> None:
    import sqlite3

    conn = sqlite3.connect(ws.state / "ledger.db")
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


def digest(*folders: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "batchsync.lock"
    }


# what goes and what stays ----------------------------------------------
def test_past_their_days_settled_copies_go_and_what_is_still_needed_stays(ws: Workspace) -> None:
    plan = plan_at(ws, 200)

    removed, kept = said(plan, kept=False), said(plan, kept=True)
    assert sorted(map(str, removed)) == sorted(
        map(str, [archive(ws, A), archive(ws, B), report(ws, B), *writebacks(ws)])
    )
    assert len(writebacks(ws)) == 2  # one per run, both uploaded
    assert removed[archive(ws, A)] == "archive copy of file 1 " + A + ": processed, 200 d old (archive_days = 90)"
    assert removed[report(ws, B)].endswith(": 200 d old, its errors resolved (error_report_days = 90)")
    # each kept copy says why
    assert kept[archive(ws, C)] == f"archive copy of file 3 {C}: 1 unresolved error(s) refer to it"
    assert kept[report(ws, C)] == f"error report of file 3 {C}: an unresolved error is in it"
    assert kept[archive(ws, W)] == (
        f"archive copy of file 4 {W}: change request 9101 still waits; "
        "waiting: its change requests are judged again from it on every run"
    )
    assert kept[archive(ws, D)] == (
        f"archive copy of file 5 {D}: it holds the latest version handed off of PO 4301 and 2 more "
        "(`reprocess --po` replays it)"
    )
    assert set(kept) == {archive(ws, C), report(ws, C), archive(ws, W), archive(ws, D)}  # runs: young
    assert plan.runs == []


def test_young_copies_are_not_even_listed_and_each_kind_has_its_own_days(ws: Workspace) -> None:
    assert plan_at(ws, 10).items == []
    month = plan_at(ws, 60)  # past writeback_days (30), within the 90 of archives and reports
    assert {i.kind for i in month.items} == {"writeback"} and not month.kept
    ws.config.write_text(ws.config.read_text() + "\n[retention]\narchive_days = 10\nwriteback_days = 0\n")
    short = plan_at(ws, 20)  # writeback_days = 0 is the default, 30
    assert {i.path for i in short.remove} == {archive(ws, A), archive(ws, B)}
    assert {i.path for i in short.kept} == {archive(ws, C), archive(ws, W), archive(ws, D)}


def test_a_shared_archive_copy_goes_only_when_every_file_sharing_it_may(ws: Workspace) -> None:
    ws.put("OrderHeader_20261103_020000Z.csv", ws.outgoing.joinpath("Archive", A).read_bytes())
    assert ws.cli("run").exit_code == 0
    [copy] = ws.rows("SELECT id, state, archive_path FROM files WHERE name = 'OrderHeader_20261103_020000Z.csv'")
    assert copy["state"] == "duplicate" and Path(copy["archive_path"]) == archive(ws, A)
    execute(ws, f"UPDATE files SET fetched_at = '{OLD}', processed_at = '{OLD}' WHERE id != ?", (copy["id"],))
    ledger = Ledger(ws.state / "ledger.db")
    try:
        config, now = load_config(ws.config), utcnow()
        assert archive(ws, A) not in {i.path for i in plan_prune(config, ledger, now).items}  # the copy is young
        plan = plan_prune(config, ledger, now + timedelta(days=100))
    finally:
        ledger.close()
    [item] = [i for i in plan.remove if i.path == archive(ws, A)]
    assert item.what == f"archive copy of file 1 {A}, file 6 OrderHeader_20261103_020000Z.csv"
    assert item.reason == "duplicate/processed, 100 d old (archive_days = 90)"


def test_a_write_back_not_yet_uploaded_is_kept_and_nothing_outside_the_state_folder_is_touched(
    ws: Workspace, tmp_path: Path
) -> None:
    first, second = writebacks(ws)
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("someone else's\n")
    execute(ws, "UPDATE writebacks SET uploaded_at = NULL WHERE local_path = ?", (str(first),))
    execute(ws, "UPDATE writebacks SET local_path = ? WHERE local_path = ?", (str(outside), str(second)))
    ledger_db = ws.state / "ledger.db"  # a row naming a state file that is no archive copy
    execute(ws, "UPDATE files SET archive_path = ? WHERE name = ?", (str(ledger_db), A))
    kept = said(plan_at(ws, 200), kept=True)
    assert kept[first] == f"write-back file {first.name}: not uploaded yet: the next run uploads it"
    outside_said = "where batchsync keeps these: prune never touches it"
    assert kept[outside] == f"write-back file {second.name}: outside {ws.state / 'writeback'}, {outside_said}"
    assert kept[ledger_db] == f"archive copy of file 1 {A}: outside {ws.state / 'archive'}, {outside_said}"
    age_everything(ws)
    assert ws.cli("prune").exit_code == 0
    assert first.exists() and outside.read_text() == "someone else's\n" and ledger_db.exists()


# the command ------------------------------------------------------------
def test_dry_run_removes_nothing_and_says_would(ws: Workspace) -> None:
    age_everything(ws)
    before = digest(ws.state, ws.handoff, ws.remote_base)
    runs = ws.rows("SELECT * FROM runs")

    result = ws.cli("prune", "--dry-run")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert f"would remove  {archive(ws, A)}  " in result.stdout
    assert sum(line.startswith("would remove  ") for line in lines) == 5  # A, B, B's report, two write-backs
    # C, C's report, W, D; run 2, the last successful run; run 1, which the ledger refers to
    assert sum(line.startswith("kept  ") for line in lines) == 6
    assert lines[-2].startswith("would prune 5 file(s), ") and lines[-2].endswith(
        "; 0 run(s) from the history (dry run: nothing was changed)"
    )
    assert lines[-1].startswith("state folder: ")
    assert "removed" not in result.stdout and "pruned" not in result.stdout
    assert digest(ws.state, ws.handoff, ws.remote_base) == before
    assert ws.rows("SELECT * FROM runs") == runs


def test_prune_removes_the_old_settled_copies_and_keeps_the_rest(ws: Workspace) -> None:
    age_everything(ws)
    gone = [archive(ws, A), archive(ws, B), report(ws, B), *writebacks(ws)]
    stays = [archive(ws, C), report(ws, C), archive(ws, W), archive(ws, D)]
    size = sum(p.stat().st_size for p in gone)
    handoff, remote, files = digest(ws.handoff), digest(ws.remote_base), ws.rows("SELECT * FROM files")

    result = ws.cli("prune")

    assert result.exit_code == 0, result.output
    assert [p for p in gone if p.exists()] == [] and [p for p in stays if not p.exists()] == []
    assert result.stdout.count("\nremoved  ") + result.stdout.startswith("removed  ") == 5
    assert f"pruned 5 file(s), {size / 1000:.1f} kB; 0 run(s) from the history\n" in result.stdout
    assert digest(ws.handoff) == handoff and digest(ws.remote_base) == remote  # neither hand-off nor server
    assert ws.rows("SELECT * FROM files") == files  # the ledger keeps every file's row
    assert not archive(ws, A).parent.exists() or any(archive(ws, A).parent.iterdir())  # no empty shard left
    again = ws.cli("prune")
    assert again.exit_code == 0 and "pruned 0 file(s), 0 B; 0 run(s) from the history" in again.stdout
    assert ws.cli("run").exit_code == 0  # the next run needs nothing that went


def test_json_lists_what_goes_and_what_stays(ws: Workspace) -> None:
    age_everything(ws)
    result = ws.cli("prune", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report_ = json.loads(result.stdout)
    assert report_["dry_run"] is True and report_["failed"] == []
    assert report_["totals"]["files"] == 5 and report_["totals"]["runs"] == 0
    assert report_["totals"]["bytes"] == sum(i["size"] for i in report_["removed"])
    [a] = [i for i in report_["removed"] if i["path"] == str(archive(ws, A))]
    assert a["kind"] == "archive" and a["reason"].startswith("processed, ")
    assert {i["kind"] for i in report_["kept"]} == {"archive", "error_report", "run", "runs"}
    assert report_["state_folder"] == dict(zip(("bytes", "files"), state_folder_size(ws.state), strict=True))


def test_run_history_loses_only_runs_nothing_refers_to(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    assert ws.cli("run").exit_code == 0  # run 1: nothing to do
    assert ws.cli("run").exit_code == 0  # run 2: nothing to do, the last successful run
    ws.put_samples()
    assert ws.cli("run").exit_code == 1  # run 3: errored, the last completed run; its files refer to it
    execute(ws, f"UPDATE runs SET started_at = '{OLD}'")
    dry = ws.cli("prune", "--dry-run")
    assert "would remove  run 1 (successful, started 2025-01-01T02:00:00+00:00): " in dry.stdout
    assert "kept  run 2 (successful, started 2025-01-01T02:00:00+00:00): the last successful run" in dry.stdout
    assert "kept  run 3 (errored, started 2025-01-01T02:00:00+00:00): the last completed run" in dry.stdout

    result = ws.cli("prune")

    assert result.exit_code == 0, result.output
    assert "; 1 run(s) from the history" in result.stdout
    assert [r["id"] for r in ws.rows("SELECT id FROM runs ORDER BY id")] == [2, 3]
    assert "last successful run: 2" in ws.cli("status").stdout


def test_prune_waits_for_a_run_holding_the_lock(ws: Workspace) -> None:
    age_everything(ws)
    with RunLock(ws.state, "2026-11-24T02:00:00+00:00"):
        result = ws.cli("prune")
        dry = ws.cli("prune", "--dry-run")
    assert result.exit_code == 4 and dry.exit_code == 4
    assert "another run holds the lock" in result.stderr and "started 2026-11-24T02:00:00+00:00" in result.stderr
    assert archive(ws, A).exists()


def test_nothing_has_run_yet(sftp_workspace: Workspace) -> None:
    result = sftp_workspace.cli("prune")
    assert result.exit_code == 0
    assert result.stdout == f"no ledger at {sftp_workspace.state / 'ledger.db'} yet: nothing to prune\n"
    assert not sftp_workspace.state.exists()


def test_prune_imports_no_heavy_library(ws: Workspace) -> None:
    probe = textwrap.dedent(
        """\
        import json, sys
        from batchsync.cli import main
        sys.argv = ["batchsync", *json.loads(sys.argv[1])]
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        heavy = ("polars", "pandera", "paramiko", "jinja2")
        print(json.dumps({"code": code, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy)}))
        """
    )
    args = json.dumps(["--config", str(ws.config), "prune", "--dry-run"])
    out = subprocess.run([sys.executable, "-c", probe, args], capture_output=True, text=True, check=True).stdout
    report_ = json.loads(out.strip().splitlines()[-1])
    assert report_ == {"code": 0, "heavy": []}


# a replay of a pruned file -------------------------------------------------
def test_a_replay_of_a_pruned_file_names_it(ws: Workspace) -> None:
    age_everything(ws)
    assert ws.cli("prune").exit_code == 0
    ledger = Ledger(ws.state / "ledger.db")
    try:
        pruned = ledger.files_for_replay(file=A)
        with pytest.raises(NothingSelected) as raised:
            replayable(pruned)
        for_po = ledger.files_for_replay(po="4301")
    finally:
        ledger.close()
    assert raised.value.message == (
        f"file 1 {A} cannot be replayed: its archive copy {archive(ws, A)} was pruned "
        "(`batchsync prune`, retention.archive_days)"
    )
    [kept_as] = ws.rows("SELECT remote_archived_as FROM files WHERE name = ?", (A,))
    assert raised.value.hint == (
        f"put its bytes back at {archive(ws, A)} (the server keeps it as {kept_as['remote_archived_as']}) and run again"
    )
    assert kept_as["remote_archived_as"].endswith(f"/Archive/{A}")
    assert [f["name"] for f in for_po] == [A, D]
    assert [f["name"] for f in replayable(for_po, skip_pruned=True)] == [D]  # D holds 4301's latest version


def test_reprocess_of_a_pruned_file_says_it_was_pruned(ws: Workspace) -> None:
    age_everything(ws)
    assert ws.cli("prune").exit_code == 0
    runs = len(ws.rows("SELECT id FROM runs"))

    result = ws.cli("reprocess", "--file", A)

    assert result.exit_code == 2
    assert f"file 1 {A} cannot be replayed: its archive copy {archive(ws, A)} was pruned" in result.stderr
    assert len(ws.rows("SELECT id FROM runs")) == runs  # said before a run is started
    assert ws.cli("reprocess", "--po", "4301").exit_code == 0  # from D, the file of its latest version


def test_status_shows_the_state_folder_size(ws: Workspace) -> None:
    size, files = state_folder_size(ws.state)  # ledger, 5 archive copies, 2 error reports, 2 write-backs, lock
    assert files == 11
    shown = json.loads(ws.cli("status", "--json").stdout)["state_folder"]
    # status has the ledger open while it counts: its -wal and -shm files are there too
    assert shown["path"] == str(ws.state) and shown["files"] == files + 2 and shown["bytes"] > size
    assert human_size(shown["bytes"]).endswith(" kB")
    line = rf"state folder: [\d.]+ kB in {files + 2} file\(s\) \({re.escape(str(ws.state))}\)"
    assert re.search(f"^{line}$", ws.cli("status").stdout, re.M)


# the configuration -------------------------------------------------------------
def _config(tmp_path: Path, retention: str) -> Path:
    (tmp_path / "remote").mkdir(exist_ok=True)
    path = tmp_path / "batchsync.toml"
    path.write_text(
        '[source]\nurl = "remote"\n\n[local]\nstate_dir = "var"\n\n'
        '[feeds.purchase_orders]\nremote_dir = "/Outgoing/PurchaseOrders"\ntarget = "sap_orders05"\n'
        + textwrap.dedent(retention)
    )
    return path


def test_retention_defaults_and_given_days(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, "")).retention == RetentionConfig(90, 90, 30, 365)
    days = "[retention]\narchive_days = 14\nwriteback_days = 2.5\nerror_report_days = 0\n"
    given = load_config(_config(tmp_path, days))
    assert given.retention == RetentionConfig(archive_days=14, error_report_days=90, writeback_days=2.5)


def test_retention_problems_are_one_line_each(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from batchsync.cli import cli

    path = _config(
        tmp_path,
        """
        [retention]
        archive_days = "abc"
        writeback_days = -1
        run_history_dayz = 30
        error_report_days = true
        """,
    )
    result = CliRunner().invoke(cli, ["--config", str(path), "prune"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:5] == [
        "  retention.run_history_dayz: unknown key (did you mean run_history_days?)",
        "  retention.archive_days: expected a number, got 'abc'",
        "  retention.error_report_days: expected a number, got True",
        "  retention.writeback_days: must not be negative, got -1",
    ]
    assert result.stderr.splitlines()[0] == f"batchsync: error: {path}: 4 problems:"


def test_a_misspelt_retention_section_is_named(tmp_path: Path) -> None:
    from batchsync.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        load_config(_config(tmp_path, "[retentoin]\narchive_days = 3\n"))
    path = tmp_path / "batchsync.toml"
    assert raised.value.problems == [f"{path}: [retentoin]: unknown section (did you mean retention?)"]
    with pytest.raises(ConfigError) as table:
        load_config(_top_level(tmp_path, "retention = 3\n"))
    assert table.value.problems == [f"{path}: [retention]: expected a table"]


def _top_level(tmp_path: Path, line: str) -> Path:
    path = _config(tmp_path, "")
    path.write_text(line + path.read_text())
    return path


def test_state_folder_size_counts_regular_files_only(tmp_path: Path) -> None:
    (tmp_path / "archive" / "ab").mkdir(parents=True)
    (tmp_path / "archive" / "ab" / "abc").write_bytes(b"x" * 1500)
    (tmp_path / "ledger.db").write_bytes(b"y" * 100)
    (tmp_path / "link").symlink_to(tmp_path / "ledger.db")
    assert state_folder_size(tmp_path) == (1600, 2)
    assert state_folder_size(tmp_path / "missing") == (0, 0)


def test_apply_prune_of_an_empty_plan_changes_nothing(ws: Workspace) -> None:
    ledger = Ledger(ws.state / "ledger.db")
    try:
        result = apply_prune(PrunePlan(ws.state), ledger)
    finally:
        ledger.close()
    assert result.removed == [] and result.failed == []
