"""An IDoc-XML reader that shares no code with batchsync's writer.

It parses the file with the standard library's XML parser and checks every element against SAP's
segment definitions (``mappings/idoc/<BASIC TYPE>.yaml``): the root element is the basic type, each
``IDOC BEGIN="1"`` holds EDI_DC40 and the root segment, each segment element has ``SEGMENT="1"``,
holds only fields SAP defines for it, in SAP's order, none longer than SAP's field, and then its
child segments in the basic type's order. Values come back as ``Record``s like the flat-file reader's.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tests.idoc_reader import Idoc, Record, definition


def read_xml_idocs(path: Path) -> list[Idoc]:
    root = ET.parse(path).getroot()
    spec = definition(root.tag)
    idocs = []
    for idoc_element in root:
        assert idoc_element.tag == "IDOC" and idoc_element.get("BEGIN") == "1", idoc_element.tag
        control, top = list(idoc_element)
        assert control.tag == "EDI_DC40" and control.get("SEGMENT") == "1"
        fields = {name: last - first + 1 for name, first, last in spec["control_record"]["fields"]}
        idoc = Idoc(_fields(control, fields, []))
        assert idoc.control["IDOCTYP"] == root.tag, (idoc.control["IDOCTYP"], root.tag)
        _segment(top, spec, idoc, parent=None)
        idocs.append(idoc)
    return idocs


def _segment(element: ET.Element, spec: dict[str, Any], idoc: Idoc, parent: str | None) -> None:
    segments = spec["segments"]
    name = element.tag
    assert name in segments, f"{name} is not a segment of {spec['basic_type']}"
    assert segments[name]["parent"] == parent, (name, parent)
    assert element.get("SEGMENT") == "1", name
    widths = {field: last - first + 1 for field, first, last in segments[name]["fields"]}
    children = [e for e in element if e.tag in segments]
    values = _fields(element, widths, children)
    idoc.records.append(Record(name, values, ET.tostring(element, encoding="unicode")))
    order = list(segments)
    positions = [order.index(child.tag) for child in children]
    assert positions == sorted(positions), f"{name}: child segments out of SAP's order: {[c.tag for c in children]}"
    for child in children:
        _segment(child, spec, idoc, parent=name)


def _fields(element: ET.Element, widths: dict[str, int], children: list[ET.Element]) -> dict[str, str]:
    """The element's field children: SAP's fields only, in SAP's order, before any child segment."""
    fields = [e for e in element if e not in children]
    assert element[: len(fields)] == fields, f"{element.tag}: a field after a child segment"
    order = list(widths)
    names = [e.tag for e in fields]
    assert all(n in widths for n in names), f"{element.tag}: unknown fields {set(names) - set(widths)}"
    assert [order.index(n) for n in names] == sorted(order.index(n) for n in names), f"{element.tag}: {names}"
    values = {}
    for e in fields:
        text = e.text or ""
        assert text, f"{element.tag}.{e.tag}: an empty field is left out, not written empty"
        assert len(text) <= widths[e.tag], f"{element.tag}.{e.tag}: {text!r} longer than {widths[e.tag]}"
        values[e.tag] = text
    return values
