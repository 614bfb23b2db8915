"""``batchsync check`` on the server: try each operation a run will do, where it will do it.

A folder that exists and "looks writable" is not enough (issue 13): a server
may let us write but not rename, or refuse to create the archive folder. So
per feed: list its folder, read a matching file if there is one, and for
the after-action the run will apply, create the archive folder if it is
missing (the run would create it), write a probe file in the feed's folder,
rename it into the archive (or delete it). In the write-back folder: write
a ``.part``, rename it to its final name, delete it. Probe files are
removed again; a probe that cannot be removed is named, so a person can.
Each result names the operation and the path; the first failure in a
folder ends that folder's probes.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Iterator

from batchsync.config import Config, FeedConfig
from batchsync.errors import RemoteRefused
from batchsync.transfer import Source

Result = tuple[bool, str]  # ok, what was tried (or what failed, and why)


def probe_remote(config: Config, feeds: list[FeedConfig], source: Source) -> Iterator[Result]:
    probes = [_feed(feed, source) for feed in feeds] + [_writeback(config.writeback.remote_dir, source)]
    for folder in probes:
        try:
            yield from folder
        except RemoteRefused as exc:  # a lookup between the probes was refused: that folder's probes end
            yield False, exc.message


def _probe_name() -> str:
    return f".batchsync-check-{uuid.uuid4().hex[:12]}"  # a dot name: no feed pattern should match it


def _feed(feed: FeedConfig, source: Source) -> Iterator[Result]:
    folder = feed.remote_dir
    problem = source.check_dir(folder, writable=False)
    if problem:
        yield False, problem
        return
    listed = _try(source, "list", folder)
    yield listed
    if not listed[0]:
        return
    matching = source.list(folder, feed.pattern)
    if matching:
        yield _try(source, "read", matching[0].path)
    else:
        yield True, f"read: no file matching {feed.pattern} in {folder} now, so none read"
    if feed.after_download == "archive":
        yield from _archive(folder, feed.remote_archive_dir, source)
    elif feed.after_download == "delete":
        probe = posixpath.join(folder, _probe_name())
        yield from _sequence(source, [("write", probe), ("remove", probe)], [probe])


def _archive(folder: str, archive: str, source: Source) -> Iterator[Result]:
    parent, _, name = archive.rstrip("/").rpartition("/")
    if not source.exists(parent or ("/" if archive.startswith("/") else "."), name):
        created = _try(source, "mkdir", archive)
        yield created[0], (f"created the missing archive folder {archive} (a run would)" if created[0] else created[1])
        if not created[0]:
            return
    else:
        problem = source.check_dir(archive, writable=False)
        if problem:
            yield False, problem
            return
    probe = _probe_name()
    here, there = posixpath.join(folder, probe), posixpath.join(archive, probe)
    yield from _sequence(source, [("write", here), ("rename", here, there), ("remove", there)], [here, there])


def _writeback(folder: str, source: Source) -> Iterator[Result]:
    problem = source.check_dir(folder, writable=False)
    if problem:
        yield False, problem
        return
    final = posixpath.join(folder, _probe_name())
    part = f"{final}.part"
    yield from _sequence(source, [("write", part), ("rename", part, final), ("remove", final)], [part, final])


def _sequence(source: Source, steps: list[tuple[str, ...]], made: list[str]) -> Iterator[Result]:
    """Run the steps in order; on the first failure stop, and remove whatever probe file is left."""
    for op, *paths in steps:
        result = _try(source, op, *paths)
        yield result
        if not result[0]:
            yield from _clean_up(source, made)
            return
    if steps[-1][0] != "remove":  # the last step left its file: remove it
        yield from _clean_up(source, made)


def _clean_up(source: Source, made: list[str]) -> Iterator[Result]:
    for path in made:
        folder, name = posixpath.split(path)
        if not source.exists(folder, name):
            continue
        try:
            source.probe("remove", path)
        except RemoteRefused as exc:
            yield False, f"{exc.message}; remove the probe file {path} by hand"


def _try(source: Source, op: str, *paths: str) -> Result:
    try:
        source.probe(op, *paths)
    except RemoteRefused as exc:
        return False, exc.message
    return True, f"{op} {' to '.join(paths)}"
