"""Read and write the remote folders: an SFTP server, or a local folder.

Both sources share one implementation of the file operations over a handful
of primitives, so a local dry run behaves like production. The SFTP source
lives in batchsync.sftp, the only module that imports paramiko; it is loaded
only when an SFTP source is opened. Secrets (password, key passphrase) never
reach a message.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import posixpath
import shutil
import stat
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from batchsync.config import SourceConfig
from batchsync.errors import TransportError
from batchsync.faults import checkpoint
from batchsync.streams import DigestingWriter

if TYPE_CHECKING:
    from batchsync.sftp import SftpSource

log = logging.getLogger("batchsync.transfer")

_CHUNK = 1 << 20
_SIZE_TRIES = 2


@dataclass(frozen=True)
class RemoteFile:
    path: str
    name: str
    size: int
    mtime: int


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int


class Source(Protocol):
    def list(self, remote_dir: str, pattern: str) -> list[RemoteFile]: ...
    def fetch(self, entry: RemoteFile, staging_dir: Path) -> Fetched: ...
    def archive(self, entry: RemoteFile, archive_dir: str) -> None: ...
    def delete(self, entry: RemoteFile) -> None: ...
    def upload(self, local_path: Path, remote_dir: str, name: str) -> None: ...
    def exists(self, remote_dir: str, name: str) -> bool: ...
    def check_dir(self, remote_dir: str, writable: bool) -> str | None: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...


MAX_NAME = 180


def unsafe_name_reason(name: str) -> str | None:
    """Why a remote file name must not be used as a local or remote path part."""
    if not name:
        return "the name is empty"
    if "/" in name or "\\" in name:
        return "the name contains a path separator"
    if name in (".", "..") or ".." in name:
        return "the name contains '..'" if name != "." else "the name is '.'"
    if name.startswith("-"):
        return "the name starts with '-'"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "the name contains control characters"
    if len(name) > MAX_NAME:  # hand-off names add about 70 characters; file systems stop at 255
        return f"the name is {len(name)} characters long (at most {MAX_NAME})"
    return None


class _Stat(NamedTuple):
    mode: int
    size: int
    mtime: int


class _DownloadSink:
    """What a download writes to: hashed and written in a second thread while the next bytes arrive."""

    def __init__(self, writer: DigestingWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        written = self._writer.write(data)
        checkpoint("mid-download")
        return written


def _fetch_once(staging_dir: Path, copy: Callable[[_DownloadSink], object]) -> Fetched:
    """Stream into a fresh temp file; the hash is computed as the bytes arrive."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fetch-", suffix=".part", dir=staging_dir)
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as raw:
            writer = DigestingWriter(raw)
            try:
                copy(_DownloadSink(writer))
            finally:
                sha256 = writer.close()
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Fetched(path=path, sha256=sha256, size=writer.size)


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


