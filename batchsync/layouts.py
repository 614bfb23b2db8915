"""Record-typed file layouts per feed kind (coupa-flat-files.md §3–4).

A layout names the record types of a feed's files, their default column
order (used when a file has no column-name rows), the columns without which
a file is rejected, and how records point at their document.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n}" for n in range(1, count + 1)]


_WHO = ["email", "employee-number", "firstname", "id", "lastname", "login"]


def _people(role: str) -> list[str]:
    return [f"{role}-{part}" for part in _WHO]


PO_HEADER = [
    "type",
    "acknowledged-at",
    "created-at",
    "id",
    "status",
    "transmission-status",
    "updated-at",
    "version",
    "internal-revision",
    "exported",
    "created-by-email",
    "accounting-total",
    "accounting-total-currency",
    "created-by-employee-number",
    "created-by-firstname",
    "created-by-id",
    "created-by-lastname",
    "created-by-login",
    "requisition-id",
    *_people("requester"),
    "ship-to-attention",
    "ship-to-address-city",
    "ship-to-address-id",
    "ship-to-address-name",
    "ship-to-address-postal-code",
    "ship-to-address-state",
    "ship-to-address-street1",
    "ship-to-address-street2",
    "ship-to-address-country",
    *_people("ship-to-user"),
    "supplier-id",
    "supplier-name",
    "supplier-number",
    *_people("updated-by"),
    "payment-terms-code",
    "payment-terms-days-for-discount-payment",
    "payment-terms-days-for-net-payment",
    "payment-terms-discount-rate",
    "Shipping-terms-code",
    "attachment-text-concat",
    *_numbered("custom-field", 10),
]

PO_LINE = [
    "type",
    "accounting-total",
    "accounting-total-currency",
    "created-at",
    "description",
    "id",
    "invoiced",
    "active-invoiced-amount",
    "line-number",
    "need-by-date",
    "order-header-id",
    "price",
    "quantity",
    "received",
    "source-part-num",
    "status",
    "sub-line-num",
    "supp-aux-part-num",
    "total",
    "currency",
    "line-type",
    "updated-at",
    "version",
    "account-code",
    *_numbered("segment", 20),
    "account-name",
    "account-type",
    "contract-id",
    "contract-name",
    "department",
    *[f"created-by-{p}" for p in _WHO],
    "supplier-id",
    "supplier-name",
    "supplier-number",
    "uom",
    *[f"updated-by-{p}" for p in _WHO],
    "commodity",
    "requisition-line",
    *_numbered("custom-field", 10),
]

PO_ALLOCATION = [
    "type",
    "order-header-id",
    "order-line-id",
    "order-line-num",
    "account-allocation-id",
    "account-allocation-sequence",
    "account-allocation-amount",
    "account-allocation-percent",
    "account-code",
    "account-active",
    *_numbered("segment", 20),
    "account-name",
    "account-type",
    *_numbered("custom-field", 10),
]

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
    *_numbered("custom-field", 10),
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
    *_numbered("custom-field", 10),
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
        return Layout(self.kind, records)


PO_KEY = "order-header-id"
CHANGE_KEY = "order-header-change-id"

LAYOUTS = {
    "purchase_orders": Layout(
        "purchase_orders",
        [
            RecordType("Header", "header", PO_HEADER, ["id", "version", "status", "supplier-id"], "id"),
            RecordType(
                "Line", "line", PO_LINE, [PO_KEY, "line-number", "description", "price"], PO_KEY, ("line-number",)
            ),
            RecordType(
                "Allocation",
                "allocation",
                PO_ALLOCATION,
                [PO_KEY, "order-line-num", "account-allocation-percent"],
                PO_KEY,
                ("order-line-num", "account-allocation-sequence"),
                ("order-line-num", "line-number"),
            ),
        ],
    ),
    "order_header_changes": Layout(
        "order_header_changes",
        [
            RecordType("Header", "header", OHC_HEADER, ["id", PO_KEY, "status"], "id"),
            RecordType("Line", "line", OHC_LINE, [CHANGE_KEY, "line-num"], CHANGE_KEY, ("line-num",)),
            RecordType("Approval", "approval", OHC_APPROVAL, [CHANGE_KEY, "status"], CHANGE_KEY, ("position",)),
        ],
    ),
}


def layout_for(kind: str, overrides: dict[str, list[str]] | None = None) -> Layout:
    layout = LAYOUTS[kind]
    return layout.with_columns(overrides) if overrides else layout
