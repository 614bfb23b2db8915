"""Shared fixtures: a real OpenSSH sshd on 127.0.0.1, and workspaces whose source is that server."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from batchsync.cli import cli
from tests.asyncssh_server import VARIANTS, AsyncsshHost, AsyncsshListener, AsyncsshUnavailable, Behaviour
from tests.proftpd import ProftpdServer, start_proftpd
from tests.sshd import SshdServer, SshdUnavailable, start_sshd

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "remote" / "Outgoing" / "PurchaseOrders"
SAMPLE_A, SAMPLE_B, SAMPLE_C = sorted(p.name for p in SAMPLES.glob("*.csv"))
CHANGE_SAMPLES = SAMPLES.parent / "OrderHeaderChanges"
CHANGE_SAMPLE = sorted(p.name for p in CHANGE_SAMPLES.glob("*.csv"))[0]
FIXED_NOW = datetime(2026, 11, 24, 2, 0, 5, tzinfo=UTC)


# every server implementation the end-to-end tests run against
SERVERS = ["openssh", *VARIANTS, "proftpd"]
Server = SshdServer | AsyncsshListener | ProftpdServer


def unavailable(message: str) -> None:
    """Skip loudly; under CI (which installs every server) fail instead."""
    if os.environ.get("CI"):
        pytest.fail(message)  # CI must never skip the real-server tests
    pytest.skip(message)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except SshdUnavailable as exc:
        unavailable(f"SFTP TESTS NOT RUN: cannot start a real sshd: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def asyncssh_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsyncsshHost]:
    try:
        host = AsyncsshHost(tmp_path_factory.mktemp("asyncssh"))
    except AsyncsshUnavailable as exc:
        unavailable(f"ASYNCSSH SFTP TESTS NOT RUN: {exc}")
    yield host
    host.stop()


@pytest.fixture(scope="session")
def proftpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProftpdServer]:
    try:
        server = start_proftpd(tmp_path_factory.mktemp("proftpd"))
    except SshdUnavailable as exc:  # .ci/servers.sh installs it in CI
        unavailable(f"PROFTPD SFTP TESTS NOT RUN: {exc}")
    yield server
    server.stop()


@pytest.fixture
def asyncssh_listener(asyncssh_host: AsyncsshHost, tmp_path: Path) -> Iterator[AsyncsshListener]:
    """A standard asyncssh server of this test's own; ``listener.change(...)`` switches its behaviour."""
    listener = asyncssh_host.listen(tmp_path / "remote", Behaviour())
    yield listener
    listener.stop()


CONFIG = """\
[source]
url = "{url}"
key_file = "{key_file}"
known_hosts = "{known_hosts}"
settle_seconds = 0
timeout_seconds = 5
retries = 1
backoff_seconds = 0.01

[local]
state_dir = "var"
handoff_dir = "handoff"
{local_extra}

[feeds.purchase_orders]
kind = "purchase_orders"
remote_dir = "{base}Outgoing/PurchaseOrders"
pattern = "*.csv"
target = "sap_orders05"
after_download = "{after_download}"
remote_archive_dir = "{base}Outgoing/PurchaseOrders/Archive"

[feeds.order_header_changes]
kind = "order_header_changes"
remote_dir = "{base}Outgoing/OrderHeaderChanges"
pattern = "*.csv"
target = "sap_orders05"
after_download = "{after_download}"

[writeback]
remote_dir = "{writeback_base}Incoming/PurchaseOrderChanges"
status_field = "ERP Integration Status"
change_status_field = "ERP Change Validation"
"""


