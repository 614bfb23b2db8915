"""The wheel, installed into a fresh venv and run from an empty folder far from the checkout (issue 12).

The wheel is built from a copy of the checkout (pip wheel --no-deps, as CI does) and
installed into a venv of its own. That venv reaches the dev venv's dependencies
through one .pth line, so polars, paramiko and the rest need not be installed again;
batchsync itself, its mappings, templates and samples come from the wheel only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.sshd import SshdServer
from tests.test_init import point_at_sshd

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("mappings", "templates", "samples")
_SKIP = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def _ignore(folder: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _SKIP or n.endswith(".egg-info")}
    if Path(folder) == ROOT / "bench":
        skip.add("data")  # generated benchmark data
    return skip


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("batchsync-*.whl"))


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fresh venv's bin/ folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the dependencies only: the dev venv's own .pth files (the editable batchsync) are not read from here
    (Path(site) / "dev_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BATCHSYNC_CONFIG")}
    return subprocess.run(
        [str(bin_dir / "batchsync"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_wheel_holds_every_shipped_file_byte_for_byte(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = {n.removeprefix("batchsync/_data/"): zf.read(n) for n in zf.namelist() if "/_data/" in n}
    in_repo = {
        str(p.relative_to(ROOT)): p.read_bytes()
        for folder in SHIPPED
        for p in sorted((ROOT / folder).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sorted(in_wheel) == sorted(in_repo)
    assert in_wheel == in_repo
    assert any(name.startswith("mappings/xref/") for name in in_wheel)


def test_installed_runs_from_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run(
        [str(installed / "python"), "-c", "import batchsync, batchsync.resources as r; print(batchsync.__file__);"
         "print(r.shipped('mappings'))"],
        cwd=empty, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(w.startswith(str(installed.parent)) for w in where), where
    assert _run(installed, empty, "--version").stdout.strip() == f"batchsync {version('batchsync')}"
    assert _run(installed, empty, "-V").stdout.strip() == f"batchsync {version('batchsync')}"
    module = subprocess.run(
        [str(installed / "python"), "-m", "batchsync", "--help"], cwd=empty, capture_output=True, text=True
    )
    assert module.returncode == 0 and "Usage: batchsync" in module.stdout
    demo = _run(installed, empty, "demo", "d")
    assert demo.returncode == 0, demo.stderr
    assert "7 PO(s) handed off, 2 rejected, 1 duplicate" in demo.stdout
    assert len(list((empty / "d" / "handoff").glob("*.idoc"))) == 4  # 3 PO files and 1 change file
    sample = empty / "d" / "remote" / "Outgoing" / "PurchaseOrders" / "Archive" / "OrderHeader_20261123_030000Z.csv"
    checked = _run(installed, empty, "validate", str(sample))
    assert checked.returncode == 1  # documented: PO 4206's price "12,50" is rejected
    assert '"4206","price","number","12,50"' in checked.stdout


@pytest.mark.sshd
def test_installed_checks_and_runs_against_sshd(installed: Path, sftp_workspace: Workspace, tmp_path: Path) -> None:
    ws = sftp_workspace
    ws.put_samples()
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    check = _run(installed, empty, "--config", str(ws.config), "check")
    assert check.returncode == 0, check.stderr
    assert "mappings and templates compile" in check.stdout and "host key known" in check.stdout
    run = _run(installed, empty, "--config", str(ws.config), "run", "--json")
    assert run.returncode == 1, run.stderr  # errored: the samples hold POs that must be rejected
    summary = json.loads(run.stdout)
    assert summary["feeds"][0]["counts"]["handed_off"] == 7
    assert len(ws.handoff_files()) == 3


@pytest.mark.sshd
def test_installed_init_then_check_against_sshd(installed: Path, sshd: SshdServer, tmp_path: Path) -> None:
    """The issue's "done when": from an empty folder, init acme, edit the config, check."""
    empty = tmp_path / "empty"
    empty.mkdir()
    init = _run(installed, empty, "init", "acme")
    assert init.returncode == 0, init.stderr
    assert "ssh-keyscan" in init.stdout
    config = point_at_sshd(empty / "acme", sshd, sshd.root / tmp_path.name)
    check = _run(installed, empty, "--config", "acme/batchsync.toml", "check")
    assert check.returncode == 0, check.stderr
    assert config.is_file() and "all folders present and writable" in check.stdout
