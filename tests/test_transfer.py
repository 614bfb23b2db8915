"""transfer.py against a real OpenSSH sshd on 127.0.0.1, and against a local folder.

Behaviour tests run on both sources through the same assertions, because the
pipeline must not care which one it has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batchsync.config import SourceConfig
from batchsync.discover import wait_until_stable
from batchsync.errors import AuthError, HostKeyError, RemoteRefused, TransportError
from batchsync.local_source import LocalSource
from batchsync.sftp import SftpSource
from batchsync.sources import open_source
from batchsync.transfer import (
    MAX_NAME,
    RemoteFile,
    Source,
    unsafe_name_reason,
)
from tests.asyncssh_server import VARIANTS, AsyncsshHost, AsyncsshListener, Behaviour
from tests.proftpd import ProftpdServer
from tests.sshd import SshdServer

BACKOFF = 0.01


class Sleeps(list[float]):
    """A sleep function that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def sftp_config(server: SshdServer | AsyncsshListener | ProftpdServer, **changes: object) -> SourceConfig:
    config = SourceConfig(
        url=server.url,
        host=server.host,
        port=server.port,
        username=server.username,
        key_file=server.client_key,
        known_hosts=server.known_hosts,
        timeout_seconds=5.0,
        retries=2,
        backoff_seconds=BACKOFF,
    )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


@dataclass
class Tree:
    """One test's folder, seen as the source sees it (remote) and on this disk (local)."""

    source: Source
    remote: str
    local: Path
    staging: Path
    sleeps: Sleeps = field(default_factory=Sleeps)
    behaviour: Behaviour | None = None  # an asyncssh variant's

    @property
    def typed(self) -> bool:
        """Whether the server's listings say what is a file (permission bits)."""
        return self.behaviour is None or self.behaviour.permissions

    def mtime(self, rel: str) -> int:
        """The modification time the server reports (some only to the minute)."""
        seconds = int((self.local / rel).stat().st_mtime)
        return seconds // 60 * 60 if self.behaviour and self.behaviour.shuffled_minutes else seconds

    def write(self, rel: str, data: bytes) -> Path:
        path = self.local / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def entry(self, name: str, pattern: str = "*") -> RemoteFile:
        return next(f for f in self.source.list(self.remote, pattern) if f.name == name)


def leftovers(staging: Path) -> list[str]:
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


@pytest.fixture(params=["sftp", "local", *VARIANTS, "proftpd"])
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tree]:
    """One folder on every source: OpenSSH ("sftp"), a local folder, each asyncssh variant, ProFTPD."""
    sleeps = Sleeps()
    source: SftpSource | LocalSource
    listener: AsyncsshListener | None = None
    if request.param in ("sftp", "proftpd"):
        server: SshdServer | ProftpdServer = request.getfixturevalue("sshd" if request.param == "sftp" else "proftpd")
        local = server.root / tmp_path.name  # no chroot: the remote path is this path
        source = SftpSource(sftp_config(server), sleep=sleeps)
        remote = str(local)
    elif request.param in VARIANTS:
        host: AsyncsshHost = request.getfixturevalue("asyncssh_host")
        listener = host.listen(tmp_path / "remote", VARIANTS[request.param])
        remote = "Outgoing" if listener.behaviour.login_dir != "/" else "/Outgoing"  # relative from the login folder
        local = listener.local(remote)
        source = SftpSource(sftp_config(listener), sleep=sleeps)
    else:
        local = tmp_path / "root" / "Outgoing"
        source = LocalSource(tmp_path / "root", sleep=sleeps, backoff=BACKOFF)
        remote = "/Outgoing"
    local.mkdir(parents=True)
    yield Tree(source, remote, local, tmp_path / "staging", sleeps, listener.behaviour if listener else None)
    source.close()
    if listener is not None:
        listener.stop()


