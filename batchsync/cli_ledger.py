"""The ledger's read-only commands: ``status``, ``history``, ``errors``.

They read the SQLite ledger only: no polars, pandera, paramiko or jinja2 is
imported, and no SFTP key or known_hosts file is needed (issue 12).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from batchsync.cli_base import load, open_ledger
from batchsync.cli_prune import human_size
from batchsync.clock import utcnow
from batchsync.config import ledger_path
from batchsync.errors import ConfigError
from batchsync.prune import state_folder_size

JSON_HELP = "Print the result as JSON."


class IsoDateTime(click.ParamType):
    """ISO 8601 date or date-time, with or without offset (UTC when none)."""

    name = "DATETIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time, e.g. 2026-11-24 or 2026-11-24T02:00:00Z")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.command()
@click.option("--file", "file_id", metavar="ID_OR_NAME", help="Only errors of this file (ledger id or file name).")
@click.option("--po", "po_id", help="Only errors of this PO (Coupa id).")
@click.option("--unresolved", is_flag=True, help="Only errors no later version has resolved.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def errors(ctx: click.Context, file_id: str | None, po_id: str | None, unresolved: bool, as_json: bool) -> None:
    """Row-level integration errors, newest first.

    \b
    Example:
      batchsync errors --po 4206 --unresolved
    """
    from batchsync import ledger_views  # sqlite-utils: not for --help

    rows = ledger_views.errors(open_ledger(ctx), file_id, po_id, unresolved)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        where = f"{r['file']}:{r['line']}" if r["line"] is not None else r["file"]
        state = "resolved" if r["resolved_at"] else "unresolved"
        click.echo(
            f"{r['created_at']}  {where}  PO {r['po_id'] or '-'}  {r['column'] or '-'}  {r['message']}  [{state}]"
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Last runs, files by state, rejected files, unresolved errors, age of the last completed run.

    \b
    Example:
      batchsync status --json
    """
    from batchsync import ledger_views  # sqlite-utils: not for --help

    config = load(ctx, offline=True)
    path = ledger_path(config)
    if not path.exists():  # a state folder nothing has run in yet: a fact, not a failure
        if as_json:
            empty: dict[str, Any] = {"ledger": None, "last_runs": []}
            empty |= {"last_completed_run": None, "last_successful_run": None}
            click.echo(json.dumps(empty, indent=2))
        else:
            click.echo(f"no ledger at {path} yet: nothing has run with this state folder (last run: never)")
        return
    view = ledger_views.status(open_ledger(ctx, config), utcnow())
    size, count = state_folder_size(config.state_dir)
    view["state_folder"] = {"path": str(config.state_dir), "bytes": size, "files": count}
    if as_json:
        click.echo(json.dumps(view, indent=2, ensure_ascii=False))
    else:
        _echo_status(view)


def _echo_status(view: dict[str, Any]) -> None:
    for label, key in (("last completed run", "last_completed_run"), ("last successful run", "last_successful_run")):
        last = view[key]
        age = f"{last['age_seconds'] // 3600} h {last['age_seconds'] % 3600 // 60} min ago" if last else "never"
        click.echo(f"{label}: {last['id'] if last else '-'} ({age})")
    for r in view["last_runs"]:
        # the run summary's words: what it lists as duplicate, stale, unchanged or skipped was not sent
        not_sent = f"{r['skipped']} not sent (duplicate, stale, unchanged or skipped)"
        counts = f"{r['files']} file(s), {r['handed_off']} handed off, {r['rejected']} rejected, {not_sent}"
        click.echo(f"run {r['id']:>5}  {r['started_at']}  {r['trigger']:<9} {r['status']:<10} {counts}")
    click.echo("files: " + ", ".join(f"{n} {s}" for s, n in view["files_by_state"].items()))
    for f in view["rejected_files"]:
        click.echo(f"rejected file {f['id']}: {f['reason']}")  # the reason starts with the file name
    for c in view["waiting_changes"]:
        age = f"{c['age_seconds'] // 86400} d {c['age_seconds'] % 86400 // 3600} h"
        click.echo(f"waiting change {c['id']} for PO {c['po_id']}, {age}: {c['reason']}")
    pending = view["writeback_rows_pending"]
    click.echo(f"unresolved errors: {view['unresolved_errors']}; write-back rows not yet uploaded: {pending}")
    folder = view["state_folder"]
    click.echo(f"state folder: {human_size(folder['bytes'])} in {folder['files']} file(s) ({folder['path']})")


