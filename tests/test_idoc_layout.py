"""Every IDoc batchsync writes, read back with SAP's ORDERS05 definition and checked against the source POs.

The reader (tests/idoc_reader.py) cuts records where SAP's definition says; the source
POs are read with the csv module. Golden files and a fresh render are both checked.
"""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from batchsync import pipeline
from batchsync.config import load_config
from batchsync.demo import build_workspace
from batchsync.kinds.purchase_orders.layout import PO_HEADER, PO_LINE
from tests.conftest import FIXED_NOW
from tests.coupa_files import po_file
from tests.idoc_reader import Idoc, check_numbering, item_text, read_idocs

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "remote" / "Outgoing" / "PurchaseOrders"
GOLDEN = Path(__file__).resolve().parent / "golden" / "sap_orders05"
CONTROL = "\r\n\t\x0b\x0c\x85\u2028\u2029"


def source_pos(folder: Path) -> dict[tuple[str, str], dict[str, object]]:
    """(PO id, version) -> header and lines, straight from the CSV files."""
    pos: dict[tuple[str, str], dict[str, object]] = {}
    for path in sorted(folder.glob("*.csv")):
        names = {"Header": PO_HEADER, "Line": PO_LINE}
        current: dict[str, object] = {}
        with path.open(encoding="utf-8", newline="") as stream:
            for row in csv.reader(stream):
                kind = row[0]
                if kind not in names:
                    continue
                if "id" in row[1:] and ("version" in row or "line-number" in row):
                    names[kind] = ["type", *row[1:]]  # a column-name row
                    continue
                record = dict(zip(names[kind], row, strict=False))
                if kind == "Header":
                    current = {"header": record, "lines": []}
                    pos[(record["id"], record["version"])] = current
                else:
                    current["lines"].append(record)  # type: ignore[union-attr]
    return pos


def suppliers() -> dict[str, str]:
    with (ROOT / "mappings" / "xref" / "suppliers.csv").open(encoding="utf-8") as stream:
        return {r["coupa_supplier_number"]: r["sap_vendor_number"] for r in csv.DictReader(stream)}


def number(text: str) -> Decimal | None:
    return Decimal(text.strip()) if text.strip() else None  # an amount line has no quantity


def one_line(text: str) -> str:
    for c in "\r\n":
        text = text.replace(c, " ")
    return text


def check_po_idoc(idoc: Idoc, po: dict[str, object]) -> None:
    header: dict[str, str] = po["header"]  # type: ignore[assignment]
    check_numbering(idoc)
    k01 = idoc.one("E1EDK01")
    assert k01["BELNR"] == header["id"]
    assert k01["CURCY"] == header["accounting-total-currency"]
    assert k01["ACTION"] == {"ORDERS": "000"}.get(idoc.control["MESTYP"], k01["ACTION"])
    assert idoc.control["ARCKEY"] == f"COUPA-PO-{header['id']}-V{header['version']}"
    assert idoc.one("E1EDK03")["DATUM"] == header["created-at"][:10].replace("-", "")
    ka1 = idoc.one("E1EDKA1")
    assert ka1["PARTN"] == ka1["LIFNR"] == suppliers()[header["supplier-number"]]
    assert ka1["NAME1"] == header["supplier-name"][:35]
    terms = idoc.segments("E1EDK18")
    rate = header.get("payment-terms-discount-rate") or "0"
    if Decimal(rate) > 0:
        assert [t.values["QUALF"] for t in terms] == ["001", "002"]
        assert int(terms[0].values["TAGE"]) == int(header["payment-terms-days-for-discount-payment"])
        assert number(terms[0].values["PRZNT"]) == Decimal(rate)
        assert int(terms[1].values["TAGE"]) == int(header["payment-terms-days-for-net-payment"])
    elif header.get("payment-terms-code"):
        assert [(t.values["QUALF"], int(t.values["TAGE"])) for t in terms] == [
            ("001", int(header["payment-terms-days-for-net-payment"]))
        ]
    header_text = header.get("attachment-text-concat", "")
    assert item_text(idoc.records, "E1EDKT2") == header_text.replace("\r\n", "\n").strip()
    assert len(idoc.segments("E1EDKT1")) == (1 if header_text.strip() else 0)
    lines = {int(line["line-number"]): line for line in po["lines"]}  # type: ignore[attr-defined]
    items = idoc.items()
    assert len(items) == len(lines)
    for item in items:
        p01 = item[0].values
        line = lines[int(p01["POSEX"])]
        assert number(p01["MENGE"]) == number(line["quantity"])
        assert p01["MENEE"] == line["uom"].upper()
        assert number(p01["VPREI"]) == number(p01["PREIS"]) == number(line["price"])
        assert p01["PEINH"] == "1"
        assert number(p01["NETWR"]) == number(line["total"])
        assert p01["CURCY"] == line["currency"]
        segments = {r.segment: r.values for r in item}
        assert segments["E1EDP20"]["EDATU"] == line["need-by-date"][:10].replace("-", "")
        assert number(segments["E1EDP20"]["WMENG"]) == number(line["quantity"])
        assert segments["E1EDP19"]["KTEXT"] == one_line(line["description"])[:70].rstrip()
        assert item_text(item) == line["description"].replace("\r\n", "\n").strip()


