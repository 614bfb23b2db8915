"""The mappings, xref tables, templates and samples shipped with batchsync.

They live in the repository's top-level ``mappings/``, ``templates/`` and
``samples/``; ``batchsync/_data/`` holds symlinks to them, and the wheel build
copies their files into ``batchsync/_data/`` (pyproject.toml, package-data).
So the checkout, an editable install and a wheel installed anywhere all find
them the same way: through ``importlib.resources``, never relative to a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from batchsync.errors import ConfigError

SHIPPED = ("mappings", "templates", "samples")


def shipped(folder: str) -> Path:
    """The installed copy of one of ``SHIPPED``, as a folder on disk."""
    if folder not in SHIPPED:
        raise ValueError(f"no shipped folder {folder!r}")
    path = files("batchsync").joinpath("_data", folder)
    # jinja2's loader and the config's paths need a real folder (not a zip member)
    if not isinstance(path, Path) or not path.is_dir():
        raise ConfigError(
            f"batchsync's shipped {folder}/ is missing from the installation ({path})",
            hint="reinstall batchsync from a wheel or a checkout (pip install batchsync), not from a zip",
        )
    return Path(path).resolve()  # in a checkout: the top-level folder the symlink names
