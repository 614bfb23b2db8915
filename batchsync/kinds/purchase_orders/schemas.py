"""The Purchase Order feed's pandera models and cross-record rules (product.md §2.5).

Lengths follow Coupa's R35 types (coupa-flat-files.md §3). Values are text;
the checks in ``checks`` say whether a text is a number, a date, an enum.
"""

from __future__ import annotations

from typing import Any, Optional

import pandera.polars as pa
import polars as pl

from batchsync import checks
from batchsync.kinds.purchase_orders.layout import LAYOUT
from batchsync.layouts import PO_KEY
from batchsync.parse import LINE
from batchsync.validate import document_rules, rule_errors

TOTAL_TOLERANCE = 0.01
PERCENT_TOLERANCE = 0.0001
FLOAT_SLACK = 1e-9


class POHeader(pa.DataFrameModel):
    id: str = pa.Field(nullable=False)
    version: str = pa.Field(nullable=False)
    status: str = pa.Field(nullable=False)
    supplier_id: str = pa.Field(alias="supplier-id", nullable=False)
    internal_revision: Optional[str] = pa.Field(alias="internal-revision", nullable=True)  # noqa: UP045
    transmission_status: Optional[str] = pa.Field(alias="transmission-status", nullable=True)  # noqa: UP045
    created_at: Optional[str] = pa.Field(alias="created-at", nullable=True)  # noqa: UP045
    updated_at: Optional[str] = pa.Field(alias="updated-at", nullable=True)  # noqa: UP045
    accounting_total: Optional[str] = pa.Field(alias="accounting-total", nullable=True)  # noqa: UP045
    currency: Optional[str] = pa.Field(alias="accounting-total-currency", nullable=True, str_length={"max_value": 6})  # noqa: UP045
    supplier_name: Optional[str] = pa.Field(alias="supplier-name", nullable=True, str_length={"max_value": 100})  # noqa: UP045
    supplier_number: Optional[str] = pa.Field(alias="supplier-number", nullable=True, str_length={"max_value": 255})  # noqa: UP045
    country: Optional[str] = pa.Field(alias="ship-to-address-country", nullable=True, str_length={"max_value": 4})  # noqa: UP045
    payment_terms: Optional[str] = pa.Field(alias="payment-terms-code", nullable=True, str_length={"max_value": 255})  # noqa: UP045

    class Config:
        strict = False

    @pa.check("id", "version", "supplier-id", "internal-revision", name="integer")
    def _integers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_integer(data)

    @pa.check("accounting-total", name="number")
    def _numbers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_number(data)

    @pa.check("created-at", "updated-at", name="datetime")
    def _datetimes(cls, data: Any) -> pl.LazyFrame:
        return checks.is_datetime(data)

    @pa.check("status", name="po_status")
    def _status(cls, data: Any) -> pl.LazyFrame:
        return checks.is_one_of(data, checks.PO_STATUSES)

    @pa.check("transmission-status", name="transmission_status")
    def _transmission(cls, data: Any) -> pl.LazyFrame:
        return checks.is_one_of(data, checks.TRANSMISSION_STATUSES)


class POLine(pa.DataFrameModel):
    order_header_id: str = pa.Field(alias="order-header-id", nullable=False)
    line_number: str = pa.Field(alias="line-number", nullable=False)
    description: str = pa.Field(nullable=False, str_length={"max_value": 255})
    price: str = pa.Field(nullable=False)
    quantity: Optional[str] = pa.Field(nullable=True)  # noqa: UP045
    total: Optional[str] = pa.Field(nullable=True)  # noqa: UP045
    received: Optional[str] = pa.Field(nullable=True)  # noqa: UP045
    need_by_date: Optional[str] = pa.Field(alias="need-by-date", nullable=True)  # noqa: UP045
    uom: Optional[str] = pa.Field(nullable=True, str_length={"max_value": 6})  # noqa: UP045
    currency: Optional[str] = pa.Field(nullable=True, str_length={"max_value": 6})  # noqa: UP045
    source_part_num: Optional[str] = pa.Field(alias="source-part-num", nullable=True, str_length={"max_value": 255})  # noqa: UP045

    class Config:
        strict = False

    @pa.check("order-header-id", "line-number", name="integer")
    def _integers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_integer(data)

    @pa.check("price", "quantity", "total", "received", name="number")
    def _numbers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_number(data)

    @pa.check("need-by-date", name="datetime")
    def _datetimes(cls, data: Any) -> pl.LazyFrame:
        return checks.is_datetime(data)


