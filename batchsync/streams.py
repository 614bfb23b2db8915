"""A file writer that hashes and writes in a second thread (downloads and hand-offs)."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from typing import BinaryIO


class DigestingWriter:
    """Hash and write in a second thread while the caller produces the next bytes.

    hashlib and file writes release the GIL, so on a large file they cost almost
    nothing on top of rendering or downloading. Written ranges are handed to the kernel's
    write-back as they go, so the final fsync has little left to wait for.
    """

    _WRITEBACK_EVERY = 64 << 20
    _PIECE = 256 << 10  # small writes (SFTP's 32 KiB) are joined up to this; larger joins fault in fresh pages

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self._pieces: queue.Queue[bytes | None] = queue.Queue(maxsize=64)
        self._error: BaseException | None = None
        self._synced = self._written = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.size = 0  # bytes accepted so far
        self._thread = threading.Thread(target=self._drain, name="batchsync-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        self.size += len(data)
        if self._pending_size >= self._PIECE:
            self._pieces.put(b"".join(self._pending))
            self._pending, self._pending_size = [], 0
        return len(data)

    def close(self) -> str:
        """Wait for every piece to be written; raise what writing raised; return the SHA-256."""
        if self._pending:
            self._pieces.put(b"".join(self._pending))
            self._pending = []
        self._pieces.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def _drain(self) -> None:
        while (data := self._pieces.get()) is not None:
            if self._error is not None:
                continue  # keep taking pieces, so the renderer is never left blocked
            try:
                self._digest.update(data)
                self._stream.write(data)
                self._written += len(data)
                if self._written - self._synced >= self._WRITEBACK_EVERY:
                    self._start_writeback()
            except BaseException as exc:  # handed to the renderer's thread by write() and close()
                self._error = exc

    def _start_writeback(self) -> None:
        self._stream.flush()
        # DONTNEED starts write-back of the dirty range without waiting for it (Linux)
        os.posix_fadvise(self._stream.fileno(), self._synced, self._written - self._synced, os.POSIX_FADV_DONTNEED)
        self._synced = self._written
