"""``batchsync prune [--dry-run] [--json]``: the state folder's housekeeping (docs/housekeeping.md).

It never connects and imports no polars, pandera, paramiko or jinja2; it takes the run lock, so it
never races a run (exit 4 while one holds it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from batchsync.cli_base import load
from batchsync.clock import utcnow
from batchsync.config import ledger_path
from batchsync.errors import StateError
from batchsync.lock import RunLock

if TYPE_CHECKING:
    from batchsync.prune import PruneItem, PruneResult


@click.command()
@click.option("--dry-run", is_flag=True, help="Say what would be removed and what is kept; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def prune(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Remove local copies past their [retention] days that nothing needs any more.

    \b
    Examples:
      batchsync prune --dry-run
      batchsync --config /etc/batchsync/batchsync.toml prune
    Kept whatever their age: files not yet settled, files with an unresolved
    error or a waiting change request, the file of each PO's latest version
    handed off, write-back files not yet uploaded. Never touches the hand-off
    folder or the server. Exit codes: 0 done (or nothing to prune),
    2 configuration, 3 a copy could not be removed, 4 a run holds the lock.
    """
    from batchsync.ledger import Ledger  # sqlite-utils: not for --help
    from batchsync.prune import apply_prune, plan_prune, state_folder_size

    config = load(ctx, offline=True)
    path = ledger_path(config)
    if not path.exists():  # nothing has run here: nothing is known to be settled, so nothing goes
        click.echo(f"no ledger at {path} yet: nothing to prune")
        return
    now = utcnow()
    with RunLock(config.state_dir, now.isoformat()):
        ledger = Ledger(path)
        try:
            plan = plan_prune(config, ledger, now)
            result = None if dry_run else apply_prune(plan, ledger)
        finally:
            ledger.close()
    removed = plan.remove if result is None else result.removed
    size, files = state_folder_size(config.state_dir)
    if as_json:
        click.echo(json.dumps(_report(removed, plan.kept, dry_run, size, files, result), indent=2, ensure_ascii=False))
    else:
        _print(removed, plan.kept, dry_run, size, files)
    if result is not None and result.failed:
        raise StateError(f"prune could not remove {len(result.failed)} file(s): {'; '.join(result.failed)}")


def _report(
    removed: list[PruneItem], kept: list[PruneItem], dry_run: bool, size: int, files: int, result: PruneResult | None
) -> dict[str, Any]:
    """``removed`` is what went, or with ``dry_run`` what would go."""
    return {
        "dry_run": dry_run,
        "removed": [i.to_dict() for i in removed],
        "kept": [i.to_dict() for i in kept],
        "failed": result.failed if result else [],
        "totals": _totals(removed),
        "state_folder": {"bytes": size, "files": files},
    }


def _print(removed: list[PruneItem], kept: list[PruneItem], dry_run: bool, size: int, files: int) -> None:
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        click.echo(f"{verb}  {_where(item)}{item.what}: {item.reason}")
    for item in kept:
        click.echo(f"kept  {_where(item)}{item.what}: {item.reason}")
    totals = _totals(removed)
    total = f"{totals['files']} file(s), {human_size(totals['bytes'])}; {totals['runs']} run(s) from the history"
    click.echo(f"would prune {total} (dry run: nothing was changed)" if dry_run else f"pruned {total}")
    click.echo(f"state folder: {human_size(size)} in {files} file(s)")


def _totals(removed: list[PruneItem]) -> dict[str, int]:
    copies = [i for i in removed if i.path is not None]
    return {"files": len(copies), "bytes": sum(i.size for i in copies), "runs": len(removed) - len(copies)}


def _where(item: PruneItem) -> str:
    return f"{item.path}  {human_size(item.size)}  " if item.path is not None else ""


def human_size(n: int) -> str:
    """Decimal units, as Coupa's 8 MB limit is counted."""
    if n < 1000:
        return f"{n} B"
    value, unit = n / 1000, "kB"
    for bigger in ("MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"
