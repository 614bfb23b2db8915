"""load_mapping (compile-time checks) and transform (per-PO output text, problems reject the PO whole)."""

from __future__ import annotations

import shutil
import textwrap
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from batchsync.errors import ConfigError
from batchsync.kinds.purchase_orders.kind import KIND as PO
from batchsync.kinds.purchase_orders.layout import LAYOUT as PO_LAYOUT
from batchsync.mapping import CompiledMapping, load_mapping
from batchsync.parse import parse_file
from batchsync.transform import Transformed, transform
from batchsync.validate import validate

try:
    from tests.coupa_files import po_file, write
except ImportError:  # tests/ is on sys.path instead of the project root
    from coupa_files import po_file, write  # type: ignore[no-redef]

LAYOUT = PO_LAYOUT
ROOT = Path(__file__).resolve().parent.parent
MAPPINGS = ROOT / "mappings"
SAMPLES = ROOT / "samples" / "remote" / "Outgoing" / "PurchaseOrders"
NOW = datetime(2026, 11, 24, 2, 0, 0)
BAD, GOOD = "4301", "4399"

MINI = """\
target: mini
kind: purchase_orders
template: mini.txt.j2
extension: txt
xref:
  suppliers: {file: xref/suppliers.csv, key: coupa_supplier_number, value: sap_vendor_number}
records:
  - name: HDR
    level: header
    length: 110
    fields:
      - {name: KIND, width: 3, const: HDR}
      - {name: DOCNUM, width: 10, source: id, align: right, fill: "0"}
      - {name: ACTION, width: 3, source: _decision, map: {new: "001", change: "002"}, on_missing: reject}
      - {name: VENDOR, width: 10, source: supplier-number, xref: suppliers}
      - {name: DATUM, width: 8, source: created-at, date: "%Y%m%d"}
      - {name: UZEIT, width: 6, source: created-at, date: "%H%M%S"}
      - {name: TERMS, width: 6, source: payment-terms-code, default: NT30}
      - {name: NAME, width: 30, source: supplier-name}
      - {name: REF, width: 16, concat: ["PO-", {source: id}, "-V", {source: version}]}
      - {name: CREDAT, width: 8, source: _now_date}
  - name: ITEM
    level: line
    layout: csv
    delimiter: ";"
    fields:
      - {name: POS, source: line-number, max_length: 6}
      - {name: PRICE, source: price, number: {decimals: 2}}
      - {name: QTY, source: quantity, number: {decimals: 3}}
      - {name: TEXT, source: description, max_length: 40}
      - {name: CUR, source: header.accounting-total-currency}
"""
SUPPLIERS = "coupa_supplier_number,sap_vendor_number\nSUP-1001,0000100234\nSUP-1002,0000100512\n"


def mapping_dir(tmp_path: Path, text: str, name: str = "mini", suppliers: str = SUPPLIERS) -> Path:
    folder = tmp_path / "mappings"
    (folder / "xref").mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    (folder / "xref" / "suppliers.csv").write_text(suppliers, encoding="utf-8")
    return folder


@pytest.fixture
def mini(tmp_path: Path) -> CompiledMapping:
    return load_mapping(mapping_dir(tmp_path, MINI), "mini", LAYOUT)


def run(tmp_path: Path, mapping: CompiledMapping, data: bytes, decisions: dict[str, str] | None = None) -> Transformed:
    frames = parse_file(write(tmp_path, "po.csv", data), LAYOUT).frames
    ids = frames["header"]["id"].to_list()
    decided = decisions or dict.fromkeys(ids, "new")
    table = pl.DataFrame({"id": list(decided), "_decision": list(decided.values())})
    return transform(frames, table, mapping, LAYOUT, now=NOW, source_file="po.csv", erp_file="ORDERS_1.txt")


def problems(error: ConfigError) -> list[str]:
    return list(error.problems)


# --- compiling -------------------------------------------------------------------------------------------------


def test_shipped_sap_orders05_mapping_compiles() -> None:
    mapping = load_mapping(MAPPINGS, "sap_orders05", LAYOUT)

    assert (mapping.target, mapping.kind, mapping.template, mapping.extension) == (
        "sap_orders05",
        "purchase_orders",
        "sap_orders05.txt.j2",
        "idoc",
    )
    assert [r.segment for r in mapping.at_level("header")] == [
        "EDI_DC40",
        "E1EDK01",
        "E1EDK03",
        "E1EDKA1",
        "E1EDK18",
        "E1EDK18",
        "E1EDK18",
        "E1EDKT1",
        "E1EDKT2",
    ]
    assert [r.name for r in mapping.at_level("line")] == ["E1EDP01", "E1EDP20", "E1EDP19", "E1EDPT1", "E1EDPT2"]
    assert {r.name: r.length for r in mapping.records} == {
        "EDI_DC40": 524,
        **{r.name: 1063 for r in mapping.records if r.name != "EDI_DC40"},
    }
    assert all(r.layout == "fixed" for r in mapping.records)


