"""``where:``, the rows of a level a target takes at all (what belongs to a row left out goes with it); and value
maps over the engine's decisions, which cover every value or declare what a miss does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from batchsync.errors import ConfigError
from batchsync.mapping import CompiledMapping, load_mapping
from batchsync.resources import shipped
from tests.conftest import Workspace
from tests.coupa_files import po_file
from tests.targets import with_own_files
from tests.test_erp_state import item_actions, send
from tests.test_mapping import LAYOUT, mapping_dir, run

POSITIVE = {"positive": "quantity"}
LINE = {
    "name": "L",
    "level": "line",
    "layout": "csv",
    "where": POSITIVE,
    "fields": [
        {"name": "id", "source": "_interface_key"},
        {"name": "row", "source": "_row"},
        {"name": "number", "source": "line-number"},
    ],
}
ALLOCATION = {
    "name": "A",
    "level": "allocation",
    "layout": "csv",
    "fields": [
        {"name": "line_id", "source": "line._interface_key"},
        {"name": "line", "source": "order-line-num"},
        {"name": "row", "source": "_row"},
    ],
}
HEADER = {"name": "H", "level": "header", "layout": "csv", "fields": [{"name": "po", "source": "id"}]}


def _compile(tmp_path: Path, *records: dict[str, Any]) -> CompiledMapping:
    body = {"target": "w", "template": "w.txt.j2", "records": list(records)}
    return load_mapping(mapping_dir(tmp_path, yaml.safe_dump(body, sort_keys=False), "w"), "w", LAYOUT)


def _problems(tmp_path: Path, *records: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _compile(tmp_path, *records)
    return list(caught.value.problems)


def _cells(text: str) -> list[list[str]]:
    return [[cell.strip('"') for cell in row.split(",")] for row in text.splitlines()]


def test_a_line_left_out_takes_its_allocations_with_it_and_the_rest_are_numbered_anew(tmp_path: Path) -> None:
    mapping = _compile(tmp_path, HEADER, LINE, ALLOCATION)
    lines = [{"line-number": n, "quantity": q} for n, q in ((1, "2"), (2, "0"), (3, "5"))]
    allocations = [{"order-line-num": n, "account-allocation-percent": "100"} for n in (2, 3)]
    documents = run(tmp_path, mapping, po_file([{}], lines, allocations)).documents
    (doc,) = documents.to_dicts()
    kept = _cells(doc["line_records"])
    assert [(row, number) for _, row, number in kept] == [("1", "1"), ("2", "3")]  # line 2 (quantity 0) left out
    keys = [key for key, _, _ in kept]
    assert len(set(keys)) == 2 and keys[1].endswith("0002")
    # line 2's allocation went with it; line 3's names line 3's own interface id and is the PO's first
    assert _cells(doc["allocation_records"]) == [[keys[1], "3", "1"]]


def test_without_where_every_line_and_allocation_is_written(tmp_path: Path) -> None:
    unfiltered = {k: v for k, v in LINE.items() if k != "where"}
    mapping = _compile(tmp_path, HEADER, unfiltered, ALLOCATION)
    lines = [{"line-number": n, "quantity": q} for n, q in ((1, "2"), (2, "0"))]
    allocations = [{"order-line-num": 2, "account-allocation-percent": "100"}]
    (doc,) = run(tmp_path, mapping, po_file([{}], lines, allocations)).documents.to_dicts()
    assert [number for _, _, number in _cells(doc["line_records"])] == ["1", "2"]
    assert len(_cells(doc["allocation_records"])) == 1


def test_an_allocation_where_may_read_its_line(tmp_path: Path) -> None:
    unfiltered = {k: v for k, v in LINE.items() if k != "where"}
    mapping = _compile(tmp_path, HEADER, unfiltered, {**ALLOCATION, "where": {"positive": "line.quantity"}})
    lines = [{"line-number": n, "quantity": q} for n, q in ((1, "0"), (2, "4"))]
    allocations = [{"order-line-num": n, "account-allocation-percent": "100"} for n in (1, 2)]
    (doc,) = run(tmp_path, mapping, po_file([{}], lines, allocations)).documents.to_dicts()
    assert [line for _, line, _ in _cells(doc["allocation_records"])] == ["2"]


@pytest.mark.parametrize(
    ("records", "problem"),
    [
        (
            [{**HEADER, "where": {"present": "id"}}, LINE],
            "records[0] (H).where: a PO is sent whole or rejected; where: filters lines and allocations",
        ),
        (
            [HEADER, LINE, {**LINE, "name": "L2", "where": {"present": "description"}}],
            "records[1] (L).where: every line record must carry the same where:",
        ),
        (
            [HEADER, LINE, {k: v for k, v in LINE.items() if k != "where"} | {"name": "L2"}],
            "records[1] (L).where: every line record must carry the same where:",
        ),
        ([HEADER, {**LINE, "where": {"positive": "_row"}}], "records[1] (L).where: _row count the rows where: keeps"),
        (
            [HEADER, {**LINE, "where": {"not": {"equals": ["_line_change", "unchanged"]}}}],
            "records[1] (L).where: _line_change are decided by comparing the rows kept with what the ERP has",
        ),
        ([HEADER, {**LINE, "where": {"positive": "no-such-column"}}], "'no-such-column' is not a column of line"),
        (
            [HEADER, LINE, {**ALLOCATION, "fields": [{"name": "n", "source": "line._allocations"}]}],
            "line._allocations: a line's own record says how many it has",
        ),
    ],
)
def test_a_where_that_cannot_hold_is_a_load_error_naming_the_key(
    tmp_path: Path, records: list[dict[str, Any]], problem: str
) -> None:
    found = _problems(tmp_path, *records)
    assert any(problem in p for p in found), found
    assert all(p.startswith(str(tmp_path / "mappings" / "w.yaml")) for p in found)


DECISION_MAP = {"name": "ACTION", "source": "_change", "map": {"new": "N", "header": "U", "items": "U"}}


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        (DECISION_MAP, "map: _change can also be cancel, close, header_items: map every value, or declare"),
        (
            {"name": "KIND", "source": "_decision", "map": {"new": "N"}},
            "map: _decision can also be change, close, cancel",
        ),
    ],
)
def test_a_value_map_over_a_decision_covers_every_value_or_declares_a_miss(
    tmp_path: Path, field: dict[str, Any], problem: str
) -> None:
    header = {**HEADER, "fields": [{"name": "po", "source": "id"}, field]}
    found = _problems(tmp_path, header)
    assert any(problem in p for p in found), found


def test_a_declared_miss_over_a_decision_compiles_and_rejects_with_its_reason(tmp_path: Path) -> None:
    declared = {**DECISION_MAP, "on_missing": "reject", "message": "cannot {value} here"}
    mapping = _compile(tmp_path, {**HEADER, "fields": [{"name": "po", "source": "id"}, declared]}, LINE)
    result = run(tmp_path, mapping, po_file([{}], [{"line-number": 1, "quantity": "1"}]), {"4301": "cancel"})
    assert result.documents.height == 0
    assert result.rejected["reason"].to_list() == ["cannot cancel here"]


def test_an_allocation_map_over_line_change_is_held_to_the_document_values(tmp_path: Path) -> None:
    line_map = {"name": "ACT", "source": "_line_change", "map": {"added": "A", "changed": "C", "cancelled": "X"}}
    found = _problems(tmp_path, HEADER, LINE, {**ALLOCATION, "fields": [line_map]})
    assert any("map: _change can also be new, cancel, close, header, items, header_items" in p for p in found), found


def _filtered_sap(ws: Workspace) -> None:
    """The shipped SAP target with ``where: {positive: quantity}`` on every line record (PO feed)."""
    text = (shipped("mappings") / "sap_orders05.yaml").read_text(encoding="utf-8")
    mapping = text.replace("    level: line\n", "    level: line\n    where: {positive: quantity}\n")
    assert mapping != text
    with_own_files(ws.config, {"sap_orders05.yaml": mapping}, {})


ITEMS = [
    {"line-number": n, "quantity": q, "price": "2.00", "total": str(2 * int(q)) + ".00"}
    for n, q in ((1, "2"), (2, "0"))
]
TAKEN = [ITEMS[0], {**ITEMS[1], "quantity": "3", "total": "6.00"}]


def test_a_line_where_left_out_is_added_when_a_later_version_takes_it(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    _filtered_sap(ws)
    first = send(ws, "OrderHeader_20261124_010000Z.csv", po_file([{"id": "4301", "version": "1"}], ITEMS))
    assert first is not None and item_actions(first) == [("000001", "001")]  # line 2 (quantity 0) left out
    # the ledger knows the ERP has line 1 only: line 2 is not the ERP's until it is sent
    assert [r["line_number"] for r in ws.rows("SELECT line_number FROM po_lines WHERE po_id = '4301'")] == ["1"]

    second = send(ws, "OrderHeader_20261124_020000Z.csv", po_file([{"id": "4301", "version": "2"}], TAKEN))

    assert second is not None and item_actions(second) == [("000001", "004"), ("000002", "001")]  # added, not 002


def test_a_line_the_erp_has_that_where_now_leaves_out_rejects_the_po(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    _filtered_sap(ws)
    assert send(ws, "OrderHeader_20261124_010000Z.csv", po_file([{"id": "4301", "version": "1"}], TAKEN))
    ws.put("OrderHeader_20261124_020000Z.csv", po_file([{"id": "4301", "version": "2"}], ITEMS))  # line 2: 0

    assert ws.cli("run").exit_code == 1

    [row] = ws.rows("SELECT outcome, reason FROM po_versions WHERE po_id = '4301' AND version = 2")
    assert row["outcome"] == "rejected"
    assert "line 2: the ERP has it, and the mapping's where: leaves it out of this version" in row["reason"]
