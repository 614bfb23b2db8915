"""``batchsync validate``: the run's parse, validation and mapping checks on a local file, no state touched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from batchsync.parse import ParsedFile, parse_file
from batchsync.process import PreparedFeed
from batchsync.transform import Transformed, transform
from batchsync.validate import Validated, validate


@dataclass
class FileCheck:
    name: str
    documents: int
    rejected: int
    errors: pl.DataFrame  # ERROR_SCHEMA

    @property
    def valid(self) -> bool:
        return self.errors.height == 0


def looks_like_change_file(path: Path) -> bool:
    """Coupa's Order Header Change export: its name, or an Approval record near the top."""
    if path.name.startswith("OrderHeaderChange"):
        return True
    with path.open("rb") as stream:
        head = stream.read(1 << 16)
    return any(line.lstrip(b'"').startswith(b"Approval") for line in head.splitlines())


def check_file(path: Path, feed: PreparedFeed, now: datetime) -> FileCheck:
    """Raises ``DataError`` when the file cannot be read as the feed's format at all."""
    parsed, validated, mapped = map_file(path, feed, now)
    errors = pl.concat(
        [validated.errors, mapped.problems.select(pl.lit(path.name).alias("file"), pl.all())], how="vertical_relaxed"
    ).sort("line", maintain_order=True)
    rejected = validated.rejected.height + mapped.rejected.height
    return FileCheck(path.name, parsed.frames["header"].height, rejected, errors)


def map_file(path: Path, feed: PreparedFeed, now: datetime) -> tuple[ParsedFile, Validated, Transformed]:
    """Parse, validate and map a local file as a run first would, its ledger empty: every valid document
    goes as its kind first sends one (a PO new, a change request as a change), so an unmappable value
    is found now, not at 3 a.m."""
    parsed = parse_file(path, feed.layout, display_name=path.name)
    validated = validate(parsed, feed.layout, feed.kind.models, feed.kind.rules)
    first = pl.lit(feed.kind.first_decision).alias("_decision")
    ids = validated.frames["header"].select(pl.col("id").unique(maintain_order=True), first)
    mapped = transform(
        validated.frames,
        ids,
        feed.mapping,
        feed.layout,
        now=now,
        source_file=path.name,
        erp_file="",
        kind=feed.kind,
    )
    return parsed, validated, mapped
