"""The Purchase Order feed as the engine runs it (process.py): each PO version judged against what the
ledger has handed off, its lines' actions from what the ERP has, and what became of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from batchsync.erp_state import ErpState
from batchsync.handoff import files_by_decision
from batchsync.kinds.base import Concluded, FeedKind, Judgement, Levels
from batchsync.kinds.purchase_orders.decide import SENDS, content_hashes, decide
from batchsync.kinds.purchase_orders.erp import compare_with_erp, po_line_decision, with_deleted_lines
from batchsync.kinds.purchase_orders.layout import LAYOUT
from batchsync.kinds.purchase_orders.outcomes import handed_off_lines, po_outcomes, po_writeback_rows
from batchsync.kinds.purchase_orders.schemas import PO_MODELS, PO_RULES
from batchsync.layouts import PO_KEY
from batchsync.run_summary import OUTCOMES

if TYPE_CHECKING:
    from batchsync.handoff import Handoff
    from batchsync.ledger import Ledger
    from batchsync.mapping_model import CompiledRecord
    from batchsync.parse import ParsedFile
    from batchsync.process import FileContext
    from batchsync.transform import Transformed
    from batchsync.validate import Validated


class PurchaseOrders(FeedKind[Judgement]):
    name = "purchase_orders"
    layout = LAYOUT
    models = PO_MODELS
    rules = tuple(PO_RULES)

    def line_decision(self) -> pl.Expr:
        return po_line_decision()

    def with_erp_lines(self, lines: pl.DataFrame, sends: pl.DataFrame, state: ErpState) -> pl.DataFrame:
        """A PO version lists all its lines: a line the ERP has that a changed PO no longer lists is gone."""
        changes = sends.filter(pl.col("_decision") == "change")["id"]
        return with_deleted_lines(lines, changes, state, PO_KEY)

    def compare(self, levels: Levels, records: dict[str, list[CompiledRecord]], state: ErpState) -> Levels:
        return compare_with_erp(levels, records, state)

    def erp_state(self, ledger: Ledger, sends: pl.DataFrame) -> ErpState:
        return ErpState(*ledger.erp_state(sends.filter(pl.col("_decision") == "change")["id"].to_list()))

    def judge(self, ctx: FileContext, parsed: ParsedFile, validated: Validated) -> Judgement:
        """Each valid PO against what the ledger has handed off; narrowed or forced by a replay."""
        headers = validated.frames["header"]
        hashes = content_hashes(validated.frames, self.layout)
        known = ctx.ledger.handed_off_versions(ctx.feed.name, headers["id"].to_list())
        decisions = decide(headers.select("id", "version", "status").join(hashes, on="id", how="left"), known)
        decisions = ctx.replay.decisions(decisions) if ctx.replay else decisions
        sends = decisions.filter(pl.col("decision").is_in(SENDS)).select("id", pl.col("decision").alias("_decision"))
        return Judgement(sends, decisions, ctx.replay_suffix())

    def conclude(
        self,
        ctx: FileContext,
        parsed: ParsedFile,
        validated: Validated,
        judged: Judgement,
        transformed: Transformed,
        handoff: Handoff | None,
    ) -> Concluded:
        versions = po_outcomes(parsed, validated, judged.described, transformed, handoff)
        errors = ctx.errors(validated, transformed)
        if ctx.replay:  # a replay of one PO says nothing new about the file's other POs
            versions, errors = ctx.replay.keeps(versions, "po_id"), ctx.replay.keeps(errors, "doc_id")
        parts = {
            "po_versions": versions,
            "writeback": po_writeback_rows(
                versions,
                ctx.config.writeback.status_field,
                ctx.now,
                files_by_decision(handoff.manifest) if handoff else {},
            ),
            "error_report": ctx.error_report(errors),
            "po_lines": handed_off_lines(validated.frames["line"], versions, transformed, ctx.feed.layout),
        }
        counts = {o: int((versions["outcome"] == o).sum()) for o in OUTCOMES} | {"errors": errors.height}
        return Concluded("empty" if parsed.is_empty else "processed", errors, counts, parts)


KIND = PurchaseOrders()
