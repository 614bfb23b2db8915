"""The rendered SAP IDoc files and manifests, byte for byte.

Refresh on purpose only: ``UPDATE_GOLDEN=1 pytest tests/test_golden.py``, then
read the diff before committing it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from batchsync import batches, pipeline
from batchsync.config import load_config
from batchsync.demo import build_workspace
from batchsync.kinds.purchase_orders import decide
from tests.conftest import FIXED_NOW

GOLDEN = Path(__file__).resolve().parent / "golden" / "sap_orders05"


@pytest.fixture(scope="module")
def handoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = load_config(build_workspace(tmp_path_factory.mktemp("golden") / "ws"))
    pipeline.run(config, clock=lambda: FIXED_NOW)
    return config.handoff_dir


@pytest.fixture(scope="module")
def handoff_in_batches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run with every document in a batch of its own (a large file's path through the stages)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "BATCH_DOCUMENTS", 1)
        patch.setattr(decide, "HASH_BATCH", 1)
        config = load_config(build_workspace(tmp_path_factory.mktemp("golden-batched") / "ws"))
        pipeline.run(config, clock=lambda: FIXED_NOW)
    return config.handoff_dir


def test_handoff_file_names_are_the_golden_ones(handoff: Path) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(handoff, GOLDEN)
    assert sorted(p.name for p in handoff.iterdir()) == sorted(p.name for p in GOLDEN.iterdir())


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.iterdir()) if GOLDEN.exists() else [])
def test_handoff_file_matches_golden(handoff: Path, name: str) -> None:
    produced = (handoff / name).read_text(encoding="utf-8")
    expected = (GOLDEN / name).read_text(encoding="utf-8")
    assert produced == expected


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.iterdir()) if GOLDEN.exists() else [])
def test_batched_handoff_matches_golden_byte_for_byte(handoff_in_batches: Path, name: str) -> None:
    assert (handoff_in_batches / name).read_bytes() == (GOLDEN / name).read_bytes()


def test_idoc_records_have_their_fixed_widths(handoff: Path) -> None:
    for path in handoff.glob("*.idoc"):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines, path
        for line in lines:
            assert len(line) == (524 if line.startswith("EDI_DC40") else 1063), (path.name, line[:40])
