"""The SAP purchase-order target (mappings/sap_pordcr1.yaml): PORDCR1 for a new PO, PORDCH for a revision.

Every IDoc is read back with the basic type's published definition (tests/idoc_reader.py cutting at
mappings/idoc/PORDCR102.yaml and PORDCH03.yaml) and compared with the Coupa rows read by the csv module:
the X segments flag exactly the fields sent (a new PO) or changed (a revision), each Coupa allocation is an
account assignment with its percent, a line without allocations gets its own.

Refresh on purpose only: ``UPDATE_GOLDEN=1 pytest tests/test_sap_pordcr1.py``, then read the diff.
"""

from __future__ import annotations

import csv
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from batchsync import pipeline
from batchsync.config import load_config
from batchsync.errors import ConfigError
from batchsync.kinds import layout_for
from batchsync.mapping import load_mapping
from tests.change_files import change_file
from tests.conftest import CHANGE_SAMPLE, FIXED_NOW, SAMPLES, Workspace
from tests.coupa_files import po_file
from tests.idoc_reader import Idoc, Record, check_numbering, check_segment_order, definition, read_idocs
from tests.idoc_xml_reader import read_xml_idocs
from tests.targets import CHANGE_FEED, demo_handoff, files_match_golden, pointed_at
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


# a PO of the tests' own, with what SAP needs of it in the shipped xref tables
ACCOUNT = {"commodity": "MRO - Elektro", "segment-1": "6110", "segment-2": "510"}
HEADER_4301 = {"id": "4301", "ship-to-address-name": "Werk Stuttgart-Feuerbach", "ship-to-address-country": "DE"}


