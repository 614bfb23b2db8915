"""The whole job on every SFTP server implementation, and what a refusing server does to a run (issue 13).

Servers: OpenSSH's internal-sftp, each asyncssh variant (tests/asyncssh_server.py)
and ProFTPD's mod_sftp. On each: ``check``, a run (fetch, archive, hand-off,
upload), a second run that does nothing. Then faults, on an asyncssh server
that refuses one thing: each is recorded on the file it concerns, warned
about, retried by later runs; the run goes on with everything else and ends
errored (1); once the server allows it, nothing is fetched or sent twice.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.asyncssh_server import AsyncsshListener
from tests.conftest import CHANGE_SAMPLE, SAMPLE_A, SAMPLE_B, SAMPLE_C, SAMPLES, Workspace, asyncssh_workspace

MATRIX: dict[str, dict[str, str]] = {}  # server -> step -> "pass"; printed at the end of the module


@pytest.fixture(scope="module", autouse=True)
def _report() -> object:
    yield
    if MATRIX:
        steps = ["check", "fetch", "archive", "upload", "second run"]
        print("\nserver matrix:", " | ".join(steps))
        for server, row in MATRIX.items():
            print(f"  {server:<30} " + " | ".join(row.get(s, "-") for s in steps))


def handed_off(ws: Workspace) -> list[tuple[str, int]]:
    docs = [d for p in ws.handoff.glob("*.manifest.json") for d in json.loads(p.read_text())["documents"]]
    return sorted((str(d["id"]), d["version"]) for d in docs)


def leftovers(ws: Workspace) -> list[str]:
    return [str(p) for p in ws.remote_base.rglob("*") if p.name.endswith(".part") or ".batchsync-probe" in p.name]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_full_job_and_a_second_run_on_every_server(server_workspace: Workspace, request: pytest.FixtureRequest) -> None:
    ws = server_workspace
    server = request.node.callspec.params["server_workspace"]
    row = MATRIX.setdefault(server, {})
    result = ws.cli("check")
    assert result.exit_code == 0, result.output
    assert "all folders present and writable" in result.stdout
    assert leftovers(ws) == []  # check's probe files removed
    assert ws.archive.is_dir() and "created the missing archive folder" in result.stdout  # as a run would
    for op in ("list", "write", "rename", "remove"):
        assert f"ok   {op} " in result.stdout
    row["check"] = "pass"

    ws.put_samples()
    ws.put_change(CHANGE_SAMPLE)
    older = b"an older export under the same name, archived last month\n"
    (ws.archive / SAMPLE_A).write_bytes(older)
    result = ws.cli("run")

    assert result.exit_code == 1, result.output  # errored: some sample POs are rejected, nothing else
    assert "7 PO(s) handed off, 2 rejected, 1 duplicate" in result.stdout
    assert "left unread" not in result.stdout and "after-action" not in result.stdout
    assert len(handed_off(ws)) == 7 + 1  # seven POs and one accepted change request
    assert [r["state"] for r in ws.rows("SELECT state FROM files WHERE feed = 'purchase_orders'")] == ["processed"] * 3
    row["fetch"] = "pass"
    assert ws.remote_names(ws.outgoing) == [] and ws.remote_names(ws.changes) == []
    archived = ws.remote_names(ws.archive)
    assert len(archived) == 4 and (ws.archive / SAMPLE_A).read_bytes() == older  # never replaced
    [renamed] = [n for n in archived if n not in (SAMPLE_A, SAMPLE_B, SAMPLE_C)]
    assert sha(ws.archive / renamed) == sha(SAMPLES / SAMPLE_A) and renamed.startswith(SAMPLE_A.removesuffix(".csv"))
    done = ws.rows("SELECT remote_done_at, remote_error, remote_archived_as FROM files")
    assert all(r["remote_done_at"] and r["remote_error"] is None for r in done)
    row["archive"] = "pass"
    uploads = ws.rows("SELECT name, sha256, uploaded_at FROM writebacks")
    assert uploads and all(u["uploaded_at"] for u in uploads)
    assert sorted(ws.remote_names(ws.incoming)) == sorted(u["name"] for u in uploads)
    assert all(sha(ws.incoming / u["name"]) == u["sha256"] for u in uploads)
    assert leftovers(ws) == []
    row["upload"] = "pass"

    before = (handed_off(ws), ws.remote_names(ws.incoming), ws.remote_names(ws.archive))
    result = ws.cli("run")

    # nothing fetched, handed off or uploaded; change requests still waiting for their POs are no error
    assert result.exit_code == 0, result.output
    assert "purchase_orders: 0 file(s) processed" in result.stdout and "2 waiting" in result.stdout
    assert "write-back: 0 file(s) uploaded" in result.stdout
    assert (handed_off(ws), ws.remote_names(ws.incoming), ws.remote_names(ws.archive)) == before
    assert ws.rows("SELECT count(*) AS n FROM files")[0]["n"] == 4
    row["second run"] = "pass"


def refusing(listener: AsyncsshListener, tmp_path: Path, **behaviour: object) -> Workspace:
    ws = asyncssh_workspace(listener, tmp_path)
    listener.change(**behaviour)
    return ws


def assert_sent_once(ws: Workspace, documents: int = 8) -> None:
    """Each document (seven POs, one change request, by default) handed off once, each outcome written back once."""
    ids = handed_off(ws)
    assert len(ids) == len(set(ids)) == documents
    rows = ws.rows("SELECT count(*) AS n FROM writeback_rows GROUP BY po_id, version, field")
    assert all(r["n"] == 1 for r in rows)


@pytest.mark.parametrize(
    ("behaviour", "words", "uploads"),
    [
        ({"refuse_mkdir": True}, "creating folder /Outgoing/PurchaseOrders/Archive on sftp://", True),
        # no rename at all: the write-back's .part cannot be renamed either, so it waits too
        ({"refuse_rename": True}, "renaming /Outgoing/PurchaseOrders/", False),
    ],
    ids=["mkdir-refused", "rename-refused"],
)
def test_a_refused_archive_is_recorded_retried_and_blocks_nothing(
    asyncssh_listener: AsyncsshListener, tmp_path: Path, behaviour: dict[str, object], words: str, uploads: bool
) -> None:
    ws = refusing(asyncssh_listener, tmp_path, **behaviour)
    ws.put_samples()
    ws.put_change(CHANGE_SAMPLE)

    result = ws.cli("run")

    assert result.exit_code == 1, result.output
    assert "3 remote after-action(s) failed" in result.stdout
    assert (
        words in result.stderr and "permission denied" in result.stderr and "the next run tries again" in result.stderr
    )
    assert "Traceback" not in result.output
    assert_sent_once(ws)  # every file processed and handed off, the change feed run, the write-back built
    assert bool(ws.remote_names(ws.incoming)) == uploads
    assert [bool(w["uploaded_at"]) for w in ws.rows("SELECT uploaded_at FROM writebacks")] == [uploads]
    files = ws.rows("SELECT name, state, remote_done_at, remote_error FROM files WHERE feed = 'purchase_orders'")
    assert [f["state"] for f in files] == ["processed"] * 3
    assert all(f["remote_done_at"] is None and words in f["remote_error"] for f in files)
    assert ws.remote_names(ws.outgoing) == [SAMPLE_A, SAMPLE_B, SAMPLE_C]  # nothing lost
    [run] = ws.rows("SELECT status, message FROM runs")
    assert run["status"] == "errored" and words in run["message"]

    result = ws.cli("run")  # still refused: retried, nothing fetched or sent again

    assert result.exit_code == 1, result.output
    assert "3 remote after-action(s) failed" in result.stdout and "0 file(s) processed" in result.stdout
    assert_sent_once(ws)
    assert ws.rows("SELECT count(*) AS n FROM files")[0]["n"] == 4

    asyncssh_listener.change(refuse_mkdir=False, refuse_rename=False)  # the administrator fixed it
    result = ws.cli("run")

    assert result.exit_code == 0, result.output  # only the change requests still waiting for their POs
    assert "after-action" not in result.stdout and "2 waiting" in result.stdout
    assert ws.remote_names(ws.outgoing) == [] and ws.remote_names(ws.archive) == [SAMPLE_A, SAMPLE_B, SAMPLE_C]
    assert len(ws.remote_names(ws.incoming)) == 1
    assert all(f["remote_done_at"] and f["remote_error"] is None for f in ws.rows("SELECT * FROM files"))
    assert_sent_once(ws)
    assert ws.rows("SELECT count(*) AS n FROM files")[0]["n"] == 4


def test_a_refused_delete_is_recorded_and_retried(asyncssh_listener: AsyncsshListener, tmp_path: Path) -> None:
    ws = refusing(asyncssh_listener, tmp_path, read_only=frozenset({"/Outgoing/PurchaseOrders"}))
    ws.write_config(after_download="delete")
    ws.put(SAMPLE_A)

    result = ws.cli("run")

    assert result.exit_code == 1, result.output
    assert f"deleting /Outgoing/PurchaseOrders/{SAMPLE_A} on sftp://" in result.stderr
    assert ws.remote_names(ws.outgoing) == [SAMPLE_A] and len(handed_off(ws)) == 4
    asyncssh_listener.change(read_only=frozenset())
    result = ws.cli("run")
    assert result.exit_code == 0, result.output
    assert ws.remote_names(ws.outgoing) == [] and len(handed_off(ws)) == 4


def test_a_write_back_folder_refusing_writes_leaves_the_upload_pending(
    asyncssh_listener: AsyncsshListener, tmp_path: Path
) -> None:
    ws = refusing(asyncssh_listener, tmp_path, read_only=frozenset({"/Incoming/PurchaseOrderChanges"}))
    ws.put_samples()

    result = ws.cli("run")

    assert result.exit_code == 1, result.output
    assert "uploading /Incoming/PurchaseOrderChanges/" in result.stderr and "stays pending" in result.stderr
    assert "refused (pending)" in result.stdout
    [pending] = ws.rows("SELECT name, uploaded_at, upload_error FROM writebacks")
    assert pending["uploaded_at"] is None and "permission denied" in pending["upload_error"]
    assert ws.remote_names(ws.archive) == [SAMPLE_A, SAMPLE_B, SAMPLE_C]  # the rest of the job was done
    assert ws.remote_names(ws.incoming) == []

    asyncssh_listener.change(read_only=frozenset())
    result = ws.cli("run")

    assert result.exit_code == 0, result.output
    assert ws.remote_names(ws.incoming) == [pending["name"]]
    assert_sent_once(ws, 7)


def test_a_file_the_server_will_not_let_us_read_is_never_a_silent_success(
    asyncssh_listener: AsyncsshListener, tmp_path: Path
) -> None:
    ws = refusing(asyncssh_listener, tmp_path, permissions=False)
    ws.put(SAMPLE_A)
    (ws.outgoing / "folder.csv").mkdir()  # without file types it looks like any other candidate

    result = ws.cli("run")

    assert result.exit_code == 1, result.output
    assert "1 file(s) left unread" in result.stdout
    assert "left unread: downloading /Outgoing/PurchaseOrders/folder.csv" in result.stderr
    assert len(handed_off(ws)) == 4 and ws.remote_names(ws.archive) == [SAMPLE_A]


def test_files_still_settling_are_logged_as_waiting_not_unread(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put(SAMPLE_A)
    ws.config.write_text(
        ws.config.read_text().replace("settle_seconds = 0", "settle_seconds = 0\nmin_age_seconds = 3600")
    )

    result = ws.cli("--log-level", "info", "run")

    assert result.exit_code == 0, result.output
    assert f"waiting: {ws.outgoing / SAMPLE_A} is still changing or younger than min_age_seconds" in result.stderr
    assert ws.remote_names(ws.outgoing) == [SAMPLE_A] and handed_off(ws) == []


@pytest.mark.parametrize(
    ("behaviour", "failed"),
    [
        ({"refuse_mkdir": True}, ["creating folder /Outgoing/PurchaseOrders/Archive on sftp://"]),
        (
            {"refuse_rename": True},
            ["renaming /Outgoing/PurchaseOrders/.batchsync-check-", "renaming /Incoming/PurchaseOrderChanges/"],
        ),
        ({"read_only": frozenset({"/Incoming/PurchaseOrderChanges"})}, ["/Incoming/PurchaseOrderChanges/.batchsync"]),
        ({"permissions": False}, []),  # accepted: folders are what can be listed
    ],
    ids=["mkdir-refused", "rename-refused", "write-refused", "no-permissions"],
)
def test_check_tries_what_a_run_does_and_says_what_failed_where(
    asyncssh_listener: AsyncsshListener, tmp_path: Path, behaviour: dict[str, object], failed: list[str]
) -> None:
    ws = refusing(asyncssh_listener, tmp_path, **behaviour)
    ws.put(SAMPLE_A)

    result = ws.cli("check")

    assert leftovers(ws) == []  # whatever failed, no probe file stays behind
    assert f"ok   read /Outgoing/PurchaseOrders/{SAMPLE_A}" in result.stdout
    if not failed:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    for words in failed:
        assert words in result.stderr and "permission denied" in result.stderr
    assert "FAIL " in result.stdout and "Traceback" not in result.output


def test_a_server_that_stops_answering_is_reported_in_words(
    asyncssh_listener: AsyncsshListener, tmp_path: Path
) -> None:
    ws = refusing(asyncssh_listener, tmp_path, delay=3.0, slow_ops=frozenset({"rename"}))
    ws.write_config(after_download="keep")  # the first rename of the run is the write-back's .part
    ws.config.write_text(ws.config.read_text().replace("timeout_seconds = 5", "timeout_seconds = 1"))
    ws.put(SAMPLE_A)

    result = ws.cli("run")

    assert result.exit_code == 3, result.output
    [error, hint] = result.stderr.strip().splitlines()[-2:]
    assert error.startswith("batchsync: error: renaming /Incoming/PurchaseOrderChanges/PurchaseOrderChange_")
    assert ".csv.part to /Incoming/PurchaseOrderChanges/" in error
    assert error.endswith("failed after 2 attempts: no reply from the server within 1 s")
    assert error.count("sftp://coupa@127.0.0.1") == 1  # the server named once
    assert "timeout_seconds" in hint
    assert "TimeoutError" not in result.output and "Traceback" not in result.output
    assert [w["uploaded_at"] for w in ws.rows("SELECT uploaded_at FROM writebacks")] == [None]  # pending, not lost


def test_a_large_file_arrives_whole_in_the_largest_reads_the_server_serves(
    server_workspace: Workspace, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A server that says how large a read it serves (limits@openssh.com: OpenSSH 255 KiB, asyncssh 4 MiB)
    gets requests that large, up to 256 KiB, instead of paramiko's 32 KiB; one that does not (ProFTPD's
    mod_sftp) gets 32 KiB. Every byte arrives, in order, hashed as received."""
    from batchsync.config import load_config
    from batchsync.sftp import SftpSource
    from batchsync.sources import open_source

    ws = server_workspace
    data = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(200_000))  # 6.4 MB, no repeats
    ws.put("OrderHeader_big.csv", data)
    config = load_config(ws.config)
    with open_source(config.source) as source:
        assert isinstance(source, SftpSource)
        server = request.node.callspec.params["server_workspace"]
        assert source._read_request == {"openssh": 255 << 10, "proftpd": 32 << 10}.get(server, 256 << 10)
        [entry] = source.list(config.feeds["purchase_orders"].remote_dir, "*_big.csv")
        fetched = source.fetch(entry, tmp_path / "staging")
    assert fetched.path.read_bytes() == data
    assert (fetched.size, fetched.sha256) == (len(data), hashlib.sha256(data).hexdigest())