def _shipped_with(tmp_path: Path, old: str, new: str) -> list[str]:
    folder = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, folder)
    path = folder / "sap_orders05.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(folder, "sap_orders05", LAYOUT)
    return caught.value.problems


def test_a_field_sap_does_not_have_is_a_load_error_naming_segment_and_field(tmp_path: Path) -> None:
    """Yesterday's bug: AMENG in E1EDP01 put CURCY into PREIS's digits. SAP's definition refuses it."""
    problems = _shipped_with(
        tmp_path, '      - {name: NTGEW, width: 18, const: ""}\n', '      - {name: AMENG, width: 15, const: ""}\n'
    )
    assert len(problems) == 1
    assert "(E1EDP01.AMENG): SAP's E1EDP01 has NTGEW here (18 characters, 196-213), not AMENG" in problems[0]


def test_a_wrong_width_hlevel_or_parent_is_a_load_error(tmp_path: Path) -> None:
    width = _shipped_with(tmp_path / "a", "{name: MENEE, width: 3,", "{name: MENEE, width: 4,")
    assert any("(E1EDP01.MENEE): SAP's MENEE is 3 characters at 90-92" in p for p in width)
    hlevel = '      - {name: HLEVEL, width: 2, const: "0'
    level = _shipped_with(tmp_path / "b", hlevel + '1"}', hlevel + '2"}')
    assert any("HLEVEL of E1EDK01 is '01' in SAP's definition" in p for p in level)
    parent = _shipped_with(tmp_path / "c", "psgnum: E1EDPT1}", "psgnum: E1EDP01}")
    assert any("PSGNUM of E1EDPT2 must point at E1EDPT1" in p for p in parent)


def test_mini_mapping_compiles(mini: CompiledMapping) -> None:
    assert [r.name for r in mini.records] == ["HDR", "ITEM"]
    assert mini.records[1].layout == "csv" and mini.records[1].delimiter == ";"
    assert mini.header_columns == {"accounting-total-currency"}


BROKEN = """\
target: broken
kind: purchase_orders
template: broken.txt.j2
xref:
  suppliers: {file: xref/suppliers.csv, key: coupa_supplier_number, value: sap_vendor_number}
  nokey: {file: xref/nokey.csv, key: coupa_supplier_number, value: sap_vendor_number}
  dupes: {file: xref/dupes.csv, key: coupa_supplier_number, value: sap_vendor_number}
records:
  - name: X
    level: header
    length: 60
    fields:
      - {name: A, width: 3, const: HDR}
      - {name: Y, width: 10, source: nope}
      - {name: Z, width: 10, sorce: id}
      - {name: W, width: 5, const: "1", source: id}
      - {name: V, width: 10, source: supplier-number, xref: vendors}
      - {name: T, width: 2, const: TOOLONG}
  - name: L
    level: line
    layout: csv
    fields:
      - {name: P, source: header.nope2}
"""


