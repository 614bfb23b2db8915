"""Transport errors in words: which operation on which remote path of which server failed, and why.

Every remote operation goes through ``failure``: the message names the
operation and path once, the server once, and the reason in plain words (a
timeout is "no reply from the server within 30 s", not ``TimeoutError``);
the hint says what will help for that reason. No library's own wording
reaches the person reading it, except the server's own status text, quoted.
"""

from __future__ import annotations

import contextlib
import errno
import socket

from batchsync.errors import RemoteRefused, TransportError

# what each operation is doing, as the message says it
DOING = {
    "connect": "connecting to",
    "stat": "looking up",
    "lstat": "looking up",
    "list": "listing",
    "mkdir": "creating folder",
    "rename": "renaming",
    "remove": "deleting",
    "download": "downloading",
    "upload": "uploading",
    "archive": "archiving",
    "delete": "deleting",
    "read": "reading",
    "write": "writing",
}
NETWORK_HINT = "the server is slow or unreachable: check the network and the server; raise [source] timeout_seconds "
NETWORK_HINT += "if it is only slow; the next run tries again"
DENIED_HINT = (
    "ask the server's administrator to allow this for our user, or change the folder or after_download in the "
    "configuration; `batchsync check` tries every operation a run needs"
)


def tag(exc: BaseException, op: str, path: str) -> None:
    """Remember the innermost operation and path an error came from (the outer ones say less)."""
    if getattr(exc, "remote_op", None) is None:
        with contextlib.suppress(AttributeError):  # an exception type without a __dict__
            exc.remote_op = (op, path)  # type: ignore[attr-defined]


def reason(exc: BaseException, timeout: float | None = None) -> str:
    """Why, in words; the server's own status text quoted where it gives one."""
    per_address = getattr(exc, "errors", None)  # one failure per address tried (the SSH library's wrapper)
    if isinstance(per_address, dict) and per_address:
        return reason(next(iter(per_address.values())), timeout)
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no reply from the server within {timeout:g} s" if timeout else "no reply from the server"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused (is the server running, and is the port right?)"
    if isinstance(exc, EOFError | ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return "the server closed the connection"
    if isinstance(exc, socket.gaierror):
        return "the host name is not known"
    if isinstance(exc, OSError):
        return _os_reason(exc)
    return "the connection failed"


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "no such file or folder"
    if exc.errno == errno.EEXIST:
        return "the name already exists"
    if exc.errno == errno.ENOSPC:
        return "no space left"
    text = " ".join(str(exc.strerror or (exc.args[0] if exc.args else "") or "").split())
    if exc.errno is None:  # an SFTP status without an errno (SSH_FX_FAILURE and the like): the server's words
        return f"the server refused it (it said: {text or 'no reason given'})"
    return text or f"error {exc.errno}"


def doing(op: str, path: str, server: str) -> str:
    """``connecting to sftp://…``, ``listing /Outgoing on sftp://…``: the server named once."""
    if op == "connect":
        return f"{DOING[op]} {server}"
    return f"{DOING.get(op, op)} {path} on {server}"


def failure(op: str, path: str, server: str, exc: BaseException, timeout: float | None = None) -> RemoteRefused:
    """The server answered and refused: the innermost operation first, the one it was part of after."""
    inner_op, inner_path = getattr(exc, "remote_op", None) or (op, path)
    message = f"{doing(inner_op, inner_path, server)} failed: {reason(exc, timeout)}"
    if inner_path != path:  # the step it was part of, unless that names the same path again
        message += f" ({DOING.get(op, op)} {path})"
    denied = isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM)
    return RemoteRefused(message, hint=DENIED_HINT if denied else None)


def gave_up(op: str, path: str, server: str, exc: BaseException, attempts: int, timeout: float) -> TransportError:
    """The connection kept failing: the run cannot go on."""
    return TransportError(
        f"{doing(op, path, server)} failed after {attempts} attempts: {reason(exc, timeout)}", hint=NETWORK_HINT
    )
