"""The mapping language's IDoc parts beyond one record's fields (mapping.py): where a record's segment
comes in the document, segment numbers across levels, and X flags (``sent:``).

A BAPI's IDoc (PORDCR1, PORDCH) says which fields it sets in a second segment of one-character
flags (E1BPMEPOHEADERX beside E1BPMEPOHEADER): ``sent: E1BPMEPOHEADER.COMP_CODE`` is ``X`` exactly
when that field of the row's E1BPMEPOHEADER is not empty, so the flags follow what is sent by
construction, lookups and formats included.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import polars as pl

from batchsync.idoc import BasicType
from batchsync.mapping_model import CompiledRecord

FLAG = "X"
ERP_VALUES = "_erp_values"  # the compared values the ERP has of the row (JSON), null when it has none


@dataclass
class IdocParts:
    """What the compiler keeps of the records compiled so far, for the records after them."""

    idoc: tuple[BasicType, str, str] | None
    values: dict[str, tuple[str, pl.Expr, bool]] = field(default_factory=dict)  # RECORD.FIELD -> level, value, compared
    partial: bool = False  # the documents list what changes (Layout.partial): an empty value sets nothing

    @property
    def by_segment(self) -> bool:
        return self.idoc is not None and self.idoc[2] == "by_segment"

    def keep(self, record: str, name: str, level: str, value: pl.Expr, compared: bool) -> None:
        self.values[f"{record}.{name}"] = (level, value, compared)

    def sent(self, body: object, level: str, where: str, problems: list[str]) -> pl.Expr:
        """``X`` where the named field (of a record above, at the same level) sets something in SAP: a value,
        when the ERP has nothing of the row; a value other than the one the ERP has, when it has the row
        (as ``erp_state.differs`` sees it: a compared field the ERP has no value of had none). For a
        document that lists what changes (``partial``), an empty value is not carried: never flagged."""
        known = self.values.get(str(body))
        if known is None or known[0] != level:
            problems.append(f"{where}.sent: {body!r} is not a field of a {level} record above this one (RECORD.FIELD)")
            return pl.lit("", pl.String)
        _, produced, compared = known
        value = produced.fill_null("")
        has_value = value.str.strip_chars() != ""
        # what the ERP has, field by field (erp_state: mapped_values); a constant is never among them
        before = pl.col(ERP_VALUES).str.json_path_match(f"$['{body}']")
        before = before.fill_null("") if compared else before
        changed = pl.when(pl.col(ERP_VALUES).is_null()).then(has_value).otherwise(before != value)
        changed = changed & has_value if self.partial else changed
        return pl.when(changed.fill_null(False)).then(pl.lit(FLAG)).otherwise(pl.lit(""))

    def place(self, segment: str, layout: str, where: str, problems: list[str]) -> int:
        """The segment's position in the basic type (0 outside an IDoc)."""
        if self.idoc is None:
            if layout == "xml":
                problems.append(f"{where}.layout: xml records are IDoc segments: give idoc: {{basic_type: ...}}")
            return 0
        basic = self.idoc[0]
        if segment != "EDI_DC40" and segment not in basic.segments:
            return 0  # check_records names it
        return basic.position(segment)

    def enclosing(self, records: list[CompiledRecord], problems: list[str]) -> list[CompiledRecord]:
        """The records with ``encloses`` set where their XML element holds others the mapping writes: the
        document's root segment (E1PORDCR1; E1PORDCH for a change), closed after every record. A segment
        written inside another one below the root (E1BPMEPOITEM1 in each E1BPMEPOITEM) would need its
        parent's occurrence to stay open for it, which the segment-by-segment order cannot give: a load error."""
        if self.idoc is None:
            return records
        segments = self.idoc[0].segments
        written = {r.segment for r in records if r.layout == "xml" and r.segment in segments}
        parents = self.idoc[0].parents_of(written)
        for record in (r for r in records if r.segment in parents and segments[r.segment].parent is not None):
            problems.append(f"{record.name}: IDoc-XML segments inside {record.segment} are not supported")
        if parents and not self.by_segment:
            problems.append("idoc.order: an IDoc-XML element holding others needs by_segment")
        return [replace(r, encloses=r.layout == "xml" and r.segment in parents) for r in records]


def check_numbering(records: list[tuple[str, str, bool]], parents: dict[str, list[str]], by_segment: bool) -> list[str]:
    """psgnum names a numbered record written before it: of the same level, or the document's header."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name, level, numbered in records:
        for parent in parents.get(name, []):
            if seen.get(parent) not in (level, "header"):
                problems.append(f"{name}: psgnum {parent!r} is not a numbered {level} or header record above it")
        if numbered:
            if level not in ("header", "line") and not by_segment:
                problems.append(f"{name}: segment numbers are counted for header and line records only")
            seen[name] = level
    return problems
