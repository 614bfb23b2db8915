"""Hand ERP files to the ERP team's drop folder (product.md §2.8, docs/handoff.md).

The ERP file and its manifest are written under hidden temporary names,
fsynced, then renamed: first the ERP file, then the manifest. A file is
complete once its manifest exists. Names are deterministic per source file
(name and SHA-256) and target, so a retry after a crash finds the manifest
and adopts the file instead of writing a second one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from batchsync.errors import StateError

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Handoff:
    name: str
    path: Path
    manifest_path: Path
    manifest: dict[str, Any]
    adopted: bool  # True when an earlier, interrupted attempt had already published it


def handoff_name(source_name: str, source_sha256: str, target: str, extension: str, suffix: str = "") -> str:
    """``suffix`` tells apart later hand-offs from the same source (``pass2``: waiting changes accepted later)."""
    stem = source_name.rsplit(".", 1)[0]
    again = f".{suffix}" if suffix else ""
    return f"{stem}.{source_sha256[:12]}.{target}{again}.{extension}"


def publish(handoff_dir: Path, name: str, write_body: Callable[[BinaryIO], str], manifest: dict[str, Any]) -> Handoff:
    """Write the ERP file with ``write_body`` (returns its SHA-256), then its manifest; rename both into place."""
    final = handoff_dir / name
    manifest_path = handoff_dir / (name + MANIFEST_SUFFIX)
    if manifest_path.exists():
        return Handoff(name, final, manifest_path, json.loads(manifest_path.read_text(encoding="utf-8")), adopted=True)
    try:
        handoff_dir.mkdir(parents=True, exist_ok=True)
        body_tmp = handoff_dir / f".{name}.tmp"
        with body_tmp.open("wb") as stream:
            sha256 = write_body(stream)
            _sync(stream)
        size = body_tmp.stat().st_size
        full_manifest = {**manifest, "file": name, "sha256": sha256, "bytes": size}
        manifest_tmp = handoff_dir / f".{name}{MANIFEST_SUFFIX}.tmp"
        with manifest_tmp.open("wb") as stream:
            stream.write(json.dumps(full_manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")
            _sync(stream)
        os.replace(body_tmp, final)
        os.replace(manifest_tmp, manifest_path)
        sync_dir(handoff_dir)
    except OSError as exc:
        _remove_quietly(handoff_dir / f".{name}.tmp", handoff_dir / f".{name}{MANIFEST_SUFFIX}.tmp")
        raise StateError(
            f"hand-off folder {handoff_dir}: cannot write {name}: {exc.strerror or exc}",
            hint="free space or fix permissions on the hand-off folder, then run again",
        ) from exc
    return Handoff(name, final, manifest_path, full_manifest, adopted=False)


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
