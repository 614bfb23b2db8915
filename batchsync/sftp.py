"""The SFTP source: the only module that imports paramiko.

One SSH connection per run, host keys checked strictly against known_hosts,
transient faults retried with backoff. Secrets (password, key passphrase)
never reach a message.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from batchsync import remote_words
from batchsync.config import SourceConfig
from batchsync.errors import AuthError, HostKeyError, UnknownHost
from batchsync.key_words import key_file_problem
from batchsync.transfer import PROBE_BYTES, Fetched, Stat, TreeSource, error_text, fetch_once

# paramiko imports invoke (a task runner, 0.05 s) only to run ssh_config's "Match exec", and batchsync
# reads no ssh_config: a run with nothing to do starts that much sooner without it.
sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
import paramiko  # noqa: E402

# Same logger name as before the split, so log output and filters are unchanged.
log = logging.getLogger("batchsync.transfer")

T = TypeVar("T")
# paramiko's default is unbounded: a large file would queue every read request at
# once, and the answers wait in memory. Its cap is a 10 ms busy-wait: at <= 64
# requests (one 2 MiB SSH window) downloads crawl at ~5 MB/s even on localhost, and
# 256 still cost a third of the speed (bench/README.md). The requests in flight are
# bounded to 256 MiB of answers waiting in memory.
_PREFETCH_BYTES = 256 << 20
# paramiko reads in 32 KiB requests, each handled in Python; OpenSSH serves up to 255 KiB
# per read and says so (its limits@openssh.com extension): ~1.5x the throughput here.
_READ_REQUEST_MAX = 256 << 10
_COPY_CHUNK = 1 << 20


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint, as ``ssh-keygen -l`` shows it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _host_label(host: str, port: int) -> str:
    """How known_hosts names a host: ``[host]:port`` unless the port is 22."""
    return host if port == 22 else f"[{host}]:{port}"


def _quiet_prefetch_thread(args: threading.ExceptHookArgs) -> None:
    """paramiko's prefetch thread dies with the connection; the download then fails and is retried.

    Without this, Python would print that thread's traceback on stderr: noise for the person on call.
    """
    name = getattr(args.thread, "name", "") or ""
    if "_prefetch_thread" in name and isinstance(args.exc_value, (EOFError, OSError, paramiko.SSHException)):
        log.debug("SFTP prefetch thread ended with the connection: %s", args.exc_value)
        return
    _previous_excepthook(args)


_previous_excepthook = threading.excepthook
threading.excepthook = _quiet_prefetch_thread


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


def _unknown_name(exc: BaseException) -> bool:
    """The resolver said the name does not exist (not: it could not ask, which may pass)."""
    return isinstance(exc, socket.gaierror) and exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5))


def _is_transient(exc: BaseException, alive: bool) -> bool:
    if isinstance(exc, (paramiko.AuthenticationException, paramiko.BadHostKeyException)):
        return False
    if isinstance(exc, (TimeoutError, EOFError, ConnectionError, paramiko.SSHException)):
        return True
    # SFTP status replies (no such file, denied, failure) are OSErrors too; they
    # arrive over a live session, whereas a socket fault leaves it dead.
    return isinstance(exc, OSError) and not alive


class SftpSource(TreeSource):
    """One SSH connection per run; reconnects only to retry a transient fault."""

    def __init__(self, config: SourceConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._config = config
        self._sleep = sleep
        self._backoff = config.backoff_seconds
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        # Unknown until tried: some servers lack the posix-rename extension.
        self._posix_rename = True
        self._read_request = paramiko.SFTPFile.MAX_REQUEST_SIZE  # per connection: _read_request_size
        self._folders = set()

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

    def _timeout(self) -> float | None:
        return self._config.timeout_seconds

    def _call(self, op: str, path: str, action: Callable[[paramiko.SFTPClient], T]) -> T:
        delay = self._config.backoff_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                return action(self._session())
            except Exception as exc:
                if not _is_transient(exc, self._alive()):
                    remote_words.tag(exc, op, path)  # the server answered: the caller words it
                    raise
                self.close()
                log.debug("%s %s: %r", op, path, exc)  # the library's own words, for --debug only
                timeout = self._config.timeout_seconds
                if _unknown_name(exc):  # asking again gives the same answer
                    raise UnknownHost(
                        f"connecting to {self.describe()} failed: the host name {self._config.host!r} is not known"
                    ) from exc
                if attempt > self._config.retries:
                    raise remote_words.gave_up(op, path, self.describe(), exc, attempt, timeout) from exc
                retries = self._config.retries
                why = remote_words.reason(exc, timeout)
                # said by default: a person at the terminal sees why nothing happens, not silence
                where = remote_words.doing(op, path, self.describe())
                log.warning("%s: %s; retry %d of %d in %g s", where, why, attempt, retries, delay)
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
            raise AuthError(
                f"no credentials for {self.describe()}: no key_file, password or ssh-agent",
                hint="set source.key_file (or BATCHSYNC_SFTP_PASSWORD, or run an ssh-agent)",
            )
        client = self._client = self._new_client()
        log.debug("connecting to %s", self.describe())
        try:
            client.connect(
                c.host, port=c.port, username=c.username, pkey=pkey, password=c.password,
                allow_agent=bool(os.environ.get("SSH_AUTH_SOCK")), look_for_keys=False,
                timeout=c.timeout_seconds, banner_timeout=c.timeout_seconds,
                auth_timeout=c.timeout_seconds, channel_timeout=c.timeout_seconds,
                transport_factory=_new_transport,
            )  # fmt: skip
            sftp = client.open_sftp()
        except paramiko.BadHostKeyException as exc:
            self.close()
            raise HostKeyError(
                f"host key of {c.host}:{c.port} CHANGED: the server offered {exc.key.get_name()} "
                f"{fingerprint(exc.key)}, but {c.known_hosts} expects {exc.expected_key.get_name()} "
                f"{fingerprint(exc.expected_key)}; this may be an attack or a reinstalled server; once verified, "
                f"replace its line in {c.known_hosts} with: {_host_label(c.host, c.port)} {exc.key.get_name()} "
                f"{exc.key.get_base64()}"
            ) from exc
        except paramiko.AuthenticationException as exc:
            self.close()
            log.debug("authentication: %r", exc)
            key = f"key_file {c.key_file}" if c.key_file else "the password or ssh-agent"
            raise AuthError(
                f"{self.describe()} refused our credentials (user {c.username}, {key})",
                hint=(
                    f"give the server's administrator the public key ({c.key_file}.pub) for user {c.username}, "
                    "or check the user in source.url"
                    if c.key_file
                    else "check BATCHSYNC_SFTP_PASSWORD and the user in source.url"
                ),
            ) from exc
        except BaseException:
            self.close()
            raise
        channel = sftp.get_channel()
        if channel is not None:  # a stalled server must not hang a read forever
            channel.settimeout(c.timeout_seconds)
        self._read_request = _read_request_size(sftp)
        return sftp

    def _new_client(self) -> paramiko.SSHClient:
        c = self._config
        client = paramiko.SSHClient()
        try:
            if c.known_hosts is not None:
                client.load_host_keys(str(c.known_hosts))
        except (OSError, ValueError, paramiko.hostkeys.InvalidHostKey) as exc:
            # Not a network fault: retrying cannot make the file readable.
            raise HostKeyError(f"cannot read known_hosts {c.known_hosts}: {error_text(exc)}") from exc
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
        except Exception as exc:  # the libraries raise many kinds (cryptography's too): each means "this key"
            message, hint = key_file_problem(c.key_file, bool(c.key_passphrase))
            raise AuthError(message, hint=hint) from exc

    def _stat(self, path: str, *, follow: bool = True) -> Stat | None:
        try:
            attrs = self._call("stat", path, lambda s: s.stat(path) if follow else s.lstat(path))
        except FileNotFoundError:
            return None
        return _attrs_stat(attrs)

    def _listdir(self, path: str) -> list[tuple[str, Stat]]:
        # READDIR requests pipelined (paramiko's listdir_iter): a long folder no longer waits out one
        # round trip per batch of names
        entries = self._call("list", path, lambda s: list(s.listdir_iter(path, read_aheads=16)))
        return [(a.filename, _attrs_stat(a)) for a in entries]

    def _mkdir(self, path: str) -> None:
        self._call("mkdir", path, lambda s: s.mkdir(path))

    def _rename_over(self, src: str, dst: str) -> None:
        """posix-rename where the server has it; else plain rename, removing dst (our own upload) if it refuses."""
        where = f"{src} to {dst}"
        if self._posix_rename:
            try:
                self._call("rename", where, lambda s: s.posix_rename(src, dst))
                return
            except OSError as exc:
                # paramiko gives "unsupported" as a bare OSError without errno, like any other failure:
                # a plain rename that then works shows the extension is missing.
                if exc.errno is not None:
                    raise
                try:
                    self._rename_new(src, dst)
                except OSError:
                    if self._stat(dst, follow=False) is None:
                        raise exc from None
                else:
                    log.info("%s has no posix-rename (%s); renaming without it", self.describe(), error_text(exc))
                    self._posix_rename = False
                    return
        # Plain SFTP rename refuses an existing target (draft-ietf-secsh-filexfer-02 §6.5); dst is ours.
        try:
            self._rename_new(src, dst)
        except OSError:
            if self._stat(dst, follow=False) is None:
                raise
            log.info("rename %s: replacing our own %s (the server does not rename over a file)", src, dst)
            self._call("remove", dst, lambda s: s.remove(dst))
            self._rename_new(src, dst)

    def _rename_new(self, src: str, dst: str) -> None:
        self._call("rename", f"{src} to {dst}", lambda s: s.rename(src, dst))

    def _read_some(self, path: str) -> bytes:
        def read(sftp: paramiko.SFTPClient) -> bytes:
            with sftp.open(path, "rb") as remote:
                return bytes(remote.read(PROBE_BYTES))

        return self._call("read", path, read)

    def _unlink(self, path: str) -> None:
        self._call("remove", path, lambda s: s.remove(path))

    def _download(self, path: str, staging_dir: Path) -> Fetched:
        def attempt(sftp: paramiko.SFTPClient) -> Fetched:
            return fetch_once(staging_dir, lambda sink: _prefetched_get(sftp, path, sink, self._read_request))

        return self._call("download", path, attempt)

    def _put(self, local_path: Path, path: str) -> None:
        self._call("upload", path, lambda s: _pipelined_put(s, local_path, path))


_PUT_CHUNK = 1 << 20


def _read_request_size(sftp: paramiko.SFTPClient) -> int:
    """The largest read the server says it serves (OpenSSH's limits@openssh.com, which asyncssh answers
    too), at most 256 KiB; a server that does not say (ProFTPD, older OpenSSH) gets paramiko's 32 KiB."""
    default = paramiko.SFTPFile.MAX_REQUEST_SIZE
    try:
        # paramiko has no public call for an extended request; this is SFTPClient's own request path
        _, reply = sftp._request(paramiko.sftp.CMD_EXTENDED, "limits@openssh.com")  # type: ignore[attr-defined]
    except (OSError, paramiko.SSHException, EOFError) as exc:
        log.debug("no limits@openssh.com (%s): reads of %d bytes", error_text(exc), default)
        return default
    if reply is None:
        return default
    reply.get_int64()  # the longest packet
    longest_read = reply.get_int64()
    size = min(longest_read, _READ_REQUEST_MAX) if longest_read else default
    log.debug("the server reads up to %d bytes per request: reads of %d", longest_read, size)
    return max(size, default)


