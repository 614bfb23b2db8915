"""load_config: batchsync.toml (product.md §4): paths, sources, every problem at once, secrets from the environment."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchsync.cli import cli
from batchsync.config import PASSPHRASE_ENV, PASSWORD_ENV, Config, load_config
from batchsync.errors import ConfigError
from batchsync.resources import shipped

FEEDS = """
[feeds.purchase_orders]
kind = "purchase_orders"
remote_dir = "/Outgoing/PurchaseOrders"
target = "sap_orders05"
"""


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (PASSWORD_ENV, PASSPHRASE_ENV, "SSH_AUTH_SOCK", "BATCHSYNC_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "batchsync.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def sftp_setup(tmp_path: Path) -> Path:
    conf = tmp_path / "etc" / "batchsync"
    (conf / "keys").mkdir(parents=True)
    (conf / "keys" / "id_ed25519").write_text("not a real key\n")
    (conf / "keys" / "known_hosts").write_text("sftp.example.com ssh-ed25519 AAAA\n")
    return conf


def test_local_folder_source_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "etc" / "batchsync"
    (conf / "remote").mkdir(parents=True)
    path = write_config(
        conf,
        """
        [source]
        url = "remote"
        settle_seconds = 0.5

        [local]
        state_dir = "var"
        handoff_dir = "../handoff"
        mappings_dir = "maps"
        """
        + FEEDS
        + """
        [feeds.order_header_changes]
        kind = "order_header_changes"
        remote_dir = "/Outgoing/OrderHeaderChanges/"
        pattern = "OHC_*.csv"
        target = "sap_orders05"
        after_download = "keep"
        columns = {approval = ["type", "id"]}

        [writeback]
        max_rows = 1000
        status_field = "Integration Status"
        """,
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # paths must not depend on the working directory

    config = load_config(path)

    assert isinstance(config, Config)
    assert config.source.is_local
    assert config.source.local_root == conf / "remote"
    assert config.source.settle_seconds == 0.5
    assert config.source.retries == 4  # default
    assert config.state_dir == conf / "var"
    assert config.handoff_dir == tmp_path / "etc" / "handoff"
    assert config.mappings_dir == conf / "maps"
    assert config.templates_dir.name == "templates" and config.templates_dir.is_absolute()
    po = config.feed("purchase_orders")
    assert (po.kind, po.remote_dir, po.pattern, po.target, po.after_download) == (
        "purchase_orders",
        "/Outgoing/PurchaseOrders",
        "*.csv",
        "sap_orders05",
        "archive",
    )
    assert po.remote_archive_dir == "/Outgoing/PurchaseOrders/Archive"
    ohc = config.feed("order_header_changes")
    assert (ohc.pattern, ohc.after_download, ohc.columns) == ("OHC_*.csv", "keep", {"approval": ["type", "id"]})
    assert ohc.remote_archive_dir == "/Outgoing/OrderHeaderChanges/Archive"
    assert (config.writeback.max_rows, config.writeback.max_bytes) == (1000, 8_000_000)
    assert (config.writeback.status_field, config.writeback.change_status_field) == (
        "Integration Status",
        "ERP Change Validation",
    )


def test_relative_config_path_resolves_against_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    (conf / "inbox").mkdir(parents=True)
    write_config(conf, '[source]\nurl = "inbox"\n[local]\n' + FEEDS)
    monkeypatch.chdir(tmp_path)

    config = load_config(Path("conf/batchsync.toml"))

    assert config.source.local_root == conf / "inbox"
    assert config.state_dir == conf / "var"
    assert config.handoff_dir == conf / "handoff"


def test_file_url_source(tmp_path: Path) -> None:
    inbox = tmp_path / "shared inbox"
    inbox.mkdir()
    path = write_config(tmp_path, f'[source]\nurl = "file://{inbox.as_posix().replace(" ", "%20")}"\n[local]\n' + FEEDS)

    assert load_config(path).source.local_root == inbox


def test_sftp_source_with_key_file_and_known_hosts(tmp_path: Path) -> None:
    conf = sftp_setup(tmp_path)
    path = write_config(
        conf,
        """
        [source]
        url = "sftp://coupa_integration@sftp.example.com:2222"
        key_file = "keys/id_ed25519"
        known_hosts = "keys/known_hosts"
        timeout_seconds = 10
        retries = 2

        [local]
        """
        + FEEDS,
    )

    source = load_config(path).source

    assert not source.is_local
    assert (source.host, source.port, source.username) == ("sftp.example.com", 2222, "coupa_integration")
    assert source.key_file == conf / "keys" / "id_ed25519"
    assert source.known_hosts == conf / "keys" / "known_hosts"
    assert (source.timeout_seconds, source.retries) == (10.0, 2)
    assert source.password is None and source.key_passphrase is None


def test_sftp_default_port(tmp_path: Path) -> None:
    conf = sftp_setup(tmp_path)
    path = write_config(
        conf,
        """
        [source]
        url = "sftp://coupa@sftp.example.com"
        key_file = "keys/id_ed25519"
        known_hosts = "keys/known_hosts"
        [local]
        """
        + FEEDS,
    )

    assert load_config(path).source.port == 22


def test_every_problem_is_reported_at_once_with_its_key(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
        [source]
        url = "sftp://coupa@sftp.example.com"
        password = "hunter2-in-the-file"
        settle_seconds = -1
        retries = "four"

        [local]
        state_dir = 5

        [feeds.purchase_orders]
        kind = "purchase_order"
        after_download = "move"
        wait = 3

        [writeback]
        max_rows = 6000
        max_bytes = 9000000
        colour = "red"

        [extras]
        """,
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    found = caught.value.problems
    keys = [
        "source.password",
        "source.settle_seconds",
        "source.retries",
        "source.known_hosts",
        "source.key_file",
        "local.state_dir",
        "feeds.purchase_orders.kind",
        "feeds.purchase_orders.remote_dir",
        "feeds.purchase_orders.target",
        "feeds.purchase_orders.after_download",
        "feeds.purchase_orders.wait",
        "writeback.max_rows",
        "writeback.max_bytes",
        "writeback.colour",
        "[extras]",
    ]
    for key in keys:
        assert any(p.startswith(f"{path}: {key}: ") for p in found), (key, found)
    assert all(p.startswith(f"{path}: ") for p in found)
    assert "hunter2-in-the-file" not in caught.value.message  # the refused secret is not echoed
    assert caught.value.exit_code == 2


