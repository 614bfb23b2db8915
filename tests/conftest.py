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
from tests.sshd import SshdServer, SshdUnavailable, start_sshd

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "remote" / "Outgoing" / "PurchaseOrders"
SAMPLE_A, SAMPLE_B, SAMPLE_C = sorted(p.name for p in SAMPLES.glob("*.csv"))
CHANGE_SAMPLES = SAMPLES.parent / "OrderHeaderChanges"
CHANGE_SAMPLE = sorted(p.name for p in CHANGE_SAMPLES.glob("*.csv"))[0]
FIXED_NOW = datetime(2026, 11, 24, 2, 0, 5, tzinfo=UTC)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except SshdUnavailable as exc:
        message = f"SFTP TESTS NOT RUN: cannot start a real sshd: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must never skip the real-server tests
        pytest.skip(message)
    yield server
    server.stop()


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
remote_dir = "{base}/Outgoing/PurchaseOrders"
pattern = "*.csv"
target = "sap_orders05"
after_download = "{after_download}"
remote_archive_dir = "{base}/Outgoing/PurchaseOrders/Archive"

[feeds.order_header_changes]
kind = "order_header_changes"
remote_dir = "{base}/Outgoing/OrderHeaderChanges"
pattern = "*.csv"
target = "sap_orders05"
after_download = "{after_download}"

[writeback]
remote_dir = "{base}/Incoming/PurchaseOrderChanges"
status_field = "ERP Integration Status"
change_status_field = "ERP Change Validation"
"""


@dataclass
class Workspace:
    """A project folder (config, state, hand-off) and the remote tree it talks to."""

    root: Path
    remote_base: Path  # over SFTP the same path; for a local source, the source root
    server: SshdServer | None

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
                base=self.remote_base,
                after_download=after_download,
                local_extra=local_extra,
            )
        )

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


@pytest.fixture
def sftp_workspace(sshd: SshdServer, tmp_path: Path) -> Iterator[Workspace]:
    base = sshd.root / tmp_path.name  # no chroot: the remote path is this path
    workspace = Workspace(tmp_path / "project", base, sshd)
    workspace.root.mkdir()
    workspace.outgoing.mkdir(parents=True)
    workspace.changes.mkdir(parents=True)
    workspace.incoming.mkdir(parents=True)
    workspace.write_config()
    yield workspace
    shutil.rmtree(base, ignore_errors=True)