def test_broken_mapping_reports_every_problem_at_once_with_file_and_key(tmp_path: Path) -> None:
    folder = mapping_dir(tmp_path, BROKEN, "broken")
    (folder / "xref" / "nokey.csv").write_text("supplier,sap_vendor_number\nSUP-1001,1\n", encoding="utf-8")
    (folder / "xref" / "dupes.csv").write_text(
        "coupa_supplier_number,sap_vendor_number\nSUP-1001,1\nSUP-1001,2\n", encoding="utf-8"
    )
    path = folder / "broken.yaml"

    with pytest.raises(ConfigError) as caught:
        load_mapping(folder, "broken", LAYOUT)

    found = problems(caught.value)
    expected = [
        "xref.nokey: nokey.csv has no column coupa_supplier_number",
        "xref.dupes: dupes.csv lists key 'SUP-1001' more than once",
        "records[0] (X).fields[1] (X.Y).source: 'nope' is not a column of header records",
        "records[0] (X).fields[2] (X.Z).sorce: unknown key",
        "records[0] (X).fields[2] (X.Z): give exactly one of source, const, concat, sequence",
        "records[0] (X).fields[3] (X.W): give exactly one of source, const, concat, sequence",
        "records[0] (X).fields[4] (X.V).xref: no xref table named 'vendors'",
        "records[0] (X).fields[5] (X.T).const: 'TOOLONG' is 7 characters, the field holds 2",
        "records[1] (L).fields[0] (L.P).source: 'nope2' is not a column of header records",
    ]
    for text in expected:
        assert any(p.startswith(f"{path}: {text}") for p in found), (text, found)
    assert len(found) == len(expected)
    assert all(p.startswith(f"{path}: ") for p in found)
    assert str(path) in caught.value.message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("record_keys", "problem"),
    [
        ({"length": 20}, "records[0] (X).length: the fields add up to 28 characters, more than 20"),
        ({"layout": "json"}, "records[0] (X).layout: 'json' is not fixed, csv or xml"),
        ({"layout": "xml"}, "records[0] (X).layout: xml records are IDoc segments: give idoc: {basic_type: ...}"),
        ({"level": "item"}, "records[0] (X).level: 'item' is not one of header, line, allocation"),
        ({"colour": "red"}, "records[0] (X).colour: unknown key"),
    ],
)
def test_record_level_problems_name_the_key(tmp_path: Path, record_keys: dict, problem: str) -> None:
    fields = [{"name": "A", "width": 8, "source": "id"}, {"name": "B", "width": 20, "source": "supplier-name"}]
    body = {"name": "X", "level": "header", **record_keys, "fields": fields}
    text = yaml.safe_dump({"target": "r", "template": "r.txt.j2", "records": [body]}, sort_keys=False)
    folder = mapping_dir(tmp_path, text, "r")

    with pytest.raises(ConfigError) as caught:
        load_mapping(folder, "r", LAYOUT)

    assert problems(caught.value) == [f"{folder / 'r.yaml'}: {problem}"]


def test_unreadable_xref_file_names_the_key(tmp_path: Path) -> None:
    folder = mapping_dir(tmp_path, MINI)
    (folder / "xref" / "suppliers.csv").unlink()

    with pytest.raises(ConfigError) as caught:
        load_mapping(folder, "mini", LAYOUT)

    expected = f"{folder / 'mini.yaml'}: xref.suppliers.file: cannot read"
    assert any(p.startswith(expected) for p in problems(caught.value))


def test_missing_mapping_file_names_the_expected_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(tmp_path, "nothere", LAYOUT)

    assert str(tmp_path / "nothere.yaml") in caught.value.message


# --- transform: the mini mapping -------------------------------------------------------------------------------


def test_fixed_and_csv_records_of_a_valid_po(tmp_path: Path, mini: CompiledMapping) -> None:
    data = po_file(
        [
            {
                "id": GOOD,
                "supplier-number": "SUP-1002",
                "supplier-name": "Société Générale",
                "payment-terms-code": None,
                "created-at": "2026-11-22T21:05:12-06:00",
                "version": "2",
            }
        ],
        [
            {"price": "12.5", "quantity": "3", "description": '=HYPERLINK("http://x")'},
            {"price": "0.100000", "quantity": "12.5", "description": 'Monitor 27" 4K'},
        ],
    )

    result = run(tmp_path, mini, data)

    assert result.rejected.height == 0 and result.problems.height == 0
    doc = result.documents.row(0, named=True)
    assert (doc["id"], doc["version"], doc["_decision"]) == (GOOD, "2", "new")
    expected = (
        "HDR"
        + "0000004399"  # right-aligned, zero-filled
        + "001"  # value map
        + "0000100512"  # xref
        + "20261122"
        + "210512"  # the date as written in Coupa, offset dropped
        + "NT30  "  # default for an empty value
        + "Société Générale".ljust(30)
        + "PO-4399-V2".ljust(16)  # concat
        + "20261124"  # now
    )
    assert doc["HDR"] == expected.ljust(110)  # padded to the record length
    assert len(doc["HDR"]) == 110
    assert doc["line_records"].split("\n") == [
        '"1";"12.50";"3.000";"\'=HYPERLINK(""http://x"")";"EUR"',
        '"2";"0.10";"12.500";"Monitor 27"" 4K";"EUR"',
    ]
    assert doc["allocation_records"] == ""


