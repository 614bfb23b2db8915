"""Operating batchsync (issue 5): the run lock between real processes, a stale lock, and the
`status` / `history` views an on-call engineer or a monitor reads. Real sshd, real SQLite ledger."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_A, SAMPLE_B, SAMPLE_C, SAMPLES, Workspace

BATCHSYNC = Path(sys.executable).parent / "batchsync"  # the console script, as cron would call it
COPIES = 10  # of each sample: 30 files keep the first run busy while the second one starts
SENT = {("4201", 1), ("4202", 1), ("4202", 2), ("4203", 1), ("4204", 1), ("4205", 1), ("4208", 1)}  # samples/README.md


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHSYNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BATCHSYNC), "--config", str(ws.config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def run_cli(ws: Workspace, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BATCHSYNC), "--config", str(ws.config), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
        check=False,
    )


def manifests(ws: Workspace) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(ws.handoff.glob("*.manifest.json"))]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def set_settle(ws: Workspace, seconds: int) -> None:
    text = ws.config.read_text()
    assert "settle_seconds = 0" in text
    ws.config.write_text(text.replace("settle_seconds = 0", f"settle_seconds = {seconds}"))


# --- the run lock -------------------------------------------------------------------------------


def test_two_concurrent_runs_second_exits_4_and_nothing_is_sent_twice(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    names = []
    for k in range(COPIES):
        for sample in (SAMPLE_A, SAMPLE_B, SAMPLE_C):
            name = f"{sample.removesuffix('.csv')}_{k:02d}.csv"
            ws.put(name, (SAMPLES / sample).read_bytes() + b"\n" * k)  # distinct bytes, same POs
            names.append(name)
    set_settle(ws, 2)  # run A lists, then waits 2 s for the files to settle, holding the lock
    lock = ws.state / "batchsync.lock"

    a = start(ws, "run")
    b: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: (lock.exists() and lock.stat().st_size > 0) or a.poll() is not None, 60, "run A's lock note")
        assert a.poll() is None, "run A ended before run B could start; the test did not overlap them"
        began = time.monotonic()
        b = start(ws, "run")
        b_out, b_err = b.communicate(timeout=60)
        b_seconds = time.monotonic() - began
        a_still_running = a.poll() is None
        # a monitor may read the ledger while the run works: the run shows as started, none completed yet
        during = ws.cli("status", "--json")
        status_while_running = a.poll() is None
        a_out, a_err = a.communicate(timeout=120)
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    # B: refused at once, while A still held the lock, naming the holder
    assert a_still_running, f"run B returned only after run A ended ({b_seconds:.1f} s): {b_err}"
    assert b.returncode == 4, (b.returncode, b_out, b_err)
    assert b_out == ""
    assert "another run holds the lock" in b_err
    assert f"pid {a.pid} on {socket.gethostname()}, started " in b_err
    assert "Traceback" not in b_err

    assert during.exit_code == 0, during.output
    assert status_while_running, "run A ended before `status` could look at it"
    view = json.loads(during.stdout)
    assert [(r["status"], r["pid"], r["finished_at"]) for r in view["last_runs"]] == [("started", a.pid, None)]
    assert view["last_completed_run"] is None

    # A: finished the whole job; its samples include rejected POs, so it ends errored
    assert a.returncode == 1, (a.returncode, a_out, a_err)
    assert "30 file(s) processed" in a_out
    assert lock.read_text() == ""  # released cleanly

    # every PO version went to the ERP exactly once, across all manifests
    sent = Counter((str(d["id"]), d["version"]) for m in manifests(ws) for d in m["documents"])
    assert set(sent) == SENT
    assert max(sent.values()) == 1, sent
    handed = ws.rows("SELECT po_id, version FROM po_versions WHERE outcome = 'handed_off'")
    assert Counter((r["po_id"], r["version"]) for r in handed) == Counter(SENT)

    # the ledger: one run (A's), each file fetched once, nothing from B
    runs = ws.rows("SELECT id, status, pid, finished_at FROM runs")
    assert [(r["status"], r["pid"]) for r in runs] == [("errored", a.pid)]
    assert runs[0]["finished_at"]
    files = ws.rows("SELECT name, run_id, state FROM files ORDER BY name")
    assert [f["name"] for f in files] == sorted(names)
    assert {(f["run_id"], f["state"]) for f in files} == {(runs[0]["id"], "processed")}
    assert ws.remote_names(ws.outgoing) == []
    assert ws.remote_names(ws.archive) == sorted(names)
    assert len(ws.remote_names(ws.incoming)) == 1  # one write-back upload, from A


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    ws.state.mkdir()
    lock = ws.state / "batchsync.lock"
    note = {"pid": gone.pid, "host": "batch-old-01", "started_at": "2026-11-23T02:00:00+00:00"}
    lock.write_text(json.dumps(note))  # the note of a run killed with -9: file present, no flock held
    ws.put(SAMPLE_C)

    result = run_cli(ws, "--log-level", "warning", "run")

    assert result.returncode == 1, result  # the run did its work: C has one rejected PO (4207), so errored
    assert "WARNING" in result.stderr
    assert (
        f"taking over the lock of run pid {gone.pid} on batch-old-01 started 2026-11-23T02:00:00+00:00" in result.stderr
    )
    assert "another run holds the lock" not in result.stderr
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["errored"]
    assert ws.handoff_files() == [f"R0000001-0001_{SAMPLE_C.removesuffix('.csv')}.a64b7e6f4e21.sap_orders05.idoc"]
    assert lock.read_text() == ""  # and released cleanly: the next run takes it without a warning

    again = run_cli(ws, "--log-level", "warning", "run")
    assert again.returncode == 0, again
    assert "taking over" not in again.stderr


# --- status and history for people and monitors -------------------------------------------------

RUN_KEYS = {
    "id",
    "trigger",
    "feeds",
    "status",
    "started_at",
    "finished_at",
    "handed_off",
    "rejected",
    "skipped",
    "errors",
    "message",
    "pid",
    "host",
}
FILE_KEYS = {"id", "feed", "name", "state", "reason", "handoff_name"}


@pytest.fixture
def two_runs(sftp_workspace: Workspace) -> Workspace:
    """Run 1 processes the three samples and a file that is not UTF-8 (errored); run 2 finds nothing new."""
    ws = sftp_workspace
    ws.put_samples()
    ws.put("OrderHeader_20261123_050000Z.csv", b'"Header","4299","1"\n"\xff\xfe"\n')
    first = ws.cli("run")
    assert first.exit_code == 1, first.output
    second = ws.cli("run")
    assert second.exit_code == 0, second.output
    return ws


def _json(ws: Workspace, *args: str) -> Any:
    result = ws.cli(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_status_json_shape_after_runs(two_runs: Workspace) -> None:
    ws = two_runs
    view = _json(ws, "status", "--json")

    assert {"last_runs", "last_completed_run", "files_by_state", "rejected_files", "unresolved_errors"} <= set(view)
    runs = view["last_runs"]
    assert isinstance(runs, list)
    assert [r["id"] for r in runs] == [2, 1]  # newest first
    for r in runs:
        assert RUN_KEYS | {"files"} <= set(r)
        assert isinstance(r["id"], int) and isinstance(r["pid"], int)
        for key in ("files", "handed_off", "rejected", "skipped", "errors"):
            assert isinstance(r[key], int), (key, r)
        for key in ("started_at", "finished_at"):
            assert datetime.fromisoformat(r[key]).tzinfo is not None, (key, r)
        assert r["finished_at"] >= r["started_at"]
        assert r["trigger"] == "nightly"
        assert r["feeds"] == "purchase_orders,order_header_changes"
    newest, first = runs
    assert (newest["status"], newest["files"], newest["handed_off"]) == ("successful", 0, 0)
    assert (first["status"], first["files"], first["handed_off"], first["rejected"]) == ("errored", 4, 7, 2)

    last = view["last_completed_run"]
    assert last["id"] == 2
    assert isinstance(last["age_seconds"], int) and not isinstance(last["age_seconds"], bool)
    assert 0 <= last["age_seconds"] < 120

    assert view["files_by_state"] == {"processed": 3, "rejected": 1}
    assert isinstance(view["rejected_files"], list) and len(view["rejected_files"]) == 1
    rejected = view["rejected_files"][0]
    assert rejected["name"] == "OrderHeader_20261123_050000Z.csv"
    assert rejected["feed"] == "purchase_orders"
    assert "UTF-8" in rejected["reason"]
    assert Path(rejected["error_report"]).is_file()

    unresolved = view["unresolved_errors"]
    assert isinstance(unresolved, int) and unresolved > 0
    assert unresolved == len(_json(ws, "errors", "--unresolved", "--json"))
    assert view["writeback_rows_pending"] == 0

    human = ws.cli("status")
    assert human.exit_code == 0, human.output
    assert human.stdout.startswith("last completed run: 2 (0 h ")
    assert "files: 3 processed, 1 rejected" in human.stdout


def test_status_age_of_the_last_completed_run_grows_and_ignores_failed_runs(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    assert ws.cli("run").exit_code == 1
    # a later run that fails (the server's host key is no longer trusted) does not count as completed
    stranger = ws.root / "empty_known_hosts"
    stranger.write_text("")
    ws.write_config(known_hosts=stranger)
    failed = ws.cli("run")
    assert failed.exit_code == 2, failed.output  # a person must verify the key first
    # and backdate the completed run, as if the nightly job had stopped running two days ago
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0).isoformat()
    conn = sqlite3.connect(ws.state / "ledger.db")
    with conn:
        conn.execute("UPDATE runs SET finished_at = ? WHERE id = 1", [two_days_ago])
    conn.close()

    view = _json(ws, "status", "--json")
    assert [r["status"] for r in view["last_runs"]] == ["failed", "errored"]
    assert view["last_completed_run"]["id"] == 1
    assert 2 * 86400 <= view["last_completed_run"]["age_seconds"] < 2 * 86400 + 120


def test_history_json_shape_and_filters(two_runs: Workspace) -> None:
    ws = two_runs
    runs = _json(ws, "history", "--json")

    assert isinstance(runs, list) and [r["id"] for r in runs] == [2, 1]
    for r in runs:
        assert set(r) >= RUN_KEYS
        assert isinstance(r["files"], list)
        for f in r["files"]:
            assert set(f) >= FILE_KEYS
    assert runs[0]["files"] == []  # run 2 found nothing new
    files = {f["name"]: f for f in runs[1]["files"]}
    assert sorted(files) == sorted([SAMPLE_A, SAMPLE_B, SAMPLE_C, "OrderHeader_20261123_050000Z.csv"])
    for name in (SAMPLE_A, SAMPLE_B, SAMPLE_C):
        assert files[name]["state"] == "processed"
        assert (ws.handoff / files[name]["handoff_name"]).is_file()
        assert (ws.handoff / (files[name]["handoff_name"] + ".manifest.json")).is_file()
    bad = files["OrderHeader_20261123_050000Z.csv"]
    assert (bad["state"], bad["handoff_name"]) == ("rejected", None)
    assert "UTF-8" in bad["reason"]

    assert [r["id"] for r in _json(ws, "history", "--limit", "1", "--json")] == [2]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert _json(ws, "history", "--since", tomorrow, "--json") == []
    assert [r["id"] for r in _json(ws, "history", "--since", runs[1]["started_at"], "--json")] == [2, 1]
    assert [r["id"] for r in _json(ws, "history", "--feed", "purchase_orders", "--json")] == [2, 1]
    nope = ws.cli("history", "--feed", "nope", "--json")
    assert nope.exit_code == 2 and "no feed named nope in " in nope.stderr  # neither configured nor ever run

    human = ws.cli("history", "--limit", "1")
    assert human.exit_code == 0, human.output
    assert human.stdout.startswith("run 2  ") and "successful" in human.stdout
    assert "run 1" not in human.stdout


def test_history_since_that_is_not_a_date_is_a_usage_error(two_runs: Workspace) -> None:
    result = two_runs.cli("history", "--since", "yesterday", "--json")
    assert result.exit_code == 2, result.output
    assert "--since" in result.output


def test_history_since_with_a_utc_offset_is_compared_as_a_time(two_runs: Workspace) -> None:
    ws = two_runs
    run1 = _json(ws, "history", "--json")[-1]
    started = datetime.fromisoformat(run1["started_at"])
    cet = timezone(timedelta(hours=2))
    just_before = (started - timedelta(minutes=1)).astimezone(cet).isoformat()  # e.g. 05:21+02:00 for 03:22Z
    assert 1 in [r["id"] for r in _json(ws, "history", "--since", just_before, "--json")]
    well_after = (datetime.now(UTC) + timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-5))).isoformat()
    assert _json(ws, "history", "--since", well_after, "--json") == []


def test_history_feed_is_matched_exactly(two_runs: Workspace) -> None:
    assert two_runs.cli("history", "--feed", "purchase%", "--json").exit_code == 2  # no LIKE pattern
