"""Record-typed file layouts (coupa-flat-files.md §3–4): what a feed kind's layout is made of.

A layout names the record types of a feed's files, their default column
order (used when a file has no column-name rows), the columns without which
a file is rejected, and how records point at their document. Each feed kind
declares its own (``batchsync/kinds/<kind>/layout.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n}" for n in range(1, count + 1)]


_WHO = ["email", "employee-number", "firstname", "id", "lastname", "login"]


def people(role: str) -> list[str]:
    return [f"{role}-{part}" for part in _WHO]


@dataclass(frozen=True)
class RecordType:
    """One record type of a layout: its type word and default columns."""

    word: str  # the literal in the file's first column
    role: str  # header | line | allocation | approval
    columns: list[str]
    required: list[str]  # columns without which the file is rejected
    doc_key: str  # the column naming the document (PO or change) this record belongs to
    order: tuple[str, ...] = ()  # integer columns that order a document's records of this type
    # (own column, the line's column) naming the line this record belongs to: its fields may use line.<column>
    line_key: tuple[str, str] | None = None


@dataclass(frozen=True)
class Layout:
    kind: str
    records: list[RecordType] = field(default_factory=list)
    noun: str = "document"  # what one document is called in messages: PO, change request
    # every value the engine gives each of its decision columns in this kind's documents sent; the first
    # ``_decision`` is what a document is first sent as
    decisions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # a document lists what changes (a change request): an empty value changes nothing, it is not carried
    partial: bool = False

    def by_word(self) -> dict[str, RecordType]:
        return {r.word: r for r in self.records}

    def role(self, role: str) -> RecordType:
        return next(r for r in self.records if r.role == role)

    @property
    def roles(self) -> list[str]:
        return [r.role for r in self.records]

    def with_columns(self, overrides: dict[str, list[str]]) -> Layout:
        """The layout with the default columns of some record types replaced (per-feed config)."""
        records = [
            RecordType(
                r.word,
                r.role,
                overrides.get(r.role, overrides.get(r.word, r.columns)),
                r.required,
                r.doc_key,
                r.order,
                r.line_key,
            )
            for r in self.records
        ]
        return Layout(self.kind, records, self.noun, self.decisions, self.partial)


PO_KEY = "order-header-id"
CHANGE_KEY = "order-header-change-id"