def test_only_the_po_with_a_problem_is_rejected(tmp_path: Path, mini: CompiledMapping) -> None:
    data = po_file([{"id": BAD, "supplier-number": "SUP-1042"}, {"id": GOOD}], [{}, {"order-header-id": GOOD}])

    result = run(tmp_path, mini, data)

    assert result.documents["id"].to_list() == [GOOD]
    assert result.rejected.rows() == [(BAD, "HDR.VENDOR: 'SUP-1042' is not in xref table suppliers")]
    assert result.problems.select("line", "record_type", "doc_id", "column", "check").rows() == [
        (1, "header", BAD, "HDR.VENDOR", "xref")
    ]


CASES = {
    "unmapped code": (
        {"decision": "close"},
        "HDR.ACTION: 'close' has no entry in the value map",
        "HDR.ACTION",
        "value_map",
    ),
    "xref key missing": (
        {"header": {"supplier-number": "SUP-1042"}},
        "HDR.VENDOR: 'SUP-1042' is not in xref table suppliers",
        "HDR.VENDOR",
        "xref",
    ),
    "header value wider than its field": (
        {"header": {"supplier-name": "Atelier Mécanique Bérard et Fils SARL"}},
        "HDR.NAME: 'Atelier Mécanique Bérard et Fils SARL' is 37 characters, the field holds 30",
        "HDR.NAME",
        "max_length",
    ),
    "csv value longer than max_length": (
        {"line": {"description": "D" * 45}},
        f"PO line 1: ITEM.TEXT: '{'D' * 37}...' is 45 characters, the field holds 40",
        "ITEM.TEXT",
        "max_length",
    ),
    "line number wider than its field": (
        {"line": {"line-number": "1234567"}},
        "PO line 1234567: ITEM.POS: '1234567' is 7 characters, the field holds 6",
        "ITEM.POS",
        "max_length",
    ),
    "price with more decimals than allowed": (
        {"line": {"price": "87.425000", "quantity": "4", "total": "349.70"}},
        "PO line 1: ITEM.PRICE: '87.425000' ",
        "ITEM.PRICE",
        "decimals",
    ),
    "quantity with more decimals than allowed": (
        {"line": {"price": "1.00", "quantity": "2.0005", "total": "2.00"}},
        "PO line 1: ITEM.QTY: '2.0005' ",
        "ITEM.QTY",
        "decimals",
    ),
}


@pytest.mark.parametrize(("given", "reason", "column", "check"), CASES.values(), ids=CASES.keys())
def test_a_value_that_does_not_fit_rejects_its_po_with_a_reason(
    tmp_path: Path, mini: CompiledMapping, given: dict, reason: str, column: str, check: str
) -> None:
    data = po_file(
        [{"id": BAD, **given.get("header", {})}, {"id": GOOD}],
        [given.get("line", {}), {"order-header-id": GOOD}],
    )

    result = run(tmp_path, mini, data, {BAD: given.get("decision", "new"), GOOD: "new"})

    assert result.rejected["doc_id"].to_list() == [BAD]
    assert result.rejected["reason"][0].startswith(reason)
    if check == "decimals":
        assert str(int(column == "ITEM.QTY") + 2) + " decimals" in result.rejected["reason"][0]
    else:
        assert result.rejected["reason"][0] == reason
    assert result.problems.filter(pl.col("doc_id") == BAD).select("column", "check").row(0) == (column, check)
    assert result.documents["id"].to_list() == [GOOD]
    assert BAD not in result.documents["line_records"][0]


def test_trailing_zeros_beyond_the_decimals_are_not_a_problem(tmp_path: Path, mini: CompiledMapping) -> None:
    data = po_file([{"id": GOOD}], [{"price": "87.420000", "quantity": "4.000000"}])

    result = run(tmp_path, mini, data)

    assert result.rejected.height == 0
    assert result.documents["line_records"][0].split(";")[1:3] == ['"87.42"', '"4.000"']


def test_more_than_twelve_decimals_is_rejected_not_rounded(tmp_path: Path, mini: CompiledMapping) -> None:
    data = po_file(
        [{"id": BAD}, {"id": GOOD}],
        [{"price": "1.0000000000001", "quantity": "1", "total": "1.00"}, {"order-header-id": GOOD}],
    )

    result = run(tmp_path, mini, data)

    assert result.rejected["doc_id"].to_list() == [BAD]
    assert result.rejected["reason"][0].startswith("PO line 1: ITEM.PRICE: '1.0000000000001' ")
    assert result.documents["id"].to_list() == [GOOD]


