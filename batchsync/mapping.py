"""Declarative target mappings (``mappings/<target>.yaml``), compiled to polars expressions.

A mapping lists output *records*; each record belongs to a *level* of the
source document (header, line, allocation) and lists *fields*. A field takes
its value from one producer (``source``, ``const``, ``concat``, ``sequence``)
and applies transforms in a fixed order: ``map``, ``xref``, ``date``,
``number``, ``upper``, ``default``, then ``required`` and the width check.
A value that does not fit (unmapped code, too long) rejects its document with
a reason; it is never cut or guessed. Records are laid out ``fixed`` (padded
to widths, then to the record ``length``) or ``csv`` (quoted, delimited).

Compiling checks every key against the feed's layout before any file is
fetched; each problem names the mapping file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from batchsync.errors import ConfigError
from batchsync.layouts import Layout
from batchsync.mapping_version import version_problems

# columns the pipeline adds before transforming (see transform.context_columns)
RESERVED = {
    "_decision",
    "_line_decision",
    "_doc_seq",
    "_row",
    "_now_date",
    "_now_time",
    "_now",
    "_source_file",
    "_erp_file",
}
PRODUCERS = ("source", "const", "concat", "sequence")
FIELD_KEYS = {
    *PRODUCERS,
    "name",
    "width",
    "max_length",
    "align",
    "fill",
    "map",
    "xref",
    "date",
    "number",
    "upper",
    "oneline",
    "default",
    "required",
}
RECORD_KEYS = {"name", "level", "layout", "length", "delimiter", "fields"}
TOP_KEYS = {"mapping_version", "target", "description", "template", "extension", "kind", "xref", "records"}


@dataclass(frozen=True)
class Problem:
    """A row that does not fit: ``when`` is true for it, ``reason`` says why."""

    when: pl.Expr
    reason: pl.Expr
    field: str = ""  # RECORD.FIELD, filled in when the field is compiled
    check: str = "mapping"


@dataclass(frozen=True)
class CompiledField:
    name: str
    value: pl.Expr  # the formatted text (before padding)
    width: int | None
    align: str
    fill: str
    problems: list[Problem]
    constant: str | None = None  # the value when it is the same on every row: laid out once, not per row

    def padded_constant(self) -> str | None:
        if self.constant is None:
            return None
        width = self.width or 0
        return self.constant.rjust(width, self.fill) if self.align == "right" else self.constant.ljust(width, self.fill)


@dataclass(frozen=True)
class CompiledRecord:
    name: str
    level: str
    layout: str  # fixed | csv
    length: int | None
    delimiter: str
    fields: list[CompiledField]

    @property
    def column_names(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass(frozen=True)
class CompiledMapping:
    path: Path
    target: str
    kind: str
    template: str
    extension: str
    records: list[CompiledRecord]
    header_columns: set[str] = field(default_factory=set)  # header columns used by line/allocation records

    def at_level(self, level: str) -> list[CompiledRecord]:
        return [r for r in self.records if r.level == level]


def mapping_path(mappings_dir: Path, target: str, kind: str) -> Path | None:
    """``<target>.<kind>.yaml`` (one target, a mapping per feed kind), else ``<target>.yaml``."""
    names = [f"{target}.{kind}{ext}" for ext in (".yaml", ".yml")] + [f"{target}{ext}" for ext in (".yaml", ".yml")]
    return next((mappings_dir / n for n in names if (mappings_dir / n).is_file()), None)


def load_mapping(mappings_dir: Path, target: str, layout: Layout) -> CompiledMapping:
    path = mapping_path(mappings_dir, target, layout.kind)
    if path is None:
        expected = mappings_dir / f"{target}.yaml"
        raise ConfigError(f"mapping for target {target!r} and {layout.kind} files not found: expected {expected}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read mapping: {exc}") from exc
    compiler = _Compiler(path, layout)
    mapping = compiler.compile(raw, target)
    if compiler.problems:
        raise ConfigError([f"{path}: {p}" for p in compiler.problems], hint="fix the mapping file; nothing was fetched")
    assert mapping is not None
    return mapping


class _Compiler:
    def __init__(self, path: Path, layout: Layout) -> None:
        self.path = path
        self.layout = layout
        self.problems: list[str] = []
        self.xrefs: dict[str, dict[str, str]] = {}
        self.header_columns: set[str] = set()

    def compile(self, raw: Any, target: str) -> CompiledMapping | None:
        if not isinstance(raw, dict):
            self.problems.append("expected a mapping with keys target, template, records")
            return None
        self._unknown_keys(raw, TOP_KEYS, "")
        self.problems += version_problems(raw, self.path)
        kind = raw.get("kind", self.layout.kind)
        if kind != self.layout.kind:
            self.problems.append(f"kind: the mapping is for {kind!r} files, the feed reads {self.layout.kind!r}")
        self.xrefs = self._xrefs(raw.get("xref") or {})
        records_raw = raw.get("records")
        if not isinstance(records_raw, list) or not records_raw:
            self.problems.append("records: expected a list of records")
            records_raw = []
        records = [r for i, body in enumerate(records_raw) if (r := self._record(body, f"records[{i}]"))]
        template = raw.get("template")
        if not isinstance(template, str):
            self.problems.append("template: required (a file name in templates/)")
        return CompiledMapping(
            self.path,
            str(raw.get("target", target)),
            kind,
            str(template),
            str(raw.get("extension", "txt")),
            records,
            self.header_columns,
        )

    def _unknown_keys(self, body: dict[str, Any], known: set[str], where: str) -> None:
        for key in sorted(set(body) - known):
            self.problems.append(f"{where}{'.' if where else ''}{key}: unknown key")

    def _xrefs(self, raw: Any) -> dict[str, dict[str, str]]:
        tables: dict[str, dict[str, str]] = {}
        if not isinstance(raw, dict):
            self.problems.append("xref: expected a table of name: {file, key, value}")
            return tables
        for name, spec in raw.items():
            where = f"xref.{name}"
            if not isinstance(spec, dict) or not {"file", "key", "value"} <= set(spec):
                self.problems.append(f"{where}: expected file, key and value")
                continue
            tables[name] = self._xref_table(self.path.parent / spec["file"], spec["key"], spec["value"], where)
        return tables

    def _xref_table(self, path: Path, key: str, value: str, where: str) -> dict[str, str]:
        try:
            table = pl.read_csv(path, infer_schema=False)
        except (OSError, pl.exceptions.PolarsError) as exc:
            self.problems.append(f"{where}.file: cannot read {path}: {str(exc).splitlines()[0]}")
            return {}
        missing = [c for c in (key, value) if c not in table.columns]
        if missing:
            self.problems.append(
                f"{where}: {path.name} has no column {', '.join(missing)} (it has {', '.join(table.columns)})"
            )
            return {}
        dupes = table.filter(pl.col(key).is_duplicated())[key].unique().to_list()
        if dupes:
            self.problems.append(f"{where}: {path.name} lists key {dupes[0]!r} more than once")
        return dict(zip(table[key].to_list(), table[value].to_list(), strict=True))

    def _record(self, body: Any, where: str) -> CompiledRecord | None:
        if not isinstance(body, dict) or "name" not in body:
            self.problems.append(f"{where}: expected a record with name, level and fields")
            return None
        where = f"{where} ({body['name']})"
        self._unknown_keys(body, RECORD_KEYS, where)
        level = body.get("level", "header")
        if level not in self.layout.roles:
            self.problems.append(f"{where}.level: {level!r} is not one of {', '.join(self.layout.roles)}")
            level = "header"
        layout = body.get("layout", "fixed")
        if layout not in ("fixed", "csv"):
            self.problems.append(f"{where}.layout: {layout!r} is not fixed or csv")
        fields_raw = body.get("fields")
        if not isinstance(fields_raw, list) or not fields_raw:
            self.problems.append(f"{where}.fields: expected a list of fields")
            fields_raw = []
        fields = [
            f
            for i, spec in enumerate(fields_raw)
            if (f := self._field(spec, f"{where}.fields[{i}]", str(body["name"]), level, layout))
        ]
        length = body.get("length")
        fixed_total = sum(f.width or 0 for f in fields)
        if layout == "fixed" and isinstance(length, int) and fixed_total > length:
            self.problems.append(f"{where}.length: the fields add up to {fixed_total} characters, more than {length}")
        return CompiledRecord(str(body["name"]), level, layout, length, str(body.get("delimiter", ",")), fields)

    def _field(self, spec: Any, where: str, record: str, level: str, layout: str) -> CompiledField | None:
        if not isinstance(spec, dict) or "name" not in spec:
            self.problems.append(f"{where}: expected a field with a name")
            return None
        where = f"{where} ({record}.{spec['name']})"
        self._unknown_keys(spec, FIELD_KEYS, where)
        producers = [p for p in PRODUCERS if p in spec]
        if len(producers) != 1:
            self.problems.append(f"{where}: give exactly one of {', '.join(PRODUCERS)}")
            return None
        width = spec.get("width", spec.get("max_length"))
        if layout == "fixed" and not isinstance(width, int):
            self.problems.append(f"{where}.width: fixed-width records need an integer width")
        label = f"{record}.{spec['name']}"
        value, problems = self._value(spec, producers[0], where, level, label)
        constant = _constant(spec, producers[0])
        if constant is not None and isinstance(width, int) and len(constant) > width:
            self.problems.append(f"{where}.const: {constant!r} is {len(constant)} characters, the field holds {width}")
        elif constant is None and isinstance(width, int):
            problems.append(_too_long(value, width, label))
        align = spec.get("align", "left")
        fill = str(spec.get("fill", " "))
        if align not in ("left", "right") or len(fill) != 1:
            self.problems.append(f"{where}: align is left or right, fill one character")
        pad = width if layout == "fixed" and isinstance(width, int) else None
        labelled = [Problem(p.when, p.reason, label, p.check) for p in problems]
        return CompiledField(str(spec["name"]), value, pad, align, fill, labelled, constant)

    def _value(
        self, spec: dict[str, Any], producer: str, where: str, level: str, label: str
    ) -> tuple[pl.Expr, list[Problem]]:
        problems: list[Problem] = []
        value = produced = self._produce(spec, producer, where, level)
        if "map" in spec:
            value = self._lookup(value, spec["map"], f"{where}.map", label, "has no entry in the value map", problems)
        if "xref" in spec:
            table = self.xrefs.get(spec["xref"])
            if table is None:
                self.problems.append(f"{where}.xref: no xref table named {spec['xref']!r}")
                table = {}
            value = self._lookup(value, table, f"{where}.xref", label, f"is not in xref table {spec['xref']}", problems)
        if "date" in spec:
            value = local_datetime(value).dt.to_string(str(spec["date"]))
        if "number" in spec:
            value = self._number(value, spec["number"], f"{where}.number", label, problems)
        if spec.get("oneline"):
            value = value.str.replace_all(r"\s*[\r\n]+\s*", " ")
        if spec.get("upper"):
            value = value.str.to_uppercase()
        if "default" in spec:
            value = value.fill_null(pl.lit(str(spec["default"])))
        if spec.get("required"):  # a failed lookup has already said why the value is missing
            problems.append(
                Problem(
                    value.is_null() & produced.is_null(),
                    pl.lit(f"{label}: no value, and the target requires one"),
                    check="required",
                )
            )
        return value, problems

    def _produce(self, spec: dict[str, Any], producer: str, where: str, level: str) -> pl.Expr:
        body = spec[producer]
        if producer == "const":
            return pl.lit(str(body), pl.String)
        if producer == "source":
            return self._column(body, f"{where}.source", level)
        if producer == "sequence":
            if (
                not isinstance(body, dict)
                or not isinstance(body.get("start", 1), int)
                or not isinstance(body.get("step", 1), int)
            ):
                self.problems.append(f"{where}.sequence: expected {{start: N, step: N}}")
                return pl.lit(None, pl.String)
            return (pl.lit(body.get("start", 1)) + (pl.col("_row") - 1) * body.get("step", 1)).cast(pl.String)
        parts = body if isinstance(body, list) else []
        if not parts:
            self.problems.append(f"{where}.concat: expected a list of strings and {{source: column}} items")
        exprs = [
            self._column(p["source"], f"{where}.concat[{i}]", level) if isinstance(p, dict) else pl.lit(str(p))
            for i, p in enumerate(parts)
        ]
        return pl.concat_str(exprs, ignore_nulls=True)

    def _column(self, name: Any, where: str, level: str) -> pl.Expr:
        if not isinstance(name, str):
            self.problems.append(f"{where}: expected a column name")
            return pl.lit(None, pl.String)
        if name in RESERVED:
            return pl.col(name).cast(pl.String)
        own, _, column = name.partition(".") if name.startswith("header.") and level != "header" else ("", "", name)
        known = self.layout.role("header" if own else level).columns
        if column not in known:
            self.problems.append(f"{where}: {column!r} is not a column of {own or level} records")
        if own:
            self.header_columns.add(column)
        return pl.col(name)

    def _lookup(
        self, value: pl.Expr, table: Any, where: str, label: str, what: str, problems: list[Problem]
    ) -> pl.Expr:
        if not isinstance(table, dict):
            self.problems.append(f"{where}: expected a table of code: value")
            return value
        keys, values = [str(k) for k in table], [str(v) for v in table.values()]
        mapped = value.replace_strict(keys, values, default=None, return_dtype=pl.String)
        check = "xref" if "xref" in where else "value_map"
        problems.append(
            Problem(
                value.is_not_null() & mapped.is_null(),
                pl.format(f"{label}: {{}} {what}", pl.format("'{}'", value)),
                check=check,
            )
        )
        return mapped

    def _number(self, value: pl.Expr, spec: Any, where: str, label: str, problems: list[Problem]) -> pl.Expr:
        decimals = spec.get("decimals") if isinstance(spec, dict) else None
        if not isinstance(decimals, int) or not 0 <= decimals <= 12:
            self.problems.append(f"{where}: expected {{decimals: 0..12}}")
            return value
        rounded = value.cast(pl.Decimal(38, decimals), strict=False)
        # count the digits actually written: a cast to any fixed scale would itself round
        significant = value.str.extract(r"\.(\d*[1-9])0*$", 1).str.len_chars().fill_null(0)
        # rounding a price or quantity would change the order: refuse rather than guess
        lossy = value.is_not_null() & (rounded.is_null() | (significant > decimals))
        message = pl.format(f"{label}: '{{}}' is not a number with at most {decimals} decimals", value)
        problems.append(Problem(lossy, message, check="decimals"))
        return rounded.cast(pl.String)


def _constant(spec: dict[str, Any], producer: str) -> str | None:
    """A ``const`` that no transform can change per row (upper and default keep it constant)."""
    if producer != "const" or any(k in spec for k in ("map", "xref", "date", "number", "oneline", "required")):
        return None
    text = str(spec["const"])
    return text.upper() if spec.get("upper") else text


def _too_long(value: pl.Expr, width: int, label: str) -> Problem:
    length = value.str.len_chars()
    shown = pl.when(length > 40).then(value.str.slice(0, 37) + pl.lit("...")).otherwise(value)
    message = pl.format(f"{label}: '{{}}' is {{}} characters, the field holds {width}", shown, length)
    return Problem(length > width, message, check="max_length")


def local_datetime(text: pl.Expr) -> pl.Expr:
    """Coupa's date-times as written (the offset dropped): the ERP wants the date the user saw."""
    normal = text.str.replace(" ", "T", literal=True)
    return pl.coalesce(
        normal.str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False),
        normal.str.slice(0, 16).str.to_datetime("%Y-%m-%dT%H:%M", strict=False),
        normal.str.slice(0, 10).str.to_datetime("%Y-%m-%d", strict=False),
    )
