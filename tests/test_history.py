"""``history`` tells the truth: each run with what *it* did (ledger events), and one file or one PO through
every run (issue 14). Real sshd, real SQLite ledger."""

from __future__ import annotations

import json
import sqlite3

from tests.conftest import Workspace
from tests.test_run_sftp import SAMPLE_A, SAMPLE_B, SAMPLE_C


def _events(ws: Workspace, run: dict[str, object]) -> list[tuple[str, str | None]]:
    return [(e["kind"], e["file"]) for e in run["events"]]  # type: ignore[attr-defined]


def _runs(ws: Workspace) -> dict[int, dict[str, object]]:
    result = ws.cli("history", "--json")
    assert result.exit_code == 0, result.output
    return {r["id"]: r for r in json.loads(result.stdout)}


def test_each_run_lists_its_own_work_even_after_later_runs_touched_the_same_files(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    assert ws.cli("run").exit_code == 1  # run 1: three files, all processed (some POs rejected)
    assert ws.cli("run").exit_code == 0  # run 2: nothing new
    assert ws.cli("reprocess", "--file", SAMPLE_B).exit_code == 1  # its rejected PO again  # run 3: one file again

    runs = _runs(ws)
    first = _events(ws, runs[1])
    for name in (SAMPLE_A, SAMPLE_B, SAMPLE_C):  # run 1 keeps all of its files and hand-offs
        assert [k for k, f in first if f == name] == ["fetched", "after-action", "processed", "handed off"]
    assert first[-1] == ("written back", None)
    assert [f["name"] for f in runs[1]["files"]] == [SAMPLE_A, SAMPLE_B, SAMPLE_C]  # type: ignore[index]
    assert _events(ws, runs[2]) == [] and runs[2]["files"] == []  # nothing new: nothing claimed
    # only what the replay did: the file again, and Coupa told of the PO it rejects again
    assert _events(ws, runs[3]) == [("reprocessed", SAMPLE_B), ("written back", None)]

    human = ws.cli("history", "--limit", "1").stdout.splitlines()
    assert human[0].startswith("run 3  ") and human[0].endswith("  reprocess  errored")
    assert human[1].endswith(f"reprocessed         file 2 {SAMPLE_B}  processed: 2 PO(s) duplicate, 1 PO(s) rejected")


def test_history_follows_one_file_and_one_po_through_every_run(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    assert ws.cli("run").exit_code == 1
    assert ws.cli("reprocess", "--file", SAMPLE_B).exit_code == 1  # its rejected PO again

    lines = ws.cli("history", "--file", SAMPLE_B).stdout.splitlines()
    kinds = [line.split("  ")[2].strip() for line in lines]
    assert kinds == ["fetched", "after-action", "processed", "handed off", "reprocessed"]
    assert lines[0].startswith("run 1  ") and lines[-1].startswith("run 2  ")
    assert json.loads(ws.cli("history", "--file", "2", "--json").stdout)[0]["file"] == SAMPLE_B  # by ledger id too

    story = json.loads(ws.cli("history", "--po", "4202", "--json").stdout)
    whats = [(s["run_id"], s["what"]) for s in story]
    assert (1, "version 1: handed_off (new)") in whats and (1, "version 2: handed_off (change)") in whats
    assert (2, "version 2: duplicate") in whats  # the replay found the ERP has it
    assert (1, "told Coupa (ERP Integration Status)") in whats
    assert [s["at"] for s in story] == sorted(s["at"] for s in story)  # oldest first

    nothing = ws.cli("history", "--po", "99999")
    assert nothing.exit_code == 0
    assert nothing.stdout == "nothing in the ledger about PO 99999 (try: batchsync history, batchsync errors)\n"
    both = ws.cli("history", "--po", "4202", "--file", SAMPLE_A)
    assert both.exit_code == 2 and "give --file or --po, not both" in both.stderr


def test_a_run_recorded_before_events_lists_the_files_it_last_touched(sftp_workspace: Workspace) -> None:
    """A ledger of an earlier release has no events: its runs still show their files, said to be the last touch."""
    ws = sftp_workspace
    ws.put_samples()
    assert ws.cli("run").exit_code == 1
    conn = sqlite3.connect(ws.state / "ledger.db")
    conn.execute("DELETE FROM events")
    conn.commit()
    conn.close()

    lines = ws.cli("history").stdout.splitlines()
    assert lines[1].endswith("(last touched by this run)") and SAMPLE_A in lines[1]


def test_status_counts_what_was_not_sent_in_the_words_of_the_run_summary(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    run = ws.cli("run")
    assert "7 PO(s) handed off, 2 rejected, 1 duplicate, 0 stale, 0 skipped" in run.stdout

    [line] = [x for x in ws.cli("status").stdout.splitlines() if x.startswith("run ")]
    assert line.endswith("3 file(s), 7 handed off, 2 rejected, 1 not sent (duplicate, stale, unchanged or skipped)")


def test_every_json_log_line_of_a_run_carries_its_run_id_the_ssh_librarys_too(sftp_workspace: Workspace) -> None:
    """paramiko logs the connect and the authentication from its own thread, outside the run's context."""
    ws = sftp_workspace
    ws.put(SAMPLE_A)
    result = ws.cli("--log-format", "json", "--log-level", "info", "run")
    lines = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    ssh = [x for x in lines if x["stage"] == "transport" and "Authentication" in x["message"]]
    assert ssh, [x["message"] for x in lines]
    assert {x.get("run_id") for x in lines} == {1}
