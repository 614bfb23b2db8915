"""A fourth target added by data alone: the YAML and the template of docs/targets.md, run on the
shipped samples and read back with the csv module (issue 15)."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from batchsync import pipeline
from batchsync.cli import cli
from batchsync.config import load_config
from batchsync.demo import build_workspace
from tests.conftest import FIXED_NOW
from tests.targets import pointed_at, with_own_files
from tests.test_idoc_layout import SAMPLES, source_pos

COLUMNS = ["order", "version", "vendor", "ordered_on", "line", "text", "qty", "price", "status"]
DOC = Path(__file__).resolve().parent.parent / "docs" / "targets.md"


def _blocks(language: str) -> list[str]:
    """The fenced blocks of the page written in ``language`` ("" for a fence without one)."""
    blocks, current, info = [], [], None
    for line in DOC.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("```"):
            if info is None:
                info, current = line[3:].strip(), []
            else:
                blocks += ["".join(current)] if info == language else []
                info = None
        elif info is not None:
            current.append(line)
    return blocks


def _number(text: object) -> float | None:
    return float(str(text)) if str(text).strip() else None  # an amount line has no quantity


def _workspace(folder: Path) -> Path:
    """The demo with the page's target beside the shipped ones; the change feed stays on SAP."""
    config = pointed_at(build_workspace(folder), "acme_lines", po_feed_only=True)
    return with_own_files(config, {"acme_lines.yaml": _blocks("yaml")[0]}, {"acme_lines.csv.j2": _blocks("jinja")[0]})


def test_a_target_written_from_the_docs_runs_on_the_samples(tmp_path: Path) -> None:
    config = load_config(_workspace(tmp_path / "ws"))

    summary = pipeline.run(config, clock=lambda: FIXED_NOW)

    files = sorted(config.handoff_dir.glob("*.acme_lines.csv"))
    assert len(files) == 3 and summary.feeds[0].handoff_files == [f.name for f in files]
    pos = source_pos(SAMPLES)
    with (tmp_path / "ws" / "mappings" / "xref" / "suppliers.csv").open(encoding="utf-8") as stream:
        vendors = {r["coupa_supplier_number"]: r["sap_vendor_number"] for r in csv.DictReader(stream)}
    rows = 0
    for path in files:
        with path.open(encoding="utf-8", newline="") as stream:
            reader = csv.DictReader(stream, delimiter=";")
            assert reader.fieldnames == [
                "order",
                "version",
                "vendor",
                "ordered_on",
                "line",
                "text",
                "qty",
                "price",
                "status",
            ]
            for row in reader:
                po = pos[(row["order"], row["version"])]
                head = po["header"]  # type: ignore[index]
                line = next(x for x in po["lines"] if x["line-number"] == row["line"])  # type: ignore[index]
                assert row["vendor"] == vendors[head["supplier-number"]]
                assert row["ordered_on"] == head["created-at"][:10] and row["text"] == line["description"]
                assert _number(row["qty"]) == _number(line["quantity"]) and row["status"] == "OPEN"
                rows += 1
    assert rows == 15  # every line of the POs handed off (the samples reject three POs)


def test_the_docs_show_the_first_rows_this_target_writes(tmp_path: Path) -> None:
    config = load_config(_workspace(tmp_path / "ws"))
    pipeline.run(config, clock=lambda: FIXED_NOW)
    first = sorted(config.handoff_dir.glob("*.acme_lines.csv"))[0].read_text(encoding="utf-8").splitlines()[:2]

    shown = next(b for b in _blocks("") if b.startswith("order;version;")).splitlines()

    assert shown == first


def test_a_change_feed_pointed_at_a_po_only_target_is_told_the_one_real_cause(tmp_path: Path) -> None:
    config = _workspace(tmp_path / "ws")
    config.write_text(config.read_text().replace('target = "sap_orders05"', 'target = "acme_lines"'))

    result = CliRunner().invoke(cli, ["--config", str(config), "check"])

    assert result.exit_code == 2
    mapping = tmp_path / "ws" / "mappings" / "acme_lines.yaml"
    assert result.stderr.splitlines()[0] == (
        f"batchsync: error: {mapping}: kind: the mapping is for 'purchase_orders' files, the feed reads "
        "'order_header_changes': write acme_lines.order_header_changes.yaml beside it, or give the feed a "
        "target that has one"
    )
    assert "is not a column" not in result.stderr  # no follow-on errors from judging it against the wrong columns
