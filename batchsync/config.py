"""Load and check ``batchsync.toml`` (product.md §4).

Every problem is collected and reported at once, each with its key. Relative
paths resolve against the config file's folder. Secrets come only from the
environment and are never part of ``repr``.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from batchsync.errors import ConfigError
from batchsync.kinds import KINDS
from batchsync.resources import shipped

PASSWORD_ENV = "BATCHSYNC_SFTP_PASSWORD"
PASSPHRASE_ENV = "BATCHSYNC_SFTP_KEY_PASSPHRASE"
CONFIG_ENV = "BATCHSYNC_CONFIG"
AFTER_DOWNLOAD = ("archive", "delete", "keep")
SOURCE_KEYS = {
    "url",
    "key_file",
    "known_hosts",
    "settle_seconds",
    "min_age_seconds",
    "timeout_seconds",
    "retries",
    "backoff_seconds",
}


@dataclass(frozen=True)
class SourceConfig:
    """Where Coupa's files are: an SFTP server or a local folder."""

    url: str
    local_root: Path | None = None  # set when url is a local folder
    host: str = ""
    port: int = 22
    username: str = ""
    key_file: Path | None = None
    known_hosts: Path | None = None
    settle_seconds: float = 3.0
    min_age_seconds: float = 0.0
    timeout_seconds: float = 30.0
    retries: int = 4
    backoff_seconds: float = 1.0
    password: str | None = field(default=None, repr=False)
    key_passphrase: str | None = field(default=None, repr=False)

    @property
    def is_local(self) -> bool:
        return self.local_root is not None


@dataclass(frozen=True)
class FeedConfig:
    name: str
    kind: str
    remote_dir: str
    pattern: str
    target: str
    after_download: str = "archive"
    remote_archive_dir: str = ""
    columns: dict[str, list[str]] = field(default_factory=dict)
    wait_days: float = 7.0


@dataclass(frozen=True)
class WritebackConfig:
    remote_dir: str = "/Incoming/PurchaseOrderChanges"
    status_field: str = "ERP Integration Status"
    change_status_field: str = "ERP Change Validation"
    action: str = ""
    max_rows: int = 5000
    max_bytes: int = 8_000_000
    prefix: str = "PurchaseOrderChange"
    status_max_length: int = 255  # what the custom field holds; a longer text is cut with an ellipsis


@dataclass(frozen=True)
class RetentionConfig:
    """How many days ``batchsync prune`` keeps local copies; what a replay or a person still needs is kept anyway."""

    archive_days: float = 90.0  # state_dir/archive copies of files whose every PO is settled
    error_report_days: float = 90.0  # state_dir/reports, once the file's errors are resolved
    writeback_days: float = 30.0  # state_dir/writeback copies of uploaded write-back files
    run_history_days: float = 365.0  # runs rows nothing else in the ledger refers to


RETENTION_KEYS = tuple(f.name for f in fields(RetentionConfig))


@dataclass(frozen=True)
class Config:
    path: Path
    source: SourceConfig
    state_dir: Path
    handoff_dir: Path
    mappings_dir: Path
    templates_dir: Path
    feeds: dict[str, FeedConfig]
    writeback: WritebackConfig
    retention: RetentionConfig = field(default_factory=RetentionConfig)

    def feed(self, name: str) -> FeedConfig:
        return self.feeds[name]


def find_config(explicit: str | None) -> Path:
    """``--config``, then ``BATCHSYNC_CONFIG``, then ``./batchsync.toml``."""
    candidate = explicit or os.environ.get(CONFIG_ENV) or "batchsync.toml"
    path = Path(candidate)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found",
            hint="pass --config PATH, set BATCHSYNC_CONFIG, or run where batchsync.toml is; "
            "`batchsync init DIR` writes a commented one (DIR/batchsync.toml) to start from",
        )
    return path


def mapping_path(mappings_dir: Path, target: str, kind: str) -> Path | None:
    """``<target>.<kind>.yaml`` (one target, a mapping per feed kind), else ``<target>.yaml``."""
    names = [f"{target}.{kind}{ext}" for ext in (".yaml", ".yml")] + [f"{target}{ext}" for ext in (".yaml", ".yml")]
    return next((mappings_dir / n for n in names if (mappings_dir / n).is_file()), None)


def ledger_path(config: Config) -> Path:
    return config.state_dir / "ledger.db"


