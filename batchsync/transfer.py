"""Read and write the remote folders: an SFTP server, or a local folder.

Both sources share one implementation of the file operations over a handful
of primitives, so a local dry run behaves like production. The SFTP source
lives in batchsync.sftp, the only module that imports paramiko; it is loaded
only when an SFTP source is opened. Secrets (password, key passphrase) never
reach a message.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import posixpath
import re
import stat
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

from batchsync import progress, remote_words
from batchsync.errors import MissingFolder, RemoteRefused, TransportError
from batchsync.faults import checkpoint
from batchsync.streams import DigestingWriter

log = logging.getLogger("batchsync.transfer")

CHUNK = 1 << 20
_SIZE_TRIES = 2
_ARCHIVE_NAME_TRIES = 20  # the name, the name with the hash, then 18 numbered ones
PROBE_BYTES = 1024


class RemoteFile(NamedTuple):  # a tuple: a listing makes one per file, 10,000 and more
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
    def archive(self, entry: RemoteFile, archive_dir: str, sha256: str) -> str: ...
    def delete(self, entry: RemoteFile) -> None: ...
    def upload(self, local_path: Path, remote_dir: str, name: str) -> None: ...
    def exists(self, remote_dir: str, name: str) -> bool: ...
    def check_dir(self, remote_dir: str, writable: bool) -> str | None: ...
    def probe(self, op: str, *paths: str) -> None: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...


MAX_NAME = 180


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
    if _CONTROL.search(name):
        return "the name contains control characters"
    if len(name) > MAX_NAME:  # hand-off names add about 70 characters; file systems stop at 255
        return f"the name is {len(name)} characters long (at most {MAX_NAME})"
    return None


class Stat(NamedTuple):
    mode: int
    size: int
    mtime: int


class _DownloadSink:
    """What a download writes to: hashed and written in a second thread while the next bytes arrive."""

    def __init__(self, writer: DigestingWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> int:
        written = self._writer.write(data)
        progress.advance(len(data))
        checkpoint("mid-download")
        return written


def fetch_once(staging_dir: Path, copy: Callable[[_DownloadSink], object]) -> Fetched:
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


def error_text(exc: BaseException) -> str:
    """An OS or library error in one line of its own words (for logs; messages go through remote_words)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def archive_names(name: str, sha256: str) -> Iterator[str]:
    """The name itself, then the name with the content hash (and a counter): a name taken is never replaced."""
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, f".{ext}") if dot and stem else (name, "")
    yield name
    yield f"{stem}.{sha256[:12]}{ext}"
    for n in range(2, _ARCHIVE_NAME_TRIES):
        yield f"{stem}.{sha256[:12]}-{n}{ext}"


