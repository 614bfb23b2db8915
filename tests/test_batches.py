"""Large files go through transform and render in batches of whole documents (batches.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from batchsync import pipeline
from batchsync.batches import document_batches, read_ahead
from batchsync.cli import cli
from batchsync.config import load_config
from batchsync.demo import build_workspace
from batchsync.kinds.purchase_orders.layout import LAYOUT as PO_LAYOUT
from batchsync.parse import parse_file

SAMPLE = (
    Path(__file__).resolve().parent.parent
    / "samples"
    / "remote"
    / "Outgoing"
    / "PurchaseOrders"
    / "OrderHeader_20261123_020000Z.csv"
)
LAYOUT = PO_LAYOUT


@pytest.mark.parametrize(
    ("shape", "asked"),
    [
        ("file order", "all"),  # records in document order: zero-copy slices
        ("lines reversed", "all"),  # out of order: filtered per batch
        ("file order", "some"),  # rows of documents not asked for are set aside first
    ],
)
def test_each_batch_holds_whole_documents_numbered_across_the_file(shape: str, asked: str) -> None:
    frames = dict(parse_file(SAMPLE, LAYOUT).frames)
    if shape == "lines reversed":
        frames["line"] = frames["line"].reverse()
    ids = frames["header"]["id"].to_list()
    if asked == "some":
        ids = ids[1:]
    wanted = pl.DataFrame({"id": list(reversed(ids)), "_decision": ["new"] * len(ids)})  # any order in

    parts = list(document_batches(frames, LAYOUT, wanted, size=1))

    assert [p["id"].to_list() for p, _ in parts] == [[i] for i in ids]  # the file's order out
    assert [p["_doc_seq"].to_list() for p, _ in parts] == [[n] for n in range(1, len(ids) + 1)]
    for part, batch in parts:
        (doc,) = part["id"].to_list()
        for record in LAYOUT.records:
            expected = frames[record.role].filter(pl.col(record.doc_key) == doc)
            assert expected.height or record.role == "allocation"
            assert batch[record.role].equals(expected), (doc, record.role)


def test_a_file_of_one_batch_passes_through_untouched() -> None:
    frames = parse_file(SAMPLE, LAYOUT).frames
    wanted = frames["header"].select("id")

    [(part, batch)] = list(document_batches(frames, LAYOUT, wanted, size=1000))

    assert part is wanted
    assert all(batch[role] is frames[role] for role in frames)


def test_read_ahead_yields_every_item_in_order_and_passes_errors_on() -> None:
    assert list(read_ahead(iter(range(5)))) == [0, 1, 2, 3, 4]

    def failing() -> object:
        yield 1
        raise ValueError("batch 2 failed")

    items = read_ahead(failing())
    assert next(items) == 1
    try:
        next(items)
    except ValueError as exc:
        assert str(exc) == "batch 2 failed"
    else:
        raise AssertionError("the error was swallowed")


def test_files_read_ahead_keep_their_own_outcomes_and_log_context(tmp_path: Path) -> None:
    """The next file is parsed in a second thread: a file rejected there, or one that warns, still says which."""
    config_path = build_workspace(tmp_path / "ws")
    folder = tmp_path / "ws" / "remote" / "Outgoing" / "PurchaseOrders"
    good = (folder / "OrderHeader_20261123_040000Z.csv").read_bytes()
    (folder / "OrderHeader_20261123_050000Z.csv").write_bytes(b"\xef\xbb\xbf" + good.replace(b"4207", b"4307"))
    (folder / "OrderHeader_20261123_060000Z.csv").write_bytes(b'"Header","43\xff08"\n')

    result = CliRunner().invoke(cli, ["--config", str(config_path), "--log-format", "json", "run"])

    assert result.exit_code == 1, result.output
    ledger = sqlite3.connect(pipeline.ledger_path(load_config(config_path)))
    states = dict(ledger.execute("SELECT name, state FROM files WHERE feed = 'purchase_orders'").fetchall())
    assert states["OrderHeader_20261123_060000Z.csv"] == "rejected"
    assert states["OrderHeader_20261123_050000Z.csv"] == "processed"
    assert sum(1 for s in states.values() if s == "processed") == 4
    reason = ledger.execute("SELECT reason FROM files WHERE name = 'OrderHeader_20261123_060000Z.csv'").fetchone()[0]
    assert "line 1, byte offset 12" in reason
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    bom = [line for line in logged if "byte order mark" in line["message"]]
    assert [(line["file"], line["feed"], line["stage"]) for line in bom] == [
        ("OrderHeader_20261123_050000Z.csv", "purchase_orders", "parse")
    ]
