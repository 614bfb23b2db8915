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

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from batchsync.config import mapping_path
from batchsync.errors import ConfigError
from batchsync.idoc import BasicType, RecordShape, check_records
from batchsync.layouts import Layout
from batchsync.mapping_compute import compile_compute
from batchsync.mapping_csv import csv_options, fixed_only_keys
from batchsync.mapping_head import basic_type, encoding, records_from, xref_tables
from batchsync.mapping_idoc import IdocParts, check_numbering
from batchsync.mapping_lookup import Lookup, checked_date, lookup, on_missing, uncovered_decisions
from batchsync.mapping_model import (
    FIELD_KEYS,
    PRODUCERS,
    RECORD_KEYS,
    RESERVED,
    TOP_KEYS,
    CompiledField,
    CompiledMapping,
    CompiledRecord,
    Problem,
)
from batchsync.mapping_outputs import compile_outputs
from batchsync.mapping_values import constant_of, decimal_number, first_of, too_long, unencodable, uses_reserved
from batchsync.mapping_version import version_problems
from batchsync.mapping_when import Where, compile_choose, compile_when, level_filters
from batchsync.textlines import CONTROL, CONTROL_RE


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
        problems = [f"{path}: {p}" for p in compiler.problems]
        raise ConfigError(problems, hint="fix the mapping file; nothing was fetched", where=str(path))
    assert mapping is not None
    return mapping


