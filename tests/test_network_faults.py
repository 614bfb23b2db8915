"""Network faults between batchsync and the real sshd (issue 6), through tests/tcp_proxy.py.

The connection is cut mid-download and mid-upload, once (the run retries with
backoff and finishes) or on every attempt (the run ends ``failed``, exit 3,
nothing half-done, and the next run finishes the work exactly once); a stalled
connection times out, is retried, and the run ends within a bounded time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.asyncssh_server import VARIANTS, AsyncsshHost
from tests.conftest import Workspace, asyncssh_workspace
from tests.coupa_files import po_file
from tests.sshd import SshdServer
from tests.tcp_proxy import TcpProxy

BATCHSYNC = Path(sys.executable).with_name("batchsync")
BIG_NAME = "OrderHeader_20261124_020000Z.csv"
BIG_POS = 3000  # about 2.8 MB; its write-back is about 0.5 MB
RETRIES = 3
FAULT_CASES: list[str] = []  # printed at the end of the module


@pytest.fixture(scope="module")
def big_file() -> bytes:
    """A valid PO export of BIG_POS POs, two lines each, every one sent to the ERP."""
    return b"".join(po_file([{"id": str(600000 + i)}], [{}, {}]) for i in range(BIG_POS))


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if FAULT_CASES:
        print(f"\nnetwork fault cases ({len(FAULT_CASES)}):")
        for case in FAULT_CASES:
            print(f"  {case}")


@pytest.fixture
def proxy(sshd: SshdServer) -> Iterator[TcpProxy]:
    with TcpProxy(sshd.port, lifetime=90) as running:
        yield running


SECOND_SERVER = "asyncssh-rename-no-overwrite"  # the strictest asyncssh variant


@pytest.fixture(params=["openssh", SECOND_SERVER])
def proxied(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Workspace, TcpProxy]]:
    """A workspace and a proxy in front of its server: OpenSSH, or the second server implementation."""
    if request.param == "openssh":
        yield request.getfixturevalue("sftp_workspace"), request.getfixturevalue("proxy")
        return
    host: AsyncsshHost = request.getfixturevalue("asyncssh_host")
    listener = host.listen(tmp_path / "remote", VARIANTS[SECOND_SERVER])
    with TcpProxy(listener.port, lifetime=90) as running:
        yield asyncssh_workspace(listener, tmp_path), running
    listener.stop()


def through(ws: Workspace, proxy: TcpProxy, *, retries: int = RETRIES, timeout: float = 2) -> None:
    """Point the workspace at the proxy: its URL, and the server's host key under the proxy's address."""
    assert ws.server is not None
    known_hosts = ws.root / "known_hosts_proxy"
    known_hosts.write_text(f"[127.0.0.1]:{proxy.port} {ws.server.host_key_pub}\n")
    ws.write_config(known_hosts=known_hosts)
    text = ws.config.read_text().replace(ws.server.url, f"sftp://{ws.server.username}@127.0.0.1:{proxy.port}")
    text = re.sub(r"(?m)^timeout_seconds = .*$", f"timeout_seconds = {timeout}", text)
    text = re.sub(r"(?m)^retries = .*$", f"retries = {retries}", text)
    text = re.sub(r"(?m)^backoff_seconds = .*$", "backoff_seconds = 0.05", text)
    ws.config.write_text(text)


def run(ws: Workspace, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHSYNC_")}
    return subprocess.run(
        [str(BATCHSYNC), "--log-level", "info", "--config", str(ws.config), "run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def ends_with_one_error(stderr: str) -> bool:
    """batchsync's own failure is one error line and a hint; any traceback is a library thread's (see below)."""
    lines = stderr.rstrip("\n").splitlines()
    own = lines[-2].startswith("batchsync: error: ") and lines[-1].startswith("hint: ")
    return own and stderr.count("Traceback") == stderr.count("Exception in thread")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifests(ws: Workspace) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(ws.handoff.glob("*.manifest.json"))]


def writeback_rows(ws: Workspace) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(ws.incoming.glob("*.csv")):
        rows += csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return rows


def leftovers(ws: Workspace) -> list[str]:
    """Temporary files anywhere: staging, hand-off, the remote tree."""
    staging = ws.state / "staging"
    return (
        [str(p) for p in staging.rglob("*") if p.is_file()]
        + [str(p) for p in ws.handoff.glob(".*.tmp")]
        + [str(p) for p in ws.remote_base.rglob("*.part")]
    )


def assert_handed_off_once_and_whole(ws: Workspace, data: bytes) -> None:
    """One ERP file for the big file, its manifest's hash right, every PO once; the archived bytes are the remote's."""
    [manifest] = manifests(ws)
    erp = ws.handoff / manifest["file"]
    assert sha(erp.read_bytes()) == manifest["sha256"] and erp.stat().st_size == manifest["bytes"]
    assert [s["sha256"] for s in manifest["source_files"]] == [sha(data)]
    ids = [str(d["id"]) for d in manifest["documents"]]
    assert len(ids) == len(set(ids)) == BIG_POS
    [row] = ws.rows("SELECT size, sha256, archive_path, state FROM files")
    assert (row["size"], row["sha256"], row["state"]) == (len(data), sha(data), "processed")
    assert sha(Path(row["archive_path"]).read_bytes()) == sha(data)  # no truncated copy in the local archive
    assert sha((ws.archive / BIG_NAME).read_bytes()) == sha(data)  # the remote file itself, moved whole


def test_connection_cut_mid_download_is_retried_and_the_file_handed_off_whole(
    proxied: tuple[Workspace, TcpProxy], big_file: bytes
) -> None:
    ws, proxy = proxied
    ws.put(BIG_NAME, big_file)
    through(ws, proxy)
    proxy.fault("drop", direction="down", after_bytes=700_000, connections=1)

    result = run(ws)

    assert result.returncode == 0, result.stderr
    assert proxy.faults == 1 and proxy.connections >= 2  # it was cut, and a new connection finished the work
    retried = r"WARNING transfer: downloading \S+ on sftp:\S+: .*; retry 1 of 3 in "
    assert re.search(retried, result.stderr), result.stderr
    assert_handed_off_once_and_whole(ws, big_file)
    assert ws.remote_names(ws.outgoing) == []
    assert leftovers(ws) == []
    assert len(writeback_rows(ws)) == BIG_POS
    FAULT_CASES.append("cut once mid-download (700 kB into 2.8 MB): retried, handed off once, hash matches")


def test_connection_cut_on_every_attempt_fails_the_run_with_nothing_half_done(
    sftp_workspace: Workspace, proxy: TcpProxy, big_file: bytes
) -> None:
    ws = sftp_workspace
    ws.put(BIG_NAME, big_file)
    through(ws, proxy)
    proxy.fault("drop", direction="down", after_bytes=700_000)

    result = run(ws)

    assert result.returncode == 3, result.stderr
    assert f"failed after {RETRIES + 1} attempts" in result.stderr
    assert ends_with_one_error(result.stderr)
    assert proxy.faults == RETRIES + 1
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["failed"]
    assert ws.rows("SELECT * FROM files") == []
    assert ws.handoff_files() == [] and manifests(ws) == []
    assert leftovers(ws) == []
    assert [p for p in (ws.state / "archive").rglob("*") if p.is_file()] == []  # no partial copy kept
    assert ws.remote_names(ws.outgoing) == [BIG_NAME]  # untouched, for the next run
    assert ws.remote_names(ws.incoming) == []

    proxy.fault("pass")  # the network is back
    result = run(ws)

    assert result.returncode == 0, result.stderr
    assert_handed_off_once_and_whole(ws, big_file)
    assert leftovers(ws) == []
    FAULT_CASES.append(
        f"cut mid-download on all {RETRIES + 1} attempts: exit 3, run failed, nothing half-done; next run ok"
    )


def test_stalled_connection_times_out_and_the_run_ends_in_bounded_time(
    proxied: tuple[Workspace, TcpProxy], big_file: bytes
) -> None:
    ws, proxy = proxied
    ws.put(BIG_NAME, big_file)
    through(ws, proxy, retries=2, timeout=1)
    proxy.fault("stall", direction="down", after_bytes=700_000)

    started = time.monotonic()
    result = run(ws, timeout=60)
    took = time.monotonic() - started

    assert result.returncode == 3, result.stderr
    assert took < 30, f"a stalled server held the run for {took:.0f}s"
    assert "failed after 3 attempts: no reply from the server within 1 s" in result.stderr
    assert "TimeoutError" not in result.stderr
    assert proxy.faults == 3  # each attempt stalled, timed out and was retried on a new connection
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["failed"]
    assert ws.handoff_files() == [] and leftovers(ws) == []
    assert ws.remote_names(ws.outgoing) == [BIG_NAME]
    FAULT_CASES.append(f"stall mid-download on every attempt (timeout 1 s, 3 attempts): exit 3 after {took:.1f}s")


def test_stall_during_the_handshake_times_out(sftp_workspace: Workspace, proxy: TcpProxy) -> None:
    ws = sftp_workspace
    ws.put_samples()
    through(ws, proxy, retries=1, timeout=1)
    proxy.fault("stall", direction="down", after_bytes=0)  # not even the server's banner gets through

    started = time.monotonic()
    result = run(ws, timeout=60)
    took = time.monotonic() - started

    assert result.returncode == 3, result.stderr
    assert took < 20, f"a silent server held the run for {took:.0f}s"
    assert "connect" in result.stderr and "failed after 2 attempts" in result.stderr
    assert ws.remote_names(ws.outgoing) != [] and ws.handoff_files() == []
    FAULT_CASES.append(f"stall before the SSH banner (timeout 1 s, 2 attempts): exit 3 after {took:.1f}s")


def test_connection_cut_mid_upload_is_retried_and_the_write_back_uploaded_once(
    sftp_workspace: Workspace, proxy: TcpProxy, big_file: bytes
) -> None:
    ws = sftp_workspace
    ws.put(BIG_NAME, big_file)
    through(ws, proxy)
    # client to server, the only large flow is the write-back upload (~0.5 MB); requests are small
    proxy.fault("drop", direction="up", after_bytes=150_000, connections=1)

    result = run(ws)

    assert result.returncode == 0, result.stderr
    assert proxy.faults == 1
    assert re.search(r"WARNING transfer: uploading \S+ on sftp:\S+: .*; retry 1 of 3 in ", result.stderr), result.stderr
    [uploaded] = ws.remote_names(ws.incoming)
    [local] = ws.rows("SELECT name, sha256, uploaded_at FROM writebacks")
    assert local["name"] == uploaded and local["uploaded_at"]
    assert sha((ws.incoming / uploaded).read_bytes()) == local["sha256"]  # the whole file, not a cut one
    ids = [r["Order Header ID"] for r in writeback_rows(ws)]
    assert len(ids) == len(set(ids)) == BIG_POS
    assert leftovers(ws) == []
    FAULT_CASES.append("cut once mid-upload (150 kB into the write-back): retried, uploaded once, hash matches")


def test_upload_failing_on_every_attempt_leaves_the_write_back_pending_for_the_next_run(
    proxied: tuple[Workspace, TcpProxy], big_file: bytes
) -> None:
    ws, proxy = proxied
    ws.put(BIG_NAME, big_file)
    through(ws, proxy, retries=1)
    proxy.fault("drop", direction="up", after_bytes=150_000)

    result = run(ws)

    assert result.returncode == 3, result.stderr
    assert "upload" in result.stderr and "failed after 2 attempts" in result.stderr
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["failed"]
    assert_handed_off_once_and_whole(ws, big_file)  # the hand-off happened and is recorded
    [pending] = ws.rows("SELECT name, uploaded_at FROM writebacks")
    assert pending["uploaded_at"] is None
    assert pending["name"] not in ws.remote_names(ws.incoming)  # no final name for a cut file (a .part may stay)

    proxy.fault("pass")
    result = run(ws)

    assert result.returncode == 0, result.stderr
    assert ws.remote_names(ws.incoming) == [pending["name"]]
    assert ws.rows("SELECT uploaded_at FROM writebacks")[0]["uploaded_at"]
    ids = [r["Order Header ID"] for r in writeback_rows(ws)]
    assert len(ids) == len(set(ids)) == BIG_POS  # every outcome once
    assert_handed_off_once_and_whole(ws, big_file)  # and nothing handed off again
    assert leftovers(ws) == []  # the cut .part was replaced by the whole file
    FAULT_CASES.append("cut mid-upload on both attempts: exit 3, write-back pending; next run uploads it once")


def test_upload_failing_on_every_attempt_leaves_no_partial_file_on_the_server(
    sftp_workspace: Workspace, proxy: TcpProxy, big_file: bytes
) -> None:
    ws = sftp_workspace
    ws.put(BIG_NAME, big_file)
    through(ws, proxy, retries=1)
    proxy.fault("drop", direction="up", after_bytes=150_000)

    result = run(ws)

    partial = [n for n in ws.remote_names(ws.incoming) if n.endswith(".part")]
    FAULT_CASES.append(f"cut mid-upload on both attempts: partial files left on the server: {len(partial)}")
    assert result.returncode == 3, result.stderr
    assert partial == []


def test_a_connection_cut_mid_download_prints_no_traceback(sftp_workspace: Workspace, proxy: TcpProxy) -> None:
    ws = sftp_workspace
    # more than paramiko's 256 read requests of 32 kB in flight: its request thread is still busy at the cut
    ws.put(BIG_NAME, os.urandom(12_000_000))
    through(ws, proxy, retries=5)
    proxy.fault("drop", direction="down", after_bytes=4_000_000)

    result = run(ws)

    dumps = result.stderr.count("Exception in thread")
    FAULT_CASES.append(f"cut 4 MB into 12 MB on all 6 attempts: exit {result.returncode}, thread tracebacks {dumps}")
    assert result.returncode == 3, result.stderr
    assert proxy.faults == 6
    assert "Traceback" not in result.stderr
