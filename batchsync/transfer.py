"""Read and write the remote folders: an SFTP server, or a local folder.

Both sources share one implementation of the file operations over a handful
of primitives, so a local dry run behaves like production. Only this module
imports paramiko. Secrets (password, key passphrase) never reach a message.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
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
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, Protocol, TypeVar, cast

import paramiko

from batchsync.config import SourceConfig
from batchsync.errors import AuthError, HostKeyError, TransportError

log = logging.getLogger("batchsync.transfer")

T = TypeVar("T")
_CHUNK = 1 << 20
# paramiko's default is unbounded: a large file would queue every read request
# at once. Its cap is a 10 ms busy-wait, and at <= 64 requests (one 2 MiB SSH
# window) downloads crawl at ~5 MB/s even on localhost; 256 x 32 KiB is full speed.
_PREFETCH_REQUESTS = 256
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
    if len(name) > 255:
        return f"the name is {len(name)} characters long (at most 255)"
    return None


class _Stat(NamedTuple):
    mode: int
    size: int
    mtime: int


class _HashingSink:
    """A write-only file object that hashes and counts what passes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _fetch_once(staging_dir: Path, copy: Callable[[_HashingSink], object]) -> Fetched:
    """Stream into a fresh temp file; the hash is computed as the bytes arrive."""
    staging_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fetch-", suffix=".part", dir=staging_dir)
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as raw:
            sink = _HashingSink(raw)
            copy(sink)
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Fetched(path=path, sha256=sink.hexdigest(), size=sink.size)


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
                self._rename_over(part, final)
            except OSError:
                # Only a refusal over a live session; a dead link would just retry again.
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


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint, as ``ssh-keygen -l`` shows it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class _RefuseUnknownHost(paramiko.MissingHostKeyPolicy):
    """Never trust on first use: a person must add the key to known_hosts."""

    def __init__(self, host: str, port: int, known_hosts: Path | None) -> None:
        self._where = f"{host}:{port}"
        self._known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        line = f"{hostname} {key.get_name()} {key.get_base64()}"
        raise HostKeyError(
            f"host key of {self._where} is unknown: the server offered {key.get_name()} {fingerprint(key)}; "
            f"once verified, add this line to {self._known_hosts}: {line}"
        )


def _is_transient(exc: BaseException, alive: bool) -> bool:
    if isinstance(exc, (paramiko.AuthenticationException, paramiko.BadHostKeyException)):
        return False
    if isinstance(exc, (TimeoutError, EOFError, ConnectionError, paramiko.SSHException)):
        return True
    # SFTP status replies (no such file, denied, failure) are OSErrors too; they
    # arrive over a live session, whereas a socket fault leaves it dead.
    return isinstance(exc, OSError) and not alive


