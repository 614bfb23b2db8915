"""Start ProFTPD's mod_sftp on 127.0.0.1 with throwaway keys: a third SFTP server implementation.

Debian packages it as ``proftpd-core`` plus ``proftpd-mod-crypto`` (mod_sftp.so);
``.ci/servers.sh`` installs them in CI. Configuration per the module's
documentation (proftpd doc/contrib/mod_sftp.html): ``SFTPEngine on``, an
``SFTPHostKey`` and ``SFTPAuthorizedUserKeys`` holding the client key in RFC
4716 format (``ssh-keygen -e``). Like the OpenSSH fixture there is no chroot:
a remote absolute path is the same path on this machine. It runs in the
foreground (``-n``) as the user running the tests; the server logs stay in
its work folder.

Must not import pytest.
"""

from __future__ import annotations

import getpass
import grp
import os
import shutil
import subprocess
from pathlib import Path

from tests.sshd import HOST, SshdServer, SshdUnavailable, _free_port, _keygen, _pub_line, launch

PROFTPD_PATHS = ("/usr/sbin/proftpd", "/usr/local/sbin/proftpd")
MODULE_DIRS = ("/usr/lib/proftpd", "/usr/local/libexec/proftpd", "/usr/libexec/proftpd")


class ProftpdUnavailable(SshdUnavailable):
    """Why ProFTPD's mod_sftp cannot be started."""


ProftpdServer = SshdServer  # the same things to know about a running server


def find_proftpd() -> tuple[str, str] | None:
    """The binary and the folder holding mod_sftp.so, if both are installed."""
    binary = shutil.which("proftpd") or next((p for p in PROFTPD_PATHS if os.access(p, os.X_OK)), None)
    modules = next((d for d in MODULE_DIRS if Path(d, "mod_sftp.so").is_file()), None)
    return (binary, modules) if binary and modules else None


def start_proftpd(workdir: Path) -> ProftpdServer:
    found = find_proftpd()
    if found is None:
        raise ProftpdUnavailable("no proftpd with mod_sftp (install proftpd-core and proftpd-mod-crypto)")
    binary, modules = found
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise ProftpdUnavailable("no ssh-keygen in PATH (install openssh-client)")
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    host_key = workdir / "host_rsa"
    # PEM RSA: the host key format every mod_sftp version reads
    for stale in (host_key, Path(f"{host_key}.pub")):
        stale.unlink(missing_ok=True)
    subprocess.run([keygen, "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f", str(host_key)], check=True)
    client_key = _keygen(keygen, workdir / "client_ed25519")
    authorized = workdir / "authorized_keys"
    rfc4716 = subprocess.run([keygen, "-e", "-f", f"{client_key}.pub"], capture_output=True, text=True, check=True)
    authorized.write_text(rfc4716.stdout)
    last: ProftpdUnavailable | None = None
    for _ in range(3):  # the free port may be taken between probe and bind
        port = _free_port()
        config = _write_config(workdir, port, modules, host_key, authorized)
        try:
            process = _launch(binary, config, workdir, port)
        except ProftpdUnavailable as exc:
            last = exc
            continue
        known_hosts = workdir / "known_hosts"
        host_pub = _pub_line(host_key)
        known_hosts.write_text(f"[{HOST}]:{port} {host_pub}\n")
        return ProftpdServer(HOST, port, getpass.getuser(), client_key, known_hosts, host_pub, root, workdir, process)
    assert last is not None
    raise last


def _write_config(workdir: Path, port: int, modules: str, host_key: Path, authorized: Path) -> Path:
    user = getpass.getuser()
    group = grp.getgrgid(os.getgid()).gr_name
    lines = [
        "ServerType standalone",
        'ServerName "batchsync-test"',
        f"Port {port}",
        f"DefaultAddress {HOST}",
        "SocketBindTight on",
        "UseIPv6 off",
        f"User {user}",
        f"Group {group}",
        "RootLogin on",  # CI runs the tests as root
        "UseFtpUsers off",
        "RequireValidShell off",
        "AuthOrder mod_auth_unix.c",
        "Umask 022",
        "AllowOverwrite on",
        "WtmpLog off",
        "DelayTable none",
        "TransferLog none",
        f"PidFile {workdir / 'proftpd.pid'}",
        f"ScoreboardFile {workdir / 'proftpd.scoreboard'}",
        f"SystemLog {workdir / 'system.log'}",
        f"ModulePath {modules}",
        "LoadModule mod_sftp.c",
        "SFTPEngine on",
        f"SFTPHostKey {host_key}",
        f"SFTPAuthorizedUserKeys file:{authorized}",
        "SFTPAuthMethods publickey",
        f"SFTPLog {workdir / 'sftp.log'}",
    ]
    config = workdir / "proftpd.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


def _launch(binary: str, config: Path, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    try:
        return launch([binary, "-n", "-c", str(config)], workdir / f"proftpd-{port}.log", port, "proftpd")
    except SshdUnavailable as exc:
        raise ProftpdUnavailable(str(exc)) from None
