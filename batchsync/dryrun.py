"""``--dry-run``: everything a run does, against scratch copies, touching nothing real.

The ledger is copied (SQLite backup) into a scratch state folder; the
hand-off goes to a scratch folder; the source lists and downloads for real
but only records the archive, delete and upload it would have done. What
the dry run produced is then described and the scratch folder removed.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from batchsync.config import Config, SourceConfig
from batchsync.errors import StateError
from batchsync.transfer import Fetched, RemoteFile, Source


@dataclass
class DryRunSource:
    """Reads from the real source; records what it would change there instead of changing it."""

    source: Source
    would: list[str] = field(default_factory=list)

    def list(self, remote_dir: str, pattern: str) -> list[RemoteFile]:
        return self.source.list(remote_dir, pattern)

    def fetch(self, entry: RemoteFile, staging_dir: Path) -> Fetched:
        return self.source.fetch(entry, staging_dir)

    def archive(self, entry: RemoteFile, archive_dir: str, sha256: str) -> str:
        self.would.append(f"move {entry.path} to {archive_dir}/ (under another name if that one is taken)")
        return f"{archive_dir}/{entry.name}"

    def delete(self, entry: RemoteFile) -> None:
        self.would.append(f"delete {entry.path}")

    def upload(self, local_path: Path, remote_dir: str, name: str) -> None:
        self.would.append(f"upload {name} to {remote_dir}/")

    def exists(self, remote_dir: str, name: str) -> bool:
        return self.source.exists(remote_dir, name)

    def check_dir(self, remote_dir: str, writable: bool) -> str | None:
        return self.source.check_dir(remote_dir, writable=False)

    def probe(self, op: str, *paths: str) -> None:
        if op in ("list", "read"):  # only what changes nothing
            self.source.probe(op, *paths)
        else:
            self.would.append(f"{op} {' to '.join(paths)}")

    def describe(self) -> str:
        return f"{self.source.describe()} (dry run)"

    def close(self) -> None:
        self.source.close()


@dataclass
class NoServer:
    """The source of a replay's dry run: it downloads nothing and uploads nothing, so it never connects.

    Without asking the server, every write-back file counts as not there yet: the dry
    run lists it as an upload (a real replay adopts one an interrupted run uploaded).
    """

    url: str

    def list(self, remote_dir: str, pattern: str) -> list[RemoteFile]:
        raise StateError(f"a dry run of reprocess does not connect to {self.url}, so it cannot list {remote_dir}")

    def fetch(self, entry: RemoteFile, staging_dir: Path) -> Fetched:
        raise StateError(f"a dry run of reprocess does not connect to {self.url}, so it cannot fetch {entry.path}")

    def archive(self, entry: RemoteFile, archive_dir: str, sha256: str) -> str:
        return f"{archive_dir}/{entry.name}"

    def delete(self, entry: RemoteFile) -> None: ...

    def upload(self, local_path: Path, remote_dir: str, name: str) -> None: ...

    def exists(self, remote_dir: str, name: str) -> bool:
        return False

    def probe(self, op: str, *paths: str) -> None:
        raise StateError(f"a dry run of reprocess does not connect to {self.url}, so it cannot {op} {paths[0]}")

    def check_dir(self, remote_dir: str, writable: bool) -> str | None:
        return None

    def describe(self) -> str:
        return f"{self.url} (not connected)"

    def close(self) -> None: ...


@contextmanager
def no_server(source: SourceConfig) -> Iterator[Source]:
    yield NoServer(source.url)


@contextmanager
def scratch_config(config: Config, ledger: Path) -> Iterator[Config]:
    """The config pointed at a scratch state and hand-off folder holding a copy of the ledger."""
    scratch = Path(tempfile.mkdtemp(prefix="batchsync-dry-run-"))
    try:
        state = scratch / "var"
        state.mkdir(mode=0o700)
        if ledger.exists():
            _copy_ledger(ledger, state / ledger.name)
        yield dataclasses.replace(config, state_dir=state, handoff_dir=scratch / "handoff")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _copy_ledger(source: Path, target: Path) -> None:
    """Copy the files, not through SQLite: even a read-only open would leave -shm and -wal files beside it.

    The caller holds the run lock, so no run writes the ledger meanwhile.
    """
    for suffix in ("", "-wal"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


def would_hand_off(scratch: Config) -> list[str]:
    folder = scratch.handoff_dir
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
