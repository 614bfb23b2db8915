"""The SAP purchase-order target (mappings/sap_pordcr1.yaml): PORDCR1 for a new PO, PORDCH for a revision.

Every IDoc is read back with the basic type's published definition (tests/idoc_reader.py cutting at
mappings/idoc/PORDCR102.yaml and PORDCH03.yaml) and compared with the Coupa rows read by the csv module:
the X segments flag exactly the fields sent (a new PO) or changed (a revision), each Coupa allocation is an
account assignment with its percent, a line without allocations gets its own.

Refresh on purpose only: ``UPDATE_GOLDEN=1 pytest tests/test_sap_pordcr1.py``, then read the diff.
"""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from batchsync import pipeline
from batchsync.config import load_config
from batchsync.demo import build_workspace
from batchsync.errors import ConfigError
from batchsync.kinds import layout_for
from batchsync.mapping import load_mapping
from tests.conftest import FIXED_NOW, SAMPLES, Workspace
from tests.coupa_files import po_file
from tests.idoc_reader import Idoc, Record, check_numbering, check_segment_order, definition, read_idocs
from tests.idoc_xml_reader import read_xml_idocs
from tests.targets import demo_handoff, files_match_golden, pointed_at, with_own_files
from tests.test_idoc_layout import source_pos, suppliers

TARGET = "sap_pordcr1"
GOLDEN = Path(__file__).resolve().parent / "golden" / TARGET
ROOT = Path(__file__).resolve().parent.parent
XREF = ROOT / "mappings" / "xref"
DATA_HEADER = {"SEGNAM", "MANDT", "DOCNUM", "SEGNUM", "PSGNUM", "HLEVEL"}  # a flat data record's, not XML's
BASIC_TYPES = ("PORDCR102", "PORDCH03")
# each BAPI structure's X structure (SAP shortens the schedule's to E1BPMEPOSCHEDULX)
X_SEGMENT = {
    "E1BPMEPOHEADER": "E1BPMEPOHEADERX",
    "E1BPMEPOITEM": "E1BPMEPOITEMX",
    "E1BPMEPOSCHEDULE": "E1BPMEPOSCHEDULX",
    "E1BPMEPOACCOUNT": "E1BPMEPOACCOUNTX",
}


def xref(name: str) -> dict[str, str]:
    with (XREF / f"{name}.csv").open(encoding="utf-8") as stream:
        rows = list(csv.reader(stream))[1:]
    return {key: value for key, value in rows}


@pytest.fixture(scope="module")
def handoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_handoff(tmp_path_factory.mktemp("pordcr1") / "ws", TARGET, po_feed_only=True)


def idocs_of(folder: Path) -> list[Idoc]:
    return [idoc for path in sorted(folder.glob(f"*.{TARGET}.idoc")) for idoc in read_idocs(path, *BASIC_TYPES)]


def test_handoff_files_are_the_golden_ones(handoff: Path) -> None:
    names = files_match_golden(sorted(handoff.glob(f"*.{TARGET}.*")), GOLDEN)
    assert len([n for n in names if n.endswith(".idoc")]) == 3


def flagged(x_record: Record) -> set[str]:
    return {name for name, value in x_record.values.items() if value == "X" and name != "SEGNAM"}


def sent_fields(record: Record, x_segment: str, basic_type: str) -> set[str]:
    """The X segment's flags a record's non-empty fields call for (PO_ITEMX for the key PO_ITEM)."""
    flags = {name for name, first, last in definition(basic_type)["segments"][x_segment]["fields"] if first == last}
    values = {name for name, value in record.values.items() if value}
    return {flag for flag in flags if flag in values or (flag.endswith("X") and flag[:-1] in values)}


def x_pairs(idoc: Idoc) -> list[tuple[Record, Record, str]]:
    """Each data record with its X record, paired in order and checked to name the same item."""
    pairs = []
    for segment, x_segment in X_SEGMENT.items():
        data, flags = idoc.segments(segment), idoc.segments(x_segment)
        data = [r for r in data if not r.values.get("DELETE_IND")] if segment == "E1BPMEPOITEM" else data
        flags = [r for r in flags if "DELETE_IND" not in flagged(r)] if segment == "E1BPMEPOITEM" else flags
        assert len(data) == len(flags), (segment, idoc.control["ARCKEY"])
        for record, x_record in zip(data, flags, strict=True):
            assert record.values.get("PO_ITEM") == x_record.values.get("PO_ITEM")
            pairs.append((record, x_record, x_segment))
    return pairs


