"""Running a target on the shipped samples, for the tests of each target (NetSuite, Oracle, one's own).

A workspace is the demo's (local folder source) or a test's sshd workspace with its feeds pointed at
the target; golden files are compared byte for byte and refreshed only with ``UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

from batchsync import pipeline
from batchsync.config import load_config
from batchsync.demo import build_workspace
from batchsync.resources import shipped
from tests.conftest import CHANGE_SAMPLE, FIXED_NOW, SAMPLES, Workspace

CHANGE_FEED = "[feeds.order_header_changes]"


def pointed_at(config: Path, target: str, *, po_feed_only: bool = False) -> Path:
    """The config with its feeds (or its PO feed alone: the change feed stays on SAP) writing ``target``."""
    head, sep, changes = config.read_text().partition(CHANGE_FEED)
    if not po_feed_only:
        changes = changes.replace('target = "sap_orders05"', f'target = "{target}"')
    config.write_text(head.replace('target = "sap_orders05"', f'target = "{target}"') + sep + changes)
    return config


def with_own_files(config: Path, mappings: dict[str, str], templates: dict[str, str]) -> Path:
    """Editable copies of the shipped mappings and templates beside the config, with these files added."""
    folder = config.parent
    for kind, files in (("mappings", mappings), ("templates", templates)):
        shutil.copytree(shipped(kind), folder / kind)
        for name, text in files.items():
            (folder / kind / name).write_text(text, encoding="utf-8")
    local = f'[local]\nmappings_dir = "{folder / "mappings"}"\ntemplates_dir = "{folder / "templates"}"\n'
    config.write_text(config.read_text().replace("[local]\n", local))
    return config


def demo_handoff(folder: Path, target: str, *, po_feed_only: bool = False) -> Path:
    """The demo's samples run once (at the tests' fixed time) with every feed (or the PO feed alone)
    writing ``target``."""
    config = load_config(pointed_at(build_workspace(folder), target, po_feed_only=po_feed_only))
    pipeline.run(config, clock=lambda: FIXED_NOW)
    return config.handoff_dir


def matches_golden(handoff: Path, golden: Path) -> list[str]:
    """Every file of the hand-off folder is its golden one, byte for byte; the golden names."""
    return files_match_golden(sorted(handoff.iterdir()), golden)


def files_match_golden(files: list[Path], golden: Path) -> list[str]:
    """These files are the golden folder's, byte for byte (``UPDATE_GOLDEN=1`` writes it from them)."""
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        golden.mkdir(parents=True)
        for path in files:
            shutil.copy(path, golden / path.name)
    names = sorted(p.name for p in golden.iterdir())
    assert sorted(p.name for p in files) == names
    for path in files:
        assert path.read_bytes() == (golden / path.name).read_bytes(), path.name
    return names


def samples_over_sshd(ws: Workspace, target: str, golden: Path) -> int:
    """The shipped samples run on the workspace's server writing ``target``; its CSV files are the golden
    bytes. Returns the run's exit code."""
    pointed_at(ws.config, target)
    for path in sorted(SAMPLES.glob("*.csv")):
        ws.put(path.name)
    ws.put_change(CHANGE_SAMPLE)
    result = ws.cli("run")
    produced = ws.handoff_files(".csv")
    assert produced == sorted(p.name for p in golden.glob("*.csv"))
    for name in produced:
        assert (ws.handoff / name).read_bytes() == (golden / name).read_bytes(), name
    return result.exit_code


def csv_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The column-name row and the rows as dicts, read by the csv module."""
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.reader(stream)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]
