"""SAP IDoc basic types as data (``mappings/idoc/<BASIC TYPE>.yaml``), and the check of a mapping against one.

The definitions are written from SAP's own segment definitions (a WE60 export,
see the file's header); a mapping that declares ``idoc: {basic_type: ...}`` is
checked against them when it loads: every record's fields in SAP's order with
SAP's widths, the record lengths, HLEVEL, the parent PSGNUM points at, and the
order of the segments. A mismatch is a load error naming the segment and field,
so an IDoc can no longer put the currency into the price digits unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from batchsync.resources import shipped

# the data record's administrative part, before SDATA (SAP's EDI_DD40)
DATA_HEADER = ("SEGNAM", "MANDT", "DOCNUM", "SEGNUM", "PSGNUM", "HLEVEL")
SEGMENT_NAMES = ("segment", "definition")  # E1EDK01, or SAP's versioned definition name E2EDK01005
# how a document's records follow each other: ORDERS05's items each with their own segments, or (a BAPI's
# IDoc, PORDCR1) every occurrence of a segment together, in the basic type's order, as its syntax requires
ORDERS = ("by_item", "by_segment")


@dataclass(frozen=True)
class Segment:
    name: str  # the segment type, E1EDP01
    definition: str  # SAP's versioned definition, E2EDP01011
    level: str  # what SAP writes into HLEVEL
    parent: str | None
    position: int  # order in the basic type
    fields: list[tuple[str, int, int]]  # name, first and last character (1-based, inclusive)


@dataclass(frozen=True)
class BasicType:
    name: str
    control_length: int
    control_fields: list[tuple[str, int, int]]
    data_length: int
    header_fields: list[tuple[str, int, int]]
    segments: dict[str, Segment]
    # a merged definition's segments both basic types have, with their parent in the second (E1PORDCH)
    changes_parents: dict[str, str] = field(default_factory=dict)

    def parents_of(self, segments: set[str]) -> set[str]:
        """The segments whose IDoc-XML element holds one of these, in either basic type."""
        first = {self.segments[s].parent for s in segments}
        return {p for p in first | {self.changes_parents.get(s) for s in segments} if p is not None}

    def segment_name(self, segment: str, style: str) -> str:
        return self.segments[segment].definition if style == "definition" else segment

    def position(self, segment: str) -> int:
        """Where the segment comes in a document; the control record first."""
        return -1 if segment == "EDI_DC40" else self.segments[segment].position

    def with_changes(self, other: BasicType) -> BasicType:
        """One definition for a mapping that creates with one basic type and changes with another
        (PORDCR102 and PORDCH03): the segments only the second has are checked against the second."""
        extra = {name: s for name, s in other.segments.items() if name not in self.segments}
        return BasicType(
            f"{self.name}/{other.name}",
            self.control_length,
            self.control_fields,
            self.data_length,
            self.header_fields,
            {**self.segments, **extra},
            {name: s.parent for name, s in other.segments.items() if name in self.segments and s.parent},
        )


def definition_path(mapping_dir: Path, basic_type: str) -> Path:
    """Next to the mapping (an ``init`` copy may be edited), else the shipped definition."""
    local = mapping_dir / "idoc" / f"{basic_type}.yaml"
    return local if local.is_file() else shipped("mappings") / "idoc" / f"{basic_type}.yaml"


def load_basic_type(path: Path) -> BasicType:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    fields = _fields(raw["control_record"]["fields"])
    segments = {
        name: Segment(name, str(s["definition"]), str(s["level"]), s.get("parent"), i, _fields(s["fields"]))
        for i, (name, s) in enumerate(raw["segments"].items())
    }
    return BasicType(
        str(raw["basic_type"]),
        int(raw["control_record"]["length"]),
        fields,
        int(raw["data_record"]["length"]),
        _fields(raw["data_record"]["header_fields"]),
        segments,
    )


def _fields(rows: list[list[Any]]) -> list[tuple[str, int, int]]:
    return [(str(name), int(first), int(last)) for name, first, last in rows]


@dataclass(frozen=True)
class RecordShape:
    """What the check needs of a compiled record (kept apart so this module needs no polars)."""

    where: str  # records[3] (E1EDKA1)
    name: str
    segment: str
    level: str  # header, line, ...
    length: int | None
    fields: list[tuple[str, int | None, str | None]]  # name, width, constant value
    psgnum_parent: str | None  # the record a psgnum field points at, as its segment
    xml: bool = False  # IDoc-XML: the segment's fields as elements, no data-record header, no padding


def check_records(basic: BasicType, records: list[RecordShape], style: str) -> list[str]:
    problems: list[str] = []
    last: dict[str, int] = {}
    for record in records:
        if record.segment == "EDI_DC40":
            length = None if record.xml else basic.control_length
            problems += _check_fields(record, basic.control_fields, length, 0)
            continue
        segment = basic.segments.get(record.segment)
        if segment is None:
            known = ", ".join(basic.segments)
            problems.append(f"{record.where}.segment: {record.segment!r} is not a segment of {basic.name} ({known})")
            continue
        if record.xml:
            problems += _check_fields(record, segment.fields, None, 0)
        else:
            fields = basic.header_fields + segment.fields
            problems += _check_fields(record, fields, basic.data_length, len(DATA_HEADER))
            problems += _check_header_values(record, segment, basic.segment_name(record.segment, style))
        if segment.position < last.get(record.level, -1):
            problems.append(f"{record.where}: SAP's {basic.name} puts {record.segment} before the segment above it")
        last[record.level] = max(last.get(record.level, -1), segment.position)
    return problems


def _check_fields(
    record: RecordShape, expected: list[tuple[str, int, int]], length: int | None, fixed: int
) -> list[str]:
    problems = []
    if length is not None and record.length != length:
        problems.append(f"{record.where}.length: SAP's record is {length} characters, the mapping says {record.length}")
    position = expected[0][1] if expected else 1
    for i, (name, width, _) in enumerate(record.fields):
        where = f"{record.where}.fields[{i}] ({record.segment}.{name})"
        if i >= len(expected):
            problems.append(f"{where}: SAP's {record.segment} has no field after {expected[-1][0]}")
            break
        want, first, last = expected[i]
        if name != want:
            problems.append(
                f"{where}: SAP's {record.segment} has {want} here ({last - first + 1} characters, {first}-{last})"
                f", not {name}"
            )
            break  # every later position would be reported too
        if width != last - first + 1 or position != first:
            problems.append(f"{where}: SAP's {want} is {last - first + 1} characters at {first}-{last}")
            break
        position += width
    if len(record.fields) < fixed:
        problems.append(f"{record.where}: a data record starts with {', '.join(DATA_HEADER)}")
    return problems


def _check_header_values(record: RecordShape, segment: Segment, segnam: str) -> list[str]:
    values = {name: const for name, _, const in record.fields}
    problems = []
    if values.get("SEGNAM") not in (segnam, None):
        problems.append(f"{record.where}: SEGNAM is {values['SEGNAM']!r}, SAP expects {segnam!r}")
    if values.get("HLEVEL") != segment.level:
        problems.append(f"{record.where}: HLEVEL of {segment.name} is {segment.level!r} in SAP's definition")
    if record.psgnum_parent != segment.parent:
        parent = segment.parent or "none (PSGNUM 000000)"
        problems.append(f"{record.where}: PSGNUM of {segment.name} must point at {parent}")
    return problems