def load_config(path: Path, *, offline: bool = False) -> Config:
    """Read and check the config; ``offline`` commands (no connection) need no key or known_hosts file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return _Reader(path, raw, offline).config()


class _Reader:
    """Reads sections, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path, raw: dict[str, Any], offline: bool = False) -> None:
        self.path = path
        self.offline = offline
        self.base = path.resolve().parent
        self.raw = raw
        self.problems: list[str] = []

    def config(self) -> Config:
        source = self._source(self._section("source"))
        local = self._section("local")
        self._unknown(local, "local", {"state_dir", "handoff_dir", "mappings_dir", "templates_dir"})
        feeds = self._feeds(self._section("feeds"))
        writeback = self._writeback(self.raw.get("writeback", {}))
        retention = self._retention(self.raw.get("retention", {}))
        state_dir = self._path(local, "local.state_dir", "var")
        handoff_dir = self._path(local, "local.handoff_dir", "handoff")
        mappings_dir = self._path(local, "local.mappings_dir", shipped("mappings"))
        templates_dir = self._path(local, "local.templates_dir", shipped("templates"))
        self._targets(feeds, mappings_dir)
        known = {"source", "local", "feeds", "writeback", "retention"}
        for key in sorted(set(self.raw) - known):
            self.problems.append(f"[{key}]: unknown section{_did_you_mean(key, known)}")
        if self.problems:
            raise ConfigError([f"{self.path}: {p}" for p in self.problems], where=str(self.path))
        return Config(
            path=self.path,
            source=source,
            state_dir=state_dir,
            handoff_dir=handoff_dir,
            mappings_dir=mappings_dir,
            templates_dir=templates_dir,
            feeds=feeds,
            writeback=writeback,
            retention=retention,
        )

    def _targets(self, feeds: dict[str, FeedConfig], mappings_dir: Path) -> None:
        """Each feed's target has a mapping file: said with the other problems, not after they are fixed."""
        if not mappings_dir.is_dir():  # said when a mapping is loaded: status and history need none
            return
        names = {p.name.split(".")[0] for p in mappings_dir.iterdir() if p.suffix in (".yaml", ".yml")}
        for name, feed in feeds.items():
            if not feed.target:
                continue
            if mapping_path(mappings_dir, feed.target, feed.kind) is None:
                said = _did_you_mean(feed.target, names) or f" (it has: {', '.join(sorted(names)) or 'none'})"
                self.problems.append(f"feeds.{name}.target: no mapping {feed.target!r} in {mappings_dir}{said}")

    def _unknown(self, table: dict[str, Any], where: str, known: set[str]) -> None:
        for key in sorted(set(table) - known):
            self.problems.append(f"{where}.{key}: unknown key{_did_you_mean(key, known)}")

    def _section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name)
        if not isinstance(value, dict):
            self.problems.append(f"[{name}]: missing section")
            return {}
        return value

    def _get(self, table: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        name = key.rsplit(".", 1)[-1]
        value = table.get(name, default)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML's true is an int to Python: never a number of seconds, days or rows
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if value is not None and (wrong_bool or not isinstance(value, kind)):
            self.problems.append(f"{key}: expected {_kind_name(kind)}, got {value!r}")
            return default
        return value

    def _path(self, table: dict[str, Any], key: str, default: str | Path) -> Path:
        value = self._get(table, key, str, str(default))
        return (self.base / Path(value).expanduser()).resolve()

    def _number(self, table: dict[str, Any], key: str, default: float) -> float:
        value = self._get(table, key, (int, float), default)
        if value < 0:
            self.problems.append(f"{key}: must not be negative, got {value}")
        return float(value)

    def _source(self, table: dict[str, Any]) -> SourceConfig:
        self._unknown(table, "source", {*SOURCE_KEYS, "password", "passphrase", "key_passphrase"})
        url = self._get(table, "source.url", str, None)
        if url is None:
            self.problems.append("source.url: required (sftp://user@host:port or a local folder)")
            url = ""
        common = SourceConfig(
            url=url,
            settle_seconds=self._number(table, "source.settle_seconds", 3.0),
            min_age_seconds=self._number(table, "source.min_age_seconds", 0.0),
            timeout_seconds=self._number(table, "source.timeout_seconds", 30.0),
            backoff_seconds=self._number(table, "source.backoff_seconds", 1.0),
            retries=int(self._number(table, "source.retries", 4)),
            password=os.environ.get(PASSWORD_ENV) or None,
            key_passphrase=os.environ.get(PASSPHRASE_ENV) or None,
        )
        for key in ("password", "passphrase", "key_passphrase"):
            if key in table:
                self.problems.append(
                    f"source.{key}: secrets never live in the file; set {PASSWORD_ENV} "
                    f"or {PASSPHRASE_ENV} in the environment"
                )
        parsed = urlparse(url)
        if parsed.scheme == "sftp":
            return self._sftp_source(table, common, parsed)
        if parsed.scheme not in ("", "file"):
            self.problems.append(f"source.url: scheme {parsed.scheme!r} not supported; use sftp:// or a folder")
        folder = unquote(parsed.path) if parsed.scheme == "file" else url
        root = (self.base / Path(folder).expanduser()).resolve()
        if url and not root.is_dir():
            self.problems.append(f"source.url: local folder {root} does not exist")
        return replace(common, local_root=root)

    def _sftp_source(self, table: dict[str, Any], common: SourceConfig, parsed: Any) -> SourceConfig:
        url = common.url
        if not parsed.hostname:
            self.problems.append(f"source.url: no host in {url!r}")
        if parsed.password:
            self.problems.append(f"source.url: remove the password from the URL and set {PASSWORD_ENV}")
        key_file = table.get("key_file")
        key_path = self._path(table, "source.key_file", key_file) if key_file else None
        if key_path is not None and not self.offline and not key_path.is_file():
            self.problems.append(f"source.key_file: {key_path} does not exist")
        if "known_hosts" not in table:
            self.problems.append("source.known_hosts: required; unknown host keys are refused")
        known_hosts = self._path(table, "source.known_hosts", "known_hosts")
        if not self.offline and not known_hosts.is_file():
            self.problems.append(f"source.known_hosts: {known_hosts} does not exist")
        if key_path is None and not self.offline and not common.password and not os.environ.get("SSH_AUTH_SOCK"):
            self.problems.append(f"source.key_file: set a key file, {PASSWORD_ENV}, or run an ssh-agent")
        return replace(
            common,
            host=parsed.hostname or "",
            port=parsed.port or 22,
            username=unquote(parsed.username or ""),
            key_file=key_path,
            known_hosts=known_hosts,
        )

    def _feeds(self, table: dict[str, Any]) -> dict[str, FeedConfig]:
        feeds: dict[str, FeedConfig] = {}
        if not table:
            self.problems.append("[feeds]: define at least one feed, e.g. [feeds.purchase_orders]")
        for name, body in table.items():
            if not isinstance(body, dict):
                self.problems.append(f"feeds.{name}: expected a table")
                continue
            feeds[name] = self._feed(name, body)
        return feeds

    def _feed(self, name: str, body: dict[str, Any]) -> FeedConfig:
        key = f"feeds.{name}"
        kind = self._get(body, f"{key}.kind", str, name)
        if kind not in KINDS:
            self.problems.append(f"{key}.kind: {kind!r} is not one of {', '.join(KINDS)}")
        remote_dir = self._get(body, f"{key}.remote_dir", str, None)
        if not remote_dir:
            self.problems.append(f"{key}.remote_dir: required")
        target = self._get(body, f"{key}.target", str, None)
        if not target:
            self.problems.append(f"{key}.target: required (a mapping in mappings/)")
        after = self._get(body, f"{key}.after_download", str, "archive")
        if after not in AFTER_DOWNLOAD:
            self.problems.append(f"{key}.after_download: {after!r} is not one of {', '.join(AFTER_DOWNLOAD)}")
        remote_dir = remote_dir or ""
        archive_dir = self._get(body, f"{key}.remote_archive_dir", str, "") or f"{remote_dir.rstrip('/')}/Archive"
        columns = self._get(body, f"{key}.columns", dict, {})
        for record, names in columns.items():
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                self.problems.append(f"{key}.columns.{record}: expected a list of column names")
        known = {
            "kind",
            "remote_dir",
            "pattern",
            "target",
            "after_download",
            "remote_archive_dir",
            "columns",
            "wait_days",
        }
        for extra in sorted(set(body) - known):
            self.problems.append(f"{key}.{extra}: unknown key")
        return FeedConfig(
            name=name,
            kind=kind,
            remote_dir=remote_dir,
            pattern=self._get(body, f"{key}.pattern", str, "*.csv"),
            target=target or "",
            after_download=after,
            remote_archive_dir=archive_dir,
            columns=columns,
            wait_days=self._number(body, f"{key}.wait_days", 7.0),
        )

    def _writeback(self, table: Any) -> WritebackConfig:
        if not isinstance(table, dict):
            self.problems.append("[writeback]: expected a table")
            return WritebackConfig()
        default = WritebackConfig()
        values = {
            name: self._get(table, f"writeback.{name}", type(getattr(default, name)), getattr(default, name))
            for name in (
                "remote_dir",
                "status_field",
                "change_status_field",
                "action",
                "max_rows",
                "max_bytes",
                "prefix",
                "status_max_length",
            )
        }
        for extra in sorted(set(table) - set(values)):
            self.problems.append(f"writeback.{extra}: unknown key")
        if not 0 < values["max_rows"] <= 5000:
            self.problems.append("writeback.max_rows: Coupa takes at most 5000 rows per file")
        if not 0 < values["max_bytes"] <= 8_000_000:
            self.problems.append("writeback.max_bytes: Coupa takes at most 8 MB per file")
        if values["status_max_length"] < 10:
            self.problems.append("writeback.status_max_length: expected the custom field's length (10 or more)")
        return WritebackConfig(**values)

    def _retention(self, table: Any) -> RetentionConfig:
        """Days as numbers; 0 (or no key, or no section) is the default, a negative number a problem."""
        if not isinstance(table, dict):
            self.problems.append("[retention]: expected a table")
            return RetentionConfig()
        self._unknown(table, "retention", set(RETENTION_KEYS))
        default = RetentionConfig()
        values: dict[str, float] = {}
        for name in RETENTION_KEYS:
            days = self._number(table, f"retention.{name}", getattr(default, name))
            values[name] = days if days > 0 else getattr(default, name)
        return RetentionConfig(**values)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {"str": "a string", "int": "a number", "float": "a number", "dict": "a table", "bool": "true or false"}
    return " or ".join(dict.fromkeys(names.get(k.__name__, k.__name__) for k in kinds))  # each named once


def _did_you_mean(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
