"""The short commands start at once: they never import polars, pandera, paramiko or jinja2 (issue 12).

``--help`` and ``--version`` do not even import sqlite-utils.

Each command runs in a fresh interpreter, which then reports which of the heavy
libraries ended up in ``sys.modules``. The timings themselves live in bench/ (S5).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchsync.cli import cli

HEAVY = ("polars", "pandera", "paramiko", "jinja2", "sqlite_utils")
PROBE = """\
import json, sys
from batchsync.cli import main
sys.argv = ["batchsync", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))
""" % (HEAVY,)  # noqa: UP031


def _probe(args: list[str], cwd: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("startup") / "demo"
    result = CliRunner().invoke(cli, ["demo", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder / "batchsync.toml"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["-V"],
        ["run", "--help"],
        ["status"],
        ["status", "--json"],
        ["history"],
        ["errors", "--unresolved"],
    ],
)
def test_short_commands_import_no_heavy_library(args: list[str], demo_config: Path) -> None:
    needs_config = args[0] in ("status", "history", "errors")
    report = _probe(["--config", str(demo_config), *args] if needs_config else args, demo_config.parent)
    assert report["code"] in (0, None)
    # the ledger commands read SQLite through sqlite-utils; nothing else needs it
    roots = {m.split(".")[0] for m in report["heavy"]}  # type: ignore[attr-defined]
    assert roots == ({"sqlite_utils"} if needs_config else set())


def test_the_probe_sees_a_heavy_import(demo_config: Path) -> None:
    """The check above could fail: validate needs polars and pandera, and the probe reports them."""
    sample = next((demo_config.parent / "remote" / "Outgoing" / "PurchaseOrders" / "Archive").glob("*.csv"))
    report = _probe(["validate", str(sample)], demo_config.parent)
    assert {"polars", "pandera"} <= {m.split(".")[0] for m in report["heavy"]}  # type: ignore[attr-defined]
