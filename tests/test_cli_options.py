"""Global options work before and after the command; every option has help text (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from batchsync.cli import cli
from batchsync.errors import ConfigError


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("options") / "demo"
    assert _invoke("demo", str(folder)).exit_code == 0
    return folder / "batchsync.toml"


@pytest.mark.parametrize("command", [["status"], ["history"], ["errors", "--po", "4206"], ["status", "--json"]])
def test_config_after_the_command_is_the_config_before_it(command: list[str], demo: Path) -> None:
    before = _invoke("--config", str(demo), *command)
    after = _invoke(*command, "--config", str(demo))
    assert before.exit_code == after.exit_code == 0, after.output
    assert after.stdout == before.stdout
    assert "4206" in after.stdout or "run" in after.stdout


def test_log_options_after_the_command(demo: Path) -> None:
    result = _invoke("run", "--dry-run", "--config", str(demo), "--log-level", "info", "--log-format", "json")
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert records, result.stderr
    assert {r["level"] for r in records} >= {"info"}
    quiet = _invoke("run", "--dry-run", "--config", str(demo))  # default: warning, text
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("{")]
    assert " INFO " not in quiet.stderr


def test_the_option_after_the_command_wins(demo: Path) -> None:
    result = _invoke(
        "--log-format", "text", "--log-level", "error", "run", "--dry-run", "--config", str(demo), "--log-level",
        "info", "--log-format", "json",
    )  # fmt: skip
    assert any(line.startswith("{") for line in result.stderr.splitlines()), result.stderr


def test_debug_after_the_command_shows_the_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.toml")
    plain = _invoke("status", "--config", missing)
    assert plain.exit_code == 2
    assert "config file" in plain.stderr and "Traceback" not in plain.stderr
    debug = _invoke("status", "--config", missing, "--debug")
    assert isinstance(debug.exception, ConfigError)  # --debug lets the error through: its traceback is shown
    before = _invoke("--debug", "status", "--config", missing)
    assert isinstance(before.exception, ConfigError)


def test_version_only_on_the_top_level(demo: Path) -> None:
    top = _invoke("--version")
    assert top.exit_code == 0 and top.stdout.startswith("batchsync ")
    assert _invoke("-V").stdout == top.stdout
    misplaced = _invoke("run", "--version")
    assert misplaced.exit_code == 2 and "No such option" in misplaced.stderr
    # reprocess --version is the PO version, with the global options after it too
    replay = _invoke("reprocess", "--po", "4206", "--version", "1", "--dry-run", "--config", str(demo))
    assert replay.exit_code in (0, 1), replay.output
    assert "dry run" in replay.stdout


def _commands(group: click.Group, prefix: str = "batchsync") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = [(prefix, group)]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix} {name}")
        else:
            found.append((f"{prefix} {name}", command))
    return found


def test_every_option_has_help_text() -> None:
    missing = [
        f"{where} {'/'.join(param.opts)}"
        for where, command in _commands(cli)
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []
    assert len(_commands(cli)) >= 9  # the walk found the commands


def test_every_command_has_help_with_an_example() -> None:
    for where, command in _commands(cli)[1:]:
        assert "Example" in (command.help or ""), where
