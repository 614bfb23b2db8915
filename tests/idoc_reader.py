"""An IDoc flat-file reader that shares no code with batchsync's writer.

It cuts every record at the first and last characters of SAP's own segment
definition (``mappings/idoc/ORDERS05.yaml``, written from SAP's WE60 export of
ORDERS05) and nothing else: if the writer put a field where SAP does not read
it, the values read here are wrong and the tests comparing them with the
source PO fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFINITIONS = Path(__file__).resolve().parent.parent / "mappings" / "idoc"


@dataclass
class Record:
    segment: str  # E1EDP01 (also when the file names SAP's versioned definition, E2EDP01011)
    values: dict[str, str]  # field -> value, trailing blanks removed
    raw: str


@dataclass
class Idoc:
    control: dict[str, str]
    records: list[Record] = field(default_factory=list)

    def segments(self, name: str) -> list[Record]:
        return [r for r in self.records if r.segment == name]

    def one(self, name: str) -> dict[str, str]:
        (record,) = self.segments(name)
        return record.values

    def items(self) -> list[list[Record]]:
        """Per E1EDP01, the item's records (the E1EDP01 itself first)."""
        groups: list[list[Record]] = []
        for record in self.records:
            if record.segment == "E1EDP01":
                groups.append([record])
            elif groups and record.segment.startswith("E1EDP"):
                groups[-1].append(record)
        return groups


def definition(basic_type: str = "ORDERS05") -> dict[str, Any]:
    return yaml.safe_load((DEFINITIONS / f"{basic_type}.yaml").read_text(encoding="utf-8"))


def _cut(line: str, fields: list[list[Any]]) -> dict[str, str]:
    return {name: line[first - 1 : last].rstrip() for name, first, last in fields}


def read_idocs(path: Path, *basic_types: str) -> list[Idoc]:
    """Each IDoc read with the definition of the basic type its control record names (IDOCTYP)."""
    specs = {name: definition(name) for name in basic_types or ("ORDERS05",)}
    spec = next(iter(specs.values()))
    by_definition = {s["definition"]: name for name, s in spec["segments"].items()}
    idocs: list[Idoc] = []
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path}: the last record has no line ending"
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        assert line, f"{path}:{number}: an empty line, which is no IDoc record"
        if line.startswith("EDI_DC40"):
            assert len(line) == spec["control_record"]["length"], f"{path}:{number}: control record of {len(line)}"
            idocs.append(Idoc(_cut(line, spec["control_record"]["fields"])))
            spec = specs[idocs[-1].control["IDOCTYP"]]
            by_definition = {s["definition"]: name for name, s in spec["segments"].items()}
            continue
        assert len(line) == spec["data_record"]["length"], f"{path}:{number}: data record of {len(line)} characters"
        head = _cut(line, spec["data_record"]["header_fields"])
        segment = by_definition.get(head["SEGNAM"], head["SEGNAM"])
        assert segment in spec["segments"], f"{path}:{number}: unknown segment {head['SEGNAM']!r}"
        values = head | _cut(line, spec["segments"][segment]["fields"])
        idocs[-1].records.append(Record(segment, values, line))
    return idocs


def check_numbering(idoc: Idoc) -> None:
    """SEGNUM counts the records written; PSGNUM is the parent's SEGNUM; HLEVEL SAP's level; one DOCNUM."""
    spec = definition(idoc.control["IDOCTYP"])["segments"]
    last_of: dict[str, int] = {}
    for number, record in enumerate(idoc.records, start=1):
        values = record.values
        assert int(values["SEGNUM"]) == number, (record.segment, values["SEGNUM"], number)
        assert values["DOCNUM"] == idoc.control["DOCNUM"]
        assert values["HLEVEL"] == spec[record.segment]["level"], record.segment
        parent = spec[record.segment]["parent"]
        expected = last_of[parent] if parent else 0
        assert int(values["PSGNUM"]) == expected, (record.segment, values["PSGNUM"], expected)
        last_of[record.segment] = number


def check_segment_order(idoc: Idoc) -> None:
    """A BAPI's IDoc: each segment's occurrences together, the segments in the basic type's order."""
    order = list(definition(idoc.control["IDOCTYP"])["segments"])
    positions = [order.index(r.segment) for r in idoc.records]
    assert positions == sorted(positions), [r.segment for r in idoc.records]


def item_text(records: list[Record], text_segment: str = "E1EDPT2") -> str:
    """SAPscript lines joined back: ``*`` starts a paragraph (a line break), ``=`` continues the line."""
    text = ""
    for record in (r for r in records if r.segment == text_segment):
        fmt, line = record.values["TDFORMAT"], record.raw[63:133].rstrip()
        text += ("\n" if text and fmt == "*" else "") + line
    return text
