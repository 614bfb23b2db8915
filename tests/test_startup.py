"""The short commands start at once: they never import polars, pandera, paramiko or jinja2 (issue 12).

``--help`` and ``--version`` do not even import sqlite-utils.

Each command runs in a fresh interpreter, which then reports which of the heavy
libraries ended up in ``sys.modules``. The timings themselves live in bench/ (S5).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchsync.cli import cli
from batchsync.resources import shipped
from tests.conftest import Workspace

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
        ["prune", "--dry-run"],
    ],
)
def test_short_commands_import_no_heavy_library(args: list[str], demo_config: Path) -> None:
    needs_config = args[0] in ("status", "history", "errors", "prune")
    report = _probe(["--config", str(demo_config), *args] if needs_config else args, demo_config.parent)
    assert report["code"] in (0, None)
    # the ledger commands read SQLite with plain SQL: sqlite-utils is for the writes of a run's work
    assert report["heavy"] == []


def test_the_probe_sees_a_heavy_import(demo_config: Path) -> None:
    """The check above could fail: validate needs polars and pandera, and the probe reports them."""
    sample = next((demo_config.parent / "remote" / "Outgoing" / "PurchaseOrders" / "Archive").glob("*.csv"))
    report = _probe(["validate", str(sample)], demo_config.parent)
    assert {"polars", "pandera"} <= {m.split(".")[0] for m in report["heavy"]}  # type: ignore[attr-defined]


def test_a_run_with_nothing_to_do_compiles_nothing_and_a_broken_mapping_still_stops_a_fetch(
    sftp_workspace: Workspace,
) -> None:
    """Mappings are compiled when a run first has a file to fetch (feeds.py): a scheduler's empty runs
    import no polars, pandera or jinja2, and a mapping broken meanwhile still stops the run before the
    file is fetched (exit 2), the file left on the server and out of the ledger."""
    ws = sftp_workspace
    ws.put("OrderHeader_20261123_020000Z.csv")
    assert ws.cli("run").exit_code == 0  # the ledger knows the file now; it stays remote (after_download)

    report = _probe(["--config", str(ws.config), "run"], ws.root)
    assert report["code"] in (0, None)
    assert {m.split(".")[0] for m in report["heavy"]} == {"paramiko"}  # type: ignore[attr-defined]

    broken = ws.root / "mappings"
    shutil.copytree(shipped("mappings"), broken)
    mapping = broken / "sap_orders05.yaml"
    mapping.write_text(mapping.read_text(encoding="utf-8").replace("source: supplier-name", "source: supplier-nmae"))
    ws.config.write_text(ws.config.read_text().replace("[local]\n", f'[local]\nmappings_dir = "{broken}"\n', 1))
    assert ws.cli("run").exit_code == 0  # nothing new: nothing compiled, nothing to say
    ws.put("OrderHeader_20261123_030000Z.csv")
    result = ws.cli("run")
    assert result.exit_code == 2 and "supplier-nmae" in result.output
    assert [r["name"] for r in ws.rows("SELECT name FROM files")] == ["OrderHeader_20261123_020000Z.csv"]
    assert (ws.outgoing / "OrderHeader_20261123_030000Z.csv").exists()