def check_file(path: Path, pos: dict[tuple[str, str], dict[str, object]]) -> int:
    idocs = read_idocs(path)
    assert len({i.control["DOCNUM"] for i in idocs}) == len(idocs), "DOCNUM repeats within a file"
    for idoc in idocs:
        arckey = idoc.control["ARCKEY"].split("-")  # COUPA-PO-<id>-V<version>
        check_po_idoc(idoc, pos[(arckey[2], arckey[3][1:])])
    return len(idocs)


GOLDEN_PO_FILES = sorted(p for p in GOLDEN.glob("*OrderHeader_*.idoc")) if GOLDEN.exists() else []


@pytest.mark.parametrize("path", GOLDEN_PO_FILES, ids=lambda p: p.name)
def test_golden_idoc_reads_right_with_sap_definition(path: Path) -> None:
    assert check_file(path, source_pos(SAMPLES)) > 0


def test_fresh_render_reads_right_with_sap_definition(tmp_path: Path) -> None:
    config = load_config(build_workspace(tmp_path / "ws"))
    pipeline.run(config, clock=lambda: FIXED_NOW)
    written = sorted(config.handoff_dir.glob("*OrderHeader_*.idoc"))
    assert sum(check_file(p, source_pos(SAMPLES)) for p in written) == 7  # the samples' POs handed off


def test_long_multi_line_texts_go_whole_into_the_text_segments(tmp_path: Path) -> None:
    """A 255-character description in three paragraphs, non-ASCII, and a header text: nothing rejected or cut."""
    ws = build_workspace(tmp_path / "ws")
    folder = tmp_path / "ws" / "remote" / "Outgoing" / "PurchaseOrders"
    for old in folder.glob("*.csv"):
        old.unlink()
    description = (
        "Sicherheitsschrank für brennbare Flüssigkeiten nach EN 14470-1, Typ 90 (90 min Feuerwiderstand),\r\n"
        "Außenmaße 1196 × 615 × 1968 mm, Gehäuse lichtgrau RAL 7035, Türen grün RAL 6011,\n"
        "mit Bodenauffangwanne, 3 Fachböden, Zuluft/Abluft Ø 75 mm — frei Haus, Lager"
    )
    assert len(description) == 255
    header_text = "Anlieferung nur Mo–Fr 7–15 Uhr.\nTor 3, Ansprechpartner: Jürgen Weiß, +49 711 555-0142"
    data = po_file(
        [{"id": "4401", "attachment-text-concat": header_text}],
        [{"description": description}, {"description": "Kabelbinder"}],
    )
    (folder / "OrderHeader_20261124_010000Z.csv").write_bytes(data)
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "po.csv").write_bytes(data)  # the run moves the remote file to the archive
    config = load_config(ws)

    pipeline.run(config, clock=lambda: FIXED_NOW)

    (path,) = config.handoff_dir.glob("*OrderHeader_20261124_010000Z*.idoc")
    assert check_file(path, source_pos(tmp_path / "source")) == 1  # every field against the source, texts too
    (idoc,) = read_idocs(path)
    first = idoc.items()[0]
    assert [r.values["TDFORMAT"] for r in first if r.segment == "E1EDPT2"][:2] == ["*", "="]
    assert all(len(r.raw[63:133].rstrip()) <= 70 for r in idoc.records if r.segment in ("E1EDPT2", "E1EDKT2"))


