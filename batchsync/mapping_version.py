"""Which version of the mapping language a mapping file was written for (``mapping_version``).

A mapping this batchsync can read loads; one written for a later batchsync, or with a
version that never existed, is refused with what to change. A file without the key was
written before versions were declared, which is version 1: it is read as such, with a
warning saying which line to add.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

CURRENT = 1
# what to change in a mapping written for an older version, by that version (none yet: 1 is the first)
UPGRADES: dict[int, str] = {}

log = logging.getLogger("batchsync.mapping")


def version_problems(raw: dict[str, Any], path: Path) -> list[str]:
    """Problems with the declared version, each saying what to change; empty when the file can be read."""
    if "mapping_version" not in raw:
        log.warning(
            "%s: no mapping_version; read as version 1 (add the line `mapping_version: %d` at the top)", path, CURRENT
        )
        return []
    version = raw["mapping_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return [f"mapping_version: {version!r} is not a version of the mapping language; write `mapping_version: 1`"]
    if version > CURRENT:
        return [
            f"mapping_version: {version} is newer than this batchsync reads (up to {CURRENT}): "
            "upgrade batchsync (pip install --upgrade batchsync), or use a mapping written for "
            f"version {CURRENT} (`batchsync init` copies the shipped ones)"
        ]
    if version < CURRENT:
        return [f"mapping_version: {version}: {UPGRADES[version]}, then write `mapping_version: {CURRENT}`"]
    return []
