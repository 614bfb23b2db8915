"""``batchsync init`` and the mapping-language version (issue 12)."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batchsync.cli import cli
from batchsync.errors import ConfigError
from batchsync.kinds import layout_for
from batchsync.mapping import load_mapping
from batchsync.mapping_version import CURRENT
from tests.sshd import SshdServer

ROOT = Path(__file__).resolve().parent.parent


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _readme_config_keys() -> list[str]:
    """Every key of the README's configuration table (`a.b`, `a.b`, `.c` cells expanded)."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration (`batchsync.toml`)", 1)[1].split("\n## ", 1)[0]
    keys = []
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        cell = row.split("|")[1]
        names = re.findall(r"`([^`]+)`", cell)
        prefix = names[0].rsplit(".", 1)[0]
        keys += [names[0]] + [prefix + n if n.startswith(".") else n for n in names[1:]]
    return keys


def test_init_writes_a_project(tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    result = _invoke("init", str(folder))
    assert result.exit_code == 0, result.output
    for name in ("var", "handoff", "keys"):
        assert (folder / name).is_dir()
    assert (folder / "var").stat().st_mode & 0o777 == 0o700
    for shipped in (ROOT / "mappings").rglob("*"):
        if shipped.is_file():
            copy = folder / "mappings" / shipped.relative_to(ROOT / "mappings")
            assert copy.read_bytes() == shipped.read_bytes()
    assert (folder / "mappings" / "xref" / "suppliers.csv").is_file()
    assert {p.name for p in (folder / "templates").iterdir()} == {p.name for p in (ROOT / "templates").iterdir()}
    config = tomllib.loads((folder / "batchsync.toml").read_text())
    assert config["local"]["mappings_dir"] == "mappings"
    assert config["source"]["url"].startswith("sftp://")
    for step in ("ssh-keyscan", "ssh-keygen -lf", "id_rsa", "check"):
        assert step in result.stdout
    # the choice between SAP's purchasing BAPIs and ORDERS05, in the config and in the next steps
    assert "sap_pordcr1" in result.stdout and "sap_pordcr1" in (folder / "batchsync.toml").read_text()


def test_the_config_names_every_key_of_the_readme(tmp_path: Path) -> None:
    assert _invoke("init", str(tmp_path)).exit_code == 0
    text = (tmp_path / "batchsync.toml").read_text()
    keys = _readme_config_keys()
    assert len(keys) >= 25  # the README table was found and read
    missing = []
    for key in keys:
        section, _, name = key.partition(".")
        name = name.replace("NAME.", "").replace("columns.<record>", "columns")
        if not re.search(rf"^#? ?{re.escape(name)} = ", text, re.M) or f"[{section}" not in text:
            missing.append(key)
    assert missing == []


def test_init_never_overwrites(tmp_path: Path) -> None:
    assert _invoke("init", str(tmp_path)).exit_code == 0
    mine = b'[source]\nurl = "sftp://me@host"\n'
    (tmp_path / "batchsync.toml").write_bytes(mine)
    (tmp_path / "mappings" / "sap_orders05.yaml").write_text("# my edits\n")
    (tmp_path / "templates" / "sap_ordchg.txt.j2").unlink()
    again = _invoke("init", str(tmp_path))
    assert again.exit_code == 0
    assert (tmp_path / "batchsync.toml").read_bytes() == mine
    assert (tmp_path / "mappings" / "sap_orders05.yaml").read_text() == "# my edits\n"
    assert f"left alone {tmp_path / 'batchsync.toml'}" in again.stdout
    assert f"left alone {tmp_path / 'mappings' / 'sap_orders05.yaml'}" in again.stdout
    assert f"wrote      {tmp_path / 'templates' / 'sap_ordchg.txt.j2'}" in again.stdout  # restored


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    result = _invoke("init", str(tmp_path / "x"))
    assert result.exit_code == 2 and "is a file" in result.stderr


def test_config_not_found_mentions_init(tmp_path: Path) -> None:
    result = _invoke("--config", str(tmp_path / "none.toml"), "check")
    assert result.exit_code == 2
    assert "batchsync init" in result.stderr


def point_at_sshd(folder: Path, sshd: SshdServer, base: Path) -> Path:
    """What a user does after init: the account's URL and folders, the key file, the checked host key."""
    for remote in ("Outgoing/PurchaseOrders", "Outgoing/OrderHeaderChanges", "Incoming/PurchaseOrderChanges"):
        (base / remote).mkdir(parents=True)  # no chroot: the remote path is this path
    (folder / "keys" / "id_rsa").write_bytes(sshd.client_key.read_bytes())
    (folder / "keys" / "id_rsa").chmod(0o600)
    (folder / "keys" / "known_hosts").write_bytes(sshd.known_hosts.read_bytes())
    config = folder / "batchsync.toml"
    text = config.read_text().replace("sftp://CHANGE-ME@CHANGE-ME.example.com:22", sshd.url)
    text = text.replace('"/Outgoing/', f'"{base}/Outgoing/').replace('"/Incoming/', f'"{base}/Incoming/')
    config.write_text(text)
    return config


@pytest.mark.sshd
def test_init_edit_check_against_sshd(sshd: SshdServer, tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    assert _invoke("init", str(folder)).exit_code == 0
    config = point_at_sshd(folder, sshd, sshd.root / tmp_path.name)
    result = _invoke("--config", str(config), "check")
    assert result.exit_code == 0, result.output
    assert "2 feed(s), mappings and templates compile" in result.stdout
    assert str(folder / "mappings") not in result.output  # no mapping problem
    assert "all folders present and writable" in result.stdout


# ---------------------------------------------------------------- mapping_version


def _mapping(tmp_path: Path, version_line: str | None) -> Path:
    folder = tmp_path / "mappings"
    (folder / "xref").mkdir(parents=True)
    (folder / "xref" / "suppliers.csv").write_bytes((ROOT / "mappings" / "xref" / "suppliers.csv").read_bytes())
    text = (ROOT / "mappings" / "sap_orders05.yaml").read_text()
    shipped_line = re.search(r"^mapping_version: .*$", text, re.M)
    assert shipped_line, "the shipped mapping declares its version"
    text = text.replace(shipped_line.group(0) + "\n", "" if version_line is None else version_line + "\n")
    (folder / "sap_orders05.yaml").write_text(text)
    return folder


def test_shipped_mappings_declare_the_current_version() -> None:
    for path in (ROOT / "mappings").glob("*.yaml"):
        assert re.search(rf"^mapping_version: {CURRENT}\b", path.read_text(), re.M), path


def test_a_newer_mapping_says_what_to_do(tmp_path: Path) -> None:
    folder = _mapping(tmp_path, f"mapping_version: {CURRENT + 1}")
    with pytest.raises(ConfigError) as caught:
        load_mapping(folder, "sap_orders05", layout_for("purchase_orders"))
    message = caught.value.message
    assert f"sap_orders05.yaml: mapping_version: {CURRENT + 1} is newer" in message
    assert "upgrade batchsync" in message


@pytest.mark.parametrize("bad", ["mapping_version: 0", "mapping_version: one", "mapping_version: 1.5"])
def test_an_unknown_version_says_what_to_write(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(_mapping(tmp_path, bad), "sap_orders05", layout_for("purchase_orders"))
    assert "is not a version of the mapping language; write `mapping_version: 1`" in caught.value.message


def test_a_mapping_without_version_is_read_as_1_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="batchsync.mapping"):
        mapping = load_mapping(_mapping(tmp_path, None), "sap_orders05", layout_for("purchase_orders"))
    assert mapping.records
    assert "no mapping_version; read as version 1 (add the line `mapping_version: 1` at the top)" in caplog.text