def test_unknown_keys_in_source_and_local_are_reported(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    path = write_config(
        tmp_path,
        """
        [source]
        url = "inbox"
        settle_secs = 10
        [local]
        stat_dir = "/var/lib/batchsync"
        """
        + FEEDS,
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert f"{path}: source.settle_secs: unknown key (did you mean settle_seconds?)" in caught.value.problems
    assert f"{path}: local.stat_dir: unknown key (did you mean state_dir?)" in caught.value.problems


def test_three_problems_are_three_lines_under_the_file_named_once(tmp_path: Path) -> None:
    """The README shows this output (Configuration: when the config is wrong)."""
    (tmp_path / "inbox").mkdir()
    path = write_config(
        tmp_path,
        """
        [source]
        url = "inbox"
        settle_seconds = "abc"

        [local]
        state_dri = "var"

        [feeds.purchase_orders]
        kind = "purchase_orders"
        remote_dir = "/Outgoing/PurchaseOrders"
        target = "sap_orders5"
        """,
    )

    result = CliRunner().invoke(cli, ["--config", str(path), "run"])

    assert result.exit_code == 2
    shipped_mappings = shipped("mappings")
    assert result.stderr.splitlines() == [
        f"batchsync: error: {path}: 3 problems:",
        "  source.settle_seconds: expected a number, got 'abc'",
        "  local.state_dri: unknown key (did you mean state_dir?)",
        f"  feeds.purchase_orders.target: no mapping 'sap_orders5' in {shipped_mappings} (did you mean sap_orders05?)",
        "hint: fix the configuration and run again",
    ]


def test_password_in_the_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = sftp_setup(tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    path = write_config(
        conf,
        """
        [source]
        url = "sftp://coupa@sftp.example.com"
        known_hosts = "keys/known_hosts"
        password = "s3cret-in-file"
        [local]
        """
        + FEEDS,
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}: source.password: ")
    assert PASSWORD_ENV in caught.value.problems[0]
    assert "s3cret-in-file" not in caught.value.message


def test_password_in_the_url_is_refused_and_not_echoed(tmp_path: Path) -> None:
    conf = sftp_setup(tmp_path)
    path = write_config(
        conf,
        """
        [source]
        url = "sftp://coupa:s3cret-in-url@sftp.example.com"
        key_file = "keys/id_ed25519"
        known_hosts = "keys/known_hosts"
        [local]
        """
        + FEEDS,
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [p.split(": ")[1] for p in caught.value.problems] == ["source.url"]
    assert "s3cret-in-url" not in caught.value.message


def test_secrets_come_from_the_environment_and_never_show_in_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = sftp_setup(tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, "pw-Zq8!x")
    monkeypatch.setenv(PASSPHRASE_ENV, "pp-7Kd#y")
    path = write_config(
        conf,
        """
        [source]
        url = "sftp://coupa@sftp.example.com"
        known_hosts = "keys/known_hosts"
        [local]
        """
        + FEEDS,
    )

    config = load_config(path)  # a password alone is enough: no key_file problem

    assert config.source.password == "pw-Zq8!x"
    assert config.source.key_passphrase == "pp-7Kd#y"
    for text in (repr(config), repr(config.source), str(config)):
        assert "pw-Zq8!x" not in text and "pp-7Kd#y" not in text


def test_sftp_without_any_credential_is_refused(tmp_path: Path) -> None:
    conf = sftp_setup(tmp_path)
    path = write_config(
        conf,
        """
        [source]
        url = "sftp://coupa@sftp.example.com"
        known_hosts = "keys/known_hosts"
        [local]
        """
        + FEEDS,
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [p.split(": ")[1] for p in caught.value.problems] == ["source.key_file"]


def test_missing_files_and_folders_are_named(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
        [source]
        url = "sftp://coupa@sftp.example.com"
        key_file = "keys/missing_key"
        known_hosts = "keys/missing_known_hosts"
        [local]
        """
        + FEEDS,
    )

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    text = caught.value.message
    assert f"source.key_file: {tmp_path / 'keys' / 'missing_key'} does not exist" in text
    assert f"source.known_hosts: {tmp_path / 'keys' / 'missing_known_hosts'} does not exist" in text


def test_missing_local_source_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[source]\nurl = "nowhere"\n[local]\n' + FEEDS)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.problems == [f"{path}: source.url: local folder {tmp_path / 'nowhere'} does not exist"]


def test_not_toml(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[source\nurl = 1\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.message.startswith(f"{path}: not valid TOML")


def test_true_is_not_a_number_for_any_numeric_key(tmp_path: Path) -> None:
    """TOML's true is an int to Python: every number key refuses it, the same way."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text = f'[source]\nurl = "{inbox}"\nsettle_seconds = true\nretries = false\n[local]\n' + FEEDS
    path = write_config(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert list(caught.value.problems) == [
        f"{path}: source.settle_seconds: expected a number, got True",
        f"{path}: source.retries: expected a number, got False",
    ]