def test_every_idoc_reads_back_with_its_basic_types_definition(handoff: Path) -> None:
    idocs = idocs_of(handoff)
    assert {i.control["IDOCTYP"] for i in idocs} == set(BASIC_TYPES)
    for idoc in idocs:
        check_numbering(idoc)
        check_segment_order(idoc)
        assert idoc.control["MESTYP"] == {"PORDCR102": "PORDCR1", "PORDCH03": "PORDCH"}[idoc.control["IDOCTYP"]]
        assert idoc.records[0].values["NO_MESSAGING"] == "X"  # Coupa, not SAP, sends the PO to the supplier


def test_a_new_pos_header_and_items_are_the_coupa_rows(handoff: Path) -> None:
    pos = source_pos(SAMPLES)
    new = [i for i in idocs_of(handoff) if i.control["IDOCTYP"] == "PORDCR102"]
    assert len(new) == 6
    for idoc in new:
        header = idoc.one("E1BPMEPOHEADER")
        po = pos[(header["PO_NUMBER"], idoc.control["ARCKEY"].rsplit("-V", 1)[1])]
        coupa: dict[str, str] = po["header"]  # type: ignore[assignment]
        assert header["VENDOR"] == suppliers()[coupa["supplier-number"]]
        assert header["CURRENCY"] == coupa["accounting-total-currency"]
        assert header["DOC_DATE"] == coupa["created-at"][:10].replace("-", "")
        assert header["PMNTTRMS"] == xref("sap_payment_terms")[coupa["payment-terms-code"]]
        lines: list[dict[str, str]] = po["lines"]  # type: ignore[assignment]
        items = idoc.segments("E1BPMEPOITEM")
        assert [i.values["PO_ITEM"] for i in items] == [f"{int(li['line-number']) * 10:05d}" for li in lines]
        for item, line in zip(items, lines, strict=True):
            one_line = " ".join(line["description"].split("\n"))
            assert item.values["SHORT_TEXT"] == one_line[:40].rstrip()
            if line["type"] == "Line" and line.get("line-type") != "OrderAmountLine":
                assert Decimal(item.values["QUANTITY"]) == Decimal(line["quantity"])
                assert Decimal(item.values["NET_PRICE"]) == Decimal(line["price"])
            assert item.values["MATL_GROUP"] == xref("sap_material_groups")[line["commodity"]]


def test_a_new_po_flags_exactly_the_fields_it_sends(handoff: Path) -> None:
    for idoc in (i for i in idocs_of(handoff) if i.control["IDOCTYP"] == "PORDCR102"):
        for record, x_record, x_segment in x_pairs(idoc):
            assert flagged(x_record) == sent_fields(record, x_segment, "PORDCR102"), (record.segment, record.raw[:90])


def test_split_allocations_arrive_as_account_assignments_with_their_percents(handoff: Path) -> None:
    """PO 4202 line 1: two Coupa allocations (60 % and 40 %) are SAP's multiple account assignment."""
    with next(SAMPLES.glob("*020000Z.csv")).open(encoding="utf-8") as stream:
        allocations = [r for r in csv.reader(stream) if r[0] == "Allocation"]
    [idoc] = [i for i in idocs_of(handoff) if i.control["ARCKEY"] == "COUPA-PO-4202-V1"]
    [item] = [i.values for i in idoc.segments("E1BPMEPOITEM") if i.values["PO_ITEM"] == "00010"]
    assert item["DISTRIB"] == "2"
    accounts = [a.values for a in idoc.segments("E1BPMEPOACCOUNT") if a.values["PO_ITEM"] == "00010"]
    assert [a["SERIAL_NO"] for a in accounts] == [f"{int(r[5]):02d}" for r in allocations]
    assert [Decimal(a["DISTR_PERC"]) for a in accounts] == [Decimal(r[7]) for r in allocations]
    assert [a["GL_ACCOUNT"] for a in accounts] == [xref("sap_gl_accounts")[r[10]] for r in allocations]
    assert [a["COSTCENTER"] for a in accounts] == [xref("sap_cost_centers")[r[11]] for r in allocations]
    # a line without allocations gets one account assignment of its own, not distributed
    others = [a.values for a in idoc.segments("E1BPMEPOACCOUNT") if a.values["PO_ITEM"] != "00010"]
    assert [(a["SERIAL_NO"], a["DISTR_PERC"]) for a in others] == [("01", ""), ("01", "")]