class _Compiler:
    def __init__(self, path: Path, layout: Layout) -> None:
        self.path = path
        self.layout = layout
        self.problems: list[str] = []
        self.xrefs: dict[str, dict[str, str]] = {}
        self.header_columns: set[str] = set()
        self.line_columns: set[str] = set()
        self.idoc: tuple[BasicType, str, str] | None = None
        self.parts = IdocParts(None)
        self.shapes: list[RecordShape] = []  # what the IDoc check reads of each record
        self.parents: dict[str, list[str]] = {}  # record -> the records its psgnum fields name
        self.segment = self.record_name = ""
        self.wheres: list[Where] = []
        self.charset, self.in_bytes = "utf-8", False

    def compile(self, raw: Any, target: str) -> CompiledMapping | None:
        if not isinstance(raw, dict):
            self.problems.append("expected a mapping with keys target, template, records")
            return None
        self._unknown_keys(raw, TOP_KEYS, "")
        self.problems += version_problems(raw, self.path)
        kind = raw.get("kind", self.layout.kind)
        if kind != self.layout.kind:  # every other key would be judged against the wrong columns: say this only
            wanted = f"{target}.{self.layout.kind}.yaml"
            self.problems.append(
                f"kind: the mapping is for {kind!r} files, the feed reads {self.layout.kind!r}: "
                f"write {wanted} beside it, or give the feed a target that has one"
            )
            return None
        raw = records_from(raw, self.path.parent, self.problems)
        self.xrefs = xref_tables(raw.get("xref") or {}, self.path.parent, self.problems)
        self.charset, self.in_bytes = encoding(raw.get("encoding", {}), self.problems)
        self.idoc = basic_type(raw.get("idoc"), self.path.parent, self.problems)
        self.parts = IdocParts(self.idoc, partial=self.layout.partial)
        records_raw = raw.get("records")
        if not isinstance(records_raw, list) or not records_raw:
            self.problems.append("records: expected a list of records")
            records_raw = []
        records = [r for i, body in enumerate(records_raw) if (r := self._record(body, f"records[{i}]"))]
        records = self.parts.enclosing(records, self.problems)
        shapes = [(r.name, r.level, r.numbered) for r in records]
        self.problems += check_numbering(shapes, self.parents, self.parts.by_segment)
        names = {role: [r.name for r in records if r.level == role] for role in self.layout.roles}
        where = level_filters(self.wheres, names, self.layout.noun, self.problems)
        if self.idoc is not None:
            self.problems += check_records(self.idoc[0], self.shapes, self.idoc[1])
        return CompiledMapping(
            self.path,
            str(raw.get("target", target)),
            kind,
            records,
            compile_outputs(raw, records, self.layout.decisions.get("_decision", ()), self.problems),
            self.header_columns,
            self.charset,
            self.line_columns,
            where,
            self.parts.by_segment,
        )

    def _unknown_keys(self, body: dict[str, Any], known: set[str], where: str) -> None:
        for key in sorted(set(body) - known):
            self.problems.append(f"{where}{'.' if where else ''}{key}: unknown key")

    def _record(self, body: Any, where: str) -> CompiledRecord | None:
        if not isinstance(body, dict) or "name" not in body:
            self.problems.append(f"{where}: expected a record with name, level and fields")
            return None
        name, at = str(body["name"]), where
        where = f"{where} ({name})"
        self._unknown_keys(body, RECORD_KEYS, where)
        level = body.get("level", "header")
        if level not in self.layout.roles:
            self.problems.append(f"{where}.level: {level!r} is not one of {', '.join(self.layout.roles)}")
            level = "header"
        layout = body.get("layout", "fixed")
        if layout not in ("fixed", "csv", "xml"):
            self.problems.append(f"{where}.layout: {layout!r} is not fixed, csv or xml")
        self.segment, self.record_name = str(body.get("segment", name)), name
        when = compile_when(body["when"], self._in(level), f"{where}.when", self.problems) if "when" in body else None
        if "where" in body:
            kept = compile_when(body["where"], self._in(level), f"{where}.where", self.problems)
            self.wheres.append(Where(where, level, body["where"], kept))
        lines_of = self._lines_of(body.get("lines_of"), f"{where}.lines_of", level)
        fields_raw = body.get("fields")
        if not isinstance(fields_raw, list) or not fields_raw:
            self.problems.append(f"{where}.fields: expected a list of fields")
            fields_raw = []
        fields = [
            f
            for i, spec in enumerate(fields_raw)
            if (f := self._field(spec, f"{where}.fields[{i}]", name, level, layout))
        ]
        length = body.get("length")
        fixed_total = sum(f.width or 0 for f in fields)
        if layout == "fixed" and isinstance(length, int) and fixed_total > length:
            self.problems.append(f"{where}.length: the fields add up to {fixed_total} characters, more than {length}")
        numbered = any(isinstance(f, dict) and "segnum" in f for f in fields_raw)
        parents = [str(f["psgnum"]) for f in fields_raw if isinstance(f, dict) and "psgnum" in f]
        self.parents[name] = parents
        self.shapes.append(
            RecordShape(
                at + f" ({name})",
                name,
                self.segment,
                level,
                length if isinstance(length, int) else None,
                [(f.name, f.width, f.constant) for f in fields],
                self._segment_of(parents[0]) if parents else None,
                layout == "xml",
            )
        )
        csv = csv_options(body, layout, where, self.problems)
        position = self.parts.place(self.segment, layout, where, self.problems)
        return CompiledRecord(
            name,
            level,
            layout,
            length,
            csv.delimiter,
            fields,
            self.segment,
            when,
            lines_of,
            numbered,
            csv,
            position,
        )

    def _segment_of(self, record: str) -> str:
        return next((s.segment for s in self.shapes if s.name == record), record)

    def _in(self, level: str) -> Any:
        return lambda name, where: self._column(name, where, level)

    def _lines_of(self, spec: Any, where: str, level: str) -> tuple[pl.Expr, int, bool] | None:
        """``lines_of: {source: description, width: 70}``: the record once per text line (textlines.py)."""
        if spec is None:
            return None
        if not isinstance(spec, dict) or "source" not in spec or not isinstance(spec.get("width"), int):
            self.problems.append(f"{where}: expected {{source: column, width: N}}")
            return None
        return self._column(spec["source"], f"{where}.source", level), int(spec["width"]), self.in_bytes

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
        producer = producers[0]
        width = spec.get("width", spec.get("max_length"))
        if layout == "csv":
            fixed_only_keys(spec, where, self.problems)
        elif layout != "csv" and not isinstance(width, int):
            self.problems.append(f"{where}.width: fixed-width and IDoc-XML fields need an integer width")
        label = f"{record}.{spec['name']}"
        value, problems = self._value(spec, producer, where, level, label)
        if layout != "csv":
            value = self._one_record(value, spec, producer, where, label, problems)
        if spec.get("short_text") and isinstance(width, int):  # declared: the first characters, SAP's short text
            value = first_of(value, width, self.in_bytes)
        constant = self._constant(spec, producer)
        if constant is not None:
            self._check_constant(constant, width, where)
        elif isinstance(width, int) and not spec.get("short_text"):
            problems.append(too_long(value, width, label, self.in_bytes))
        if constant is None and (cannot := unencodable(value, self.charset, label)) is not None:
            problems.append(cannot)
        numbered = producer in ("segnum", "psgnum")
        align = spec.get("align", "right" if numbered else "left")
        fill = str(spec.get("fill", "0" if numbered else " "))
        if align not in ("left", "right") or len(fill) != 1:
            self.problems.append(f"{where}: align is left or right, fill one character")
        # an IDoc-XML field is not padded, but has SAP's width all the same (the IDoc check reads it)
        pad = width if layout != "csv" and isinstance(width, int) else None
        labelled = [replace(p, field=label) for p in problems]
        mirrors = producer == "sent"  # an X flag says what the fields it names say
        compared = spec.get(
            "compare", constant is None and not numbered and not mirrors and not uses_reserved(spec, producer)
        )
        self.parts.keep(record, str(spec["name"]), level, value, bool(compared))
        return CompiledField(
            str(spec["name"]), value, pad, align, fill, labelled, constant, bool(compared), self.in_bytes
        )

    def _check_constant(self, constant: str, width: Any, where: str) -> None:
        size = len(constant.encode()) if self.in_bytes else len(constant)
        if isinstance(width, int) and size > width:
            unit = "bytes" if self.in_bytes else "characters"
            self.problems.append(f"{where}.const: {constant!r} is {size} {unit}, the field holds {width}")
        try:
            constant.encode(self.charset)
        except UnicodeEncodeError:
            self.problems.append(f"{where}.const: {constant!r} cannot be written in {self.charset}")

    def _one_record(
        self, value: pl.Expr, spec: dict[str, Any], producer: str, where: str, label: str, problems: list[Problem]
    ) -> pl.Expr:
        """No field may break a fixed-width record: a text's control characters become spaces; a code's reject."""
        if producer == "const":
            if isinstance(spec["const"], str) and CONTROL_RE.search(spec["const"]):
                self.problems.append(f"{where}.const: holds a line break or control character")
            return value
        text = producer in ("source", "concat") and not any(k in spec for k in ("map", "xref", "date", "number"))
        kind = spec.get("kind", "text" if text else "code")
        if kind not in ("text", "code"):
            self.problems.append(f"{where}.kind: {kind!r} is not text or code")
        if kind == "text":
            return value.str.replace_all(CONTROL, " ")
        shown = value.str.replace_all(CONTROL, "␣")
        message = pl.format(f"{label}: '{{}}' holds a line break or control character", shown)
        problems.append(Problem(value.str.contains(CONTROL), message, check="control_character", value=shown))
        return value

    def _constant(self, spec: dict[str, Any], producer: str) -> str | None:
        if producer == "segment_name":
            return self.idoc[0].segment_name(self.segment, self.idoc[1]) if self.idoc else self.segment
        return constant_of(spec, producer)

    def _value(
        self, spec: dict[str, Any], producer: str, where: str, level: str, label: str
    ) -> tuple[pl.Expr, list[Problem]]:
        problems: list[Problem] = []
        if producer == "compute":  # arithmetic: its operands that are no numbers are problems of the row
            at = f"{where}.compute"
            value, problems = compile_compute(spec["compute"], self._in(level), at, label, self.problems)
            produced = value
        else:
            value = produced = self._produce(spec, producer, where, level)
        missing = on_missing(spec, where, self.problems)
        if "map" in spec:
            if gap := uncovered_decisions(spec, level, self.layout.decisions):
                self.problems.append(f"{where}.{gap}")
            what = "has no entry in the value map"
            value = lookup(value, spec["map"], Lookup(f"{where}.map", label, what, missing), problems, self.problems)
        if "xref" in spec:
            table = self.xrefs.get(spec["xref"])
            if table is None:
                self.problems.append(f"{where}.xref: no xref table named {spec['xref']!r}")
                table = {}
            what = f"is not in xref table {spec['xref']}"
            value = lookup(value, table, Lookup(f"{where}.xref", label, what, missing), problems, self.problems)
        if "date" in spec:
            value = checked_date(value, str(spec["date"]), label, problems)
        if "number" in spec:
            decimals = spec["number"].get("decimals") if isinstance(spec["number"], dict) else None
            if isinstance(spec["number"], dict) and set(spec["number"]) - {"decimals"}:
                unknown = ", ".join(sorted(set(spec["number"]) - {"decimals"}))
                self.problems.append(f"{where}.number: {unknown}: unknown key (number takes decimals only)")
            if isinstance(decimals, int) and 0 <= decimals <= 12:
                value = decimal_number(value, decimals, label, problems)
            else:
                self.problems.append(f"{where}.number: expected {{decimals: 0..12}}")
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
        if "message" in spec:  # the buyer's words for why this value cannot go to the ERP
            said = self._message(spec["message"], produced, f"{where}.message", level)
            problems = [replace(p, reason=said) for p in problems]
        return value, problems

    def _message(self, text: Any, value: pl.Expr, where: str, level: str) -> pl.Expr:
        """``"supplier {value} has no ERP vendor number"``: {value} is the source value, {column} a column."""
        if not isinstance(text, str):
            self.problems.append(f"{where}: expected a text")
            return pl.lit("")
        names = re.findall(r"\{([^{}]+)\}", text)
        parts = [value.fill_null("") if n == "value" else self._column(n, where, level).fill_null("") for n in names]
        return pl.format(re.sub(r"\{[^{}]+\}", "{}", text), *parts) if parts else pl.lit(text)

    def _produce(self, spec: dict[str, Any], producer: str, where: str, level: str) -> pl.Expr:
        body = spec[producer]
        if producer == "const":
            return pl.lit(str(body), pl.String)
        if producer == "segment_name":
            return pl.lit(self._constant(spec, producer), pl.String)
        if producer in ("segnum", "psgnum"):
            # the numbers of the segments actually written, counted by the engine (records.py)
            return pl.col(f"_segnum:{self.record_name if producer == 'segnum' else body}").cast(pl.String)
        if producer == "source":
            return self._column(body, f"{where}.source", level)
        if producer == "sent":
            return self.parts.sent(body, level, where, self.problems)
        if producer == "choose":
            return compile_choose(body, self._in(level), f"{where}.choose", self.problems)
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
        own, _, column = name.partition(".") if self._refers_up(name, level) else ("", "", name)
        known = self.layout.role(own or level).columns
        if column not in known and not (own == "line" and column in RESERVED):
            self.problems.append(f"{where}: {column!r} is not a column of {own or level} records")
        elif own == "line" and column == "_allocations":  # counted from these very records
            self.problems.append(f"{where}: line._allocations: a line's own record says how many it has")
        if own == "header":
            self.header_columns.add(column)
        elif own == "line":
            self.line_columns.add(column)
        return pl.col(name)

    def _refers_up(self, name: str, level: str) -> bool:
        """``header.<column>`` below the header; ``line.<column>`` from a record that belongs to a line."""
        if name.startswith("header.") and level != "header":
            return True
        return name.startswith("line.") and self.layout.role(level).line_key is not None
