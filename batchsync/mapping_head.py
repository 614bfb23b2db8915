"""A mapping's top-level keys that every record reads: ``encoding``, ``idoc``, ``xref`` and ``records_from``
(mapping.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from batchsync.idoc import DATA_HEADER, ORDERS, SEGMENT_NAMES, BasicType, definition_path, load_basic_type
from batchsync.mapping_values import CHARSET_ALIASES, CHARSETS, WIDTH_UNITS, read_xref_table


def encoding(raw: Any, problems: list[str]) -> tuple[str, bool]:
    """``encoding: {charset: utf-8 | iso-8859-1 | ascii, width_unit: characters | bytes}``: the code page, and
    whether widths count UTF-8 bytes."""
    if not isinstance(raw, dict) or set(raw) - {"charset", "width_unit"}:
        problems.append("encoding: expected {charset: utf-8, width_unit: characters}")
        return "utf-8", False
    given = str(raw.get("charset", "utf-8")).lower()
    charset = CHARSET_ALIASES.get(given, given)
    if charset not in CHARSETS:
        problems.append(f"encoding.charset: {given!r} is not one of {', '.join(CHARSETS)}")
        charset = "utf-8"
    unit = raw.get("width_unit", "characters")
    if unit not in WIDTH_UNITS:
        problems.append(f"encoding.width_unit: {unit!r} is not characters or bytes")
    # in a single-byte code page a character is a byte: only UTF-8 makes the two differ
    return charset, unit == "bytes" and charset == "utf-8"


IDOC_KEYS = {"basic_type", "changes_basic_type", "segment_names", "order"}


def basic_type(raw: Any, folder: Path, problems: list[str]) -> tuple[BasicType, str, str] | None:
    """``idoc: {basic_type: ORDERS05, segment_names: segment | definition, order: by_item | by_segment}``, and
    ``changes_basic_type: PORDCH03`` where changes go with another basic type: checked against SAP's definitions."""
    if raw is None:
        return None
    style = raw.get("segment_names", "segment") if isinstance(raw, dict) else None
    order = raw.get("order", "by_item") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or not isinstance(raw.get("basic_type"), str) or style not in SEGMENT_NAMES:
        problems.append("idoc: expected {basic_type: NAME, segment_names: segment or definition}")
        return None
    problems += [f"idoc.{key}: unknown key" for key in sorted(set(raw) - IDOC_KEYS)]
    if order not in ORDERS:
        problems.append(f"idoc.order: {order!r} is not one of {', '.join(ORDERS)}")
        order = "by_item"
    names = [raw["basic_type"], *([str(raw["changes_basic_type"])] if "changes_basic_type" in raw else [])]
    types = []
    for name in names:
        path = definition_path(folder, name)
        try:
            types.append(load_basic_type(path))
        except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            problems.append(f"idoc: cannot read SAP's definition of {name} ({path}): {exc}")
            return None
    merged = types[0] if len(types) == 1 else types[0].with_changes(types[1])
    return merged, str(style), str(order)


def xref_tables(raw: Any, folder: Path, problems: list[str]) -> dict[str, dict[str, str]]:
    """``xref: {name: {file, key, value}}``: each table read whole, its path relative to the mapping."""
    tables: dict[str, dict[str, str]] = {}
    if not isinstance(raw, dict):
        problems.append("xref: expected a table of name: {file, key, value}")
        return tables
    for name, spec in raw.items():
        where = f"xref.{name}"
        if not isinstance(spec, dict) or not {"file", "key", "value"} <= set(spec):
            problems.append(f"{where}: expected file, key and value")
            continue
        tables[name] = read_xref_table(folder / spec["file"], spec["key"], spec["value"], where, problems)
    return tables


INHERITED = ("records", "xref", "idoc")  # what records_from takes from the other mapping, unless given here


def records_from(raw: dict[str, Any], folder: Path, problems: list[str]) -> dict[str, Any]:
    """``records_from: {file: sap_pordcr1.yaml, layout: xml}``: the records of another mapping of the same
    kind (with its xref tables and idoc), so one target is another's records in another encoding. ``layout:
    xml`` writes them as IDoc-XML segments: no record length, no data-record header (SEGNAM ... HLEVEL), which
    IDoc-XML says by nesting."""
    spec = raw.get("records_from")
    if spec is None:
        return raw
    if not isinstance(spec, dict) or not isinstance(spec.get("file"), str) or set(spec) - {"file", "layout"}:
        problems.append("records_from: expected {file: MAPPING.yaml, layout: xml}")
        return raw
    if "records" in raw:
        problems.append("records_from: give records or records_from, not both")
    path = folder / spec["file"]
    try:
        other = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"records_from.file: cannot read {path}: {exc}")
        return raw
    if not isinstance(other, dict) or other.get("kind") != raw.get("kind"):
        problems.append(f"records_from.file: {spec['file']} is not a mapping of {raw.get('kind')} files")
        return raw
    layout = spec.get("layout")
    if layout not in (None, "xml"):
        problems.append(f"records_from.layout: {layout!r} is not xml")
    taken = {key: other[key] for key in INHERITED if key in other}
    if layout == "xml":
        taken["records"] = [_as_idoc_xml(r) for r in taken.get("records", [])]
    return taken | {k: v for k, v in raw.items() if k != "records_from"}


def _as_idoc_xml(record: Any) -> Any:
    if not isinstance(record, dict):
        return record  # the record's own check names it
    fields = record.get("fields", [])
    if record.get("name") != "EDI_DC40" and isinstance(fields, list):
        fields = [f for f in fields if not (isinstance(f, dict) and f.get("name") in DATA_HEADER)]
    return {k: v for k, v in record.items() if k != "length"} | {"layout": "xml", "fields": fields}
