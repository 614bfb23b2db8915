"""What comparing with the ERP costs: transform() of one PO file with and without fingerprints (erp_state.py).

Usage: .venv/bin/python bench/erp_compare.py [POS]   (default 20000 POs of 5 lines; medians of 5)
The reference is the same transform without ``erp_state``, run alternately in the same process:
the ratio is the price of the comparison (every PO's fingerprints are computed, new ones included,
because the ledger keeps them for the next version).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(pos: int) -> str:
    sys.path.insert(0, str(ROOT))  # tests.coupa_files builds the export
    import polars as pl

    from batchsync.erp_state import ErpState
    from batchsync.kinds.purchase_orders.kind import KIND as PO
    from batchsync.kinds.purchase_orders.layout import LAYOUT as PO_LAYOUT
    from batchsync.mapping import load_mapping
    from batchsync.parse import parse_file
    from batchsync.transform import transform
    from batchsync.validate import validate
    from tests.coupa_files import po_file

    layout = PO_LAYOUT
    path = Path(tempfile.mkdtemp()) / "OrderHeader_bench.csv"
    path.write_bytes(b"".join(po_file([{"id": str(500000 + i)}], [{}, {}, {}, {}, {}]) for i in range(pos)))
    mapping = load_mapping(ROOT / "mappings", "sap_orders05", layout)
    validated = validate(parse_file(path, layout), layout, PO.models, PO.rules)
    ids = validated.accepted_ids.to_list()
    decisions = pl.DataFrame({"id": ids, "_decision": ["new"] * len(ids)})
    nothing_yet = ErpState.nothing()

    def once(state: ErpState | None) -> float:
        started = time.perf_counter()
        transform(
            validated.frames, decisions, mapping, layout, now=datetime(2026, 11, 24), source_file="x",
            erp_file="y", kind=PO, erp_state=state,
        )  # fmt: skip
        return time.perf_counter() - started

    without: list[float] = []
    with_state: list[float] = []
    for _ in range(5):
        without.append(once(None))
        with_state.append(once(nothing_yet))
    a, b = statistics.median(without), statistics.median(with_state)
    return f"{pos} POs x 5 lines: transform without the comparison {a:.3f} s, with it {b:.3f} s, ratio {b / a:.2f}x"


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
