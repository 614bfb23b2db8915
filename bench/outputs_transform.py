"""The mapping stage of a target of several files: transform() of one PO export with oracle_po_interface.

Usage: .venv/bin/python bench/outputs_transform.py [CHECKOUT] [POS]
(default: this checkout, 20000 POs of 5 lines; median of 5). Give an older checkout's folder to time
its code on the same export and mapping, side by side, e.g. a ``git worktree`` of an earlier commit.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def main(checkout: Path, pos: int) -> str:
    sys.path.insert(0, str(checkout))  # its batchsync, and tests.coupa_files to build the export
    import polars as pl

    from batchsync.mapping import load_mapping
    from batchsync.parse import parse_file
    from batchsync.transform import transform
    from batchsync.validate import validate
    from tests.coupa_files import po_file

    layout, models, rules, line_actions = _po_kind()
    path = Path(tempfile.mkdtemp()) / "OrderHeader_bench.csv"
    path.write_bytes(b"".join(po_file([{"id": str(500000 + i)}], [{}, {}, {}, {}, {}]) for i in range(pos)))
    mapping = load_mapping(ROOT / "mappings", "oracle_po_interface", layout)
    validated = validate(parse_file(path, layout), layout, models, rules)
    ids = validated.accepted_ids.to_list()
    decisions = pl.DataFrame({"id": ids, "_decision": ["new"] * len(ids)})
    times = []
    for _ in range(5):
        start = time.perf_counter()
        transform(
            validated.frames,
            decisions,
            mapping,
            layout,
            now=datetime(2026, 12, 3),
            source_file=path.name,
            erp_file=f"R0000001-0001_{path.name}",
            **line_actions,
        )
        times.append(time.perf_counter() - start)
    return f"{checkout}: {pos:,} POs, transform median of 5 {statistics.median(times):.3f} s"


def _po_kind() -> tuple[Any, Any, Any, dict[str, Any]]:
    """The PO feed's layout, models, rules and line actions, in this checkout or one from before kinds/."""
    try:
        from batchsync.kinds.purchase_orders.kind import KIND

        return KIND.layout, KIND.models, KIND.rules, {"kind": KIND}
    except ImportError:
        from batchsync.schemas import PO_MODELS, PO_RULES, po_line_decision  # type: ignore[import-not-found]

        from batchsync.layouts import LAYOUTS  # type: ignore[attr-defined]

        return LAYOUTS["purchase_orders"], PO_MODELS, PO_RULES, {"line_decision": po_line_decision}


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT, int(sys.argv[2]) if len(sys.argv) > 2 else 20000))
