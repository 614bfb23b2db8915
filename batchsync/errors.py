"""One exception root, subclasses grouped by what the caller should do.

Every error carries a one-line ``message`` (what failed, where) and a ``hint``
(what to do). ``cli`` turns them into that line plus hint and an exit code;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # successful, or nothing to do
    ERRORED = 1  # finished, but something was rejected, or a remote after-action failed (retried next run)
    USAGE = 2  # a person must act first: usage, configuration, mapping, missing folder, host key, credentials
    FAILED = 3  # could not finish, a later run may: network, timeouts, server unavailable, disk full
    LOCKED = 4  # another run holds the lock


class BatchsyncError(Exception):
    """Root of every error batchsync raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED
    default_hint = ""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class ConfigError(BatchsyncError):
    """Fix the configuration, a mapping or a template, then run again."""

    exit_code = ExitCode.USAGE
    default_hint = "fix the configuration and run again"

    def __init__(self, problems: list[str] | str, hint: str | None = None, *, where: str = "") -> None:
        """Several problems are listed one per line, under ``where`` (the file they all start with) said once."""
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            head = f"{where}: {len(self.problems)} problems" if where else f"{len(self.problems)} problems"
            lines = [p.removeprefix(f"{where}: ") if where else p for p in self.problems]
            message = "\n".join([head + ":", *(f"  {line}" for line in lines)])
        super().__init__(message, hint)


class NothingSelected(BatchsyncError):
    """A command was asked about something the ledger does not have: nothing was started."""

    exit_code = ExitCode.USAGE
    default_hint = "`batchsync history` and `batchsync errors` show the files, runs and POs the ledger has"


class DataError(BatchsyncError):
    """The input file cannot be read as its feed's format: fix the data."""

    exit_code = ExitCode.ERRORED
    default_hint = "fix the file at its source (Coupa export settings) and re-export it"

    def __init__(
        self,
        message: str,
        *,
        file: str = "",
        line: int | None = None,
        column: str | None = None,
        offset: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.offset = offset
        super().__init__(message, hint)


class TransientError(BatchsyncError):
    """A fault that may pass (timeout, reset): retry later."""

    exit_code = ExitCode.FAILED
    default_hint = "the run will retry on its next start; check the network if it persists"


class TransportError(BatchsyncError):
    """SFTP or disk could not be used and retrying will not help: give up this run."""

    exit_code = ExitCode.FAILED
    default_hint = "check the server address, credentials and folders with `batchsync check`"


class UnknownHost(TransportError):
    """The server's name does not resolve: no retry can help until the URL or the DNS is fixed."""

    exit_code = ExitCode.USAGE
    default_hint = "check the host name in source.url (and the machine's DNS)"


class RemoteRefused(TransportError):
    """The server answered, and refused one operation on one path (denied, missing, failed).

    The connection still works: a run records it on the file concerned and goes on with the rest.
    """

    default_hint = (
        "ask the server's administrator to allow it, or change the folder or after_download in the "
        "configuration; `batchsync check` tries every operation a run needs"
    )


class MissingFolder(RemoteRefused):
    """A configured remote folder does not exist: a person must create it or fix the configuration."""

    exit_code = ExitCode.USAGE
    default_hint = "create the folder on the server (ask its administrator), or fix remote_dir in the configuration"


class HostKeyError(TransportError):
    """The server's host key is unknown or changed: a person must decide before any run can succeed."""

    exit_code = ExitCode.USAGE

    default_hint = "verify the fingerprint with the server's owner, then add it to known_hosts"


class AuthError(TransportError):
    """The key or the credentials cannot be used: a person must fix them before any run can succeed."""

    exit_code = ExitCode.USAGE

    default_hint = "check key_file, BATCHSYNC_SFTP_PASSWORD or BATCHSYNC_SFTP_KEY_PASSPHRASE"


class StateError(BatchsyncError):
    """The state folder or ledger is unusable."""

    exit_code = ExitCode.FAILED
    default_hint = "check the state folder's permissions and free space"


class LockError(BatchsyncError):
    """Another run holds the lock on this state folder."""

    exit_code = ExitCode.LOCKED
    default_hint = "wait for the other run to finish; a lock of a dead process is taken over"
