"""The feeds of a run, compiled (layout, schemas, mapping, template) when the run first has work for them.

Compiling imports polars, pandera and jinja2 and reads every mapping: most of a run's start. A run
that finds nothing new (the commonest run of all, from a scheduler every few minutes) never needs
it, so ``RunFeeds`` compiles every selected feed at once, with every problem reported together, the
first time the run has a file to fetch or process: still before anything is fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from batchsync.config import Config, FeedConfig
from batchsync.errors import ConfigError
from batchsync.kinds import DEFAULT_FOLDERS, KINDS
from batchsync.resources import shipped

if TYPE_CHECKING:
    from batchsync.process import PreparedFeed


def selected(config: Config, names: list[str] | None = None) -> list[FeedConfig]:
    """The feeds a run covers, POs first: a change request of the run may need a PO handed off in it."""
    unknown = [n for n in names or [] if n not in config.feeds]
    if unknown:
        raise ConfigError(f"no feed named {', '.join(unknown)} in {config.path} (feeds: {', '.join(config.feeds)})")
    feeds = [config.feeds[n] for n in (names or list(config.feeds))]
    return sorted(feeds, key=lambda f: KINDS.index(f.kind) if f.kind in KINDS else len(KINDS))


def prepare_feeds(config: Config, names: list[str] | None = None) -> list[PreparedFeed]:
    """Compile every selected feed's layout, mapping and template; report all problems at once."""
    prepared, problems = [], []
    for feed in selected(config, names):
        try:
            prepared.append(prepare_feed(feed, config.mappings_dir, config.templates_dir))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return prepared


def prepare_feed(feed: FeedConfig, mappings_dir: Path, templates_dir: Path) -> PreparedFeed:
    from batchsync.kinds import feed_kind, layout_for
    from batchsync.mapping import load_mapping
    from batchsync.process import PreparedFeed
    from batchsync.render import check_template, load_template

    if feed.kind not in KINDS:
        raise ConfigError(f"feeds.{feed.name}.kind: {feed.kind!r} is not supported yet")
    layout = layout_for(feed.kind, feed.columns)
    mapping = load_mapping(mappings_dir, feed.target, layout)
    names = [r.name for r in mapping.at_level("header")] + [f"{r}_records" for r in layout.roles]
    names += ["records"] if mapping.by_segment else []  # the whole document in SAP's segment order
    templates = [load_template(templates_dir, o.template) for o in mapping.outputs]
    for template, output in zip(templates, mapping.outputs, strict=True):
        check_template(template, names, mapping.charset, output.renamed(layout.roles[1:]))
    main, *more = templates
    return PreparedFeed(feed, feed_kind(feed.kind), layout, mapping, main, more_templates=more)


def prepare_default_feed(kind: str = "purchase_orders") -> PreparedFeed:
    """The shipped layout of ``kind`` and SAP mapping, for checking a file without a config."""
    feed = FeedConfig(kind, kind, DEFAULT_FOLDERS[kind], "*.csv", "sap_orders05")
    return prepare_feed(feed, shipped("mappings"), shipped("templates"))


class RunFeeds:
    """The feeds of one run: their configs at once, their compiled form on first need."""

    def __init__(self, config: Config, names: list[str] | None = None) -> None:
        self._config = config
        self.configs = selected(config, names)
        self._prepared: dict[str, PreparedFeed] | None = None

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.configs]

    def compile(self) -> None:
        if self._prepared is None:
            prepared = prepare_feeds(self._config, self.names)
            self._prepared = {f.name: f for f in prepared}

    def prepared(self, name: str) -> PreparedFeed:
        self.compile()
        assert self._prepared is not None
        return self._prepared[name]
