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


def _compile(tmp_path: Path, record: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> Any:
    listed = fields or [{"name": k, **v} for k, v in CELLS.items()]
    body = {"name": "X", "level": "header", "layout": "csv", **record, "fields": listed}
    text = yaml.safe_dump({"target": "c", "template": "c.txt.j2", "records": [body]}, sort_keys=False)
    return load_mapping(mapping_dir(tmp_path, text, "c"), "c", LAYOUT)


@pytest.mark.parametrize(
    ("record", "fields", "problem"),
    [
        ({}, [{"name": "A", "source": "id", "width": 8}], "fields[0] (X.A).width: applies to fixed records only; "),
        ({}, [{"name": "A", "source": "id", "align": "right"}], "fields[0] (X.A).align: applies to fixed records only"),
        ({"length": 80}, None, "(X).length: applies to fixed records only"),
        ({"quoting": "some"}, None, "(X).quoting: 'some' is not one of all, minimal"),
        ({"formula_guard": "no"}, None, "(X).formula_guard: expected true or false, got 'no'"),
        ({"delimiter": ";;"}, None, "(X).delimiter: expected one character"),
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