def test_number_too_large_for_the_target_rejects_only_its_po(tmp_path: Path, mini: CompiledMapping) -> None:
    huge = "1" * 40 + ".5"  # more digits than any Decimal(38) can hold
    data = po_file(
        [{"id": BAD}, {"id": GOOD}], [{"price": huge, "quantity": "1", "total": None}, {"order-header-id": GOOD}]
    )

    result = run(tmp_path, mini, data)

    assert result.rejected["doc_id"].to_list() == [BAD]
    assert result.rejected["reason"][0].startswith(f"PO line 1: ITEM.PRICE: '{huge}' ")
    assert result.documents["id"].to_list() == [GOOD]


def test_required_field_without_value_rejects_the_po(tmp_path: Path) -> None:
    text = MINI.replace(
        '{name: DATUM, width: 8, source: created-at, date: "%Y%m%d"}',
        '{name: DATUM, width: 8, source: created-at, date: "%Y%m%d", required: true}',
    )
    mapping = load_mapping(mapping_dir(tmp_path, text), "mini", LAYOUT)
    data = po_file([{"id": BAD, "created-at": None}, {"id": GOOD}], [{}, {"order-header-id": GOOD}])

    result = run(tmp_path, mapping, data)

    assert result.rejected.rows() == [(BAD, "HDR.DATUM: no value, and the target requires one")]
    assert result.documents["id"].to_list() == [GOOD]


# --- transform: the shipped mapping on the samples -------------------------------------------------------------


def shipped(name: str) -> Transformed:
    mapping = load_mapping(MAPPINGS, "sap_orders05", LAYOUT)
    validated = validate(parse_file(SAMPLES / name, LAYOUT), LAYOUT, PO.models, PO.rules)
    ids = validated.accepted_ids.to_list()
    decisions = pl.DataFrame({"id": ids, "_decision": ["new"] * len(ids)})
    return transform(
        validated.frames,
        decisions,
        mapping,
        LAYOUT,
        now=NOW,
        source_file=name,
        erp_file="ORDERS_1.idoc",
        kind=PO,
    )


def test_shipped_mapping_on_sample_c_rejects_the_unknown_supplier() -> None:
    result = shipped("OrderHeader_20261123_040000Z.csv")

    why = "supplier SUP-1042 has no ERP vendor number (add it to mappings/xref/suppliers.csv)"
    assert result.rejected.rows() == [("4207", why)]
    assert result.documents["id"].to_list() == ["4201", "4208"]
    doc = result.documents.row(0, named=True)
    assert len(doc["EDI_DC40"]) == 524
    assert doc["EDI_DC40"][:13] == "EDI_DC40  100" and doc["EDI_DC40"][21:29] == "00000002"  # 2nd PO of the file
    assert "COUPA-PO-4201-V1" in doc["EDI_DC40"]  # ARCKEY names the PO and version
    assert all(len(doc[r]) == 1063 for r in ("E1EDK01", "E1EDK03", "E1EDKA1", "E1EDK18_NET"))
    assert doc["E1EDK18_DISCOUNT"] == ""  # Net 30: no discount term written
    segments = doc["line_records"].split("\n")
    assert len(segments) == 2 * 5 and {len(s) for s in segments} == {1063}  # E1EDP01 P20 P19 PT1 PT2 per item
    assert [s[:7] for s in segments[:5]] == ["E1EDP01", "E1EDP20", "E1EDP19", "E1EDPT1", "E1EDPT2"]
    assert "0000100234" in doc["E1EDKA1"]  # SUP-1001 through the xref


def test_shipped_mapping_on_sample_a_carries_the_long_description_whole() -> None:
    result = shipped("OrderHeader_20261123_020000Z.csv")

    assert result.documents["id"].to_list() == ["4201", "4202", "4203", "4204"]
    assert result.rejected.height == 0
    segments = result.documents.filter(pl.col("id") == "4203")["line_records"][0].split("\n")
    first_item = [s[:7] for s in segments[:7]]
    assert first_item == ["E1EDP01", "E1EDP20", "E1EDP19", "E1EDPT1", "E1EDPT2", "E1EDPT2", "E1EDPT2"]
    assert segments[2][101:171].startswith("Armoire de sécurité")  # KTEXT: the short text
    segments = result.documents.filter(pl.col("id") == "4202")["line_records"][0].split("\n")
    assert len(segments) == 3 * 5 and {len(s) for s in segments} == {1063}
