"""The command line: parse options, call batchsync functions, print the result.

Errors become one line plus a hint on stderr and the exit code of their
class (``errors.ExitCode``); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from batchsync import pipeline
from batchsync.config import Config, find_config, load_config
from batchsync.demo import build_workspace
from batchsync.errors import BatchsyncError, ConfigError, ExitCode
from batchsync.transfer import open_source


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
@click.option(
    "--config", "config_path", metavar="PATH", help="batchsync.toml (default: $BATCHSYNC_CONFIG, then ./batchsync.toml)"
)
@click.option(
    "--log-level", default="warning", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str, debug: bool) -> None:
    """batchsync: Coupa purchase orders to ERP import files over SFTP, with a Coupa write-back."""
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    ctx.obj = {"config_path": config_path}


def _config(ctx: click.Context) -> Config:
    return load_config(find_config(ctx.obj["config_path"]))


@cli.command()
@click.option("--feed", "feeds", multiple=True, help="Run only this feed (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.pass_context
def run(ctx: click.Context, feeds: tuple[str, ...], as_json: bool) -> None:
    """The nightly job: fetch, validate, map, hand off, record, write back.

    \b
    Example:
      batchsync --config /etc/batchsync/batchsync.toml run
    Exit codes: 0 successful or nothing to do, 1 some POs rejected,
    2 usage or configuration, 3 transport/disk/state failure, 4 locked.
    """
    summary = pipeline.run(_config(ctx), feeds=list(feeds) or None)
    _print_summary(summary, as_json)
    ctx.exit(int(summary.exit_code))


def _print_summary(summary: pipeline.RunSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return
    for line in summary.lines():
        click.echo(line)


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


def main() -> None:
    cli(prog_name="batchsync")