class TreeSource(ABC):
    """File operations shared by both sources, built on the primitives below.

    Primitives raise FileNotFoundError for a missing path (the callers decide
    whether that is fine) and other OSErrors for the rest; public methods turn
    those into RemoteRefused naming the operation, path and server
    (remote_words). A server whose replies carry no file type (no permission
    bits) is handled here: a matching name is a candidate, confirmed by lstat
    or, failing that, by opening it; a folder is confirmed by listing it.
    """

    _sleep: Callable[[float], None]
    _backoff: float
    _folders: set[str]

    @abstractmethod
    def describe(self) -> str: ...
    @abstractmethod
    def close(self) -> None: ...

    # The primitives each source implements.
    @abstractmethod
    def _stat(self, path: str, *, follow: bool = True) -> Stat | None: ...
    @abstractmethod
    def _listdir(self, path: str) -> list[tuple[str, Stat]]: ...
    @abstractmethod
    def _mkdir(self, path: str) -> None: ...
    @abstractmethod
    def _rename_over(self, src: str, dst: str) -> None:
        """Rename, replacing dst if it exists (only ever our own upload's final name)."""

    @abstractmethod
    def _rename_new(self, src: str, dst: str) -> None:
        """Rename; refused or not, an existing dst must not be replaced (callers check first)."""

    @abstractmethod
    def _unlink(self, path: str) -> None: ...
    @abstractmethod
    def _download(self, path: str, staging_dir: Path) -> Fetched: ...
    @abstractmethod
    def _put(self, local_path: Path, path: str) -> None: ...
    @abstractmethod
    def _read_some(self, path: str) -> bytes: ...

    @contextmanager
    def _failing(self, op: str, path: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise remote_words.failure(op, path, self.describe(), exc, self._timeout()) from exc

    def _timeout(self) -> float | None:
        return None

    def list(self, remote_dir: str, pattern: str) -> list[RemoteFile]:
        with self._failing("list", remote_dir):
            try:
                entries = self._listdir(remote_dir)
            except FileNotFoundError:
                raise MissingFolder(f"remote folder {remote_dir} does not exist on {self.describe()}") from None
            matches = re.compile(fnmatch.translate(pattern)).match  # fnmatchcase's own rule, compiled once
            files = []
            for name, st in entries:
                if matches(name):
                    path = posixpath.join(remote_dir, name)
                    if self._is_file(path, st):
                        files.append(RemoteFile(path, name, st.size, st.mtime))
        return sorted(files, key=lambda f: f.name)

    def _is_file(self, path: str, st: Stat) -> bool:
        if stat.S_ISREG(st.mode):  # the listing said so: the common case, 10,000 times in a long folder
            return True
        if stat.S_IFMT(st.mode) == 0:  # no file type in the listing: ask again, without following a link
            again = self._stat(path, follow=False)
            if again is None:
                return False  # gone meanwhile
            st = again
        # still no type: a candidate all the same; opening it (the download) confirms it
        return stat.S_IFMT(st.mode) == 0 or stat.S_ISREG(st.mode)

    def _is_folder(self, path: str, st: Stat) -> bool:
        if stat.S_IFMT(st.mode):
            return stat.S_ISDIR(st.mode)
        if path not in self._folders:  # no file type: a folder is what can be listed
            try:
                self._listdir(path)
            except OSError:
                return False
            self._folders.add(path)
        return True

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
        raise RemoteRefused(
            f"downloading {entry.path} on {self.describe()}: received {got} bytes, listed "
            f"{entry.size}; the file is probably still being written",
            hint="the next run will pick it up once it stops changing",
        )

    def archive(self, entry: RemoteFile, archive_dir: str, sha256: str) -> str:
        """Move into the archive folder; where the name is taken, under the name with the content hash."""
        with self._failing("archive", entry.path):
            self._makedirs(archive_dir)
            for name in archive_names(entry.name, sha256):
                target = posixpath.join(archive_dir, name)
                if self._stat(target, follow=False) is not None:
                    continue  # an older file of that name stays as it is
                if self._move(entry.path, target):
                    if name != entry.name:
                        log.warning(
                            "archive: %s already holds a file named %s; archived %s as %s (the older file is kept)",
                            archive_dir, entry.name, entry.path, name,
                        )  # fmt: skip
                    return target
            raise RemoteRefused(
                f"archiving {entry.path} on {self.describe()}: every archive name is taken in "
                f"{archive_dir} (tried {entry.name} and {_ARCHIVE_NAME_TRIES - 1} with its hash)"
            )

    def _move(self, src: str, target: str) -> bool:
        """Rename without replacing; False if the target name was taken meanwhile (try the next name)."""
        try:
            self._rename_new(src, target)
        except FileNotFoundError:
            # A lost reply or a crash after the move: the move is done.
            if self._stat(src, follow=False) is None and self._stat(target, follow=False) is not None:
                log.info("archive %s: already in %s", src, posixpath.dirname(target))
                return True
            raise
        except OSError:
            if self._stat(target, follow=False) is not None and self._stat(src, follow=False) is not None:
                return False
            raise
        return True

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
            # an interrupted upload's .part: a server that refuses to overwrite would refuse the new one
            with suppress(FileNotFoundError):
                self._unlink(part)
                log.info("upload: removed %s, left by an interrupted upload", part)
            try:
                self._put(local_path, part)
                checkpoint("mid-upload")
                self._rename_over(part, final)
            except Exception:
                # Best effort (a reconnected session can still remove it): Coupa must not find a
                # half file; if this fails too, the next upload removes the .part first.
                self._discard(part)
                raise

    def exists(self, remote_dir: str, name: str) -> bool:
        path = posixpath.join(remote_dir, name)
        with self._failing("stat", path):
            return self._stat(path) is not None

    def check_dir(self, remote_dir: str, writable: bool) -> str | None:
        """Whether the folder is there and a folder (and, if asked, takes a file); None if all is well."""
        try:
            st = self._stat(remote_dir)
            if st is None:
                return f"{remote_dir}: does not exist on {self.describe()}"
            if not self._is_folder(remote_dir, st):
                return f"{remote_dir}: is not a folder"
            if writable:
                probe = posixpath.join(remote_dir, f".batchsync-probe-{uuid.uuid4().hex}")
                self.probe("write", probe)
                self.probe("remove", probe)
        except OSError as exc:
            return f"{remote_dir}: {remote_words.reason(exc, self._timeout())}"
        except RemoteRefused as exc:
            return exc.message
        return None

    def probe(self, op: str, *paths: str) -> None:
        """One operation of ``batchsync check`` (list, read, mkdir, write, rename, remove), in a run's words."""
        path = paths[0]
        with self._failing(op, " to ".join(paths)):
            if op == "list":
                self._listdir(path)
            elif op == "read":
                self._read_some(path)
            elif op == "mkdir":
                self._makedirs(path)
            elif op == "write":
                with tempfile.TemporaryDirectory() as tmp:
                    empty = Path(tmp, "probe")
                    empty.write_bytes(b"batchsync check\n")
                    self._put(empty, path)
            elif op == "rename":
                self._rename_new(path, paths[1])
            elif op == "remove":
                self._unlink(path)
            else:
                raise ValueError(f"unknown probe {op}")

    def _makedirs(self, path: str) -> None:
        st = self._stat(path)
        if st is not None:
            if not self._is_folder(path, st):
                raise NotADirectoryError(errno.ENOTDIR, f"{path} exists and is not a folder")
            return
        parent = posixpath.dirname(path.rstrip("/"))
        if parent and parent != path:
            self._makedirs(parent)
        try:
            self._mkdir(path)
        except OSError:
            # Another writer may have created it meanwhile; only that is fine.
            st = self._stat(path)
            if st is None or not self._is_folder(path, st):
                raise

    def _discard(self, path: str) -> None:
        try:
            self._unlink(path)
        except Exception as exc:  # the original error matters more
            log.debug("could not remove %s: %s", path, error_text(exc))
