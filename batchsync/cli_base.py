"""What every command shares: the global options, error reporting, finding the config and ledger.

The global options (``--config``, ``--log-level``, ``--log-format``, ``--debug``) work
before the command and after it: ``batchsync run --config X`` is ``batchsync --config X run``.
Given in both places, the one after the command wins. ``--version`` stays on the top level
(``reprocess --version N`` is a PO version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from batchsync.config import Config, find_config, ledger_path, load_config
from batchsync.errors import BatchsyncError, StateError
from batchsync.logs import configure_logging

if TYPE_CHECKING:
    from batchsync.ledger import Ledger

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
DEFAULTS: dict[str, Any] = {"config_path": None, "log_level": "warning", "log_format": "text", "debug": False}
HELP = {
    "config_path": "batchsync.toml (default: $BATCHSYNC_CONFIG, then ./batchsync.toml).",
    "log_level": "How much to log on stderr.",
    "log_format": "Logs on stderr as text, or one JSON object per line (run id, feed, file, stage).",
    "debug": "Show tracebacks instead of one-line errors.",
}


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Store a global option given after the command where the group's own value lives."""
    if value is None or value is False:
        return value  # not given here: the value before the command (or the default) stands
    assert param.name
    settings = ctx.find_root().ensure_object(dict)
    settings[param.name] = value
    if param.name in ("log_level", "log_format"):
        configure_logging(settings["log_level"], settings["log_format"])
    return value


def global_params(top_level: bool) -> list[click.Option]:
    """The options; on the top level with their defaults shown, after a command stored by ``_remember``."""
    shown = {"show_default": True} if top_level else {}
    extra: dict[str, Any] = {} if top_level else {"expose_value": False, "callback": _remember}
    return [
        click.Option(["--config", "config_path"], metavar="PATH", help=HELP["config_path"], **extra),
        click.Option(
            ["--log-level"],
            type=click.Choice(LOG_LEVELS),
            default=DEFAULTS["log_level"] if top_level else None,
            help=HELP["log_level"],
            **shown,
            **extra,
        ),
        click.Option(
            ["--log-format"],
            type=click.Choice(LOG_FORMATS),
            default=DEFAULTS["log_format"] if top_level else None,
            help=HELP["log_format"],
            **shown,
            **extra,
        ),
        click.Option(["--debug"], is_flag=True, help=HELP["debug"], **extra),
    ]


class Group(click.Group):
    """Gives every command the global options; turns a ``BatchsyncError`` into message, hint and exit code."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.extend(global_params(top_level=False))
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BatchsyncError as exc:
            if settings(ctx)["debug"]:
                raise
            click.echo(f"batchsync: error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(int(exc.exit_code))


def settings(ctx: click.Context) -> dict[str, Any]:
    """The global options in effect (the group stores its values first, a command's override them)."""
    return {**DEFAULTS, **(ctx.find_root().obj or {})}


def load(ctx: click.Context, *, offline: bool = False) -> Config:
    """The config; ``offline`` for commands that never connect (no key or known_hosts file needed)."""
    return load_config(find_config(settings(ctx)["config_path"]), offline=offline)


def open_ledger(ctx: click.Context, config: Config | None = None) -> Ledger:
    """The ledger of ``config`` (read from the command line when not given); none yet is an error."""
    from batchsync.ledger import Ledger

    path = ledger_path(config or load(ctx, offline=True))
    if not path.exists():
        raise StateError(f"no ledger at {path} yet", hint="run `batchsync run` first")
    return Ledger(path)