def test_list_matches_pattern_in_name_order(tree: Tree) -> None:
    for name in ("b.csv", "a.csv", "c.txt"):
        tree.write(name, name.encode())
    (tree.local / "dir.csv").mkdir()
    (tree.local / "link.csv").symlink_to(tree.local / "a.csv")
    files = tree.source.list(tree.remote, "*.csv")
    if tree.typed:
        assert [f.name for f in files] == ["a.csv", "b.csv"]
    else:  # nothing tells a folder or a link from a file: candidates, confirmed by opening them
        assert [f.name for f in files] == ["a.csv", "b.csv", "dir.csv", "link.csv"]
        with pytest.raises(RemoteRefused, match=r"downloading \S*dir\.csv on sftp://"):
            tree.source.fetch(files[2], tree.staging)
    first = files[0]
    assert first.path == f"{tree.remote}/a.csv"
    assert first.size == 5
    assert first.mtime == tree.mtime("a.csv")


def test_list_missing_folder_is_named(tree: Tree) -> None:
    with pytest.raises(TransportError, match="Nowhere"):
        tree.source.list(f"{tree.remote}/Nowhere", "*")
    assert tree.sleeps == []  # a missing folder is not a transient fault


def test_fetch_hashes_multi_megabyte_file_without_leftovers(tree: Tree) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    tree.write("big.csv", data)
    fetched = tree.source.fetch(tree.entry("big.csv"), tree.staging)
    assert fetched.sha256 == hashlib.sha256(data).hexdigest()
    assert fetched.size == len(data)
    assert fetched.path.parent == tree.staging
    assert fetched.path.read_bytes() == data
    assert list(tree.staging.iterdir()) == [fetched.path]


def test_fetch_of_a_changed_file_retries_then_fails(tree: Tree) -> None:
    path = tree.write("growing.csv", b"a;b\n")
    entry = tree.entry("growing.csv")
    path.write_bytes(b"a;b\n1;2\n")
    with pytest.raises(TransportError, match="still being written"):
        tree.source.fetch(entry, tree.staging)
    assert tree.sleeps == [BACKOFF]
    assert leftovers(tree.staging) == []


def test_fetch_of_a_vanished_file_fails(tree: Tree) -> None:
    path = tree.write("gone.csv", b"x")
    entry = tree.entry("gone.csv")
    path.unlink()
    with pytest.raises(TransportError, match=r"gone\.csv"):
        tree.source.fetch(entry, tree.staging)
    assert leftovers(tree.staging) == []


def test_archive_moves_and_never_replaces_an_archived_file(tree: Tree, caplog: pytest.LogCaptureFixture) -> None:
    tree.write("a.csv", b"new")
    tree.write("Archive/2024/a.csv", b"old archived copy")
    sha = hashlib.sha256(b"new").hexdigest()
    with caplog.at_level(logging.WARNING, logger="batchsync.transfer"):
        archived = tree.source.archive(tree.entry("a.csv"), f"{tree.remote}/Archive/2024", sha)
    folder = tree.local / "Archive/2024"
    assert archived == f"{tree.remote}/Archive/2024/a.{sha[:12]}.csv"
    assert not (tree.local / "a.csv").exists()
    assert (folder / "a.csv").read_bytes() == b"old archived copy"  # the older export is kept
    assert (folder / f"a.{sha[:12]}.csv").read_bytes() == b"new"
    assert "already holds a file named a.csv" in caplog.text and f"a.{sha[:12]}.csv" in caplog.text
    # the same name and bytes once more: a third name, both earlier ones kept
    tree.write("a.csv", b"new")
    again = tree.source.archive(tree.entry("a.csv"), f"{tree.remote}/Archive/2024", sha)
    assert again.endswith(f"a.{sha[:12]}-2.csv")
    assert sorted(p.name for p in folder.iterdir()) == sorted(["a.csv", f"a.{sha[:12]}.csv", f"a.{sha[:12]}-2.csv"])


