"""A ledger of an earlier release is upgraded in place, and first copied aside as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from batchsync.ledger import Ledger
from batchsync.ledger_schema import MIGRATIONS


def older_ledger(path: Path, migrations: int) -> None:
    """What a release that knew only the first ``migrations`` migrations left behind, with one run in it."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE migrations (id INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
    for number, (name, sql) in enumerate(MIGRATIONS[:migrations], start=1):
        for statement in filter(str.strip, sql.split(";")):
            db.execute(statement)
        db.execute("INSERT INTO migrations VALUES (?, ?, datetime('now'))", [number, name])
    db.execute("INSERT INTO runs (trigger, status, started_at) VALUES ('nightly', 'successful', '2026-11-23T02:00:00')")
    db.commit()
    db.close()


def test_an_older_ledger_is_copied_aside_then_upgraded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.db"
    older_ledger(path, 3)

    ledger = Ledger(path)
    ledger.close()

    copy = path.with_name("ledger.db.before-migration-4")
    assert copy.exists() and copy.stat().st_mode & 0o777 == 0o600
    assert f"as it was, it is kept at {copy}" in caplog.text
    kept = sqlite3.connect(copy)
    assert [r[0] for r in kept.execute("SELECT id FROM migrations ORDER BY id")] == [1, 2, 3]
    assert kept.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    assert "mapped_hash" not in [r[1] for r in kept.execute("PRAGMA table_info(po_versions)")]
    kept.close()
    upgraded = sqlite3.connect(path)
    assert [r[0] for r in upgraded.execute("SELECT id FROM migrations ORDER BY id")] == list(
        range(1, len(MIGRATIONS) + 1)
    )
    assert "mapped_hash" in [r[1] for r in upgraded.execute("PRAGMA table_info(po_versions)")]
    assert upgraded.execute("SELECT count(*) FROM runs").fetchone() == (1,)  # nothing lost
    upgraded.close()


def test_a_new_or_current_ledger_is_not_copied(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger(path).close()  # new
    Ledger(path).close()  # current

    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ledger.db.")) == []
