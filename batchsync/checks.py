"""Text-level checks shared by every feed's pandera models.

Values stay text until validated (a failed cast would lose the offending
value); these expressions say whether a text is a valid number, date, etc.
Each check name maps to the message a person reads in the error report.
"""

from __future__ import annotations

from typing import Any

import polars as pl

INTEGER_RE = r"^[+-]?\d+$"
DECIMAL_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
DATETIME_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?Z?$"
BOOLEANS = ["true", "false", "1", "0", "yes", "no"]

PO_STATUSES = [
    "buyer_hold",
    "cancelled",
    "canceled",
    "closed",
    "soft_closed",
    "currency_hold",
    "draft",
    "error",
    "expensed",
    "issued",
    "supplier_hold",
    "supplier_window_hold",
    "exported",
]
TRANSMISSION_STATUSES = [
    "created",
    "deferred",
    "deferred_processing",
    "pending_manual",
    "pending_manual_cancel",
    "awaiting_online_purchase",
    "scheduled_for_email",
    "sent_via_email",
    "scheduled_for_cxml",
    "scheduled_for_xml",
    "sent_via_cxml",
    "sent_via_xml",
    "sent_manually",
    "purchased_online",
    "transmission_failure",
]

MESSAGES = {
    "not_nullable": "is required but empty",
    "integer": "is not a whole number",
    "number": "is not a number (use digits and '.' only: no thousands separators, spaces or decimal commas)",
    "datetime": "is not an ISO 8601 date or date-time such as 2026-11-24T02:00:00+01:00",
    "boolean": "is not true or false",
    "po_status": f"is not a PO status ({', '.join(PO_STATUSES)})",
    "transmission_status": "is not a Coupa transmission status",
}


def _matches(data: Any, pattern: str) -> pl.LazyFrame:
    column = pl.col(data.key)
    return data.lazyframe.select(column.is_null() | column.str.contains(pattern))


def is_integer(data: Any) -> pl.LazyFrame:
    return _matches(data, INTEGER_RE)


def is_number(data: Any) -> pl.LazyFrame:
    return _matches(data, DECIMAL_RE)


def is_datetime(data: Any) -> pl.LazyFrame:
    # the pattern alone would let 2026-13-45 through: the date part must also parse
    column = pl.col(data.key)
    parses = column.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).is_not_null()
    return data.lazyframe.select(column.is_null() | (column.str.contains(DATETIME_RE) & parses))


def is_one_of(data: Any, allowed: list[str]) -> pl.LazyFrame:
    column = pl.col(data.key)
    return data.lazyframe.select(column.is_null() | column.str.to_lowercase().is_in(allowed))


def message_for(check: str) -> str:
    if check in MESSAGES:
        return MESSAGES[check]
    if check.startswith("str_length"):
        limit = check.rsplit(",", 1)[-1].strip(" )")
        return f"is longer than {limit} characters"
    return f"fails check {check}"


def as_decimal(column: str) -> pl.Expr:
    """A validated decimal text as Float64 (null stays null)."""
    return pl.col(column).cast(pl.Float64, strict=False)
