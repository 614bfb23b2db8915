"""The Order Header Change export's layout (coupa-flat-files.md §4): Header, Line and Approval records.

Coupa does not publish this export's columns; the defaults follow the API objects of seed 003 and
every list is configurable per feed (``feeds.NAME.columns``).
"""

from __future__ import annotations

from batchsync.layouts import CHANGE_KEY, PO_KEY, Layout, RecordType, numbered

OHC_HEADER = [
    "type",
    "id",
    "created-at",
    "updated-at",
    "order-header-id",
    "po-number",
    "status",
    "version",
    "justification",
    "exported",
    "supplier-initiated",
    "requisition-header-id",
    "transmission-method-override",
    "requester-login",
    "requester-email",
    "supplier-id",
    "supplier-name",
    "supplier-number",
    "currency",
    "payment-term-code",
    "shipping-term-code",
    "ship-to-address-location-code",
    "reject-reason-code",
    "reject-reason-comments",
    *numbered("custom-field", 10),
]

OHC_LINE = [
    "type",
    "id",
    "order-header-change-id",
    "order-line-id",
    "line-num",
    "description",
    "need-by-date",
    "price",
    "quantity",
    "total",
    "currency",
    "uom",
    "pending-delete",
    "source-part-num",
    "manufacturer-name",
    "manufacturer-part-number",
    "account-code",
    "commodity",
    *numbered("custom-field", 10),
]

OHC_APPROVAL = [
    "type",
    "id",
    "order-header-change-id",
    "position",
    "status",
    "approval-date",
    "approver-login",
    "note",
]


LAYOUT = Layout(
    "order_header_changes",
    [
        RecordType("Header", "header", OHC_HEADER, ["id", PO_KEY, "status"], "id"),
        RecordType("Line", "line", OHC_LINE, [CHANGE_KEY, "line-num"], CHANGE_KEY, ("line-num",)),
        RecordType("Approval", "approval", OHC_APPROVAL, [CHANGE_KEY, "status"], CHANGE_KEY, ("position",)),
    ],
    noun="change request",
    partial=True,
    decisions={  # an accepted change changes the PO: its header, its items, or both
        "_decision": ("change",),
        "_change": ("header", "items", "header_items"),
        "_line_change": ("added", "changed", "cancelled", "unchanged"),
    },
)
