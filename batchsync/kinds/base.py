"""What a feed kind gives the engine: the parts of processing one file that differ between kinds.

process.py runs every file the same way (read, judge, map and hand off, conclude, record); a kind
says how its documents are judged against the ledger, what each line does to the ERP's copy, and
what became of each document. Nothing here does I/O of its own: the ``FileContext`` does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import polars as pl

if TYPE_CHECKING:
    import pandera.polars as pa

    from batchsync.erp_state import ErpState
    from batchsync.handoff import Handoff
    from batchsync.layouts import Layout
    from batchsync.ledger import Ledger
    from batchsync.mapping_model import CompiledRecord
    from batchsync.parse import ParsedFile
    from batchsync.process import FileContext
    from batchsync.transform import Transformed
    from batchsync.validate import Rule, Validated

Levels = dict[str, pl.DataFrame]


@dataclass(frozen=True)
class Judgement:
    """What a kind decided of a file's documents: which go to the ERP and how."""

    sends: pl.DataFrame  # id, _decision (and the columns a kind's mapping needs, e.g. po_id): to map
    described: pl.DataFrame  # id, decision, and po_id, version where known: what the manifest lists
    suffix: str = ""  # of the hand-off name: a replay, a second pass over a waiting file


@dataclass(frozen=True)
class Concluded:
    """What became of a file's documents: the file's state, its errors, the ledger's rows, the counts."""

    state: str  # processed | empty | waiting
    errors: pl.DataFrame
    counts: dict[str, int]  # for the run summary and the log line
    parts: dict[str, Any] = field(default_factory=dict)  # the kind's own FileOutcome parts, by name


J = TypeVar("J", bound=Judgement)


class FeedKind(ABC, Generic[J]):
    """One feed kind: its layout, schemas, rules, decision, line actions and outcomes."""

    name: str
    layout: Layout  # its noun names one document in messages: "PO", "change request"
    models: dict[str, type[pa.DataFrameModel]]
    rules: tuple[Rule, ...]

    @property
    def first_decision(self) -> str:
        """What a document of the kind is first sent as (``_decision``): a file checked offline goes so."""
        return self.layout.decisions["_decision"][0]

    @abstractmethod
    def line_decision(self) -> pl.Expr:
        """``_line_change`` of a line before any comparison with the ERP (from the document's decision)."""

    def with_erp_lines(self, lines: pl.DataFrame, sends: pl.DataFrame, state: ErpState) -> pl.DataFrame:
        """The lines to map: the file's, plus any the ERP has that must be sent again (none by default)."""
        return lines

    @abstractmethod
    def compare(self, levels: Levels, records: dict[str, list[CompiledRecord]], state: ErpState) -> Levels:
        """Sets ``_change`` per document and ``_line_change`` per line from what the ERP has."""

    @abstractmethod
    def erp_state(self, ledger: Ledger, sends: pl.DataFrame) -> ErpState:
        """What the ERP has of the POs the documents to send touch."""

    @abstractmethod
    def judge(self, ctx: FileContext, parsed: ParsedFile, validated: Validated) -> J:
        """Each valid document against the ledger: which to send, and how."""

    @abstractmethod
    def conclude(
        self,
        ctx: FileContext,
        parsed: ParsedFile,
        validated: Validated,
        judged: J,
        transformed: Transformed,
        handoff: Handoff | None,
    ) -> Concluded:
        """What became of each document: outcome, reason, write-back text, what the ERP now has."""
