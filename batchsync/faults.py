"""Test aid: make the process kill itself at a named point, to prove a crash anywhere loses nothing.

Set ``BATCHSYNC_TEST_KILL_AT=NAME`` (or ``NAME:N`` to die at the N-th time the
point is reached). Inert when the variable is unset, which is always the case
in production; nothing else reads it. Points:

- ``after-list``: the remote folder was listed
- ``mid-download``: some bytes of a file arrived
- ``after-download``: the file is in the local archive, not yet in the ledger
- ``after-fetch-record``: the ledger has the file, the remote after-action not yet applied
- ``mid-render``: part of an ERP file was written to its temporary name
- ``after-handoff``: ERP file and manifest renamed into place, outcomes not yet in the ledger
- ``mid-upload``: part of a write-back file was uploaded under its temporary name
- ``after-upload``: the write-back file was renamed into place, not yet marked uploaded
"""

from __future__ import annotations

import os
import signal

ENV = "BATCHSYNC_TEST_KILL_AT"
POINTS = (
    "after-list",
    "mid-download",
    "after-download",
    "after-fetch-record",
    "mid-render",
    "after-handoff",
    "mid-upload",
    "after-upload",
)
_seen: dict[str, int] = {}
# read once: the point is fixed for the life of a test's subprocess, and checking the
# environment on every rendered record would cost seconds on a large file
_WANTED = os.environ.get(ENV)


def checkpoint(point: str) -> None:
    wanted = _WANTED
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _seen[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
