"""Hand ERP files to the ERP team's drop folder (product.md §2.8, docs/handoff.md).

The ERP file and its manifest are written under hidden temporary names,
fsynced, then renamed: first the ERP file, then the manifest. A file is
complete once its manifest exists. Names are deterministic per source file
(name and SHA-256) and target, so a retry after a crash finds the manifest
and adopts the file instead of writing a second one.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

from batchsync.errors import StateError
from batchsync.streams import DigestingWriter, Sink

MANIFEST_SUFFIX = ".manifest.json"
# R<run>-<n>_: hand-off names sort in the order the ERP must import them, across feeds and runs
SEQUENCE = re.compile(r"^R(\d{7})-(\d{4})_")


@dataclass(frozen=True)
class Handoff:
    name: str
    path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    adopted: bool  # True when an earlier, interrupted attempt had already published it


def handoff_name(
    source_name: str, source_sha256: str, target: str, extension: str, suffix: str = "", sequence: str = ""
) -> str:
    """``suffix`` tells apart later hand-offs from the same source (``pass2``: waiting changes accepted later).

    ``sequence`` (``sequence_prefix``) comes first, so that the names sort in import order.
    """
    stem = source_name.rsplit(".", 1)[0]
    again = f".{suffix}" if suffix else ""
    return f"{sequence}{stem}.{source_sha256[:12]}.{target}{again}.{extension}"


def output_name(main: str, target: str, output: str, extension: str) -> str:
    """A further output's name beside the main file's: ``<stem>.<sha>.<target>.<output>[.<suffix>].<extension>``."""
    head, _, rest = main.rpartition(f".{target}")
    return f"{head}.{target}.{output}{rest.rsplit('.', 1)[0]}.{extension}"


def sequence_prefix(run_id: int, position: int) -> str:
    """The run, then the hand-off's place in it: a PO feed runs first, so a PO sorts before its changes."""
    return f"R{run_id:07d}-{position:04d}_"


def unsequenced(name: str) -> str:
    return SEQUENCE.sub("", name)


def sequence_digits(name: str) -> str:
    """The run and place of a hand-off name's sequence as 11 digits (``R0000012-0003_`` -> 00000120003)."""
    found = SEQUENCE.match(name)
    return "".join(found.groups()) if found else "0" * 11


def _published(handoff_dir: Path, name: str) -> Path | None:
    """The manifest of this hand-off, under this name or under an earlier run's sequence (a crash before the ledger)."""
    exact = handoff_dir / (name + MANIFEST_SUFFIX)
    if exact.exists():
        return exact
    base = unsequenced(name)
    found = sorted(handoff_dir.glob(f"R*_{glob.escape(base)}{MANIFEST_SUFFIX}"))
    return next((p for p in found if unsequenced(p.name) == base + MANIFEST_SUFFIX), None)


class Holds(Enum):
    """What a body wrote."""

    DOCUMENTS = "documents"
    NOTHING = "nothing"  # the main body: the hand-off holds no document (every one rejected); nothing is published
    NONE_OF_ITS_OWN = "none_of_its_own"  # an output split by decision got none of its documents: not written


Body = Callable[[Sink], Holds]