def test_a_revision_is_pordch_with_the_changed_fields_flagged(handoff: Path) -> None:
    """PO 4202 version 2: line 2's quantity changed, line 4 is new, the rest (header included) as it was."""
    pos = source_pos(SAMPLES)
    before, after = pos[("4202", "1")]["lines"], pos[("4202", "2")]["lines"]  # type: ignore[index]
    [idoc] = [i for i in idocs_of(handoff) if i.control["IDOCTYP"] == "PORDCH03"]
    assert idoc.one("E1PORDCH")["PURCHASEORDER"] == "4202"
    assert idoc.segments("E1BPMEPOHEADER") == []
    changed = {"quantity": "QUANTITY", "price": "NET_PRICE", "description": "SHORT_TEXT", "uom": "PO_UNIT"}
    old, new = before[1], after[1]  # type: ignore[index]
    expected = {"PO_ITEMX"} | {sap for coupa, sap in changed.items() if old[coupa] != new[coupa]}
    items = {r.values["PO_ITEM"]: r for r in idoc.segments("E1BPMEPOITEMX")}
    assert sorted(items) == ["00020", "00040"]
    assert flagged(items["00020"]) == expected and len(expected) > 1
    assert flagged(items["00040"]) == sent_fields(idoc.segments("E1BPMEPOITEM")[1], "E1BPMEPOITEMX", "PORDCH03")


def _send(ws: Workspace, name: str, data: bytes) -> Idoc:
    ws.put(name, data)
    result = ws.cli("run")
    assert result.exit_code == 0, ws.rows("SELECT po_id, version, outcome, reason FROM po_versions")
    [path] = ws.handoff.glob(f"R*_{name.removesuffix('.csv')}.*.{TARGET}.idoc")
    [idoc] = read_idocs(path, *BASIC_TYPES)
    check_numbering(idoc)
    check_segment_order(idoc)
    return idoc


