"""Progress on the long parts (issue 14): bytes while a file downloads, documents while it is mapped, for
one file as for many; on a terminal only. Real sshd."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from batchsync import pipeline, progress
from batchsync.config import load_config
from tests.conftest import Workspace
from tests.test_run_sftp import SAMPLE_A


def test_one_file_reports_its_bytes_and_then_its_documents(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    size = ws.put(SAMPLE_A).stat().st_size
    meter = progress.Recorder()

    pipeline.run(load_config(ws.config), meter=meter)

    [handed] = ws.rows("SELECT count(*) AS n FROM po_versions WHERE outcome = 'handed_off'")
    assert meter.tasks == [
        (f"downloading {SAMPLE_A}", size, size),
        (f"{SAMPLE_A}: {handed['n']} document(s)", handed["n"], handed["n"]),
    ]


def test_the_bar_is_drawn_on_a_terminal_and_nowhere_else(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put(SAMPLE_A)
    leader, follower = pty.openpty()
    run = subprocess.run(
        [sys.executable, "-m", "batchsync", "--config", str(ws.config), "run"],
        stdout=subprocess.PIPE, stderr=follower, cwd=ws.root, check=False,
    )  # fmt: skip
    os.close(follower)
    drawn = b""
    try:
        while chunk := os.read(leader, 65536):
            drawn += chunk
    except OSError:  # the terminal's other end is closed: all is read
        pass
    os.close(leader)
    assert run.returncode == 0, run.stdout
    assert f"downloading {SAMPLE_A}".encode() in drawn and b"100%" in drawn
    assert f"{SAMPLE_A}: ".encode() in drawn and b"document(s)" in drawn

    ws.put("OrderHeader_20261123_030000Z.csv")
    quiet = ws.cli("run")  # stderr is no terminal here, as under cron
    assert "downloading" not in quiet.output and "%" not in quiet.output
