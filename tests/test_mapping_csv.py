"""CSV records in the mapping language: quoting, formula guard, the column-name row, ``choose``;
every option that does not apply is a load error naming file and key; nothing is dropped silently."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from batchsync.errors import ConfigError
from batchsync.mapping import load_mapping
from batchsync.mapping_csv import CsvOptions
from batchsync.records import csv_cell
from tests.coupa_files import po_file
from tests.test_mapping import LAYOUT, mapping_dir, run

CELLS = {"A": {"source": "id"}, "B": {"source": "supplier-name"}}
XREF_A = {"name": "A", "source": "supplier-number", "xref": "suppliers"}
SUPPLIERS = {"suppliers": {"file": "xref/suppliers.csv", "key": "coupa_supplier_number", "value": "sap_vendor_number"}}


def _compile(tmp_path: Path, record: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> Any:
    listed = fields or [{"name": k, **v} for k, v in CELLS.items()]
    body = {"name": "X", "level": "header", "layout": "csv", **record, "fields": listed}
    mapping = {"target": "c", "template": "c.txt.j2", "xref": SUPPLIERS, "records": [body]}
    return load_mapping(mapping_dir(tmp_path, yaml.safe_dump(mapping, sort_keys=False), "c"), "c", LAYOUT)


@pytest.mark.parametrize(
    ("record", "fields", "problem"),
    [
        ({}, [{"name": "A", "source": "id", "width": 8}], "fields[0] (X.A).width: applies to fixed records only; "),
        ({}, [{"name": "A", "source": "id", "align": "right"}], "fields[0] (X.A).align: applies to fixed records only"),
        ({"length": 80}, None, "(X).length: applies to fixed records only"),
        ({"quoting": "some"}, None, "(X).quoting: 'some' is not one of all, minimal"),
        ({"formula_guard": "no"}, None, "(X).formula_guard: expected true or false, got 'no'"),
        ({"delimiter": ";;"}, None, "(X).delimiter: expected one character"),
        ({}, [{"name": "A", "source": "id", "on_missing": "empty"}], "(X.A).on_missing: applies to a map or an xref"),
        ({}, [{**XREF_A, "on_missing": "default"}], "(X.A).on_missing: default needs a default: value on the field"),
        ({}, [{**XREF_A, "on_missing": "guess"}], "(X.A).on_missing: 'guess' is not one of reject, default, empty"),
        (
            {},
            [{"name": "A", "source": "id", "number": {"decimals": 2, "thousands": ","}}],
            "fields[0] (X.A).number: thousands: unknown key (number takes decimals only)",
        ),
        (
            {"layout": "fixed", "quoting": "all"},
            [{"name": "A", "source": "id", "width": 8}],
            "(X).quoting: applies to csv records only",
        ),
        (
            {},
            [{"name": "A", "choose": [{"const": "x"}, {"when": {"present": "id"}, "const": "y"}]}],
            "only the last branch may go without when",
        ),
        (
            {},
            [{"name": "A", "choose": [{"when": {"present": "id"}, "value": "y"}]}],
            "expected {when: condition, const: text}",
        ),
    ],
)
def test_an_option_that_does_not_apply_is_a_load_error(
    tmp_path: Path, record: dict[str, Any], fields: list[dict[str, Any]] | None, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _compile(tmp_path, record, fields)

    found = list(caught.value.problems)
    assert len(found) == 1 and problem in found[0], found
    assert found[0].startswith(f"{tmp_path / 'mappings' / 'c.yaml'}: records[0]")


def test_two_records_cannot_both_have_the_column_name_row(tmp_path: Path) -> None:
    fields = [{"name": "A", "source": "id"}]
    records = [
        {"name": n, "level": lv, "layout": "csv", "header_row": True, "fields": fields}
        for n, lv in (("H", "header"), ("L", "line"))
    ]
    text = yaml.safe_dump({"target": "c", "template": "c.txt.j2", "records": records}, sort_keys=False)

    with pytest.raises(ConfigError) as caught:
        load_mapping(mapping_dir(tmp_path, text, "c"), "c", LAYOUT)

    (problem,) = caught.value.problems
    assert problem.endswith("records: header_row is set on H, L; a file has one column-name row (set it on one)")


def test_the_column_name_row_is_built_from_the_field_names_and_quoted_as_the_cells(tmp_path: Path) -> None:
    fields = [{"name": "PO #", "source": "id"}, {"name": 'Say "hi", twice', "source": "supplier-name"}]
    assert _compile(tmp_path, {"header_row": True, "quoting": "minimal"}, fields).column_row == (
        'PO #,"Say ""hi"", twice"'
    )
    assert _compile(tmp_path, {"header_row": True, "delimiter": ";"}, fields).column_row == (
        '"PO #";"Say ""hi"", twice"'
    )
    assert _compile(tmp_path, {}, fields).column_row is None


def test_minimal_quoting_and_the_formula_guard_turned_off_keep_erp_data_as_it_is() -> None:
    values = pl.DataFrame({"v": ["-20% promo bundle", "plain", 'a "b"', "x;y", "two\nlines", None]})
    off = CsvOptions(delimiter=";", quoting="minimal", formula_guard=False)
    on = CsvOptions()

    assert values.select(csv_cell(pl.col("v"), off).alias("v"))["v"].to_list() == [
        "-20% promo bundle",
        "plain",
        '"a ""b"""',
        '"x;y"',
        '"two\nlines"',
        "",
    ]
    # the default (write-back files a person opens in a spreadsheet): every cell quoted, formulas shown as text
    assert values.select(csv_cell(pl.col("v"), on).alias("v"))["v"].to_list()[:2] == [
        '"\'-20% promo bundle"',
        '"plain"',
    ]


