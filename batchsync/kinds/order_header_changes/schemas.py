"""The Order Header Change feed's pandera models and cross-record rules (coupa-flat-files.md §4).

Coupa does not publish this export's columns; the defaults follow the API
objects of seed 003 and every list is configurable per feed. Statuses are
compared case-insensitively (seed 003 writes ``APPROVED``).
"""

from __future__ import annotations

from typing import Any, Optional

import pandera.polars as pa
import polars as pl

from batchsync import checks
from batchsync.kinds.order_header_changes.layout import LAYOUT
from batchsync.layouts import CHANGE_KEY, PO_KEY
from batchsync.validate import document_rules

CHANGE_STATUSES = ["draft", "pending_approval", "pending approval", "approved", "rejected", "updated", "withdrawn"]
APPROVAL_STATUSES = ["approved", "pending", "rejected", "escalated", "pending_approval", "skipped"]


class ChangeHeader(pa.DataFrameModel):
    id: str = pa.Field(nullable=False)
    order_header_id: str = pa.Field(alias=PO_KEY, nullable=False)
    status: str = pa.Field(nullable=False)
    version: Optional[str] = pa.Field(nullable=True)  # noqa: UP045
    currency: Optional[str] = pa.Field(nullable=True, str_length={"max_value": 6})  # noqa: UP045
    created_at: Optional[str] = pa.Field(alias="created-at", nullable=True)  # noqa: UP045
    updated_at: Optional[str] = pa.Field(alias="updated-at", nullable=True)  # noqa: UP045
    supplier_name: Optional[str] = pa.Field(alias="supplier-name", nullable=True, str_length={"max_value": 100})  # noqa: UP045

    class Config:
        strict = False

    @pa.check("id", PO_KEY, "version", name="integer")
    def _integers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_integer(data)

    @pa.check("created-at", "updated-at", name="datetime")
    def _datetimes(cls, data: Any) -> pl.LazyFrame:
        return checks.is_datetime(data)

    @pa.check("status", name="change_status")
    def _status(cls, data: Any) -> pl.LazyFrame:
        return checks.is_one_of(data, CHANGE_STATUSES)


class ChangeLine(pa.DataFrameModel):
    change_id: str = pa.Field(alias=CHANGE_KEY, nullable=False)
    line_num: str = pa.Field(alias="line-num", nullable=False)
    order_line_id: Optional[str] = pa.Field(alias="order-line-id", nullable=True)  # noqa: UP045
    description: Optional[str] = pa.Field(nullable=True, str_length={"max_value": 255})  # noqa: UP045
    price: Optional[str] = pa.Field(nullable=True)  # noqa: UP045
    quantity: Optional[str] = pa.Field(nullable=True)  # noqa: UP045
    total: Optional[str] = pa.Field(nullable=True)  # noqa: UP045
    currency: Optional[str] = pa.Field(nullable=True, str_length={"max_value": 6})  # noqa: UP045
    uom: Optional[str] = pa.Field(nullable=True, str_length={"max_value": 6})  # noqa: UP045
    pending_delete: Optional[str] = pa.Field(alias="pending-delete", nullable=True)  # noqa: UP045
    need_by_date: Optional[str] = pa.Field(alias="need-by-date", nullable=True)  # noqa: UP045

    class Config:
        strict = False

    @pa.check(CHANGE_KEY, "line-num", "order-line-id", name="integer")
    def _integers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_integer(data)

    @pa.check("price", "quantity", "total", name="number")
    def _numbers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_number(data)

    @pa.check("need-by-date", name="datetime")
    def _datetimes(cls, data: Any) -> pl.LazyFrame:
        return checks.is_datetime(data)

    @pa.check("pending-delete", name="boolean")
    def _booleans(cls, data: Any) -> pl.LazyFrame:
        return checks.is_one_of(data, checks.BOOLEANS)


class ChangeApproval(pa.DataFrameModel):
    change_id: str = pa.Field(alias=CHANGE_KEY, nullable=False)
    status: str = pa.Field(nullable=False)
    position: Optional[str] = pa.Field(nullable=True)  # noqa: UP045
    approval_date: Optional[str] = pa.Field(alias="approval-date", nullable=True)  # noqa: UP045

    class Config:
        strict = False

    @pa.check(CHANGE_KEY, "position", name="integer")
    def _integers(cls, data: Any) -> pl.LazyFrame:
        return checks.is_integer(data)

    @pa.check("approval-date", name="datetime")
    def _datetimes(cls, data: Any) -> pl.LazyFrame:
        return checks.is_datetime(data)

    @pa.check("status", name="approval_status")
    def _status(cls, data: Any) -> pl.LazyFrame:
        return checks.is_one_of(data, APPROVAL_STATUSES)


CHANGE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "header": ChangeHeader,
    "line": ChangeLine,
    "approval": ChangeApproval,
}


CHANGE_RULES = document_rules(LAYOUT)
