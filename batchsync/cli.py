"""The command line: parse options, call batchsync functions, print the result.

Errors become one line plus a hint on stderr and the exit code of their
class (``errors.ExitCode``); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batchsync.cli_base import Group, global_params, load, settings
from batchsync.cli_ledger import errors, history, status
from batchsync.cli_prune import prune
from batchsync.clock import utcnow
from batchsync.config import ledger_path, load_config
from batchsync.errors import ConfigError, DataError, ExitCode
from batchsync.logs import configure_logging

# polars, pandera, paramiko and jinja2 are imported by the commands that need them, so that
# --help, --version, status, history and errors start at once (issue 12; tests/test_startup.py)
if TYPE_CHECKING:
    import polars as pl

    from batchsync.process import PreparedFeed
    from batchsync.run_summary import RunSummary


@click.group(cls=Group)
@click.version_option(
    None,
    "--version",
    "-V",
    prog_name="batchsync",
    package_name="batchsync",  # the one version: the installed distribution's metadata (pyproject.toml)
    message="%(prog)s %(version)s",
    help="Show the version and exit.",
)
@click.pass_context
def cli(ctx: click.Context, **options: Any) -> None:
    """batchsync: Coupa purchase orders to ERP import files over SFTP, with a Coupa write-back.

    The global options work before or after the command.
    """
    ctx.obj = options
    configure_logging(options["log_level"], options["log_format"])


cli.params.extend(global_params(top_level=True))
for command in (status, history, errors, prune):
    cli.add_command(command)


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
    from batchsync import pipeline

    summary = pipeline.run(load(ctx), feeds=list(feeds) or None, dry_run=dry_run, meter=_terminal_meter())
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
    from batchsync import pipeline

    summary = pipeline.reprocess(
        load(ctx, offline=dry_run), file=file, run_id=run_id, po=po, version=version, force=force, dry_run=dry_run
    )
    _print_summary(summary, as_json)
    ctx.exit(int(summary.exit_code))


def _terminal_meter() -> Any:
    """A progress bar on an interactive terminal only; cron and log files stay quiet."""
    return _TerminalMeter() if sys.stderr.isatty() else None


class _TerminalMeter:
    """One click progress bar per task: a file's bytes while it downloads, its documents while mapped."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, label: str, total: int) -> None:
        self._bar = click.progressbar(length=total, label=label, file=sys.stderr)
        self._bar.__enter__()

    def advance(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _print_summary(summary: RunSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return
    for line in summary.lines():
        click.echo(line)
    if summary.dry_run:
        if summary.would_hand_off:
            click.echo(f"dry run: nothing was changed; would hand off to {summary.handoff_dir}:")
            for name in summary.would_hand_off:
                click.echo(f"  {name}")
        else:
            click.echo(f"dry run: nothing was changed; would hand off nothing to {summary.handoff_dir}")
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
    from batchsync.feeds import prepare_feeds
    from batchsync.remote_check import probe_remote
    from batchsync.sources import open_source

    config = load(ctx)
    prepared = prepare_feeds(config)
    click.echo(f"ok   config {config.path}; {len(prepared)} feed(s), mappings and templates compile")
    problems = [p for p in (_writable(config.state_dir), _writable(config.handoff_dir)) if p]
    with open_source(config.source) as source:
        click.echo(f"ok   connected to {source.describe()} (host key known)")
        for ok, line in probe_remote(config, [f.config for f in prepared], source):
            click.echo(f"{'ok  ' if ok else 'FAIL'} {line}")
            problems += [] if ok else [line]
    if problems:
        raise ConfigError(problems, hint="create the folders or have the server's administrator allow what failed")
    click.echo("ok   all folders present and writable; every operation a run needs works")


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
    from batchsync import pipeline
    from batchsync.demo import build_workspace

    config_path = build_workspace(directory)
    config = load_config(config_path)
    summary = pipeline.run(config)
    _print_summary(summary, as_json=False)
    folder = directory.resolve()
    click.echo(f"\nworkspace:  {folder}")
    click.echo(f"hand-off:   {config.handoff_dir}")
    click.echo(f"write-back: {folder / 'remote' / config.writeback.remote_dir.lstrip('/')}")
    click.echo(f"ledger:     {ledger_path(config)}")
    click.echo(f"reports:    {config.state_dir / 'reports'}")
    click.echo(f"again:      batchsync --config {config_path} run")
    ctx.exit(int(ExitCode.OK))


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Start a project for a Coupa SFTP account: config, editable mappings and templates, folders.

    \b
    Example:
      batchsync init /etc/batchsync
    Writes DIRECTORY/batchsync.toml (every key, commented), DIRECTORY/mappings/
    (with xref/) and DIRECTORY/templates/ copied from the shipped ones, and the
    var/, handoff/ and keys/ folders. Never overwrites a file: one already there
    is left as it is and listed.
    """
    from batchsync.init import init_project, next_steps

    report = init_project(directory)
    for path in report.written:
        click.echo(f"wrote      {path}")
    for path in report.kept:
        click.echo(f"left alone {path} (already there)")
    click.echo("\nnext steps:")
    for line in next_steps(report):
        click.echo(f"  {line}")


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
    from batchsync import offline
    from batchsync.validate import file_error_frame

    kind = "order_header_changes" if feed_name is None and offline.looks_like_change_file(path) else None
    feed = _offline_feed(ctx, feed_name, kind)
    if kind:
        click.echo(f"{path.name}: an Order Header Change export: checked as feed {feed.name}", err=True)
    try:
        result = offline.check_file(path, feed, utcnow())
    except DataError as exc:
        _write_report(file_error_frame(exc), out)
        click.echo(f"{path.name}: rejected whole: {exc.message}", err=True)
        click.echo(f"hint: {exc.hint}", err=True)
        ctx.exit(int(ExitCode.USAGE))
    _write_report(result.errors, out)
    documents = f"{feed.layout.noun}(s)"
    click.echo(
        f"{path.name}: {result.documents} {documents}, {result.rejected} rejected, {result.errors.height} error(s)",
        err=True,
    )
    ctx.exit(int(ExitCode.OK if result.valid else ExitCode.ERRORED))


def _offline_feed(ctx: click.Context, feed_name: str | None, kind: str | None = None) -> PreparedFeed:
    """The configured feed (of ``kind``, when given) if a config is found; else the shipped layout and SAP mapping."""
    from batchsync.feeds import prepare_default_feed, prepare_feeds

    try:
        config = load(ctx, offline=True)
    except ConfigError:
        if settings(ctx)["config_path"] or feed_name:
            raise
        return prepare_default_feed(kind or "purchase_orders")
    of_kind = [f.name for f in config.feeds.values() if kind is None or f.kind == kind]
    if not of_kind and kind:
        return prepare_default_feed(kind)
    names = [feed_name] if feed_name else of_kind[:1] or [""]
    return prepare_feeds(config, names)[0]


def _write_report(errors: pl.DataFrame, out: Path | None) -> None:
    report = errors.rename({"doc_id": "po_id"})
    if out:
        report.write_csv(out, quote_style="non_numeric")
    else:
        click.echo(report.write_csv(quote_style="non_numeric"), nl=False)


def main() -> None:
    cli(prog_name="batchsync")