@click.command()
@click.option("--feed", help="Only runs that included this feed.")
@click.option(
    "--since", type=IsoDateTime(), help="Only runs started at or after this ISO date/time (UTC if no offset)."
)
@click.option("--limit", default=20, show_default=True, help="At most this many runs.")
@click.option("--file", "file", metavar="ID_OR_NAME", help="Follow one file (ledger id or name) through every run.")
@click.option("--po", "po_id", help="Follow one PO (Coupa id) through every run.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def history(
    ctx: click.Context,
    feed: str | None,
    since: datetime | None,
    limit: int,
    file: str | None,
    po_id: str | None,
    as_json: bool,
) -> None:
    """What each run did, newest first; or one file or one PO through every run, oldest first.

    \b
    Examples:
      batchsync history --since 2026-11-01 --limit 50
      batchsync history --file OrderHeader_20261123_020000Z.csv
      batchsync history --po 4202
    """
    from batchsync import ledger_views  # sqlite-utils: not for --help

    if file is not None and po_id is not None:
        raise click.UsageError("give --file or --po, not both")
    config = load(ctx, offline=True)
    ledger = open_ledger(ctx, config)
    if file is not None or po_id is not None:
        _followed(ledger, file, po_id, as_json)
        return
    # as run --feed: a misspelt feed is said, not answered with nothing (a feed since removed still is known)
    if feed is not None and feed not in config.feeds and feed not in ledger_views.feeds_run(ledger):
        raise ConfigError(f"no feed named {feed} in {config.path} (feeds: {', '.join(config.feeds)})")
    runs = ledger_views.history(ledger, feed, since, limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2, ensure_ascii=False))
        return
    click.echo("\n".join(_history_lines(runs)))


def _history_lines(runs: list[dict[str, Any]]) -> Iterator[str]:
    # one write for the whole listing: a run of 10,000 files is 10,000 lines (echo per line: 0.1 s)
    for r in runs:
        yield f"run {r['id']}  {r['started_at']}  {r['trigger']}  {r['status']}  {r['message'] or ''}".rstrip()
        for e in r["events"]:
            where = f"file {e['file_id']} {e['file']}  " if e["file_id"] is not None else ""
            yield f"    {e['at'][11:19]}  {e['kind']:<19} {where}{e['detail']}".rstrip()
        if not r["events"]:  # recorded before events were kept
            for f in r["files"]:
                said = f["handoff_name"] or f["reason"] or ""
                yield f"    file {f['id']}  {f['name']}  {f['state']}  {said}  (last touched by this run)"


def _followed(ledger: Any, file: str | None, po_id: str | None, as_json: bool) -> None:
    """``history --file`` / ``--po``: every step, oldest first; nothing known is an answer, not an error."""
    from batchsync import ledger_views

    rows = ledger_views.file_history(ledger, file) if file is not None else ledger_views.po_history(ledger, po_id or "")
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        what = f"file {file}" if file is not None else f"PO {po_id}"
        click.echo(f"nothing in the ledger about {what} (try: batchsync history, batchsync errors)")
        return
    for r in rows:
        if file is not None:
            click.echo(f"run {r['run_id']}  {r['at']}  {r['kind']:<19} file {r['file_id']} {r['file']}  {r['detail']}")
        else:
            click.echo(f"run {r['run_id']}  {r['at']}  {r['what']}  {r['detail']}  [{r['file'] or '-'}]".rstrip())
