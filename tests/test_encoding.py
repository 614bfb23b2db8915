"""The hand-off file's code page and width unit (``encoding:`` in a mapping).

A non-Unicode SAP reads ISO-8859-1 and counts a field's width in bytes; a Unicode SAP reads
UTF-8 and counts characters. The shipped ORDERS05 mapping is run with each and the bytes written
are read back: every record its exact length in the unit declared, nothing replaced by '?'.
"""

from __future__ import annotations

import io
import shutil
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from batchsync.errors import ConfigError
from batchsync.kinds.purchase_orders.kind import KIND as PO
from batchsync.kinds.purchase_orders.layout import LAYOUT as PO_LAYOUT
from batchsync.mapping import load_mapping
from batchsync.mapping_model import CompiledMapping
from batchsync.parse import parse_file
from batchsync.render import check_template, load_template, render_to
from batchsync.textlines import text_lines
from batchsync.transform import Transformed, transform
from batchsync.validate import validate
from tests.coupa_files import po_file, write

LAYOUT = PO_LAYOUT
ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 24, 2, 0, 0)
LONG = "Sicherheitsschrank für brennbare Flüssigkeiten, Typ 90, 1196 × 615 × 1968 mm, lichtgrau, Türen grün"


def mapping_with(tmp_path: Path, encoding: str) -> CompiledMapping:
    folder = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", folder)
    path = folder / "sap_orders05.yaml"
    shipped = "encoding: {charset: utf-8, width_unit: characters}"
    text = path.read_text(encoding="utf-8")
    assert shipped in text
    text = text.replace(shipped, f"encoding: {encoding}", 1)
    path.write_text(text, encoding="utf-8")
    return load_mapping(folder, "sap_orders05", LAYOUT)


def run(tmp_path: Path, mapping: CompiledMapping, headers: list[dict], lines: list[dict]) -> tuple[Transformed, bytes]:
    source = write(tmp_path, "OrderHeader_20261124_010000Z.csv", po_file(headers, lines))
    validated = validate(parse_file(source, LAYOUT), LAYOUT, PO.models, PO.rules)
    ids = validated.accepted_ids.to_list()
    decisions = pl.DataFrame({"id": ids, "_decision": ["new"] * len(ids)})
    result = transform(
        validated.frames,
        decisions,
        mapping,
        LAYOUT,
        now=NOW,
        source_file=source.name,
        erp_file="ORDERS_1.idoc",
        kind=PO,
    )
    out = io.BytesIO()
    render_to(out, load_template(ROOT / "templates", mapping.template), [result.documents], charset=mapping.charset)
    return result, out.getvalue()


def test_iso_8859_1_writes_latin_1_bytes_and_rejects_what_it_cannot_hold(tmp_path: Path) -> None:
    mapping = mapping_with(tmp_path, "{charset: iso-8859-1}")
    headers = [{"id": "4301"}, {"id": "4302", "supplier-name": "Zakłady Łódź"}]
    lines = [{"order-header-id": "4301", "description": LONG}, {"order-header-id": "4302"}]

    result, data = run(tmp_path, mapping, headers, lines)

    assert result.rejected.rows() == [
        ("4302", "E1EDKA1.NAME1: 'Zakłady Łódź' holds 'ł', which iso-8859-1 cannot write")
    ]
    records = data.split(b"\n")[:-1]
    assert {len(r) for r in records[1:]} == {1063} and len(records[0]) == 524
    assert "Müller Industriebedarf GmbH".encode("iso-8859-1") in data
    assert LONG[:70].encode("iso-8859-1") in data  # KTEXT and the first text line, in one byte per character
    data.decode("iso-8859-1")  # and nothing else


def test_utf_8_counted_in_bytes_keeps_every_record_at_its_byte_length(tmp_path: Path) -> None:
    mapping = mapping_with(tmp_path, "{charset: utf-8, width_unit: bytes}")
    name_35_bytes = "Müller Industriebedarf GmbH & Co K"  # 34 characters, 35 bytes
    name_36_bytes = "Müller Industriebedarf GmbH & Co KG"  # 35 characters, 36 bytes
    headers = [{"id": "4301", "supplier-name": name_35_bytes}, {"id": "4302", "supplier-name": name_36_bytes}]
    lines = [{"order-header-id": "4301", "description": LONG}, {"order-header-id": "4302"}]

    result, data = run(tmp_path, mapping, headers, lines)

    assert result.rejected.rows() == [("4302", f"E1EDKA1.NAME1: '{name_36_bytes}' is 36 bytes, the field holds 35")]
    records = data.split(b"\n")[:-1]
    assert {len(r) for r in records[1:]} == {1063} and len(records[0]) == 524  # bytes, not characters
    texts = [r for r in records if r.startswith(b"E1EDPT2")]
    tdlines = [r[63:133].decode("utf-8").rstrip() for r in texts]  # TDLINE: 70 bytes, whole characters
    assert "".join(tdlines) == LONG and all(len(t.encode()) <= 70 for t in tdlines)
    [p19] = [r for r in records if r.startswith(b"E1EDP19")]
    ktext = p19[101:171].decode("utf-8").rstrip()  # the short text: as many whole characters as fit
    assert LONG.startswith(ktext) and len(ktext.encode()) <= 70 < len(ktext.encode()) + 3


def test_text_lines_in_bytes_never_split_a_character() -> None:
    lines = text_lines("ÄÖÜ" * 30, 70, in_bytes=True)

    assert [len(entry["line"].encode()) for entry in lines] == [70, 70, 40]
    assert "".join(entry["line"] for entry in lines) == "ÄÖÜ" * 30


@pytest.mark.parametrize(
    ("encoding", "problem"),
    [
        ("{charset: ebcdic}", "encoding.charset: 'ebcdic' is not one of utf-8, iso-8859-1, ascii"),
        ("{width_unit: words}", "encoding.width_unit: 'words' is not characters or bytes"),
        ("{charset: utf-8, bom: true}", "encoding: expected {charset: utf-8, width_unit: characters}"),
    ],
)
def test_encoding_problems_name_the_key(tmp_path: Path, encoding: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        mapping_with(tmp_path, encoding)
    assert any(problem in line for line in caught.value.problems)


def test_a_constant_the_code_page_cannot_hold_is_a_load_error(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(ROOT / "mappings", folder)
    path = folder / "sap_orders05.yaml"
    text = path.read_text(encoding="utf-8").replace("const: SAPERP}", "const: SAPÉRP}", 1)
    path.write_text(text.replace("charset: utf-8, width_unit: characters", "charset: ascii", 1), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_mapping(folder, "sap_orders05", LAYOUT)

    assert any("RCVPOR" in line and "'SAPÉRP' cannot be written in ascii" in line for line in caught.value.problems)


def test_a_template_the_code_page_cannot_hold_fails_when_it_loads(tmp_path: Path) -> None:
    (tmp_path / "t.j2").write_text("{% for doc in documents %}{{ doc.id }} → ERP\n{% endfor %}", encoding="utf-8")

    with pytest.raises(ConfigError, match="holds '→', which ascii cannot write"):
        check_template(load_template(tmp_path, "t.j2"), [], "ascii")