@dataclass
class Workspace:
    """A project folder (config, state, hand-off) and the remote tree it talks to."""

    root: Path
    remote_base: Path  # on this disk: over OpenSSH and ProFTPD the same path; else what the server serves
    server: Server | None
    base: str | None = None  # how the config names remote_base, with a final "/" (None: as remote_base)
    writeback_base: str | None = None  # the same, for the write-back folder (None: as base)

    @property
    def config(self) -> Path:
        return self.root / "batchsync.toml"

    @property
    def outgoing(self) -> Path:
        return self.remote_base / "Outgoing" / "PurchaseOrders"

    @property
    def changes(self) -> Path:
        return self.remote_base / "Outgoing" / "OrderHeaderChanges"

    @property
    def archive(self) -> Path:
        return self.outgoing / "Archive"

    @property
    def incoming(self) -> Path:
        return self.remote_base / "Incoming" / "PurchaseOrderChanges"

    @property
    def handoff(self) -> Path:
        return self.root / "handoff"

    @property
    def state(self) -> Path:
        return self.root / "var"

    def write_config(
        self, after_download: str = "archive", known_hosts: Path | None = None, local_extra: str = ""
    ) -> None:
        assert self.server is not None
        self.config.write_text(
            CONFIG.format(
                url=self.server.url,
                key_file=self.server.client_key,
                known_hosts=known_hosts or self.server.known_hosts,
                base=self._base,
                writeback_base=self.writeback_base if self.writeback_base is not None else self._base,
                after_download=after_download,
                local_extra=local_extra,
            )
        )

    @property
    def _base(self) -> str:
        return self.base if self.base is not None else f"{self.remote_base}/"

    def put(self, name: str, data: bytes | None = None, *, sample: str | None = None) -> Path:
        path = self.outgoing / name
        path.write_bytes(data if data is not None else (SAMPLES / (sample or name)).read_bytes())
        return path

    def put_change(self, name: str, data: bytes | None = None) -> Path:
        path = self.changes / name
        path.write_bytes(data if data is not None else (CHANGE_SAMPLES / name).read_bytes())
        return path

    def put_samples(self) -> None:
        for name in (SAMPLE_A, SAMPLE_B, SAMPLE_C):
            self.put(name)

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.config), *args], catch_exceptions=False)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.state / "ledger.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()

    def handoff_files(self, suffix: str = ".idoc") -> list[str]:
        return sorted(p.name for p in self.handoff.glob(f"*{suffix}")) if self.handoff.exists() else []

    def remote_names(self, folder: Path) -> list[str]:
        return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.exists() else []


def new_workspace(
    tmp_path: Path, remote_base: Path, server: Server, base: str | None = None, writeback_base: str | None = None
) -> Workspace:
    workspace = Workspace(tmp_path / "project", remote_base, server, base, writeback_base)
    workspace.root.mkdir()
    workspace.outgoing.mkdir(parents=True)
    workspace.changes.mkdir(parents=True)
    workspace.incoming.mkdir(parents=True)
    workspace.write_config()
    return workspace


@pytest.fixture
def sftp_workspace(sshd: SshdServer, tmp_path: Path) -> Iterator[Workspace]:
    base = sshd.root / tmp_path.name  # no chroot: the remote path is this path
    yield new_workspace(tmp_path, base, sshd)
    shutil.rmtree(base, ignore_errors=True)


def asyncssh_workspace(listener: AsyncsshListener, tmp_path: Path) -> Workspace:
    """The remote tree at the server's root, or, with a login folder, in it: the feeds named relative to it,
    the write-back by its absolute path."""
    login = listener.behaviour.login_dir
    if login == "/":
        return new_workspace(tmp_path, listener.root, listener, "/")
    return new_workspace(tmp_path, listener.local(login), listener, "", f"{login.rstrip('/')}/")


@pytest.fixture(params=SERVERS)
def server_workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on each server implementation: OpenSSH, every asyncssh variant, ProFTPD."""
    name = request.param
    if name in VARIANTS:
        host: AsyncsshHost = request.getfixturevalue("asyncssh_host")
        listener = host.listen(tmp_path / "remote", VARIANTS[name])
        yield asyncssh_workspace(listener, tmp_path)
        listener.stop()
        return
    server: SshdServer | ProftpdServer = request.getfixturevalue("sshd" if name == "openssh" else "proftpd")
    base = server.root / tmp_path.name
    yield new_workspace(tmp_path, base, server)
    shutil.rmtree(base, ignore_errors=True)