class _TreeSource(ABC):
    """File operations shared by both sources, built on the primitives below.

    Primitives raise FileNotFoundError for a missing path (the callers decide
    whether that is fine) and other OSErrors for the rest; public methods turn
    those into TransportError naming the operation and path.
    """

    _sleep: Callable[[float], None]
    _backoff: float

    @abstractmethod
    def describe(self) -> str: ...
    @abstractmethod
    def close(self) -> None: ...

    # The primitives each source implements.
    @abstractmethod
    def _stat(self, path: str) -> _Stat | None: ...
    @abstractmethod
    def _listdir(self, path: str) -> list[tuple[str, _Stat]]: ...
    @abstractmethod
    def _mkdir(self, path: str) -> None: ...
    @abstractmethod
    def _rename_over(self, src: str, dst: str) -> None: ...
    @abstractmethod
    def _unlink(self, path: str) -> None: ...
    @abstractmethod
    def _download(self, path: str, staging_dir: Path) -> Fetched: ...
    @abstractmethod
    def _put(self, local_path: Path, path: str) -> None: ...

    @contextmanager
    def _failing(self, op: str, path: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise TransportError(f"{op} {path} on {self.describe()} failed: {_reason(exc)}") from exc

    def list(self, remote_dir: str, pattern: str) -> list[RemoteFile]:
        with self._failing("list", remote_dir):
            try:
                entries = self._listdir(remote_dir)
            except FileNotFoundError:
                raise TransportError(f"remote folder {remote_dir} does not exist on {self.describe()}") from None
        files = [
            RemoteFile(posixpath.join(remote_dir, name), name, st.size, st.mtime)
            for name, st in entries
            if stat.S_ISREG(st.mode) and fnmatch.fnmatchcase(name, pattern)
        ]
        return sorted(files, key=lambda f: f.name)

    def fetch(self, entry: RemoteFile, staging_dir: Path) -> Fetched:
        got = -1
        with self._failing("download", entry.path):
            for attempt in range(1, _SIZE_TRIES + 1):
                fetched = self._download(entry.path, staging_dir)
                if fetched.size == entry.size:
                    return fetched
                got = fetched.size
                fetched.path.unlink(missing_ok=True)
                log.info("download %s: got %d bytes, listed %d; attempt %d", entry.path, got, entry.size, attempt)
                if attempt < _SIZE_TRIES:
                    self._sleep(self._backoff)
        raise TransportError(
            f"download {entry.path} on {self.describe()}: received {got} bytes, listed "
            f"{entry.size}; the file is probably still being written",
            hint="the next run will pick it up once it stops changing",
        )

    def archive(self, entry: RemoteFile, archive_dir: str) -> None:
        target = posixpath.join(archive_dir, entry.name)
        with self._failing("archive", entry.path):
            self._makedirs(archive_dir)
            try:
                self._rename_over(entry.path, target)
            except FileNotFoundError:
                # A crash (or a lost reply) after the move: the move is done.
                if self._stat(entry.path) is None and self._stat(target) is not None:
                    log.info("archive %s: already in %s", entry.path, archive_dir)
                    return
                raise

    def delete(self, entry: RemoteFile) -> None:
        with self._failing("delete", entry.path):
            try:
                self._unlink(entry.path)
            except FileNotFoundError:
                log.info("delete %s: already gone", entry.path)

    def upload(self, local_path: Path, remote_dir: str, name: str) -> None:
        reason = unsafe_name_reason(name)
        if reason:
            raise TransportError(f"upload {name!r} refused: {reason}")
        final = posixpath.join(remote_dir, name)
        part = f"{final}.part"
        with self._failing("upload", final):
            self._makedirs(remote_dir)
            try:
                self._put(local_path, part)
                checkpoint("mid-upload")
                self._rename_over(part, final)
            except Exception:
                # Best effort (a reconnected session can still remove it): Coupa must not find a
                # half file; if this fails too, the next upload replaces the .part and renames it.
                self._discard(part)
                raise

    def exists(self, remote_dir: str, name: str) -> bool:
        path = posixpath.join(remote_dir, name)
        with self._failing("stat", path):
            return self._stat(path) is not None

    def check_dir(self, remote_dir: str, writable: bool) -> str | None:
        try:
            st = self._stat(remote_dir)
            if st is None:
                return f"{remote_dir}: does not exist on {self.describe()}"
            if not stat.S_ISDIR(st.mode):
                return f"{remote_dir}: is not a folder"
            if writable:
                probe = posixpath.join(remote_dir, f".batchsync-probe-{uuid.uuid4().hex}")
                with tempfile.TemporaryDirectory() as tmp:
                    empty = Path(tmp, "probe")
                    empty.touch()
                    self._put(empty, probe)
                self._unlink(probe)
        except OSError as exc:
            return f"{remote_dir}: {_reason(exc)}"
        return None

    def _makedirs(self, path: str) -> None:
        st = self._stat(path)
        if st is not None:
            if not stat.S_ISDIR(st.mode):
                raise NotADirectoryError(f"{path} exists and is not a folder")
            return
        parent = posixpath.dirname(path.rstrip("/"))
        if parent and parent != path:
            self._makedirs(parent)
        try:
            self._mkdir(path)
        except OSError:
            # Another writer may have created it meanwhile; only that is fine.
            st = self._stat(path)
            if st is None or not stat.S_ISDIR(st.mode):
                raise

    def _discard(self, path: str) -> None:
        try:
            self._unlink(path)
        except Exception as exc:  # the original error matters more
            log.debug("could not remove %s: %s", path, _reason(exc))


class LocalSource(_TreeSource):
    """Remote-style paths ("/Outgoing/X") resolved inside a local folder."""

    def __init__(self, root: Path, *, sleep: Callable[[float], None] = time.sleep, backoff: float = 1.0) -> None:
        self.root = root.resolve()
        self._sleep = sleep
        self._backoff = backoff

    def describe(self) -> str:
        return f"local folder {self.root}"

    def close(self) -> None:
        pass  # nothing held open between calls

    def _local(self, path: str) -> Path:
        local = (self.root / path.lstrip("/")).resolve()
        if local != self.root and self.root not in local.parents:
            raise PermissionError(f"{path} is outside {self.describe()}")
        return local

    def _stat(self, path: str) -> _Stat | None:
        try:
            st = self._local(path).stat()
        except FileNotFoundError:
            return None
        return _Stat(st.st_mode, st.st_size, int(st.st_mtime))

    def _listdir(self, path: str) -> list[tuple[str, _Stat]]:
        entries = []
        with os.scandir(self._local(path)) as it:
            for item in it:
                # lstat, like an SFTP directory listing: symlinks are not files.
                st = item.stat(follow_symlinks=False)
                entries.append((item.name, _Stat(st.st_mode, st.st_size, int(st.st_mtime))))
        return entries

    def _mkdir(self, path: str) -> None:
        self._local(path).mkdir()

    def _rename_over(self, src: str, dst: str) -> None:
        os.replace(self._local(src), self._local(dst))

    def _unlink(self, path: str) -> None:
        self._local(path).unlink()

    def _download(self, path: str, staging_dir: Path) -> Fetched:
        with self._local(path).open("rb") as src:
            return _fetch_once(staging_dir, lambda sink: shutil.copyfileobj(src, sink, _CHUNK))

    def _put(self, local_path: Path, path: str) -> None:
        with local_path.open("rb") as src, self._local(path).open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())


