"""Split a file's frames into batches of whole documents, so a large file streams through the stages.

A document's records always travel together: a batch holds some POs (or
changes) with every one of their records. A file of at most one batch is
passed through untouched, so small files pay nothing for this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    batch_of = documents.select("id", ((pl.col("_doc_seq") - 1) // size).alias("_batch"))
    # each row's batch number, found once: comparing integers per batch is far cheaper than looking up ids
    numbers = {
        r.role: frames[r.role]
        .select(pl.col(r.doc_key).alias("id"))
        .join(batch_of, on="id", how="left", maintain_order="left")["_batch"]
        for r in layout.records
    }
    count = -(-documents.height // size)
    pieces = {role: _pieces(frames[role], numbers[role], count) for role in numbers}
    for number, start in enumerate(range(0, documents.height, size)):
        yield documents.slice(start, size), {role: piece(number) for role, piece in pieces.items()}


def _pieces(frame: pl.DataFrame, numbers: pl.Series, count: int) -> Callable[[int], pl.DataFrame]:
    """A function giving the rows of batch N.

    A file lists each document's records together, in document order, so the batch
    numbers usually ascend: then a batch is a zero-copy slice. Otherwise each batch
    is filtered out (every column scanned once per batch).
    """
    if numbers.null_count():  # rows of documents not asked for (not sent, rejected): set aside once
        frame, numbers = frame.filter(numbers.is_not_null()), numbers.drop_nulls()
    if not numbers.is_sorted():
        return lambda number: frame.filter(numbers == number)
    starts = numbers.search_sorted(pl.Series(range(count + 1), dtype=numbers.dtype), side="left").to_list()
    return lambda number: frame.slice(starts[number], starts[number + 1] - starts[number])


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
