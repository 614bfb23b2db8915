"""A target of several files (``outputs:``): one hand-off, its manifest listing every file, the ledger
recording them, and a run killed mid-render or after the hand-off leaving each file exactly once."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from batchsync.config import load_config
from batchsync.demo import build_workspace
from batchsync.errors import ConfigError
from batchsync.kinds.purchase_orders.layout import LAYOUT as PO_LAYOUT
from batchsync.mapping import load_mapping
from tests.targets import pointed_at, with_own_files
from tests.test_idoc_layout import SAMPLES, source_pos

HEADERS = [{"name": "PO", "source": "id"}, {"name": "VERSION", "source": "version"}]
LINES = [{"name": "PO", "source": "header.id"}, {"name": "LINE", "source": "line-number"}]
MAPPING = {
    "mapping_version": 1,
    "target": "two_files",
    "kind": "purchase_orders",
    "outputs": [
        {"name": "headers", "template": "two_headers.csv.j2", "extension": "csv", "records": ["HDR"]},
        {"name": "lines", "template": "two_lines.csv.j2", "extension": "csv", "records": ["LINE"]},
    ],
    "records": [
        {"name": "HDR", "level": "header", "layout": "csv", "header_row": True, "fields": HEADERS},
        {"name": "LINE", "level": "line", "layout": "csv", "header_row": True, "fields": LINES},
    ],
}
TEMPLATES = {
    "two_headers.csv.j2": "{% for doc in documents -%}\n{{ doc.HDR }}\n{% endfor %}",
    "two_lines.csv.j2": "{% for doc in documents -%}\n"
    "{% if doc.line_records %}{{ doc.line_records }}\n{% endif %}{% endfor %}",
}


def _workspace(folder: Path, mapping: dict | None = None) -> Path:
    config = pointed_at(build_workspace(folder), "two_files", po_feed_only=True)
    return with_own_files(config, {"two_files.yaml": yaml.safe_dump(mapping or MAPPING, sort_keys=False)}, TEMPLATES)


def _run(config: Path, kill_at: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "BATCHSYNC_TEST_KILL_AT"}
    if kill_at:
        env["BATCHSYNC_TEST_KILL_AT"] = kill_at
    command = [sys.executable, "-m", "batchsync", "--config", str(config), "run"]
    return subprocess.run(command, env=env, capture_output=True, timeout=120).returncode


def _check_handoff(config: Path) -> None:
    handoff = load_config(config).handoff_dir
    manifests = sorted(handoff.glob("*.two_files.csv.manifest.json"))
    assert len(manifests) == 3  # the three PO files of the samples
    assert not list(handoff.glob(".*"))  # no temporary left
    pos = source_pos(SAMPLES)
    db = sqlite3.connect(load_config(config).state_dir / "ledger.db")
    recorded = dict(db.execute("SELECT name, outputs FROM handoffs WHERE target = 'two_files'").fetchall())
    for path in manifests:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        (output,) = manifest["outputs"]
        assert output["file"] == manifest["file"].replace(".two_files.csv", ".two_files.lines.csv")
        for entry in (manifest, output):
            data = (handoff / entry["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        assert json.loads(recorded[manifest["file"]]) == [output["file"]]
        sent = [(str(d["id"]), str(d["version"])) for d in manifest["documents"]]
        with (handoff / manifest["file"]).open(encoding="utf-8", newline="") as stream:
            assert [tuple(r) for r in csv.reader(stream)] == [("PO", "VERSION"), *sent]
        with (handoff / output["file"]).open(encoding="utf-8", newline="") as stream:
            rows = list(csv.reader(stream))
        expected = [(po, line["line-number"]) for po, v in sent for line in pos[(po, v)]["lines"]]  # type: ignore[index]
        assert [tuple(r) for r in rows] == [("PO", "LINE"), *expected]
    # every file of the folder is one some manifest names: nothing written twice under another name
    named = {json.loads(p.read_text())["file"] for p in handoff.glob("*.manifest.json")}
    named |= {o["file"] for p in handoff.glob("*.manifest.json") for o in json.loads(p.read_text()).get("outputs", [])}
    assert {p.name for p in handoff.iterdir() if not p.name.endswith(".manifest.json")} == named


def test_a_target_of_two_files_hands_both_off_under_one_manifest(tmp_path: Path) -> None:
    config = _workspace(tmp_path / "ws")

    assert _run(config) == 1  # the samples' rejected POs

    _check_handoff(config)


@pytest.mark.parametrize("kill_at", ["mid-render:2", "after-handoff:2"])
def test_a_run_killed_while_handing_off_leaves_every_file_once(tmp_path: Path, kill_at: str) -> None:
    config = _workspace(tmp_path / "ws")

    assert _run(config, kill_at) < 0  # killed by its own signal
    assert _run(config) == 1

    _check_handoff(config)


def test_each_output_ends_its_lines_as_declared(tmp_path: Path) -> None:
    """line_ending: crlf on the mapping, lf on one output: each file keeps its own, the manifest's
    hashes are of the bytes written, and the csv module reads the same rows from both."""
    outputs = [{**MAPPING["outputs"][0], "line_ending": "lf"}, MAPPING["outputs"][1]]  # type: ignore[index]
    config = _workspace(tmp_path / "ws", {**MAPPING, "line_ending": "crlf", "outputs": outputs})

    assert _run(config) == 1

    _check_handoff(config)
    handoff = load_config(config).handoff_dir
    lines = [p.read_bytes() for p in handoff.glob("*.two_files.lines.csv")]
    heads = [p.read_bytes() for p in handoff.glob("*.two_files.csv")]
    assert lines and all(b.count(b"\r\n") == b.count(b"\n") > 1 for b in lines)  # every line CR LF
    assert heads and all(b"\r" not in b and b.count(b"\n") > 1 for b in heads)  # this output's own: LF


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"template": "x.j2"}, "template: give template and extension, or outputs, not both"),
        (
            {"outputs": [{"name": "a", "template": "t.j2", "records": ["NOPE"]}]},
            "outputs[0].records: no record named 'NOPE'",
        ),
        ({"outputs": [{"name": "A B", "template": "t.j2"}]}, "outputs[0].name: expected lower-case letters"),
        ({"line_ending": "cr"}, "line_ending: 'cr' is not lf or crlf"),
        (
            {"outputs": [{"name": "a", "template": "t.j2", "line_ending": "windows"}]},
            "outputs[0].line_ending: 'windows' is not",
        ),
        (
            {"outputs": [{"name": "a", "template": "t.j2"}, {"name": "a", "template": "u.j2"}]},
            "outputs: 'a' names two outputs",
        ),
    ],
)
def test_outputs_are_checked_when_the_mapping_loads(tmp_path: Path, change: dict, problem: str) -> None:
    folder = tmp_path / "mappings"
    (folder / "xref").mkdir(parents=True)
    (folder / "two_files.yaml").write_text(yaml.safe_dump({**MAPPING, **change}, sort_keys=False), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_mapping(folder, "two_files", PO_LAYOUT)

    assert any(problem in p for p in caught.value.problems), caught.value.problems
