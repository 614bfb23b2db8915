"""Key and credential problems in plain words, with their fix (issue: the person on call).

Real keys made by ssh-keygen, a real sshd, the CLI as a scheduler runs it: the message and the
hint are asserted exactly, and no library wording (PEM, cryptography, paramiko) reaches them.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CHANGE_SAMPLE, Workspace

LIBRARY_WORDS = ("Valid PEM", "cryptography", "paramiko", "Traceback", "delimiters", "Errno")


def keygen(path: Path, passphrase: str = "", kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-t", kind, "-N", passphrase, "-q", "-f", str(path)], check=True)
    return path


def check_with_key(ws: Workspace, key: Path) -> tuple[int, list[str]]:
    assert ws.server is not None
    text = ws.config.read_text().replace(str(ws.server.client_key), str(key))
    ws.config.write_text(text)
    result = ws.cli("check")
    assert not any(word in result.stderr for word in LIBRARY_WORDS), result.stderr
    return result.exit_code, [line for line in result.stderr.splitlines() if line.startswith(("batchsync:", "hint:"))]


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATCHSYNC_SFTP_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def test_a_key_protected_by_a_passphrase_without_one(sftp_workspace: Workspace, tmp_path: Path) -> None:
    key = keygen(tmp_path / "locked", "correct horse")

    code, lines = check_with_key(sftp_workspace, key)

    assert code == 2  # a person must act before any run can succeed
    assert f"key_file {key} is protected by a passphrase" in lines[0]
    assert lines[1] == "hint: set BATCHSYNC_SFTP_KEY_PASSPHRASE in the job's environment"


def test_a_wrong_passphrase(sftp_workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = keygen(tmp_path / "locked", "correct horse")
    monkeypatch.setenv("BATCHSYNC_SFTP_KEY_PASSPHRASE", "battery staple")

    code, lines = check_with_key(sftp_workspace, key)

    assert code == 2  # a person must act before any run can succeed
    assert f"the passphrase in BATCHSYNC_SFTP_KEY_PASSPHRASE does not open key_file {key}" in lines[0]
    assert lines[1].startswith("hint: check BATCHSYNC_SFTP_KEY_PASSPHRASE (`ssh-keygen -y -f")
    assert "battery staple" not in "\n".join(lines)


def test_a_public_key_given_as_key_file(sftp_workspace: Workspace, tmp_path: Path) -> None:
    key = keygen(tmp_path / "mine")
    public = key.with_name("mine.pub")

    code, lines = check_with_key(sftp_workspace, public)

    assert code == 2  # a person must act before any run can succeed
    assert f"key_file {public} is a public key" in lines[0]
    assert lines[1] == f"hint: give the private key instead (usually {key}); the server holds the public one"


def test_a_file_that_is_no_key_at_all(sftp_workspace: Workspace, tmp_path: Path) -> None:
    notes = tmp_path / "id_notes"
    notes.write_text("remember to rotate the key\n")

    code, lines = check_with_key(sftp_workspace, notes)

    assert code == 2  # a person must act before any run can succeed
    assert f"key_file {notes} is not an SSH private key (expected OpenSSH or PEM format)" in lines[0]


def test_a_key_the_server_does_not_know(sftp_workspace: Workspace, tmp_path: Path) -> None:
    key = keygen(tmp_path / "stranger")

    code, lines = check_with_key(sftp_workspace, key)

    assert code == 2  # a person must act before any run can succeed
    assert "refused our credentials (user" in lines[0] and f"key_file {key}" in lines[0]
    assert lines[1].startswith(f"hint: give the server's administrator the public key ({key}.pub) for user ")


def test_a_damaged_private_key(sftp_workspace: Workspace, tmp_path: Path) -> None:
    key = keygen(tmp_path / "damaged")
    lines = key.read_text().splitlines()  # BEGIN, base64 lines, END: blank out the private half
    body = lines[1:-1]
    key.write_text("\n".join([lines[0], body[0], *["A" * len(b) for b in body[1:]], lines[-1]]) + "\n")
    assert subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True).returncode != 0

    code, lines = check_with_key(sftp_workspace, key)

    assert code == 2  # a person must act before any run can succeed
    assert lines[0].endswith(
        f"key_file {key} is a private key of a type or format batchsync cannot use, or it is damaged"
    )


def test_a_host_name_that_does_not_resolve_is_said_at_once_not_retried(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.config.write_text(ws.config.read_text().replace("127.0.0.1", "no-such-host.invalid", 1))

    result = ws.cli("--log-level", "info", "run")

    assert result.exit_code == 2  # a person must fix the URL or the DNS: no later run can succeed
    assert "the host name 'no-such-host.invalid' is not known" in result.stderr
    assert "hint: check the host name in source.url (and the machine's DNS)" in result.stderr
    assert "retry" not in result.stderr


def test_a_server_that_refuses_connections_is_said_per_attempt_and_once_at_the_end(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    assert ws.server is not None
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    ws.config.write_text(ws.config.read_text().replace(f":{ws.server.port}", f":{closed}", 1))

    result = ws.cli("run")

    assert result.exit_code == 3  # the server may come back: a later run can succeed
    server = f"sftp://{ws.server.username}@127.0.0.1:{closed}"
    retry = f"connecting to {server}: the connection was refused (is the server running, and is the port right?)"
    assert f"{retry}; retry 1 of 1 in 0.01 s" in result.stderr  # said by default, with the wait before the next
    assert (
        f"batchsync: error: connecting to {server} failed after 2 attempts: the connection was refused" in result.stderr
    )
    assert result.stderr.count(server) == 2  # the URL named once per line


def test_a_missing_remote_folder_is_exit_2_from_run_as_from_check(sftp_workspace: Workspace) -> None:
    """A person must create the folder or fix remote_dir: the same code from every command."""
    ws = sftp_workspace
    ws.config.write_text(ws.config.read_text().replace("Outgoing/PurchaseOrders", "Outgoing/PurchaseOrdres", 1))
    ws.put_change(CHANGE_SAMPLE)

    run = ws.cli("run")
    check = ws.cli("check")

    assert (run.exit_code, check.exit_code) == (2, 2), (run.output, check.output)
    assert "remote folder " in run.stderr and "Outgoing/PurchaseOrdres does not exist on sftp://" in run.stderr
    assert "order_header_changes: 1 file(s) processed" in run.stdout  # the other feed still ran
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["errored"]
