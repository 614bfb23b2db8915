"""The Order Header Change feed as the engine runs it (process.py): each change request judged against
the ledger (its PO handed off, earlier changes, approvals), an accepted one compared with what the ERP
has field by field, and what became of it.

A file with changes still waiting stays ``waiting`` and is judged again on later runs from the local
archive, without a new download; changes already decided are skipped then, so nothing is recorded or
written back twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from batchsync.erp_state import ErpState
from batchsync.kinds.base import Concluded, FeedKind, Judgement, Levels
from batchsync.kinds.order_header_changes.decide import judge_changes
from batchsync.kinds.order_header_changes.erp import change_line_decision, compare_change_with_erp
from batchsync.kinds.order_header_changes.layout import LAYOUT
from batchsync.kinds.order_header_changes.outcomes import (
    change_outcomes,
    change_writeback_rows,
    handed_off_lines,
    of_their_pos,
    rule_errors,
)
from batchsync.kinds.order_header_changes.schemas import CHANGE_MODELS, CHANGE_RULES
from batchsync.layouts import PO_KEY

if TYPE_CHECKING:
    from batchsync.handoff import Handoff
    from batchsync.ledger import Ledger
    from batchsync.mapping_model import CompiledRecord
    from batchsync.parse import ParsedFile
    from batchsync.process import FileContext
    from batchsync.transform import Transformed
    from batchsync.validate import Validated


@dataclass(frozen=True)
class ChangeJudgement(Judgement):
    judged: pl.DataFrame = field(default_factory=pl.DataFrame)  # one decision per change (decide.py)
    known: pl.DataFrame = field(default_factory=pl.DataFrame)  # what earlier runs decided of these changes


class OrderHeaderChanges(FeedKind[ChangeJudgement]):
    name = "order_header_changes"
    layout = LAYOUT
    models = CHANGE_MODELS
    rules = tuple(CHANGE_RULES)

    def line_decision(self) -> pl.Expr:
        return change_line_decision()

    def compare(self, levels: Levels, records: dict[str, list[CompiledRecord]], state: ErpState) -> Levels:
        return compare_change_with_erp(levels, records, state)

    def erp_state(self, ledger: Ledger, sends: pl.DataFrame) -> ErpState:
        """A change names its PO: what the ERP has of that PO, its lines by the change's line number."""
        line_key = self.layout.role("line").order[0]
        return ErpState(*ledger.erp_state(sends["po_id"].unique().to_list()), PO_KEY, line_key)

    def judge(self, ctx: FileContext, parsed: ParsedFile, validated: Validated) -> ChangeJudgement:
        """Changes already decided stay decided; a replay judges the undecided ones again."""
        known = ctx.ledger.change_requests(parsed.frames["header"]["id"].drop_nulls().to_list())
        pos, po_lines = ctx.ledger.handed_off_pos(validated.frames["header"][PO_KEY].unique().to_list())
        wait_days = ctx.feed.config.wait_days
        judged = judge_changes(validated.frames, known, pos, po_lines, now=ctx.now, wait_days=wait_days)
        sends = judged.filter(pl.col("decision") == "accept").select("id", "po_id", "version")
        to_map = sends.select("id", "po_id", pl.lit("change").alias("_decision"))
        described = sends.with_columns(pl.lit("change").alias("decision"))
        return ChangeJudgement(to_map, described, self._suffix(ctx), judged, known)

    @staticmethod
    def _suffix(ctx: FileContext) -> str:
        """A waiting file judged again may accept more changes: each pass hands off under its own name."""
        earlier = ctx.ledger.handoff_count(ctx.file_row["id"])
        return ctx.replay_suffix() or (f"pass{earlier + 1}" if earlier else "")

    def conclude(
        self,
        ctx: FileContext,
        parsed: ParsedFile,
        validated: Validated,
        judged: ChangeJudgement,
        transformed: Transformed,
        handoff: Handoff | None,
    ) -> Concluded:
        headers = parsed.frames["header"]
        decided = set(judged.known.filter(pl.col("known_status") != "waiting")["id"].to_list())
        changes = change_outcomes(headers, validated.rejected, judged.judged, transformed, handoff, decided)
        errors = ctx.errors(validated, transformed)
        if ctx.file_row["state"] == "waiting":  # judged before: record only what is new about changes not decided
            errors = errors.filter(pl.col("doc_id").is_in(changes["id"].implode()))
        rules = rule_errors(headers, judged.judged, changes, ctx.name)
        errors = of_their_pos(pl.concat([errors, rules], how="vertical_relaxed"), headers)
        parts = {
            "writeback": change_writeback_rows(changes, ctx.config, ctx.now),
            "error_report": ctx.error_report(errors) or ctx.file_row.get("error_report"),
            "change_requests": changes,
            "change_lines": handed_off_lines(changes, transformed),
        }
        counts = {s: int((changes["status"] == s).sum()) for s in ("accepted", "rejected", "waiting")}
        state = "waiting" if counts["waiting"] else ("empty" if parsed.is_empty else "processed")
        counts = {"handed_off": counts.pop("accepted"), **counts, "errors": errors.height}
        return Concluded(state, errors, counts, parts)


KIND = OrderHeaderChanges()