@contextmanager
def open_source(config: SourceConfig, *, sleep: Callable[[float], None] = time.sleep) -> Iterator[Source]:
    source: LocalSource | SftpSource
    if config.local_root is not None:
        source = LocalSource(config.local_root, sleep=sleep, backoff=config.backoff_seconds)
    else:
        from batchsync.sftp import SftpSource  # lazily: paramiko only when needed

        source = SftpSource(config, sleep=sleep)
    try:
        if not isinstance(source, LocalSource):
            source.connect()
        yield source
    finally:
        source.close()


def wait_until_stable(
    source: Source,
    remote_dir: str,
    pattern: str,
    candidates: list[RemoteFile],
    *,
    settle_seconds: float,
    min_age_seconds: float,
    now: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[RemoteFile], list[RemoteFile]]:
    """Split candidates into files done being written and files to leave for later."""
    if not candidates:
        return [], []
    if settle_seconds > 0:
        sleep(settle_seconds)
    again = {f.name: f for f in source.list(remote_dir, pattern)}
    stable: list[RemoteFile] = []
    not_yet: list[RemoteFile] = []
    for entry in sorted(candidates, key=lambda f: f.name):
        seen = again.get(entry.name)
        unchanged = seen is not None and (seen.size, seen.mtime) == (entry.size, entry.mtime)
        # with no minimum age the clocks need not agree: a server clock ahead of ours must not hold files back
        old_enough = min_age_seconds <= 0 or now - entry.mtime >= min_age_seconds
        (stable if unchanged and old_enough else not_yet).append(entry)
    return stable, not_yet
