"""A module imported on its first attribute use.

For modules whose functions need polars only in some of their code paths (the
ledger: ``status`` and ``history`` read it without polars), so that the short
commands start at once (issue 12). Type checkers see the real import::

    if TYPE_CHECKING:
        import polars as pl
    else:
        pl = LazyModule("polars")
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r} ({'imported' if self._module else 'not imported yet'})>"
