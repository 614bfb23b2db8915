"""One run per state folder (product.md §2.1): an OS-level ``flock``, not a timestamp guess.

The kernel drops the lock when its process dies, so a lock left by a dead
run is simply taken; the holder's note (pid, host, start) is still read to
warn that the previous run did not end cleanly.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from types import TracebackType

from batchsync.errors import LockError, StateError

log = logging.getLogger("batchsync.lock")


class RunLock:
    def __init__(self, state_dir: Path, started_at: str) -> None:
        self.path = state_dir / "batchsync.lock"
        self.started_at = started_at
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.path.parent.chmod(0o700)  # ledger, archive and reports are for the service user only
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot create lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_note(fd)
            os.close(fd)
            raise LockError(
                f"another run holds the lock on {self.path.parent}: pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, started {holder.get('started_at', '?')}"
            ) from None
        previous = _read_note(fd)
        if previous.get("pid"):
            log.warning(
                "taking over the lock of run pid %s on %s started %s, which ended without releasing it",
                previous.get("pid"),
                previous.get("host"),
                previous.get("started_at"),
            )
        note = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": self.started_at}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(note).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an empty note means the last run ended cleanly
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_note(fd: int) -> dict[str, object]:
    try:
        data = os.pread(fd, 4096, 0)
        note = json.loads(data) if data.strip() else {}
        return note if isinstance(note, dict) else {}
    except (OSError, ValueError):
        return {}