def publish(
    handoff_dir: Path,
    name: str,
    write_body: Body,
    manifest: Callable[[], dict[str, Any]],
    more: Sequence[tuple[str, Body]] = (),
    decisions: Mapping[str, tuple[str, ...]] | None = None,
) -> Handoff | None:
    """Write the ERP file with ``write_body`` (and each further output of the target), then the manifest
    listing them; rename them into place, the manifest last: the hand-off is complete once it exists.

    A file whose body holds none of its own documents (an output split by decision) is left out, the main
    one too (the manifest's ``file`` is null then); with no file left, or when the main body holds nothing,
    nothing is published. ``manifest`` is asked for once the bodies are written, so it can list what was.
    ``decisions`` (file name -> decisions, for a target split by decision) go into each file's entry.
    """
    published = _published(handoff_dir, name) if handoff_dir.is_dir() else None
    if published is not None:
        name = published.name.removesuffix(MANIFEST_SUFFIX)
        earlier = json.loads(published.read_text(encoding="utf-8"))
        return Handoff(name, handoff_dir / name, published, earlier, adopted=True)
    final = handoff_dir / name
    manifest_path = handoff_dir / (name + MANIFEST_SUFFIX)
    body_tmp = handoff_dir / f".{name}.tmp"
    manifest_tmp = handoff_dir / f".{name}{MANIFEST_SUFFIX}.tmp"
    others = [(other, body, handoff_dir / f".{other}.tmp") for other, body in more]
    temporaries = [body_tmp, manifest_tmp, *(tmp for _, _, tmp in others)]
    try:
        handoff_dir.mkdir(parents=True, exist_ok=True)
        _remove_unpublished(handoff_dir, [name, *(other for other, _ in more)])
        holds, sha256, size = _write_temporary(body_tmp, write_body)
        if holds is Holds.NOTHING:
            body_tmp.unlink()
            return None
        outputs, written = [], []
        for other, body, tmp in others:
            kept, digest, size_of = _write_temporary(tmp, body)
            if kept is Holds.DOCUMENTS:
                outputs.append({"file": other, "sha256": digest, "bytes": size_of} | _decided(decisions, other))
                written.append((other, tmp))
            else:
                tmp.unlink()
        main = holds is Holds.DOCUMENTS
        if not main:
            body_tmp.unlink()
            if not outputs:
                return None
        own = {"file": name, "sha256": sha256, "bytes": size} | _decided(decisions, name)
        full_manifest = {**manifest(), **(own if main else {"file": None, "sha256": None, "bytes": 0})}
        full_manifest |= {"outputs": outputs} if outputs else {}
        with manifest_tmp.open("wb") as stream:
            stream.write(manifest_json(full_manifest))
            _sync(stream)
        for other, tmp in written:
            os.replace(tmp, handoff_dir / other)
        if main:
            os.replace(body_tmp, final)
        os.replace(manifest_tmp, manifest_path)
        sync_dir(handoff_dir)
    except OSError as exc:
        _remove_quietly(*temporaries)
        raise StateError(
            f"hand-off folder {handoff_dir}: cannot write {name}: {exc.strerror or exc}",
            hint="free space or fix permissions on the hand-off folder, then run again",
        ) from exc
    except BaseException:
        _remove_quietly(*temporaries)
        raise
    return Handoff(name, final, manifest_path, full_manifest, adopted=False)


def _remove_unpublished(handoff_dir: Path, names: list[str]) -> None:
    """The files an earlier attempt at this hand-off renamed into place before it died, under its run's
    sequence: no manifest lists them (none of this hand-off exists), so no ERP job may take them, and this
    attempt writes them again. Gone, so a folder poller never sees a second copy."""
    for name in names:
        base = unsequenced(name)
        for path in handoff_dir.glob(f"R*_{glob.escape(base)}"):
            if path.name != name and unsequenced(path.name) == base:
                path.unlink(missing_ok=True)


def _decided(decisions: Mapping[str, tuple[str, ...]] | None, name: str) -> dict[str, Any]:
    return {"decisions": list(decisions[name])} if decisions and name in decisions else {}


def files_by_decision(manifest: dict[str, Any]) -> dict[str, str]:
    """For a hand-off split by decision: the file that holds the documents sent so (new -> its file)."""
    entries = ([manifest] if manifest.get("file") else []) + list(manifest.get("outputs", []))
    return {d: str(e["file"]) for e in entries for d in e.get("decisions", [])}


def _write_temporary(path: Path, write_body: Body) -> tuple[Holds, str, int]:
    """The body written and fsynced under its temporary name: what it holds, its SHA-256, its size."""
    with path.open("wb") as stream:
        writer = DigestingWriter(stream, hash_apart=True)
        try:
            wrote = write_body(writer)
        finally:
            sha256 = writer.close()
        _sync(stream)
    return wrote, sha256, path.stat().st_size


def manifest_json(manifest: dict[str, Any]) -> bytes:
    """Indented JSON, a list's items one per line. (``indent=`` would use json's slow pure-Python encoder.)"""
    encode = json.JSONEncoder(ensure_ascii=False).encode
    fields = []
    for key, value in manifest.items():
        text = encode(value)
        if isinstance(value, list) and value:
            text = "[\n" + ",\n".join(f"    {encode(item)}" for item in value) + "\n  ]"
        fields.append(f"  {encode(key)}: {text}")
    return ("{\n" + ",\n".join(fields) + "\n}\n").encode("utf-8")


def remove_stale_temporaries(handoff_dir: Path) -> list[str]:
    """Temporary files of an interrupted run: never complete, safe to delete before a new run."""
    if not handoff_dir.is_dir():
        return []
    stale = [p for p in handoff_dir.glob(".*.tmp") if p.is_file()]
    _remove_quietly(*stale)
    return [p.name for p in stale]


def _sync(stream: BinaryIO) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