def test_choose_takes_the_first_branch_that_holds(tmp_path: Path) -> None:
    fields = [
        {"name": "ID", "source": "id"},
        {
            "name": "KIND",
            "choose": [
                {"when": {"equals": ["supplier-name", "Acme"]}, "const": "acme"},
                {"when": {"present": "supplier-name"}, "source": "supplier-name"},
                {"const": "none"},
            ],
        },
    ]
    mapping = _compile(tmp_path, {"quoting": "minimal"}, fields)
    headers = [
        {"id": 1, "supplier-name": "Acme"},
        {"id": 2, "supplier-name": "Globex"},
        {"id": 3, "supplier-name": None},
    ]
    data = po_file(headers, [{"order-header-id": h["id"]} for h in headers])

    texts = run(tmp_path, mapping, data).documents.sort("id")["X"].to_list()

    assert texts == ["1,acme", "2,Globex", "3,none"]


def test_a_date_format_on_a_value_that_is_no_date_rejects_the_po_instead_of_writing_nothing(tmp_path: Path) -> None:
    fields = [{"name": "ID", "source": "id"}, {"name": "WHEN", "source": "supplier-name", "date": "%Y%m%d"}]
    mapping = _compile(tmp_path, {}, fields)
    headers = [{"id": 1, "supplier-name": "Acme"}, {"id": 2, "supplier-name": None}]
    data = po_file(headers, [{"order-header-id": h["id"]} for h in headers])

    result = run(tmp_path, mapping, data)

    assert result.documents["id"].to_list() == ["2"]  # no value is no date to write: the field stays empty
    assert result.rejected.select("doc_id", "reason").rows() == [("1", "X.WHEN: 'Acme' is not a date")]


@pytest.mark.parametrize(
    ("on_missing", "written", "rejected"),
    [
        ({}, ["2,0000100512"], [("1", "X.V: 'SUP-9999' is not in xref table suppliers")]),
        ({"on_missing": "default", "default": "ONE-TIME"}, ["1,ONE-TIME", "2,0000100512"], []),
        ({"on_missing": "empty"}, ["1,", "2,0000100512"], []),
    ],
)
def test_a_lookup_that_misses_does_what_the_mapping_declares(
    tmp_path: Path, on_missing: dict[str, str], written: list[str], rejected: list[tuple[str, str]]
) -> None:
    fields = [{"name": "ID", "source": "id"}, {**XREF_A, "name": "V", **on_missing}]
    mapping = _compile(tmp_path, {"quoting": "minimal"}, fields)
    headers = [{"id": 1, "supplier-number": "SUP-9999"}, {"id": 2, "supplier-number": "SUP-1002"}]
    data = po_file(headers, [{"order-header-id": h["id"]} for h in headers])

    result = run(tmp_path, mapping, data)

    assert result.documents.sort("id")["X"].to_list() == written
    assert result.rejected.select("doc_id", "reason").rows() == rejected


def test_an_allocation_reaches_its_line_and_computes_its_share(tmp_path: Path) -> None:
    """An Oracle-style distribution: the line's quantity times the allocation's percent."""
    share = {"mul": [{"source": "line.quantity"}, {"source": "account-allocation-percent"}, 0.01], "round": 3}
    fields = [
        {"name": "PO", "source": "header.id"},
        {"name": "LINE", "source": "line.line-number"},
        {"name": "QTY", "compute": share},
        {"name": "LEFT", "compute": {"sub": [{"source": "line.quantity"}, {"mul": [2, 0.5]}], "round": 1}},
    ]
    body = {"name": "D", "level": "allocation", "layout": "csv", "quoting": "minimal", "fields": fields}
    mapping = load_mapping(mapping_dir(tmp_path, _mapping([body]), "c"), "c", LAYOUT)
    lines = [
        {"order-header-id": 7, "line-number": 1, "quantity": "5"},
        {"order-header-id": 7, "line-number": 2, "quantity": "40.0"},
    ]
    allocations = [
        {"order-header-id": 7, "order-line-num": 1, "account-allocation-percent": "60.0000000000"},
        {"order-header-id": 7, "order-line-num": 1, "account-allocation-percent": "40"},
        {"order-header-id": 7, "order-line-num": 2, "account-allocation-percent": "33.3333"},
    ]

    result = run(tmp_path, mapping, po_file([{"id": 7}], lines, allocations))

    assert result.documents["allocation_records"].to_list() == ["7,1,3.000,4.0\n7,1,2.000,4.0\n7,2,13.333,39.0"]


def test_an_operand_that_is_no_number_rejects_the_po_and_round_is_declared(tmp_path: Path) -> None:
    fields = [{"name": "Q", "compute": {"mul": [{"source": "quantity"}, 2], "round": 2}}]
    body = {"name": "L", "level": "line", "layout": "csv", "fields": fields}
    mapping = load_mapping(mapping_dir(tmp_path, _mapping([body]), "c"), "c", LAYOUT)
    data = po_file([{"id": 1}, {"id": 2}], [{"order-header-id": 1, "quantity": "abc"}, {"order-header-id": 2}])

    result = run(tmp_path, mapping, data)

    assert result.rejected.select("doc_id", "reason").rows() == [
        ("1", "PO line 1: L.Q: quantity 'abc' is not a number")
    ]
    del fields[0]["compute"]["round"]
    with pytest.raises(ConfigError) as caught:
        load_mapping(mapping_dir(tmp_path, _mapping([body]), "c"), "c", LAYOUT)
    assert "(L.Q).compute: expected {mul|add|sub: [operands], round: decimals}" in next(iter(caught.value.problems))


def _mapping(records: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"target": "c", "template": "c.txt.j2", "records": records}, sort_keys=False)
