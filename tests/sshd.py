"""Start a real OpenSSH sshd on 127.0.0.1 with throwaway keys.

Used by the SFTP tests and the benchmarks, so it must not import pytest. The
server has no chroot: a remote absolute path is the same path on this machine,
and ``root`` is simply a folder meant to hold the "remote" tree.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin")


class SshdUnavailable(Exception):
    """Why a test sshd cannot be started (binary missing, start failed, ...)."""


@dataclass
class SshdServer:
    """A running SFTP server process (OpenSSH here; tests/proftpd.py starts ProFTPD as one too)."""

    host: str
    port: int
    username: str
    client_key: Path
    known_hosts: Path
    host_key_pub: str
    root: Path
    workdir: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def find_sshd() -> str | None:
    # sshd refuses to re-exec itself unless started by absolute path.
    found = shutil.which("sshd")
    if found:
        return os.path.abspath(found)
    for folder in _SBIN_DIRS:
        candidate = Path(folder, "sshd")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def start_sshd(workdir: Path) -> SshdServer:
    sshd = find_sshd()
    if sshd is None:
        raise SshdUnavailable("no sshd in PATH, /usr/sbin or /usr/local/sbin (install openssh-server)")
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise SshdUnavailable("no ssh-keygen in PATH (install openssh-client)")
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    host_key = _keygen(keygen, workdir / "host_ed25519")
    client_key = _keygen(keygen, workdir / "client_ed25519")
    authorized = workdir / "authorized_keys"
    authorized.write_text(_pub_line(client_key) + "\n")
    if os.geteuid() == 0:
        # sshd insists on its privilege-separation folder when running as root.
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    last: SshdUnavailable | None = None
    for _ in range(3):  # the free port may be taken between probe and bind
        port = _free_port()
        config = _write_config(sshd, workdir, port, host_key, authorized)
        try:
            process = _launch(sshd, config, workdir, port)
        except SshdUnavailable as exc:
            last = exc
            if "Address already in use" not in str(exc):
                raise
            continue
        host_pub = _pub_line(host_key)
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[{HOST}]:{port} {host_pub}\n")
        return SshdServer(
            host=HOST,
            port=port,
            username=getpass.getuser(),
            client_key=client_key,
            known_hosts=known_hosts,
            host_key_pub=host_pub,
            root=root,
            workdir=workdir,
            process=process,
        )
    assert last is not None
    raise last


def _keygen(keygen: str, path: Path) -> Path:
    for stale in (path, Path(f"{path}.pub")):
        stale.unlink(missing_ok=True)
    result = subprocess.run(
        [keygen, "-t", "ed25519", "-N", "", "-q", "-C", "batchsync-test", "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SshdUnavailable(f"ssh-keygen failed: {result.stderr.strip()}")
    return path


def _pub_line(private_key: Path) -> str:
    """``TYPE BASE64`` of a key, without the comment."""
    kind, blob = Path(f"{private_key}.pub").read_text().split()[:2]
    return f"{kind} {blob}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _write_config(sshd: str, workdir: Path, port: int, host_key: Path, authorized: Path) -> Path:
    lines = [
        f"ListenAddress {HOST}",
        f"Port {port}",
        f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp",
        "StrictModes no",
        "UsePAM no",
        f"PidFile {workdir / 'sshd.pid'}",
        "LogLevel VERBOSE",
    ]
    config = workdir / "sshd_config"
    # OpenSSH >= 9.8 blocks a source address after failed logins, which would
    # make the tests depend on their order; older versions reject the keyword.
    config.write_text("\n".join([*lines, "PerSourcePenalties no"]) + "\n")
    check = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        config.write_text("\n".join(lines) + "\n")
    return config


def _launch(sshd: str, config: Path, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    return launch([sshd, "-D", "-e", "-f", str(config)], workdir / f"sshd-{port}.log", port, "sshd")


def launch(argv: list[str], log_path: Path, port: int, what: str) -> subprocess.Popen[bytes]:
    """Start a server in the foreground and wait until it accepts connections on ``port``."""
    # A log file, not a pipe: nobody reads the pipe, and a full one blocks the server.
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SshdUnavailable(f"{what} exited with {process.returncode}: {_tail(log_path)}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait(timeout=5)
    waited = f"{START_TIMEOUT:g}s"
    raise SshdUnavailable(f"{what} did not accept connections on port {port} within {waited}: {_tail(log_path)}")


def _tail(log_path: Path) -> str:
    text = log_path.read_text(errors="replace").strip()
    return " | ".join(text.splitlines()[-10:]) or "(no output)"
