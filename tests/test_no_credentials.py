"""Commands that never connect need no SFTP key or known_hosts file (issue 12).

The demo's state folder is read through a config for a real SFTP account whose key
file and known_hosts do not exist (a laptop with a copy of the state, a monitor host):
validate, status, history, errors and a dry run of reprocess work; run and check still
refuse the config, naming both files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batchsync.cli import cli
from tests.conftest import SAMPLE_B

OFFLINE_CONFIG = """\
[source]
url = "sftp://coupa@127.0.0.1:9"   # nothing listens there: any connection attempt fails
key_file = "keys/missing_ed25519"
known_hosts = "keys/missing_known_hosts"

[local]
state_dir = "var"
handoff_dir = "handoff"

[feeds.purchase_orders]
remote_dir = "/Outgoing/PurchaseOrders"
target = "sap_orders05"

[feeds.order_header_changes]
remote_dir = "/Outgoing/OrderHeaderChanges"
target = "sap_orders05"
"""


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nocreds") / "demo"
    assert _invoke("demo", str(folder)).exit_code == 0
    path = folder / "offline.toml"
    path.write_text(OFFLINE_CONFIG)
    assert not (folder / "keys").exists()
    return path


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["history"], ["errors", "--unresolved"]])
def test_ledger_views_without_key_or_known_hosts(config: Path, command: list[str]) -> None:
    result = _invoke("--config", str(config), *command)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_validate_without_key_or_known_hosts(config: Path) -> None:
    sample = config.parent / "remote" / "Outgoing" / "PurchaseOrders" / "Archive" / SAMPLE_B
    result = _invoke("validate", str(sample), "--config", str(config), "--feed", "purchase_orders")
    assert result.exit_code == 1  # PO 4206 is rejected: the file was read with the configured feed
    assert '"4206","price","number","12,50"' in result.stdout


def test_reprocess_dry_run_without_key_known_hosts_or_server(config: Path) -> None:
    ledger = config.parent / "var" / "ledger.db"
    before = ledger.read_bytes()
    result = _invoke("--config", str(config), "reprocess", "--po", "4201", "--force", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dry_run"] is True
    assert any(name.endswith(".idoc") and "reprocess" in name for name in summary["would_hand_off"])
    assert any(action.startswith("upload PurchaseOrderChange_") for action in summary["would_do"])
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("command", [["run"], ["check"], ["reprocess", "--po", "4201", "--force"]])
def test_commands_that_connect_still_need_them(config: Path, command: list[str]) -> None:
    result = _invoke("--config", str(config), *command)
    assert result.exit_code == 2
    assert "source.key_file" in result.stderr and "missing_ed25519 does not exist" in result.stderr
    assert "source.known_hosts" in result.stderr
