"""Judge each PO change request against the ledger (product.md §2, the Order Header Change feed).

Pure: the change's records, what the ledger knows of earlier changes and of
the handed-off PO, and ``now`` in; one decision per change out: ``accept``,
``wait``, ``reject`` or ``skip`` (already decided in an earlier run).
Rules, in order: a change an approver or Coupa rejected is rejected; a
change whose PO is not handed off waits, until ``wait_days`` after it was
first seen; a currency other than the PO's, or a quantity below what was
received, is rejected; a pending approval waits; the rest is accepted.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from batchsync.checks import as_decimal
from batchsync.layouts import CHANGE_KEY, PO_KEY

PENDING = ["pending", "escalated", "pending_approval", "pending approval"]


def judge_changes(
    frames: dict[str, pl.DataFrame],
    known: pl.DataFrame,
    pos: pl.DataFrame,
    po_lines: pl.DataFrame,
    *,
    now: datetime,
    wait_days: float,
) -> pl.DataFrame:
    """known: id, known_status, first_seen; pos: po_id, po_version, po_currency; po_lines: see Ledger.handed_off_pos.

    Returns id, po_id, version, decision, reason, first_seen.
    """
    headers = frames["header"].select(
        "id",
        pl.col(PO_KEY).alias("po_id"),
        pl.col("version").cast(pl.Int64, strict=False),
        pl.col("status").str.to_lowercase().alias("change_status"),
        pl.col("currency").alias("change_currency"),
        pl.coalesce("reject-reason-comments", "reject-reason-code").alias("coupa_reason"),
    )
    facts = (
        headers.join(known, on="id", how="left")
        .join(pos, on="po_id", how="left")
        .join(_approvals(frames["approval"]), on="id", how="left")
        .join(_line_problems(frames["line"], headers, po_lines, pos), on="id", how="left")
        .with_columns(pl.col("first_seen").fill_null(pl.lit(now.isoformat())))
    )
    expired = pl.lit(now) - pl.col("first_seen").str.to_datetime(time_zone="UTC") > pl.duration(days=wait_days)
    decision, reason = _rules(expired, wait_days)
    return facts.select("id", "po_id", "version", decision.alias("decision"), reason.alias("reason"), "first_seen")


def _rules(expired: pl.Expr, wait_days: float) -> tuple[pl.Expr, pl.Expr]:
    no_po = pl.col("po_version").is_null()
    currency_off = (
        pl.col("change_currency").is_not_null()
        & pl.col("po_currency").is_not_null()
        & (pl.col("change_currency").str.to_uppercase() != pl.col("po_currency").str.to_uppercase())
    )
    rules = [
        (
            pl.col("known_status").is_in(["accepted", "rejected", "superseded"]),
            "skip",
            pl.format("already {} in an earlier run", pl.col("known_status")),
        ),
        (pl.col("rejected_by").is_not_null(), "reject", pl.format("rejected by approver {}", pl.col("rejected_by"))),
        (
            pl.col("change_status") == "rejected",
            "reject",
            pl.format("rejected in Coupa: {}", pl.coalesce("coupa_reason", pl.lit("no reason given"))),
        ),
        (
            no_po & expired,
            "reject",
            pl.format(f"PO {{}} was not handed off to the ERP within {wait_days:g} days", pl.col("po_id")),
        ),
        (no_po, "wait", pl.format("waiting for PO {} to be handed off to the ERP", pl.col("po_id"))),
        (
            currency_off,
            "reject",
            pl.format(
                "currency {} differs from the PO's currency {}", pl.col("change_currency"), pl.col("po_currency")
            ),
        ),
        (pl.col("line_problem").is_not_null(), "reject", pl.col("line_problem")),
        (pl.col("pending_with").is_not_null(), "wait", pl.format("awaiting approval by {}", pl.col("pending_with"))),
    ]
    decision: pl.Expr = pl.lit("accept")
    reason: pl.Expr = pl.lit(None, pl.String)
    for condition, outcome, why in reversed(rules):
        decision = pl.when(condition).then(pl.lit(outcome)).otherwise(decision)
        reason = pl.when(condition).then(why).otherwise(reason)
    return decision, reason


def _approvals(approvals: pl.DataFrame) -> pl.DataFrame:
    """Per change: the first approver who rejected it (with the note) and the first still pending."""
    status = pl.col("status").str.to_lowercase()
    who = pl.coalesce("approver-login", pl.lit("unknown approver"))
    said = pl.when(pl.col("note").is_not_null()).then(pl.format("{}: {}", who, pl.col("note"))).otherwise(who)
    ordered = approvals.sort(pl.col("position").cast(pl.Int64, strict=False), nulls_last=True)
    return ordered.group_by(pl.col(CHANGE_KEY).alias("id")).agg(
        said.filter(status == "rejected").first().alias("rejected_by"),
        who.filter(status.is_in(PENDING)).first().alias("pending_with"),
    )


def _line_problems(
    lines: pl.DataFrame, headers: pl.DataFrame, po_lines: pl.DataFrame, pos: pl.DataFrame
) -> pl.DataFrame:
    """A line may not lower its quantity below what was received, nor change the PO's currency."""
    joined = (
        lines.join(headers.select(pl.col("id").alias(CHANGE_KEY), "po_id"), on=CHANGE_KEY, how="inner")
        .join(
            po_lines.select("po_id", "line_number", "received"),
            left_on=["po_id", "line-num"],
            right_on=["po_id", "line_number"],
            how="left",
        )
        .join(pos.select("po_id", "po_currency"), on="po_id", how="left")
    )
    below = as_decimal("quantity") < as_decimal("received")
    currency = (
        pl.col("currency").is_not_null()
        & pl.col("po_currency").is_not_null()
        & (pl.col("currency").str.to_uppercase() != pl.col("po_currency").str.to_uppercase())
    )
    problem = (
        pl.when(below)
        .then(pl.format("line {}: quantity {} is below the {} already received", "line-num", "quantity", "received"))
        .when(currency)
        .then(
            pl.format("line {}: currency {} differs from the PO's currency {}", "line-num", "currency", "po_currency")
        )
    )
    return (
        joined.sort(pl.col("line-num").cast(pl.Int64, strict=False))
        .group_by(pl.col(CHANGE_KEY).alias("id"))
        .agg(problem.drop_nulls().first().alias("line_problem"))
    )
