"""Feed kinds: each kind's whole logic in a package of its own, run by one file-processing skeleton.

``batchsync/kinds/<kind>/``:

- ``layout.py``: the export's record types, their default columns, how records name their document;
- ``schemas.py``: the pandera models and the kind's own cross-record rules (validate.py keeps the
  rules every kind shares);
- ``decide.py``: what to do with each document of a file, against what the ledger knows;
- ``erp.py``: the line actions, what each line does to the ERP's copy, from comparing with what the
  ERP has (erp_state.py);
- ``outcomes.py``: what became of each document, the ledger's rows and the write-back text;
- ``kind.py``: the ``FeedKind`` (base.py) the engine runs (process.py), the above wired together.

Importing this package is light: the config reads ``KINDS``; a kind's modules (polars, pandera) load
when a run first needs them (``feed_kind``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchsync.kinds.base import FeedKind
    from batchsync.layouts import Layout

KINDS = ("purchase_orders", "order_header_changes")  # PO feeds run first: a change may need a PO of the run
DEFAULT_FOLDERS = {
    "purchase_orders": "/Outgoing/PurchaseOrders",
    "order_header_changes": "/Outgoing/OrderHeaderChanges",
}


def feed_kind(name: str) -> FeedKind[Any]:
    kind: FeedKind[Any] = importlib.import_module(f"batchsync.kinds.{name}.kind").KIND
    return kind


def layout_for(name: str, overrides: dict[str, list[str]] | None = None) -> Layout:
    """The kind's layout, with the default columns of some record types replaced (``feeds.NAME.columns``)."""
    layout: Layout = importlib.import_module(f"batchsync.kinds.{name}.layout").LAYOUT
    return layout.with_columns(overrides) if overrides else layout
