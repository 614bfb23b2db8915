"""Split a file's frames into batches of whole documents, so a large file streams through the stages.

A document's records always travel together: a batch holds some POs (or
changes) with every one of their records. A file of at most one batch is
passed through untouched, so small files pay nothing for this.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import polars as pl

from batchsync.layouts import Layout

# about 80 MB of finished IDoc text per batch at 5 lines per PO: memory stays bounded, and
# each batch is large enough that polars' per-call cost does not matter
BATCH_DOCUMENTS = 5_000
T = TypeVar("T")


def document_batches(
    frames: dict[str, pl.DataFrame], layout: Layout, documents: pl.DataFrame, size: int | None = None
) -> Iterator[tuple[pl.DataFrame, dict[str, pl.DataFrame]]]:
    """``documents`` has an ``id`` column; yields each slice of it with the frames' rows of those documents.

    Batched documents come in the file's order, numbered across the file (``_doc_seq``),
    so a mapping sees the same numbers as for the file in one piece.
    """
    size = size or BATCH_DOCUMENTS
    if documents.height <= size:
        yield documents, frames
        return
    in_file_order = frames["header"].select("id").unique(maintain_order=True)
    documents = in_file_order.join(documents, on="id", how="inner", maintain_order="left")
    documents = documents.with_row_index("_doc_seq", offset=1)
    batch_of = documents.select("id", (pl.int_range(pl.len(), dtype=pl.UInt32) // size).alias("_batch"))
    # each row's batch number, found once: comparing integers per batch is far cheaper than looking up ids
    numbers = {
        r.role: frames[r.role]
        .select(pl.col(r.doc_key).alias("id"))
        .join(batch_of, on="id", how="left", maintain_order="left")["_batch"]
        for r in layout.records
    }
    for number, start in enumerate(range(0, documents.height, size)):
        yield documents.slice(start, size), {role: frames[role].filter(numbers[role] == number) for role in numbers}


_END = object()


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """Make the next item in a second thread while the caller works on this one.

    polars releases the GIL, so the next batch's transform runs while this one is
    rendered in Python: on two cores the two stages overlap instead of adding up.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="batchsync-read-ahead") as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item  # type: ignore[misc]
