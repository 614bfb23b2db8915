"""Progress of the long parts of a run (issue 14): bytes while a file downloads, POs while it is processed.

The stages report to whatever meter the caller installed (``using``); without one (cron, tests, the
library) reporting costs a global lookup. The CLI installs a terminal meter only when stderr is a
terminal, so log files and schedulers see nothing of it. One task at a time, for one file as for many.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Meter(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self, done: int) -> None: ...

    def finish(self) -> None: ...


_meter: Meter | None = None
_lock = threading.Lock()  # the POs of a file are counted in the mapping thread


@contextmanager
def using(meter: Meter | None) -> Iterator[None]:
    global _meter
    before, _meter = _meter, meter
    try:
        yield
    finally:
        _meter = before


@contextmanager
def task(label: str, total: int) -> Iterator[None]:
    """One measured piece of work: ``total`` bytes or POs, advanced by ``advance``."""
    meter = _meter
    if meter is None or total <= 0:
        yield
        return
    with _lock:
        meter.start(label, total)
    try:
        yield
    finally:
        with _lock:
            meter.finish()


def advance(done: int) -> None:
    meter = _meter
    if meter is not None:
        with _lock:
            meter.advance(done)


class Recorder:
    """A meter that remembers what it was told: for tests, and for anyone who wants the figures."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, int, int]] = []  # label, total, done

    def start(self, label: str, total: int) -> None:
        self.tasks.append((label, total, 0))

    def advance(self, done: int) -> None:
        label, total, so_far = self.tasks[-1]
        self.tasks[-1] = (label, total, so_far + done)

    def finish(self) -> None:
        pass
