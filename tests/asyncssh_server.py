"""A second SFTP server implementation for the tests: asyncssh's SFTPServer on 127.0.0.1.

OpenSSH's internal-sftp is one implementation; Coupa's and the managed-file-
transfer servers companies run are often others. This module serves a
folder through a real ``asyncssh.SFTPServer`` subclass (asyncssh docs,
"SFTP Server": subclass SFTPServer, ``chroot`` confines it to a folder,
``map_path`` maps what the client asks for to a local path), in a thread
with its own event loop, with a throwaway host key written to a known_hosts
file and one client key authorized.

``Behaviour`` switches on what other servers do differently (and what a
customer's server refuses); it can be changed while the server runs, so a
test can "fix" the server between two runs:

- ``posix_rename=False``: the posix-rename@openssh.com request is answered
  SSH_FX_OP_UNSUPPORTED, as OpenSSH's sftp-server answers an extension it
  does not know (the extension is still listed in the version reply;
  paramiko never reads that list, so the client sees what it would see on a
  server without it).
- ``rename_overwrites``: plain SSH_FXP_RENAME replaces an existing target
  (rename(2) semantics; some servers do this although the SFTP draft
  (draft-ietf-secsh-filexfer-02 §6.5) says "It is an error if there already
  exists a file with the name specified by newpath"). Off, it refuses, as
  the draft and asyncssh's default ``rename`` do.
- ``permissions=False``: listings and stat replies carry no permission
  bits, so no file type.
- ``shuffled_minutes``: listings in no particular order (reverse name order)
  and modification times cut to whole minutes.
- ``login_dir``: the folder a session starts in; relative paths are resolved
  there, absolute ones from the server's root.
- ``refuse_mkdir``, ``refuse_rename``: those requests are denied.
- ``read_only``: remote folders (paths) where nothing may be created,
  renamed or removed.
- ``delay``: seconds before each reply (``slow_ops`` narrows it to some
  requests: "open", "read", "write", "stat", "list", "rename", "remove",
  "mkdir").

Used by the tests only; it must not import pytest.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

HOST = "127.0.0.1"
USERNAME = "coupa"
T = TypeVar("T")

try:
    import asyncssh
except ImportError:  # the fixture skips loudly (and fails under CI)
    asyncssh = None  # type: ignore[assignment]


class AsyncsshUnavailable(Exception):
    """Why the asyncssh server cannot be started (module missing, ...)."""


@dataclass(frozen=True)
class Behaviour:
    posix_rename: bool = True
    rename_overwrites: bool = False
    permissions: bool = True
    shuffled_minutes: bool = False
    login_dir: str = "/"
    refuse_mkdir: bool = False
    refuse_rename: bool = False
    read_only: frozenset[str] = frozenset()
    delay: float = 0.0
    slow_ops: frozenset[str] = frozenset()

    def slow(self, op: str) -> float:
        return self.delay if self.delay and (not self.slow_ops or op in self.slow_ops) else 0.0


# The variants every end-to-end test runs against; faults that block an operation are separate.
VARIANTS: dict[str, Behaviour] = {
    "asyncssh": Behaviour(),
    "asyncssh-no-posix-rename": Behaviour(posix_rename=False, rename_overwrites=True),
    "asyncssh-rename-no-overwrite": Behaviour(posix_rename=False, rename_overwrites=False),
    "asyncssh-no-permissions": Behaviour(permissions=False),
    "asyncssh-unsorted-minutes": Behaviour(shuffled_minutes=True),
    "asyncssh-login-folder": Behaviour(login_dir="/home/coupa"),
    "asyncssh-slow": Behaviour(delay=0.005),
}


def _denied(what: str) -> Exception:
    return asyncssh.SFTPPermissionDenied(f"{what}: permission denied")


def _server_class() -> type:
    """The SFTPServer subclass; built lazily so this module imports without asyncssh."""

    class VariantServer(asyncssh.SFTPServer):  # type: ignore[misc, name-defined]
        def __init__(self, chan: Any, listener: AsyncsshListener) -> None:
            self._listener = listener
            super().__init__(chan, chroot=str(listener.root))  # asyncssh encodes it itself

        @property
        def behaviour(self) -> Behaviour:
            return self._listener.behaviour

        async def _pause(self, op: str) -> None:
            seconds = self.behaviour.slow(op)
            if seconds:
                await asyncio.sleep(seconds)

        def map_path(self, path: bytes) -> bytes:
            if not path.startswith(b"/"):  # relative: from the login folder
                path = posixpath.join(self.behaviour.login_dir.encode(), path)
            return bytes(super().map_path(path))

        def _remote(self, path: bytes) -> str:
            """The normalised absolute remote path of a request, to compare with ``read_only``."""
            absolute = path if path.startswith(b"/") else posixpath.join(self.behaviour.login_dir.encode(), path)
            return posixpath.normpath(absolute.decode())

        def _check_writable(self, *paths: bytes) -> None:
            for path in paths:
                if posixpath.dirname(self._remote(path)) in self.behaviour.read_only:
                    raise _denied(f"{self._remote(path)} is in a read-only folder")

        def _attrs(self, st: os.stat_result) -> Any:
            attrs = asyncssh.SFTPAttrs.from_local(st)
            if not self.behaviour.permissions:
                attrs.permissions = None
            if self.behaviour.shuffled_minutes:
                attrs.mtime = int(st.st_mtime) // 60 * 60
                attrs.atime = int(st.st_atime) // 60 * 60
                attrs.mtime_ns = attrs.atime_ns = None
            return attrs

        async def stat(self, path: bytes) -> Any:
            await self._pause("stat")
            return self._attrs(os.stat(self.map_path(path)))

        async def lstat(self, path: bytes) -> Any:
            await self._pause("stat")
            return self._attrs(os.lstat(self.map_path(path)))

        async def fstat(self, file_obj: Any) -> Any:
            await self._pause("stat")
            return self._attrs(os.fstat(file_obj.fileno()))

        async def scandir(self, path: bytes) -> AsyncIterator[Any]:
            await self._pause("list")
            local = self.map_path(path)
            with os.scandir(local) as it:
                entries = [(os.fsencode(e.name), e.stat(follow_symlinks=False)) for e in it]
            entries.sort(reverse=self.behaviour.shuffled_minutes)
            for name, st in entries:
                yield asyncssh.SFTPName(name, attrs=self._attrs(st))

        async def open(self, path: bytes, pflags: int, attrs: Any) -> Any:
            await self._pause("open")
            if pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC | asyncssh.FXF_APPEND):
                self._check_writable(path)
            return super().open(path, pflags, attrs)

        async def read(self, file_obj: Any, offset: int, size: int) -> bytes:
            await self._pause("read")
            return bytes(super().read(file_obj, offset, size))

        async def write(self, file_obj: Any, offset: int, data: bytes) -> int:
            await self._pause("write")
            return int(super().write(file_obj, offset, data))

        async def mkdir(self, path: bytes, attrs: Any) -> None:
            await self._pause("mkdir")
            if self.behaviour.refuse_mkdir:
                raise _denied(f"creating folder {self._remote(path)}")
            self._check_writable(path)
            super().mkdir(path, attrs)

        async def remove(self, path: bytes) -> None:
            await self._pause("remove")
            self._check_writable(path)
            super().remove(path)

        async def rename(self, oldpath: bytes, newpath: bytes) -> None:
            await self._pause("rename")
            self._check_rename(oldpath, newpath)
            if self.behaviour.rename_overwrites:
                os.replace(self.map_path(oldpath), self.map_path(newpath))
            else:
                super().rename(oldpath, newpath)  # refuses an existing target (the draft's SSH_FXP_RENAME)

        async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
            await self._pause("rename")
            if not self.behaviour.posix_rename:
                raise asyncssh.SFTPOpUnsupported("Operation unsupported")
            self._check_rename(oldpath, newpath)
            super().posix_rename(oldpath, newpath)

        def _check_rename(self, oldpath: bytes, newpath: bytes) -> None:
            if self.behaviour.refuse_rename:
                raise _denied(f"renaming {self._remote(oldpath)}")
            self._check_writable(oldpath, newpath)

    return VariantServer


@dataclass
class AsyncsshListener:
    """One listening server: its port, the folder it serves, and how it behaves (changeable while it runs)."""

    owner: AsyncsshHost
    root: Path
    behaviour: Behaviour
    port: int = 0
    known_hosts: Path = field(default_factory=Path)
    _server: Any = None

    host: str = HOST

    @property
    def url(self) -> str:
        return f"sftp://{USERNAME}@{HOST}:{self.port}"

    @property
    def username(self) -> str:
        return USERNAME

    @property
    def client_key(self) -> Path:
        return self.owner.client_key

    @property
    def host_key_pub(self) -> str:
        return self.owner.host_key_pub

    def local(self, remote: str) -> Path:
        """Where a remote path lives on this disk (relative paths from the login folder)."""
        absolute = remote if remote.startswith("/") else posixpath.join(self.behaviour.login_dir, remote)
        return self.root / posixpath.normpath(absolute).lstrip("/")

    def change(self, **changes: Any) -> None:
        self.behaviour = replace(self.behaviour, **changes)

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None

            async def close() -> None:
                server.close()
                await server.wait_closed()

            self.owner.call(close())


class AsyncsshHost:
    """The event-loop thread, the host key and the client key shared by every listener of a test session."""

    def __init__(self, workdir: Path) -> None:
        if asyncssh is None:
            raise AsyncsshUnavailable("the asyncssh package is not installed (pip install -e '.[dev]')")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self._host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key_pub = self._host_key.export_public_key("openssh").decode().split()[0:2]
        self.host_key_pub = " ".join(self.host_key_pub)
        client = asyncssh.generate_private_key("ssh-ed25519", comment="batchsync-test")
        self.client_key = workdir / "client_ed25519"
        client.write_private_key(str(self.client_key))  # OpenSSH format, which paramiko reads
        self.client_key.chmod(0o600)
        self._authorized = asyncssh.import_authorized_keys(client.export_public_key("openssh").decode())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="asyncssh-server", daemon=True)
        self._thread.start()
        self._server_class = _server_class()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def listen(self, root: Path, behaviour: Behaviour) -> AsyncsshListener:
        root.mkdir(parents=True, exist_ok=True)
        listener = AsyncsshListener(self, root.resolve(), behaviour)
        (listener.root / behaviour.login_dir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        server_class = self._server_class

        async def start() -> Any:
            return await asyncssh.listen(
                HOST,
                0,
                server_host_keys=[self._host_key],
                authorized_client_keys=self._authorized,
                sftp_factory=lambda chan: server_class(chan, listener),
                allow_scp=False,
                login_timeout=10,
            )

        listener._server = self.call(start())
        listener.port = int(listener._server.sockets[0].getsockname()[1])
        listener.known_hosts = self.workdir / f"known_hosts_{listener.port}"
        listener.known_hosts.write_text(f"[{HOST}]:{listener.port} {self.host_key_pub}\n")
        return listener

    def stop(self) -> None:
        async def cancel_sessions() -> None:  # sessions a test left open end with the loop, quietly
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(cancel_sessions())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