def _prefetched_get(sftp: paramiko.SFTPClient, path: str, sink: object, request_size: int) -> None:
    """``SFTPClient.getfo`` with prefetch, in requests of ``request_size`` bytes (paramiko's reads and its
    prefetch take the file's ``MAX_REQUEST_SIZE``) and at most _PREFETCH_BYTES of them in flight."""
    out = cast(IO[bytes], sink)
    with sftp.open(path, "rb") as remote:
        remote.MAX_REQUEST_SIZE = request_size
        remote.prefetch(remote.stat().st_size or 0, max(1, _PREFETCH_BYTES // request_size))
        while data := remote.read(_COPY_CHUNK):
            out.write(data)


def _pipelined_put(sftp: paramiko.SFTPClient, local_path: Path, path: str) -> None:
    """``SFTPClient.put`` reads in 32 KiB pieces; 1 MiB writes to a pipelined file upload ~1.8x faster."""
    with local_path.open("rb") as local, sftp.open(path, "wb") as remote:
        remote.set_pipelined(True)
        while data := local.read(_PUT_CHUNK):
            remote.write(data)
    size = local_path.stat().st_size
    arrived = sftp.stat(path).st_size
    if arrived != size:  # what put(confirm=True) checks
        raise OSError(f"size mismatch after upload: {arrived} != {size}")


_GCM = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def _new_transport(sock: Any, **kwargs: Any) -> paramiko.Transport:
    """A transport tuned for SFTP's request/response traffic.

    TCP_NODELAY: with Nagle's algorithm, each small SFTP request waited for the
    peer's delayed ACK; a 190 KB file took 30 ms to fetch instead of 3 ms.
    AES-GCM offered first: an AEAD cipher needs no separate MAC, and uploads ran
    ~25 % faster with it. The server still decides among what both sides
    support; nothing weaker is added.
    """
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    offered = tuple(options.ciphers)
    options.ciphers = tuple(c for c in _GCM if c in offered) + tuple(c for c in offered if c not in _GCM)
    return transport


def _attrs_stat(attrs: paramiko.SFTPAttributes) -> Stat:
    return Stat(attrs.st_mode or 0, attrs.st_size or 0, int(attrs.st_mtime or 0))