def test_sap_versioned_segment_names_on_request(tmp_path: Path) -> None:
    """``idoc: {segment_names: definition}`` writes E2EDK01005 ... as SAP's WE60 export names them."""
    ws = build_workspace(tmp_path / "ws")
    shutil.copytree(ROOT / "mappings", tmp_path / "ws" / "mappings")
    own = 'handoff_dir = "handoff"\nmappings_dir = "mappings"'
    ws.write_text(ws.read_text().replace('handoff_dir = "handoff"', own))
    mapping = tmp_path / "ws" / "mappings" / "sap_orders05.yaml"
    text = mapping.read_text(encoding="utf-8")
    mapping.write_text(text.replace("segment_names: segment}", "segment_names: definition}", 1), encoding="utf-8")
    config = load_config(ws)

    pipeline.run(config, clock=lambda: FIXED_NOW)

    (path,) = config.handoff_dir.glob("*OrderHeader_20261123_020000Z*.idoc")
    names = {line[:30].rstrip() for line in path.read_text(encoding="utf-8").splitlines()}
    assert {"E2EDK01005", "E2EDKA1003", "E2EDP01011", "E2EDPT2001"} <= names
    assert not {n for n in names if n.startswith("E1")}
    assert check_file(path, source_pos(SAMPLES)) == 4  # read back through SAP's definition names


def test_control_characters_never_break_a_record(tmp_path: Path) -> None:
    """CR, LF, CRLF, tab and the other breaks in every mapped text field: still one record per line."""
    ws = build_workspace(tmp_path / "ws")
    folder = tmp_path / "ws" / "remote" / "Outgoing" / "PurchaseOrders"
    sample = folder / "OrderHeader_20261123_020000Z.csv"
    text = sample.read_text(encoding="utf-8")
    text = text.replace("Müller Industriebedarf GmbH", f"Müll\r\n{CONTROL}er Industriebedarf GmbH")  # 35 with spaces
    text = text.replace("Einweghandschuhe Nitril", f"Einw\r\nEDI_DC40 {CONTROL}eghandschuhe Nitril")
    sample.write_text(text, encoding="utf-8")
    config = load_config(ws)
    pipeline.run(config, clock=lambda: FIXED_NOW)
    (handoff,) = config.handoff_dir.glob("*OrderHeader_20261123_020000Z*.idoc")
    idocs = read_idocs(handoff)  # asserts every line's length and segment
    assert [i.one("E1EDK01")["BELNR"] for i in idocs] == ["4201", "4202", "4203", "4204"]  # none rejected
    ka1 = idocs[0].one("E1EDKA1")
    assert ka1["NAME1"] == "Müll" + " " * 8 + "er Industriebedarf GmbH"  # CRLF is one space, each other one
    first_item = {r.segment: r.values for r in idocs[0].items()[0]}
    assert first_item["E1EDP19"]["KTEXT"].startswith("Einw EDI_DC40" + " " * 8 + "eghandschuhe")
    text = item_text(idocs[0].items()[0])  # Coupa's line breaks are new text lines (paragraphs) in E1EDPT2
    assert text.split("\n")[:2] == ["Einw", "EDI_DC40"] and not set(text) & set(CONTROL.replace("\n", ""))
    for idoc in idocs:
        check_numbering(idoc)


def test_control_character_in_a_code_rejects_the_po(tmp_path: Path) -> None:
    ws = build_workspace(tmp_path / "ws")
    sample = tmp_path / "ws" / "remote" / "Outgoing" / "PurchaseOrders" / "OrderHeader_20261123_020000Z.csv"
    sample.write_text(sample.read_text(encoding="utf-8").replace('"BOX"', '"BO\tX"', 1), encoding="utf-8")
    config = load_config(ws)
    pipeline.run(config, clock=lambda: FIXED_NOW)
    from batchsync.ledger import Ledger

    ledger = Ledger(config.state_dir / "ledger.db")
    rows = ledger.query(
        "SELECT v.outcome, v.reason FROM po_versions v JOIN files f ON f.id = v.file_id "
        "WHERE v.po_id = '4201' AND f.name = 'OrderHeader_20261123_020000Z.csv'"
    )
    assert rows[0]["outcome"] == "rejected"
    assert rows[0]["reason"] == "PO line 1: E1EDP01.MENEE: 'BO␣X' holds a line break or control character"