class POAllocation(pa.DataFrameModel):
    order_header_id: str = pa.Field(alias="order-header-id", nullable=False)
    order_line_num: str = pa.Field(alias="order-line-num", nullable=False)
    percent: str = pa.Field(alias="account-allocation-percent", nullable=False)
    amount: Optional[str] = pa.Field(alias="account-allocation-amount", nullable=True)  # noqa: UP045

    class Config:
        strict = False

    @pa.check("order-header-id", "order-line-num", name="integer")
    def _integers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_integer(data)

    @pa.check("account-allocation-percent", "account-allocation-amount", name="number")
    def _numbers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_number(data)


PO_MODELS: dict[str, type[pa.DataFrameModel]] = {"header": POHeader, "line": POLine, "allocation": POAllocation}


def _error_rows(
    frame: pl.DataFrame, role: str, column: str, check: str, value: pl.Expr, message: pl.Expr | str
) -> pl.DataFrame:
    return rule_errors(frame, role, "id" if role == "header" else PO_KEY, column, check, message, value)


def rule_line_total(frames: dict[str, pl.DataFrame]) -> list[pl.DataFrame]:
    """total = price × quantity (amount-based lines without quantity are exempt)."""
    price, qty, total = checks.as_decimal("price"), checks.as_decimal("quantity"), checks.as_decimal("total")
    expected = price * qty
    # floats: 87.43 - 87.425 must count as within a cent, so allow for representation error
    off = (total - expected).abs() > TOTAL_TOLERANCE + FLOAT_SLACK
    bad = frames["line"].filter(qty.is_not_null() & total.is_not_null() & off)
    message = pl.format("total differs from price × quantity = {}", expected.round(6).cast(pl.String))
    return [_error_rows(bad, "line", "total", "line_total", pl.col("total"), message)]


def rule_allocation_percent(frames: dict[str, pl.DataFrame]) -> list[pl.DataFrame]:
    """The allocation percents of one line add up to 100."""
    keys = ["order-header-id", "order-line-num"]
    sums = (
        frames["allocation"]
        .group_by(keys)
        .agg(checks.as_decimal("account-allocation-percent").sum().alias("_sum"), pl.col(LINE).min())
    )
    bad = sums.filter((pl.col("_sum") - 100).abs() > PERCENT_TOLERANCE + FLOAT_SLACK)
    message = pl.format(
        "allocation percents of line {} add up to {}, not 100", pl.col("order-line-num"), pl.col("_sum").round(6)
    )
    return [_error_rows(bad, "allocation", "account-allocation-percent", "percent_sum", pl.col("_sum"), message)]


def rule_one_currency(frames: dict[str, pl.DataFrame]) -> list[pl.DataFrame]:
    """One currency per PO: every line in the header's currency."""
    headers = frames["header"].select(
        pl.col("id").alias("order-header-id"), pl.col("accounting-total-currency").alias("_po_currency")
    )
    lines = frames["line"].join(headers, on="order-header-id", how="inner")
    bad = lines.filter(
        pl.col("currency").is_not_null()
        & pl.col("_po_currency").is_not_null()
        & (pl.col("currency") != pl.col("_po_currency"))
    )
    message = pl.format("line currency differs from the PO's currency {}", pl.col("_po_currency"))
    return [_error_rows(bad, "line", "currency", "one_currency", pl.col("currency"), message)]


def rule_has_lines(frames: dict[str, pl.DataFrame]) -> list[pl.DataFrame]:
    """A PO without any Line in the file would reach the ERP empty: never half a PO."""
    empty = frames["header"].filter(~pl.col("id").is_in(frames["line"]["order-header-id"].implode()))
    return [_error_rows(empty, "header", "id", "has_lines", pl.col("id"), "the PO has no Line records in this file")]


PO_RULES = [rule_has_lines, *document_rules(LAYOUT), rule_line_total, rule_allocation_percent, rule_one_currency]