def test_a_cancel_over_sshd_deletes_every_item_with_the_deletion_indicator(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    pointed_at(ws.config, TARGET, po_feed_only=True)
    account = {"commodity": "MRO - Elektro", "segment-1": "6110", "segment-2": "510"}
    lines = [{"id": "7001", **account}, {"id": "7002", **account}]
    header = {"id": "4301", "ship-to-address-name": "Werk Stuttgart-Feuerbach", "ship-to-address-country": "DE"}
    first = _send(ws, "OrderHeader_20261124_010000Z.csv", po_file([header], lines))
    assert first.control["IDOCTYP"] == "PORDCR102" and len(first.segments("E1BPMEPOITEM")) == 2

    cancel = po_file([{**header, "version": "2", "status": "cancelled"}], lines)
    idoc = _send(ws, "OrderHeader_20261124_020000Z.csv", cancel)

    assert idoc.control["IDOCTYP"] == "PORDCH03"
    items = [(r.values["PO_ITEM"], r.values["DELETE_IND"]) for r in idoc.segments("E1BPMEPOITEM")]
    assert items == [("00010", "L"), ("00020", "L")]
    assert [flagged(r) for r in idoc.segments("E1BPMEPOITEMX")] == [{"PO_ITEMX", "DELETE_IND"}] * 2
    assert idoc.segments("E1BPMEPOACCOUNT") == idoc.segments("E1BPMEPOSCHEDULE") == []


def test_the_samples_over_sshd_give_the_golden_idocs(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    pointed_at(ws.config, TARGET, po_feed_only=True)
    for path in sorted(SAMPLES.glob("*.csv")):
        ws.put(path.name)
    pipeline.run(load_config(ws.config), clock=lambda: FIXED_NOW)  # the golden files' time in the control records
    rejected = ws.rows("SELECT po_id FROM po_versions WHERE outcome = 'rejected' ORDER BY po_id")
    assert [r["po_id"] for r in rejected] == ["4206", "4207"]  # a price "12,50"; a supplier without a vendor
    produced = sorted(ws.handoff.glob(f"*.{TARGET}.idoc"))
    assert [p.name for p in produced] == sorted(p.name for p in GOLDEN.glob("*.idoc"))
    for path in produced:
        assert path.read_bytes() == (GOLDEN / path.name).read_bytes(), path.name


def _as_idoc_xml(flat_mapping: Path) -> str:
    """The shipped mapping's records as IDoc-XML segments (layout: xml): the same fields, without the flat
    file's data-record header, which IDoc-XML says by nesting."""
    mapping = yaml.safe_load(flat_mapping.read_text(encoding="utf-8"))
    mapping |= {"target": "pordcr1_xml", "template": "pordcr1_xml.xml.j2", "extension": "xml"}
    for record in mapping["records"]:
        record.pop("length")
        record["layout"] = "xml"
        if record["name"] != "EDI_DC40":
            record["fields"] = [f for f in record["fields"] if f["name"] not in DATA_HEADER]
    return yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False)


XML_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<PORDCR102>
{% for doc in documents -%}
<IDOC BEGIN="1">
{{ doc.records }}
</IDOC>
{% endfor -%}
</PORDCR102>
"""


def test_the_same_records_as_idoc_xml_read_back_by_an_xml_parser(handoff: Path, tmp_path: Path) -> None:
    """layout: xml on the same records: every element where PORDCR102 defines it, the same values as the flat file."""
    config = build_workspace(tmp_path / "ws")
    for path in (tmp_path / "ws" / "remote" / "Outgoing").rglob("*.csv"):
        if not path.name.endswith("020000Z.csv"):  # new POs only: an IDoc-XML file is of one basic type
            path.unlink()
    mapping = _as_idoc_xml(ROOT / "mappings" / f"{TARGET}.yaml")
    with_own_files(config, {"pordcr1_xml.yaml": mapping}, {"pordcr1_xml.xml.j2": XML_TEMPLATE})
    pipeline.run(load_config(pointed_at(config, "pordcr1_xml", po_feed_only=True)), clock=lambda: FIXED_NOW)

    [xml_file] = (tmp_path / "ws" / "handoff").glob("*.pordcr1_xml.xml")
    from_xml = read_xml_idocs(xml_file)
    [flat_file] = handoff.glob(f"*020000Z.*.{TARGET}.idoc")
    from_flat = read_idocs(flat_file, *BASIC_TYPES)
    assert len(from_xml) == len(from_flat) == 4
    for xml_idoc, flat_idoc in zip(from_xml, from_flat, strict=True):
        # DOCNUM is the hand-off's own (the file, the target), the rest the same
        control = {k: v for k, v in flat_idoc.control.items() if v and k != "DOCNUM"}
        assert {k: v for k, v in xml_idoc.control.items() if k != "DOCNUM"} == control
        flat_records = [
            (r.segment, {k: v for k, v in r.values.items() if v and k not in DATA_HEADER}) for r in flat_idoc.records
        ]
        # a flat field's trailing blanks are padding (SAP's character fields ignore them): compared without
        xml_records = [(r.segment, {k: v.rstrip() for k, v in r.values.items()}) for r in xml_idoc.records]
        assert xml_records == flat_records


def test_an_idoc_xml_root_needs_the_segment_by_segment_order(tmp_path: Path) -> None:
    """The root element encloses the document's other segments; that only holds in SAP's segment order."""
    mapping = _as_idoc_xml(ROOT / "mappings" / f"{TARGET}.yaml").replace("order: by_segment", "order: by_item")
    shutil.copytree(XREF, tmp_path / "xref")
    (tmp_path / "pordcr1_xml.yaml").write_text(mapping, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(tmp_path, "pordcr1_xml", layout_for("purchase_orders"))
    assert "idoc.order: an IDoc-XML element holding others needs by_segment" in str(caught.value)