def test_archive_under_a_free_name_keeps_the_name(tree: Tree) -> None:
    tree.write("b.csv", b"b")
    archived = tree.source.archive(tree.entry("b.csv"), f"{tree.remote}/Archive", "0" * 64)
    assert archived == f"{tree.remote}/Archive/b.csv"
    assert (tree.local / "Archive/b.csv").read_bytes() == b"b"


def test_archive_creates_the_folder_and_fails_when_the_file_is_nowhere(tree: Tree) -> None:
    tree.write("b.csv", b"b")
    entry = tree.entry("b.csv")
    tree.source.archive(entry, f"{tree.remote}/New/Deep", "1" * 64)
    assert (tree.local / "New/Deep/b.csv").read_bytes() == b"b"
    (tree.local / "New/Deep/b.csv").unlink()
    with pytest.raises(RemoteRefused, match=r"b\.csv"):
        tree.source.archive(entry, f"{tree.remote}/New/Deep", "1" * 64)


def test_delete_is_idempotent(tree: Tree) -> None:
    tree.write("d.csv", b"d")
    entry = tree.entry("d.csv")
    tree.source.delete(entry)
    assert not (tree.local / "d.csv").exists()
    tree.source.delete(entry)


def test_upload_publishes_whole_file_and_overwrites(tree: Tree, tmp_path: Path) -> None:
    local = tmp_path / "out.csv"
    for content in (b"first;1\n" * 1000, b"second;2\n"):
        local.write_bytes(content)
        tree.source.upload(local, f"{tree.remote}/Incoming/Changes", "out.csv")
        folder = tree.local / "Incoming/Changes"
        assert (folder / "out.csv").read_bytes() == content
        assert sorted(p.name for p in folder.iterdir()) == ["out.csv"]
    assert tree.source.exists(f"{tree.remote}/Incoming/Changes", "out.csv")
    assert not tree.source.exists(f"{tree.remote}/Incoming/Changes", "other.csv")


def test_upload_refuses_an_unsafe_name(tree: Tree, tmp_path: Path) -> None:
    local = tmp_path / "x.csv"
    local.write_bytes(b"x")
    with pytest.raises(TransportError, match="refused"):
        tree.source.upload(local, tree.remote, "../x.csv")


def test_check_dir(tree: Tree) -> None:
    tree.write("file.csv", b"f")
    assert tree.source.check_dir(tree.remote, writable=True) is None
    assert list(p.name for p in tree.local.iterdir()) == ["file.csv"]  # probe removed
    missing = tree.source.check_dir(f"{tree.remote}/Missing", writable=False)
    assert missing is not None and "does not exist" in missing
    not_folder = tree.source.check_dir(f"{tree.remote}/file.csv", writable=False)
    assert not_folder is not None and "not a folder" in not_folder


def test_wait_until_stable_leaves_a_growing_file(tree: Tree) -> None:
    path = tree.write("grow.csv", b"1\n")
    tree.write("done.csv", b"done\n")
    candidates = tree.source.list(tree.remote, "*.csv")

    def sleep_while_writing(seconds: float) -> None:
        tree.sleeps.append(seconds)
        with path.open("ab") as f:
            f.write(b"2\n")

    stable, not_yet = wait_until_stable(
        tree.source, tree.remote, "*.csv", candidates,
        settle_seconds=3, min_age_seconds=0, now=time.time(), sleep=sleep_while_writing,
    )  # fmt: skip
    assert [f.name for f in stable] == ["done.csv"]
    assert [f.name for f in not_yet] == ["grow.csv"]
    assert tree.sleeps == [3]


def test_wait_until_stable_honours_min_age(tree: Tree) -> None:
    now = time.time()
    old = tree.write("old.csv", b"o")
    os.utime(old, (now - 200, now - 200))  # old enough even where times are only whole minutes
    tree.write("young.csv", b"y")
    candidates = tree.source.list(tree.remote, "*.csv")
    stable, not_yet = wait_until_stable(
        tree.source, tree.remote, "*.csv", candidates,
        settle_seconds=0, min_age_seconds=50, now=now, sleep=tree.sleeps,
    )  # fmt: skip
    assert [f.name for f in stable] == ["old.csv"]
    assert [f.name for f in not_yet] == ["young.csv"]
    assert tree.sleeps == []


