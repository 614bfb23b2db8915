"""``outputs:`` in the mapping language: the files a target writes per source file.

A target without ``outputs`` writes one file (``template``, ``extension``). With it, each output names
its template, its extension and the records it lays out; the first is the main file, the others are
written beside it (``<stem>.<sha>.<target>.<name>.<extension>``), all published under one manifest.
``line_ending: lf | crlf`` (the mapping's, or an output's own) ends every line of the file.
``decisions: [new]`` lays out only the documents sent so (``_decision``), for a receiver that takes one
kind of document per file (IDoc-XML: one basic type per file, PORDCR102 for a new PO, PORDCH03 for the
rest); such an output holding no document of its own is not written (docs/handoff.md).
"""

from __future__ import annotations

import re
from typing import Any

from batchsync.mapping_csv import column_row
from batchsync.mapping_model import CompiledRecord, Output

OUTPUT_KEYS = {"name", "template", "extension", "records", "line_ending", "decisions"}
LINE_ENDINGS = {"lf": "\n", "crlf": "\r\n"}
_NAME = re.compile(r"^[a-z0-9_]+$")


def compile_outputs(
    raw: dict[str, Any], records: list[CompiledRecord], decisions: tuple[str, ...], problems: list[str]
) -> list[Output]:
    """The main output first; every problem named by its key. ``decisions``: the kind's ``_decision`` values."""
    newline = _newline(raw, "", "\n", problems)
    if "outputs" not in raw:
        template = raw.get("template")
        if not isinstance(template, str):
            problems.append("template: required (a file name in templates/)")
        columns = column_row([(r.name, r.csv, r.column_names) for r in records], problems)
        return [Output("", str(template), str(raw.get("extension", "txt")), columns, newline=newline)]
    for key in ("template", "extension"):
        if key in raw:
            problems.append(f"{key}: give template and extension, or outputs, not both (each output has its own)")
    listed = raw["outputs"]
    if not isinstance(listed, list) or not listed:
        problems.append("outputs: expected a list of {name, template, extension, records}")
        return [Output("", "", "txt")]
    outputs = [_output(spec, f"outputs[{i}]", records, newline, decisions, problems) for i, spec in enumerate(listed)]
    names = [o.name for o in outputs]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"outputs: {name!r} names two outputs (a name is part of each file's name)")
    _check_covered(outputs, decisions, problems)
    return outputs


def _decisions(
    spec: dict[str, Any], where: str, decisions: tuple[str, ...], problems: list[str]
) -> tuple[str, ...] | None:
    """An output's ``decisions``: None (every document) when not given."""
    given = spec.get("decisions")
    if given is None:
        return None
    if not isinstance(given, list) or not given or not all(isinstance(d, str) for d in given):
        problems.append(f"{where}.decisions: expected a list of decisions, some of {', '.join(decisions)}")
        return None
    for decision in [d for d in given if d not in decisions]:
        problems.append(f"{where}.decisions: {decision!r} is not how a document is sent ({', '.join(decisions)})")
    return tuple(given)


def _check_covered(outputs: list[Output], decisions: tuple[str, ...], problems: list[str]) -> None:
    """With outputs split by decision, each document goes to exactly one file: each decision to one output."""
    split = [o for o in outputs if o.decisions is not None]
    if not split:
        return
    if len(split) < len(outputs):
        problems.append("outputs: give every output decisions, or none (each document goes to one file)")
        return
    taken = [d for o in split for d in o.decisions or ()]
    for decision in (d for d in decisions if d not in taken):
        problems.append(
            f"outputs: no output takes the documents sent as {decision!r} (add it to an output's decisions)"
        )
    for decision in sorted({d for d in taken if taken.count(d) > 1}):
        problems.append(f"outputs: documents sent as {decision!r} would go to two files (give it to one output)")


def _output(
    spec: Any,
    where: str,
    records: list[CompiledRecord],
    newline: str,
    decisions: tuple[str, ...],
    problems: list[str],
) -> Output:
    if not isinstance(spec, dict):
        problems.append(f"{where}: expected {{name, template, extension, records}}")
        return Output("", "", "txt")
    for key in sorted(set(spec) - OUTPUT_KEYS):
        problems.append(f"{where}.{key}: unknown key")
    name, template = spec.get("name"), spec.get("template")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"{where}.name: expected lower-case letters, digits and _ (it becomes part of the file name)")
    if not isinstance(template, str):
        problems.append(f"{where}.template: required (a file name in templates/)")
    known = {r.name: r for r in records}
    wanted = spec.get("records", list(known))
    if not isinstance(wanted, list):
        problems.append(f"{where}.records: expected a list of record names")
        wanted = []
    for record in [w for w in wanted if w not in known]:
        problems.append(f"{where}.records: no record named {record!r}")
    laid_out = [known[w] for w in wanted if w in known]
    columns = column_row([(r.name, r.csv, r.column_names) for r in laid_out], problems)
    own = _newline(spec, f"{where}.", newline, problems)
    extension = str(spec.get("extension", "txt"))
    laid = tuple(r.name for r in laid_out)
    return Output(str(name), str(template), extension, columns, laid, own, _decisions(spec, where, decisions, problems))


def _newline(spec: dict[str, Any], where: str, default: str, problems: list[str]) -> str:
    if "line_ending" not in spec:
        return default
    given = spec["line_ending"]
    if given not in LINE_ENDINGS:
        problems.append(f"{where}line_ending: {given!r} is not lf or crlf")
        return default
    return LINE_ENDINGS[given]