class SftpSource(_TreeSource):
    """One SSH connection per run; reconnects only to retry a transient fault."""

    def __init__(self, config: SourceConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._config = config
        self._sleep = sleep
        self._backoff = config.backoff_seconds
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        # Unknown until tried: some servers lack the posix-rename extension.
        self._posix_rename = True

    def describe(self) -> str:
        c = self._config
        return f"sftp://{c.username}@{c.host}:{c.port}"

    def connect(self) -> None:
        self._call("connect", self.describe(), lambda sftp: None)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._sftp = None

    def _call(self, op: str, path: str, action: Callable[[paramiko.SFTPClient], T]) -> T:
        delay = self._config.backoff_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                return action(self._session())
            except Exception as exc:
                if not _is_transient(exc, self._alive()):
                    raise
                self.close()
                if attempt > self._config.retries:
                    raise TransportError(
                        f"{op} {path} on {self.describe()} failed after {attempt} attempts: {_reason(exc)}"
                    ) from exc
                retries = self._config.retries
                log.info("%s %s: %s; retry %d of %d in %gs", op, path, _reason(exc), attempt, retries, delay)
                self._sleep(delay)
                delay *= 2

    def _alive(self) -> bool:
        transport = self._client.get_transport() if self._client else None
        channel = self._sftp.get_channel() if self._sftp else None
        return bool(transport and transport.is_active() and channel and not channel.closed)

    def _session(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self._connect()
        return self._sftp

    def _connect(self) -> paramiko.SFTPClient:
        c = self._config
        pkey = self._load_key()
        if pkey is None and not c.password and not os.environ.get("SSH_AUTH_SOCK"):
            raise AuthError(f"no credentials for {self.describe()}: no key_file, password or ssh-agent")
        client = self._client = self._new_client()
        log.debug("connecting to %s", self.describe())
        try:
            client.connect(
                c.host, port=c.port, username=c.username, pkey=pkey, password=c.password,
                allow_agent=bool(os.environ.get("SSH_AUTH_SOCK")), look_for_keys=False,
                timeout=c.timeout_seconds, banner_timeout=c.timeout_seconds,
                auth_timeout=c.timeout_seconds, channel_timeout=c.timeout_seconds,
            )  # fmt: skip
            sftp = client.open_sftp()
        except paramiko.BadHostKeyException as exc:
            self.close()
            raise HostKeyError(
                f"host key of {c.host}:{c.port} CHANGED: the server offered {exc.key.get_name()} "
                f"{fingerprint(exc.key)}, but {c.known_hosts} expects {exc.expected_key.get_name()} "
                f"{fingerprint(exc.expected_key)}; this may be an attack or a reinstalled server"
            ) from exc
        except paramiko.AuthenticationException as exc:
            self.close()
            raise AuthError(f"{self.describe()} refused our credentials: {_reason(exc)}") from exc
        except BaseException:
            self.close()
            raise
        channel = sftp.get_channel()
        if channel is not None:  # a stalled server must not hang a read forever
            channel.settimeout(c.timeout_seconds)
        return sftp

    def _new_client(self) -> paramiko.SSHClient:
        c = self._config
        client = paramiko.SSHClient()
        try:
            if c.known_hosts is not None:
                client.load_host_keys(str(c.known_hosts))
        except (OSError, ValueError, paramiko.hostkeys.InvalidHostKey) as exc:
            # Not a network fault: retrying cannot make the file readable.
            raise HostKeyError(f"cannot read known_hosts {c.known_hosts}: {_reason(exc)}") from exc
        client.set_missing_host_key_policy(_RefuseUnknownHost(c.host, c.port, c.known_hosts))
        return client

    def _load_key(self) -> paramiko.PKey | None:
        c = self._config
        if c.key_file is None:
            return None
        # paramiko 5 hands the passphrase straight to cryptography, which wants
        # bytes (despite the str annotation) and refuses one for a plain key.
        secret = cast(str, c.key_passphrase.encode()) if c.key_passphrase else None
        try:
            try:
                return paramiko.PKey.from_path(c.key_file, secret)
            except TypeError:
                if secret is None:
                    raise
                return paramiko.PKey.from_path(c.key_file, None)
        except (OSError, ValueError, TypeError, paramiko.SSHException) as exc:
            raise AuthError(f"cannot load key_file {c.key_file} (wrong passphrase?): {_reason(exc)}") from exc

    def _stat(self, path: str) -> _Stat | None:
        try:
            attrs = self._call("stat", path, lambda s: s.stat(path))
        except FileNotFoundError:
            return None
        return _attrs_stat(attrs)

    def _listdir(self, path: str) -> list[tuple[str, _Stat]]:
        entries = self._call("list", path, lambda s: s.listdir_attr(path))
        return [(a.filename, _attrs_stat(a)) for a in entries]

    def _mkdir(self, path: str) -> None:
        self._call("mkdir", path, lambda s: s.mkdir(path))

    def _rename_over(self, src: str, dst: str) -> None:
        if self._posix_rename:
            try:
                self._call("rename", src, lambda s: s.posix_rename(src, dst))
                return
            except OSError as exc:
                # paramiko maps "unsupported" to a bare OSError without errno.
                if exc.errno is not None:
                    raise
                log.debug("posix-rename refused (%s); falling back to remove + rename", _reason(exc))
                self._posix_rename = False
        # Plain SFTP rename refuses to overwrite; the gap is unavoidable here.
        with suppress(FileNotFoundError):
            self._call("remove", dst, lambda s: s.remove(dst))
        self._call("rename", src, lambda s: s.rename(src, dst))

    def _unlink(self, path: str) -> None:
        self._call("remove", path, lambda s: s.remove(path))

    def _download(self, path: str, staging_dir: Path) -> Fetched:
        def attempt(sftp: paramiko.SFTPClient) -> Fetched:
            return _fetch_once(
                staging_dir,
                lambda sink: sftp.getfo(
                    path, cast(IO[bytes], sink), prefetch=True, max_concurrent_prefetch_requests=_PREFETCH_REQUESTS
                ),
            )

        return self._call("download", path, attempt)

    def _put(self, local_path: Path, path: str) -> None:
        self._call("upload", path, lambda s: s.put(str(local_path), path, confirm=True))


def _attrs_stat(attrs: paramiko.SFTPAttributes) -> _Stat:
    return _Stat(attrs.st_mode or 0, attrs.st_size or 0, int(attrs.st_mtime or 0))


@contextmanager
def open_source(config: SourceConfig, *, sleep: Callable[[float], None] = time.sleep) -> Iterator[Source]:
    source: LocalSource | SftpSource
    if config.local_root is not None:
        source = LocalSource(config.local_root, sleep=sleep, backoff=config.backoff_seconds)
    else:
        source = SftpSource(config, sleep=sleep)
    try:
        if isinstance(source, SftpSource):
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