def test_wait_until_stable_without_candidates_does_not_sleep(tree: Tree) -> None:
    result = wait_until_stable(
        tree.source, tree.remote, "*", [], settle_seconds=5, min_age_seconds=0, now=time.time(), sleep=tree.sleeps
    )
    assert result == ([], [])
    assert tree.sleeps == []


# --- SFTP only: host keys, credentials, retries ---


def _fingerprint(tmp_path: Path, pub_line: str) -> str:
    """The fingerprint as OpenSSH itself prints it, not as our code computes it."""
    pub = tmp_path / "key.pub"
    pub.write_text(pub_line + "\n")
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], capture_output=True, text=True)
    return out.stdout.split()[1]


def _other_key(tmp_path: Path) -> Path:
    key = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", "", "-q", "-f", str(key)], check=True)
    return key


def test_unknown_host_key_is_refused_and_never_saved(sshd: SshdServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_bytes(b"")
    sleeps = Sleeps()
    source = SftpSource(sftp_config(sshd, known_hosts=known_hosts), sleep=sleeps)
    with pytest.raises(HostKeyError) as caught:
        source.list(str(sshd.root), "*")
    message = str(caught.value)
    assert f"{sshd.host}:{sshd.port}" in message and "unknown" in message
    assert _fingerprint(tmp_path, sshd.host_key_pub) in message
    assert f"[{sshd.host}]:{sshd.port} {sshd.host_key_pub}" in message
    assert known_hosts.read_bytes() == b""
    assert sleeps == []


def test_unreadable_known_hosts_is_not_retried(sshd: SshdServer, tmp_path: Path) -> None:
    sleeps = Sleeps()
    source = SftpSource(sftp_config(sshd, known_hosts=tmp_path / "missing"), sleep=sleeps)
    with pytest.raises(HostKeyError, match="known_hosts"):
        source.connect()
    assert sleeps == []


def test_changed_host_key_is_refused(sshd: SshdServer, tmp_path: Path) -> None:
    other = Path(f"{_other_key(tmp_path)}.pub").read_text().split()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {other[0]} {other[1]}\n")
    with pytest.raises(HostKeyError, match="CHANGED") as caught:
        SftpSource(sftp_config(sshd, known_hosts=known_hosts), sleep=Sleeps()).list(str(sshd.root), "*")
    assert _fingerprint(tmp_path, sshd.host_key_pub) in str(caught.value)
    assert _fingerprint(tmp_path, f"{other[0]} {other[1]}") in str(caught.value)


def test_wrong_client_key_is_an_auth_error_without_secrets(
    sshd: SshdServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "hunter2-very-secret"
    sleeps = Sleeps()
    config = sftp_config(sshd, key_file=_other_key(tmp_path), password=secret, key_passphrase=secret)
    source = SftpSource(config, sleep=sleeps)
    with pytest.raises(AuthError) as caught:
        source.list(str(sshd.root), "*")
    assert secret not in str(caught.value) and secret not in caught.value.hint
    assert secret not in caplog.text and secret not in source.describe() and secret not in repr(config)
    assert sleeps == []


def test_encrypted_key_needs_its_passphrase(sshd: SshdServer, tmp_path: Path) -> None:
    key = tmp_path / "encrypted_ed25519"
    key.write_bytes(sshd.client_key.read_bytes())
    key.chmod(0o600)
    phrase = "correct horse battery"
    subprocess.run(["ssh-keygen", "-p", "-q", "-P", "", "-N", phrase, "-f", str(key)], check=True, capture_output=True)
    source = SftpSource(sftp_config(sshd, key_file=key, key_passphrase=phrase), sleep=Sleeps())
    assert source.list(str(sshd.root), "*") is not None
    source.close()
    for wrong in ("not-the-phrase-42", None):
        said = "does not open key_file" if wrong else "is protected by a passphrase"
        with pytest.raises(AuthError, match=said) as caught:
            SftpSource(sftp_config(sshd, key_file=key, key_passphrase=wrong), sleep=Sleeps()).connect()
        assert phrase not in str(caught.value) and (wrong is None or wrong not in str(caught.value))


def test_dropped_connection_is_retried_on_a_new_session(sshd: SshdServer) -> None:
    sleeps = Sleeps()
    source = SftpSource(sftp_config(sshd), sleep=sleeps)
    source.connect()
    assert source._client is not None
    first = source._client
    first.close()  # as if the network dropped the session
    assert source.list(str(sshd.root), "*") is not None
    assert sleeps == [BACKOFF] and source._client is not first
    source.close()


def test_unreachable_server_gives_up_after_the_retry_budget(sshd: SshdServer) -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    source = SftpSource(sftp_config(sshd, port=port, retries=2), sleep=sleeps)
    with pytest.raises(TransportError, match="after 3 attempts"):
        source.connect()
    assert sleeps == [BACKOFF, 2 * BACKOFF]


def test_upload_without_posix_rename_still_replaces_our_own_file(sshd: SshdServer, tmp_path: Path) -> None:
    folder = sshd.root / tmp_path.name
    folder.mkdir(parents=True)
    (folder / "out.csv").write_bytes(b"an earlier upload of this very file")
    local = tmp_path / "out.csv"
    local.write_bytes(b"whole")
    source = SftpSource(sftp_config(sshd), sleep=Sleeps())
    source._posix_rename = False  # as on a server without the posix-rename extension
    source.upload(local, str(folder), "out.csv")
    assert sorted(p.name for p in folder.iterdir()) == ["out.csv"]
    assert (folder / "out.csv").read_bytes() == b"whole"
    source.close()


def test_open_source_picks_the_source_and_closes_it(sshd: SshdServer, tmp_path: Path) -> None:
    with open_source(sftp_config(sshd)) as source:
        assert isinstance(source, SftpSource)
        assert source.describe() == f"sftp://{sshd.username}@{sshd.host}:{sshd.port}"
        assert source._client is not None  # connected once, up front
    assert source._client is None
    with open_source(SourceConfig(url=str(tmp_path), local_root=tmp_path)) as local:
        assert isinstance(local, LocalSource)
        assert local.describe() == f"local folder {tmp_path.resolve()}"


# --- local folder only ---


def test_local_source_refuses_paths_outside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "In").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(b"secret")
    (root / "link").symlink_to(outside)
    source = LocalSource(root)
    for remote_dir in ("/../outside", "/In/../../outside", "/link"):
        with pytest.raises(TransportError, match="outside"):
            source.list(remote_dir, "*")
    escaping = RemoteFile("/../outside/secret.csv", "secret.csv", 6, 0)
    with pytest.raises(TransportError, match="outside"):
        source.fetch(escaping, tmp_path / "staging")
    with pytest.raises(TransportError, match="outside"):
        source.upload(outside / "secret.csv", "/../outside", "copy.csv")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert source.check_dir("/../outside", writable=False) is not None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("a/b.csv", "separator"),
        ("a\\b.csv", "separator"),
        (".", "'.'"),
        ("..", ".."),
        ("x..csv", ".."),
        ("-rf.csv", "'-'"),
        ("a\nb.csv", "control"),
        ("a\x7fb.csv", "control"),
        ("a\tb.csv", "control"),
        ("x" * (MAX_NAME + 1), str(MAX_NAME)),
    ],
)
def test_unsafe_name_reason(name: str, fragment: str) -> None:
    reason = unsafe_name_reason(name)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize("name", ["PurchaseOrders_20240101.csv", "a.b-c_d e.csv", "x" * MAX_NAME, "é.csv"])
def test_safe_names_pass(name: str) -> None:
    assert unsafe_name_reason(name) is None