def test_a_cancel_over_sshd_deletes_every_item_with_the_deletion_indicator(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    pointed_at(ws.config, TARGET, po_feed_only=True)
    lines = [{"id": "7001", **ACCOUNT}, {"id": "7002", **ACCOUNT}]
    header = HEADER_4301
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
    _samples_over_sshd(ws, TARGET)
    assert _sample_changes(ws) == SAMPLE_CHANGES  # none the BAPI could take as it is: no change file
    rejected = ws.rows("SELECT po_id FROM po_versions WHERE outcome = 'rejected' ORDER BY po_id")
    assert [r["po_id"] for r in rejected] == ["4206", "4207"]  # a price "12,50"; a supplier without a vendor
    produced = sorted(ws.handoff.glob(f"*.{TARGET}.idoc"))
    assert [p.name for p in produced] == sorted(p.name for p in GOLDEN.glob("*.idoc"))
    for path in produced:
        assert path.read_bytes() == (GOLDEN / path.name).read_bytes(), path.name


XML_TARGET = "sap_pordcr1_xml"


def _records(target: str, kind: str) -> list[tuple[str, str, str, str, list[str]]]:
    """A shipped mapping's compiled records: name, segment, level, layout and field names."""
    mapping = load_mapping(ROOT / "mappings", target, layout_for(kind))
    return [(r.name, r.segment, r.level, r.layout, r.column_names) for r in mapping.records]


@pytest.mark.parametrize("kind", ["purchase_orders", "order_header_changes"])
def test_the_xml_mappings_have_the_flat_mappings_records(kind: str) -> None:
    """sap_pordcr1_xml is sap_pordcr1 in another encoding (records_from): the same records, field by field,
    as IDoc-XML segments, without the flat file's data-record header."""
    xml_records = _records(XML_TARGET, kind)
    assert {layout for _, _, _, layout, _ in xml_records} == {"xml"}
    flat = [
        (name, segment, level, "xml", fields if name == "EDI_DC40" else [f for f in fields if f not in DATA_HEADER])
        for name, segment, level, _, fields in _records(TARGET, kind)
    ]
    assert xml_records == flat


@pytest.fixture(scope="module")
def xml_handoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_handoff(tmp_path_factory.mktemp("pordcr1_xml") / "ws", XML_TARGET, po_feed_only=True)


def _flat_values(idoc: Idoc) -> list[tuple[str, dict[str, str]]]:
    return [(r.segment, {k: v for k, v in r.values.items() if v and k not in DATA_HEADER}) for r in idoc.records]


def _xml_values(idoc: Idoc) -> list[tuple[str, dict[str, str]]]:
    # a flat field's trailing blanks are padding (SAP's character fields ignore them): compared without
    return [(r.segment, {k: v.rstrip() for k, v in r.values.items()}) for r in idoc.records]


def _same_idocs(from_xml: list[Idoc], from_flat: list[Idoc]) -> None:
    assert [i.control["ARCKEY"] for i in from_xml] == [i.control["ARCKEY"] for i in from_flat]
    for xml_idoc, flat_idoc in zip(from_xml, from_flat, strict=True):
        # DOCNUM is the hand-off's own (the file, the target), the rest the same
        control = {k: v for k, v in flat_idoc.control.items() if v and k != "DOCNUM"}
        assert {k: v for k, v in xml_idoc.control.items() if k != "DOCNUM"} == control
        assert _xml_values(xml_idoc) == _flat_values(flat_idoc)


def test_idoc_xml_holds_one_basic_type_per_file_and_the_flat_files_values(handoff: Path, xml_handoff: Path) -> None:
    """New POs in <name>.xml (root PORDCR102), the rest in <name>.changes.xml (root PORDCH03), each read back by
    an XML parser against SAP's definition; together the flat files' IDocs, value for value."""
    for manifest_path in sorted(xml_handoff.glob(f"*.{XML_TARGET}.xml.manifest.json")):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = [f for f in [manifest["file"], *[o["file"] for o in manifest.get("outputs", [])]] if f]
        roots = {f: read_xml_idocs(xml_handoff / f) for f in files}
        for name, idocs in roots.items():
            assert {i.control["IDOCTYP"] for i in idocs} == {"PORDCH03" if ".changes." in name else "PORDCR102"}
        in_files = sorted(i.control["ARCKEY"] for idocs in roots.values() for i in idocs)
        sent = sorted(f"COUPA-PO-{d['id']}-V{d['version']}" for d in manifest["documents"])
        assert in_files == sent  # every document in exactly one file
        stem = manifest_path.name.split(".")[0]
        [flat] = handoff.glob(f"{stem}.*.{TARGET}.idoc")
        by_key = {i.control["ARCKEY"]: i for i in read_idocs(flat, *BASIC_TYPES)}
        for idocs in roots.values():
            _same_idocs(idocs, [by_key[i.control["ARCKEY"]] for i in idocs])
    assert len(list(xml_handoff.glob("*.changes.xml"))) == 1  # PO 4202's revision


def test_coupa_is_told_the_file_that_holds_each_po(xml_handoff: Path) -> None:
    """The write-back names the file a PO went to: PO 4202's revision is in the .changes.xml file."""
    [upload] = (xml_handoff.parent / "remote" / "Incoming" / "PurchaseOrderChanges").glob("*.csv")
    with upload.open(encoding="utf-8") as stream:
        sent = {(r[2], r[-2]) for r in csv.reader(stream) if r[-2].startswith("Sent to ERP")}
    [revision] = [text for po, text in sent if po == "4202" and "030000Z" in text]
    assert revision.endswith(f".{XML_TARGET}.changes.xml")
    [new] = [text for po, text in sent if po == "4205"]
    assert new.endswith(f"030000Z.9abafcdca2bc.{XML_TARGET}.xml")


def test_an_accepted_change_request_as_idoc_xml_is_the_flat_files_idoc(sftp_workspace: Workspace) -> None:
    """The change of test_an_accepted_change_request_is_pordch_flagging_only_what_differs, through
    sap_pordcr1_xml: a PORDCH03 file with the values of the flat golden file."""
    ws = sftp_workspace
    _change_of_4201(ws, CHANGE_9301, XML_TARGET, **{"payment-term-code": "Net 45"})

    assert pipeline.run(load_config(ws.config), clock=lambda: FIXED_NOW).exit_code == 0

    [path] = ws.handoff.glob(f"*OrderHeaderChange_20261124_010000Z*.{XML_TARGET}.xml")
    files_match_golden([path], GOLDEN.with_name(f"{XML_TARGET}_change"))
    [flat] = GOLDEN.with_name(f"{TARGET}_change").glob("*.idoc")
    _same_idocs(read_xml_idocs(path), read_idocs(flat, "PORDCH03"))


def test_the_samples_over_sshd_give_the_golden_idoc_xml(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    _samples_over_sshd(ws, XML_TARGET)
    produced = sorted(ws.handoff.glob(f"*.{XML_TARGET}.*xml"))
    files_match_golden(produced, GOLDEN.with_name(XML_TARGET))
    assert _sample_changes(ws) == SAMPLE_CHANGES


def _samples_over_sshd(ws: Workspace, target: str) -> None:
    """Both feeds' samples on the sshd, run into ``target`` at the golden files' time (their control records')."""
    pointed_at(ws.config, target)
    for path in sorted(SAMPLES.glob("*.csv")):
        ws.put(path.name)
    ws.put_change(CHANGE_SAMPLE)
    pipeline.run(load_config(ws.config), clock=lambda: FIXED_NOW)


# the sample change requests: 9001 adds a line (SAP's BAPI needs its plant and account), 9002 and 9003
# wait (their PO not handed off; an approval pending), 9004 and 9005 broke a rule or were rejected
SAMPLE_CHANGES = [
    ("9001", "rejected", True),
    ("9002", "waiting", False),
    ("9003", "waiting", False),
    ("9004", "rejected", False),
    ("9005", "rejected", False),
]


def _sample_changes(ws: Workspace) -> list[tuple[str, str, bool]]:
    rows = ws.rows("SELECT id, status, reason FROM change_requests ORDER BY id")
    return [(r["id"], r["status"], "adds line 3" in (r["reason"] or "")) for r in rows]


def test_a_cancel_as_idoc_xml_is_a_changes_file_alone(sftp_workspace: Workspace) -> None:
    """A source file holding no new PO: no PORDCR102 file (a root without an IDOC is no IDoc), the manifest's
    file null, its outputs the PORDCH03 file."""
    ws = sftp_workspace
    pointed_at(ws.config, XML_TARGET, po_feed_only=True)
    lines = [{"id": "7001", **ACCOUNT}]
    header = HEADER_4301
    ws.put("OrderHeader_20261124_010000Z.csv", po_file([header], lines))
    assert ws.cli("run").exit_code == 0
    ws.put("OrderHeader_20261124_020000Z.csv", po_file([{**header, "version": "2", "status": "cancelled"}], lines))

    assert ws.cli("run").exit_code == 0

    [manifest_path] = ws.handoff.glob("*OrderHeader_20261124_020000Z*.manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert (manifest["file"], manifest["bytes"]) == (None, 0)
    [changes] = manifest["outputs"]
    assert sorted(p.name for p in ws.handoff.glob("*OrderHeader_20261124_020000Z*")) == sorted(
        [changes["file"], manifest_path.name]
    )
    [idoc] = read_xml_idocs(ws.handoff / changes["file"])
    assert idoc.control["IDOCTYP"] == "PORDCH03"
    assert [(r.values["PO_ITEM"], r.values["DELETE_IND"]) for r in idoc.segments("E1BPMEPOITEM")] == [("00010", "L")]


def _with_shipped_mappings(folder: Path) -> Path:
    """Editable copies of the shipped mappings (and their xref tables) in ``folder``."""
    shutil.copytree(ROOT / "mappings", folder, dirs_exist_ok=True)
    return folder


def test_an_idoc_xml_root_needs_the_segment_by_segment_order(tmp_path: Path) -> None:
    """The root element encloses the document's other segments; that only holds in SAP's segment order."""
    _with_shipped_mappings(tmp_path)
    flat = tmp_path / f"{TARGET}.yaml"  # where sap_pordcr1_xml takes its records and idoc from
    flat.write_text(flat.read_text(encoding="utf-8").replace("order: by_segment", "order: by_item"))
    with pytest.raises(ConfigError) as caught:
        load_mapping(tmp_path, XML_TARGET, layout_for("purchase_orders"))
    assert "idoc.order: an IDoc-XML element holding others needs by_segment" in str(caught.value)


@pytest.mark.parametrize(
    ("decisions", "problem"),
    [
        ("[new]", "outputs: no output takes the documents sent as 'change'"),
        ("[change, close, cancel, renew]", "outputs[1].decisions: 'renew' is not how a document is sent"),
        ("[new, change, close, cancel]", "outputs: documents sent as 'new' would go to two files"),
    ],
)
def test_outputs_split_by_decision_take_every_document_once_checked_when_loaded(
    tmp_path: Path, decisions: str, problem: str
) -> None:
    xml = _with_shipped_mappings(tmp_path) / f"{XML_TARGET}.yaml"
    xml.write_text(
        xml.read_text(encoding="utf-8").replace("decisions: [change, close, cancel]", f"decisions: {decisions}")
    )
    with pytest.raises(ConfigError) as caught:
        load_mapping(tmp_path, XML_TARGET, layout_for("purchase_orders"))
    assert problem in str(caught.value)


def _change_of_4201(
    ws: Workspace, lines: list[dict[str, str]], target: str = TARGET, po_target: str | None = None, **header: str
) -> None:
    """PO 4201 (the sample's lines 1 and 2) handed off (through ``po_target``, else ``target``), then a
    change request of it."""
    pointed_at(ws.config, target)
    if po_target is not None:
        head, sep, changes = ws.config.read_text().partition(CHANGE_FEED)
        ws.config.write_text(head.replace(f'target = "{target}"', f'target = "{po_target}"') + sep + changes)
    ws.put("OrderHeader_20261123_020000Z.csv")
    assert ws.cli("run").exit_code == 0
    head = {"id": "9301", "order-header-id": "4201", "supplier-number": "SUP-1001", "currency": "EUR"}
    listed = [{"order-header-change-id": "9301", "uom": "BOX", **line} for line in lines]
    ws.put_change("OrderHeaderChange_20261124_010000Z.csv", change_file([{**head, **header}], listed))


GLOVES = {
    "line-num": "1",
    "order-line-id": "88101",
    "description": "Einweghandschuhe Nitril, puderfrei, Gr. L (100 Stk./Box)",
}
TIES = {
    "line-num": "2",
    "order-line-id": "88102",
    "description": "Kabelbinder 300 x 4,8 mm, schwarz, UV-beständig (100 Stk.)",
}
TIES_30 = {
    **TIES,
    "quantity": "30",
    "price": "6.40",
    "source-part-num": "KB-300-48-SW",
    "need-by-date": "2026-12-04T00:00:00+01:00",
}
CHANGE_9301 = [{**GLOVES, "pending-delete": "true"}, TIES_30]  # line 1 deleted, line 2 25 -> 30


def test_an_accepted_change_request_is_pordch_flagging_only_what_differs(sftp_workspace: Workspace) -> None:
    """Change 9301 of PO 4201: line 2's quantity 25 -> 30 (its price as it was), line 1 deleted, the payment
    terms changed: PORDCH with exactly those flags; golden, and read back with PORDCH03's definition."""
    ws = sftp_workspace
    _change_of_4201(ws, CHANGE_9301, **{"payment-term-code": "Net 45"})

    summary = pipeline.run(load_config(ws.config), clock=lambda: FIXED_NOW)  # the golden file's control record

    assert summary.exit_code == 0
    [path] = ws.handoff.glob(f"*OrderHeaderChange_20261124_010000Z*.{TARGET}.idoc")
    [idoc] = read_idocs(path, "PORDCH03")
    check_numbering(idoc)
    check_segment_order(idoc)
    assert (idoc.control["IDOCTYP"], idoc.control["MESTYP"]) == ("PORDCH03", "PORDCH")
    assert idoc.one("E1PORDCH")["PURCHASEORDER"] == "4201"
    assert idoc.one("E1BPMEPOHEADER")["PMNTTRMS"] == xref("sap_payment_terms")["Net 45"]
    [header_x] = idoc.segments("E1BPMEPOHEADERX")
    assert flagged(header_x) == {"PMNTTRMS"}  # vendor and currency as SAP has them
    items = [(r.values["PO_ITEM"], r.values["DELETE_IND"]) for r in idoc.segments("E1BPMEPOITEM")]
    assert items == [("00010", "L"), ("00020", "")]
    assert Decimal(idoc.segments("E1BPMEPOITEM")[1].values["QUANTITY"]) == Decimal("30")
    item_flags = [flagged(r) for r in idoc.segments("E1BPMEPOITEMX")]
    assert item_flags == [{"PO_ITEMX", "DELETE_IND"}, {"PO_ITEMX", "QUANTITY"}]
    [schedule_x] = idoc.segments("E1BPMEPOSCHEDULX")
    assert flagged(schedule_x) == {"PO_ITEMX", "SCHED_LINEX", "QUANTITY"}  # the date as it was
    assert idoc.segments("E1BPMEPOACCOUNT") == []  # the account assignments stay as SAP has them
    files_match_golden([path], GOLDEN.with_name(f"{TARGET}_change"))  # its manifest names the test's server path
    manifest = json.loads(path.with_name(path.name + ".manifest.json").read_text(encoding="utf-8"))
    assert manifest["record_counts"] == {"documents": 1, "line_records": 7}  # items, flags, schedule, text


def test_a_change_request_that_adds_a_line_is_rejected_with_what_to_do(sftp_workspace: Workspace) -> None:
    """An added item needs its plant and account assignment, which Coupa's change export does not carry."""
    ws = sftp_workspace
    added = {"line-num": "3", "description": "Schrumpfschlauch-Set", "quantity": "5", "price": "14.90"}
    _change_of_4201(ws, [added])

    assert ws.cli("run").exit_code == 1

    [row] = ws.rows("SELECT status, reason FROM change_requests WHERE id = '9301'")
    assert row["status"] == "rejected"
    assert "adds line 3" in row["reason"]
    assert "the PO version Coupa exports once the change is approved" in row["reason"]
    assert not list(ws.handoff.glob("*OrderHeaderChange_20261124_010000Z*"))
    [error] = ws.rows("SELECT po_id, message FROM integration_errors WHERE resolved_at IS NULL")
    assert error["po_id"] == "4201" and error["message"].startswith("change 9301: ")  # the PO's error


def test_a_change_request_leaves_what_it_does_not_carry_as_sap_has_it(sftp_workspace: Workspace) -> None:
    """Empty fields in a change are not carried: no payment terms, price, unit or part number given, only
    the quantity: PORDCH flags the quantity alone and sends no header."""
    ws = sftp_workspace
    _change_of_4201(ws, [{**TIES, "quantity": "30", "uom": ""}], **{"payment-term-code": ""})

    assert ws.cli("run").exit_code == 0

    [path] = ws.handoff.glob(f"*OrderHeaderChange_20261124_010000Z*.{TARGET}.idoc")
    [idoc] = read_idocs(path, "PORDCH03")
    assert idoc.segments("E1BPMEPOHEADER") == idoc.segments("E1BPMEPOHEADERX") == []
    [item_x] = idoc.segments("E1BPMEPOITEMX")
    assert flagged(item_x) == {"PO_ITEMX", "QUANTITY"}
    [item] = idoc.segments("E1BPMEPOITEM")
    assert (item.values["NET_PRICE"], item.values["PO_UNIT"]) == ("", "")  # sent empty, not flagged: kept


def test_a_change_of_a_po_sent_by_another_target_flags_every_field_it_carries(sftp_workspace: Workspace) -> None:
    """The PO went out as ORDERS05 (the ledger's values name other fields): a change through sap_pordcr1 sets
    every field it carries, flagged, rather than none (which SAP would take as no change at all)."""
    ws = sftp_workspace
    _change_of_4201(ws, [TIES_30], po_target="sap_orders05")

    assert ws.cli("run").exit_code == 0

    [path] = ws.handoff.glob(f"*OrderHeaderChange_20261124_010000Z*.{TARGET}.idoc")
    [idoc] = read_idocs(path, "PORDCH03")
    [item], [item_x] = idoc.segments("E1BPMEPOITEM"), idoc.segments("E1BPMEPOITEMX")
    # every field it carries but a constant (PRICE_UNIT 1), which the ERP already has from the PO
    carried = sent_fields(item, "E1BPMEPOITEMX", "PORDCH03") - {"PRICE_UNIT"}
    assert flagged(item_x) == carried >= {"QUANTITY", "NET_PRICE", "SHORT_TEXT"}
    [header], [header_x] = idoc.segments("E1BPMEPOHEADER"), idoc.segments("E1BPMEPOHEADERX")
    assert flagged(header_x) == sent_fields(header, "E1BPMEPOHEADERX", "PORDCH03") >= {"VENDOR", "CURRENCY"}


@pytest.mark.parametrize(
    ("records_from", "problem"),
    [
        ("{file: nowhere.yaml, layout: xml}", "records_from.file: cannot read"),
        ("{file: sap_pordcr1.order_header_changes.yaml, layout: xml}", "is not a mapping of purchase_orders files"),
        ("{file: sap_pordcr1.yaml, layout: fixed}", "records_from.layout: 'fixed' is not xml"),
    ],
)
def test_records_from_another_mapping_is_checked_when_loaded(tmp_path: Path, records_from: str, problem: str) -> None:
    xml = _with_shipped_mappings(tmp_path) / f"{XML_TARGET}.yaml"
    shipped = "{file: sap_pordcr1.yaml, layout: xml}"
    xml.write_text(xml.read_text(encoding="utf-8").replace(shipped, records_from))
    with pytest.raises(ConfigError) as caught:
        load_mapping(tmp_path, XML_TARGET, layout_for("purchase_orders"))
    assert problem in str(caught.value)
