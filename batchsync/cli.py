"""The command line: parse options, call batchsync functions, print the result.

Errors become one line plus a hint on stderr and the exit code of their
class (``errors.ExitCode``); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import polars as pl

from batchsync import ledger_views, offline, pipeline
from batchsync.config import Config, find_config, load_config
from batchsync.demo import build_workspace
from batchsync.errors import BatchsyncError, ConfigError, DataError, ExitCode, StateError
from batchsync.ledger import Ledger
from batchsync.logs import configure_logging
from batchsync.pipeline import prepare_default_feed
from batchsync.process import PreparedFeed
from batchsync.transfer import open_source
from batchsync.validate import file_error_frame


class _IsoDateTime(click.ParamType):
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


class _Group(click.Group):
    """Turn every ``BatchsyncError`` into a message, a hint and its exit code, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BatchsyncError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo(f"batchsync: error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(int(exc.exit_code))


@click.group(cls=_Group)
@click.version_option(
    None,
    "--version",
    "-V",
    package_name="batchsync",  # the one version: the installed distribution's metadata (pyproject.toml)
    message="%(prog)s %(version)s",
    help="Show the version and exit.",
)
@click.option(
    "--config", "config_path", metavar="PATH", help="batchsync.toml (default: $BATCHSYNC_CONFIG, then ./batchsync.toml)"
)
@click.option(
    "--log-level", default="warning", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="Logs on stderr as text, or one JSON object per line (run id, feed, file, stage).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, log_format: str, debug: bool) -> None:
    """batchsync: Coupa purchase orders to ERP import files over SFTP, with a Coupa write-back."""
    configure_logging(log_level, log_format)
    ctx.obj = {"config_path": config_path}


def _config(ctx: click.Context) -> Config:
    return load_config(find_config(ctx.obj["config_path"]))


@cli.command()
@click.option("--feed", "feeds", multiple=True, help="Run only this feed (repeatable).")
@click.option("--dry-run", is_flag=True, help="Download, check, map and render into a scratch folder; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.pass_context
def run(ctx: click.Context, feeds: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """The nightly job: fetch, validate, map, hand off, record, write back.

    \b
    Example:
      batchsync --config /etc/batchsync/batchsync.toml run
    Exit codes: 0 successful or nothing to do, 1 some POs rejected,
    2 usage or configuration, 3 transport/disk/state failure, 4 locked.
    """
    summary = pipeline.run(_config(ctx), feeds=list(feeds) or None, dry_run=dry_run, progress=_progress)
    _print_summary(summary, as_json)
    ctx.exit(int(summary.exit_code))


@cli.command()
@click.option("--file", "file", metavar="ID_OR_NAME", help="One archived file, by ledger id or name.")
@click.option("--run", "run_id", type=int, help="Every file a run processed.")
@click.option("--po", help="Every archived file that carried this PO (Coupa id).")
@click.option("--version", type=int, help="With --po: only this version of it.")
@click.option("--force", is_flag=True, help="Send again a PO version the ERP already has.")
@click.option("--dry-run", is_flag=True, help="Show what the replay would hand off and write back; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.pass_context
def reprocess(
    ctx: click.Context,
    file: str | None,
    run_id: int | None,
    po: str | None,
    version: int | None,
    force: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Replay archived files with today's mappings and xref tables; no download.

    \b
    Examples:
      batchsync reprocess --file OrderHeader_20261123_040000Z.csv
      batchsync reprocess --po 4207
      batchsync reprocess --run 12 --dry-run
    Hand-offs get new names ending in .reprocessN and "reprocessed": true in their manifest.
    """
    if sum(x is not None for x in (file, run_id, po)) != 1:
        raise click.UsageError("name exactly one of --file, --run, --po")
    if version is not None and po is None:
        raise click.UsageError("--version goes with --po")
    summary = pipeline.reprocess(
        _config(ctx), file=file, run_id=run_id, po=po, version=version, force=force, dry_run=dry_run
    )
    _print_summary(summary, as_json)
    ctx.exit(int(summary.exit_code))


def _progress(items: list[dict[str, Any]], label: str) -> Any:
    """A progress bar on an interactive terminal only; cron and log files stay quiet."""
    if not sys.stderr.isatty() or len(items) < 2:
        return items
    return _bar(items, label)


def _bar(items: list[dict[str, Any]], label: str) -> Iterator[dict[str, Any]]:
    with click.progressbar(items, label=label, file=sys.stderr) as bar:
        yield from bar


def _print_summary(summary: pipeline.RunSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return
    for line in summary.lines():
        click.echo(line)
    if summary.dry_run:
        click.echo(f"dry run: nothing was changed; would hand off to {summary.handoff_dir}:")
        for name in summary.would_hand_off:
            click.echo(f"  {name}")
        for action in summary.would_do:
            click.echo(f"  would {action}")


@cli.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Check config, mappings and templates, the server, its host key and folders.

    \b
    Example:
      batchsync --config batchsync.toml check
    """
    config = _config(ctx)
    prepared = pipeline.prepare_feeds(config)
    click.echo(f"ok   config {config.path}; {len(prepared)} feed(s), mappings and templates compile")
    problems = [p for p in (_writable(config.state_dir), _writable(config.handoff_dir)) if p]
    with open_source(config.source) as source:
        click.echo(f"ok   connected to {source.describe()} (host key known)")
        for feed in prepared:
            moves = feed.config.after_download != "keep"  # archive and delete need write access to the folder
            problems += _check_dir(source.check_dir(feed.config.remote_dir, moves), feed.config.remote_dir)
            archive = feed.config.remote_archive_dir
            parent, _, name = archive.rstrip("/").rpartition("/")
            if feed.config.after_download == "archive" and source.exists(parent or "/", name):
                problems += _check_dir(source.check_dir(archive, True), archive)
        problems += _check_dir(source.check_dir(config.writeback.remote_dir, True), config.writeback.remote_dir)
    if problems:
        raise ConfigError(problems, hint="create the folders or fix their permissions")
    click.echo("ok   all folders present and writable")


def _check_dir(problem: str | None, folder: str) -> list[str]:
    if problem:
        return [problem]
    click.echo(f"ok   {folder}")
    return []


def _writable(folder: Path) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".batchsync-check"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"{folder}: not writable ({exc.strerror})"
    return None


@cli.command()
@click.argument("directory", default="batchsync-demo", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def demo(ctx: click.Context, directory: Path) -> None:
    """Build a workspace from the shipped samples and run the full job on it (no server needed).

    \b
    Example:
      batchsync demo /tmp/batchsync-demo
    The samples include POs that must be rejected, so the run itself ends
    "errored"; the command exits 0 when the demo ran.
    """
    config_path = build_workspace(directory)
    config = load_config(config_path)
    summary = pipeline.run(config)
    _print_summary(summary, as_json=False)
    folder = directory.resolve()
    click.echo(f"\nworkspace:  {folder}")
    click.echo(f"hand-off:   {config.handoff_dir}")
    click.echo(f"write-back: {folder / 'remote' / config.writeback.remote_dir.lstrip('/')}")
    click.echo(f"ledger:     {pipeline.ledger_path(config)}")
    click.echo(f"reports:    {config.state_dir / 'reports'}")
    click.echo(f"again:      batchsync --config {config_path} run")
    ctx.exit(int(ExitCode.OK))


@cli.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--feed", "feed_name", help="The feed whose format the file has (default: the first purchase_orders feed)."
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the error report here, not stdout.")
@click.pass_context
def validate(ctx: click.Context, path: Path, feed_name: str | None, out: Path | None) -> None:
    """Check a local CSV as a run would: parse, validate, map. Touches no state.

    \b
    Example:
      batchsync validate OrderHeader_20261123_030000Z.csv --out errors.csv
    Exit codes: 0 valid, 1 something rejected, 2 not readable as the feed's format.
    """
    feed = _offline_feed(ctx, feed_name)
    try:
        result = offline.check_file(path, feed, pipeline.utcnow())
    except DataError as exc:
        _write_report(file_error_frame(exc), out)
        click.echo(f"{path.name}: rejected whole: {exc.message}", err=True)
        click.echo(f"hint: {exc.hint}", err=True)
        ctx.exit(int(ExitCode.USAGE))
    _write_report(result.errors, out)
    click.echo(
        f"{path.name}: {result.documents} PO(s), {result.rejected} rejected, {result.errors.height} error(s)", err=True
    )
    ctx.exit(int(ExitCode.OK if result.valid else ExitCode.ERRORED))


def _offline_feed(ctx: click.Context, feed_name: str | None) -> PreparedFeed:
    """The configured feed when a config is found; else the shipped PO layout and SAP mapping."""
    try:
        config = _config(ctx)
    except ConfigError:
        if ctx.obj["config_path"] or feed_name:
            raise
        return prepare_default_feed()
    names = [feed_name] if feed_name else [next((f.name for f in config.feeds.values()), "")]
    return pipeline.prepare_feeds(config, names)[0]


def _write_report(errors: pl.DataFrame, out: Path | None) -> None:
    report = errors.rename({"doc_id": "po_id"})
    if out:
        report.write_csv(out, quote_style="non_numeric")
    else:
        click.echo(report.write_csv(quote_style="non_numeric"), nl=False)


def _open_ledger(ctx: click.Context) -> Ledger:
    config = _config(ctx)
    path = pipeline.ledger_path(config)
    if not path.exists():
        raise StateError(f"no ledger at {path} yet", hint="run `batchsync run` first")
    return Ledger(path)


@cli.command()
@click.option("--file", "file_id", type=int, help="Only errors of this file (ledger id).")
@click.option("--po", "po_id", help="Only errors of this PO (Coupa id).")
@click.option("--unresolved", is_flag=True, help="Only errors no later version has resolved.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def errors(ctx: click.Context, file_id: int | None, po_id: str | None, unresolved: bool, as_json: bool) -> None:
    """Row-level integration errors, newest first.

    \b
    Example:
      batchsync errors --po 4206 --unresolved
    """
    rows = ledger_views.errors(_open_ledger(ctx), file_id, po_id, unresolved)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for r in rows:
        where = f"{r['file']}:{r['line']}" if r["line"] is not None else r["file"]
        state = "resolved" if r["resolved_at"] else "unresolved"
        click.echo(
            f"{r['created_at']}  {where}  PO {r['po_id'] or '-'}  {r['column'] or '-'}  {r['message']}  [{state}]"
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Last runs, files by state, rejected files, unresolved errors, age of the last completed run.

    \b
    Example:
      batchsync status --json
    """
    view = ledger_views.status(_open_ledger(ctx), pipeline.utcnow())
    if as_json:
        click.echo(json.dumps(view, indent=2, ensure_ascii=False))
        return
    for label, key in (("last completed run", "last_completed_run"), ("last successful run", "last_successful_run")):
        last = view[key]
        age = f"{last['age_seconds'] // 3600} h {last['age_seconds'] % 3600 // 60} min ago" if last else "never"
        click.echo(f"{label}: {last['id'] if last else '-'} ({age})")
    for r in view["last_runs"]:
        counts = f"{r['files']} file(s), {r['handed_off']} handed off, {r['rejected']} rejected, {r['skipped']} skipped"
        click.echo(f"run {r['id']:>5}  {r['started_at']}  {r['trigger']:<9} {r['status']:<10} {counts}")
    click.echo("files: " + ", ".join(f"{n} {s}" for s, n in view["files_by_state"].items()))
    for f in view["rejected_files"]:
        click.echo(f"rejected file {f['id']}: {f['reason']}")  # the reason starts with the file name
    for c in view["waiting_changes"]:
        age = f"{c['age_seconds'] // 86400} d {c['age_seconds'] % 86400 // 3600} h"
        click.echo(f"waiting change {c['id']} for PO {c['po_id']}, {age}: {c['reason']}")
    pending = view["writeback_rows_pending"]
    click.echo(f"unresolved errors: {view['unresolved_errors']}; write-back rows not yet uploaded: {pending}")


@cli.command()
@click.option("--feed", help="Only runs that included this feed.")
@click.option(
    "--since", type=_IsoDateTime(), help="Only runs started at or after this ISO date/time (UTC if no offset)."
)
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def history(ctx: click.Context, feed: str | None, since: datetime | None, limit: int, as_json: bool) -> None:
    """The run and file ledger, newest first.

    \b
    Example:
      batchsync history --since 2026-11-01 --limit 50
    """
    runs = ledger_views.history(_open_ledger(ctx), feed, since, limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2, ensure_ascii=False))
        return
    for r in runs:
        click.echo(f"run {r['id']}  {r['started_at']}  {r['status']}  {r['message'] or ''}".rstrip())
        for f in r["files"]:
            click.echo(
                f"    file {f['id']}  {f['name']}  {f['state']}  {f['handoff_name'] or f['reason'] or ''}".rstrip()
            )


def main() -> None:
    cli(prog_name="batchsync")
