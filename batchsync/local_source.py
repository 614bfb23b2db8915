"""The local source: remote-style paths ("/Outgoing/X") inside a local folder (dry runs, demos, tests).

Same file operations as the SFTP source (transfer.TreeSource), over the local file system.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from batchsync.transfer import CHUNK, PROBE_BYTES, Fetched, Stat, TreeSource, fetch_once

_NO_HARD_LINKS = (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK)


class LocalSource(TreeSource):
    """Remote-style paths ("/Outgoing/X") resolved inside a local folder."""

    def __init__(self, root: Path, *, sleep: Callable[[float], None] = time.sleep, backoff: float = 1.0) -> None:
        self.root = root.resolve()
        self._sleep = sleep
        self._backoff = backoff
        self._folders = set()

    def describe(self) -> str:
        return f"local folder {self.root}"

    def close(self) -> None:
        pass  # nothing held open between calls

    def _local(self, path: str) -> Path:
        local = (self.root / path.lstrip("/")).resolve()
        if local != self.root and self.root not in local.parents:
            raise PermissionError(f"{path} is outside {self.describe()}")
        return local

    def _stat(self, path: str, *, follow: bool = True) -> Stat | None:
        try:
            local = self._local(path)
            st = local.stat() if follow else local.lstat()
        except FileNotFoundError:
            return None
        return Stat(st.st_mode, st.st_size, int(st.st_mtime))

    def _listdir(self, path: str) -> list[tuple[str, Stat]]:
        entries = []
        with os.scandir(self._local(path)) as it:
            for item in it:
                # lstat, like an SFTP directory listing: symlinks are not files.
                st = item.stat(follow_symlinks=False)
                entries.append((item.name, Stat(st.st_mode, st.st_size, int(st.st_mtime))))
        return entries

    def _mkdir(self, path: str) -> None:
        self._local(path).mkdir()

    def _rename_over(self, src: str, dst: str) -> None:
        os.replace(self._local(src), self._local(dst))

    def _rename_new(self, src: str, dst: str) -> None:
        # a hard link refuses an existing name, as SFTP's plain rename does (and OpenSSH's sftp-server does it so)
        source, target = self._local(src), self._local(dst)
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if target.exists():  # a file system without hard links: check, then rename
                raise FileExistsError(errno.EEXIST, "the name already exists", str(target)) from exc
            os.rename(source, target)
            return
        source.unlink()

    def _read_some(self, path: str) -> bytes:
        with self._local(path).open("rb") as f:
            return f.read(PROBE_BYTES)

    def _unlink(self, path: str) -> None:
        self._local(path).unlink()

    def _download(self, path: str, staging_dir: Path) -> Fetched:
        with self._local(path).open("rb") as src:
            return fetch_once(staging_dir, lambda sink: shutil.copyfileobj(src, sink, CHUNK))

    def _put(self, local_path: Path, path: str) -> None:
        with local_path.open("rb") as src, self._local(path).open("wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
