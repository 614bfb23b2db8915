"""``when:`` and ``where:`` conditions of the mapping language: a record written only for the rows where
``when`` holds; a level's rows the target takes at all (``where``).

A condition is data, never code:
``{present: column}``, ``{absent: column}``, ``{positive: column}`` (a number above 0),
``{not_positive: column}`` (absent, 0 or below), ``{equals: [column, text]}``,
``{in: [column, [text, ...]]}``, ``{longer_than: [column, N]}`` (characters), and the
combinations ``{all: [...]}``, ``{any: [...]}``, ``{not: condition}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

Column = Callable[[Any, str], pl.Expr]  # the compiler's column lookup: (name, where) -> expression
FORMS = ("present", "absent", "positive", "not_positive", "equals", "in", "longer_than", "all", "any", "not")


def compile_when(spec: Any, column: Column, where: str, problems: list[str]) -> pl.Expr:
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in FORMS:
        problems.append(f"{where}: expected one of {', '.join(FORMS)}, e.g. {{present: description}}")
        return pl.lit(True)
    form, body = next(iter(spec.items()))
    if form in ("all", "any"):
        if not isinstance(body, list) or not body:
            problems.append(f"{where}.{form}: expected a list of conditions")
            return pl.lit(True)
        parts = [compile_when(b, column, f"{where}.{form}[{i}]", problems) for i, b in enumerate(body)]
        return pl.all_horizontal(parts) if form == "all" else pl.any_horizontal(parts)
    if form == "not":
        return ~compile_when(body, column, f"{where}.not", problems)
    return _test(form, body, column, f"{where}.{form}", problems)


def _test(form: str, body: Any, column: Column, where: str, problems: list[str]) -> pl.Expr:
    if form in ("present", "absent", "positive", "not_positive"):
        value = column(body, where)
        present = value.is_not_null() & (value.str.strip_chars() != "")
        if form in ("present", "absent"):
            return present if form == "present" else ~present
        above = value.cast(pl.Float64, strict=False).fill_null(0) > 0
        return above if form == "positive" else ~above
    if not isinstance(body, list) or len(body) != 2:
        problems.append(f"{where}: expected [column, value]")
        return pl.lit(True)
    value = column(body[0], where)
    if form == "equals":
        return value.fill_null("") == str(body[1])
    if form == "in":
        if not isinstance(body[1], list):
            problems.append(f"{where}: expected [column, [value, ...]]")
            return pl.lit(True)
        return value.fill_null("").is_in([str(v) for v in body[1]])
    if not isinstance(body[1], int):
        problems.append(f"{where}: expected [column, number of characters]")
        return pl.lit(True)
    return value.fill_null("").str.len_chars() > body[1]


def compile_choose(body: Any, column: Column, where: str, problems: list[str]) -> pl.Expr:
    """``choose: [{when: condition, const: text | source: column}, ..., {const: ...}]``: the first branch
    whose condition holds gives the value; a last branch without ``when`` is the otherwise (else null)."""
    if not isinstance(body, list) or not body:
        problems.append(f"{where}: expected a list of {{when: condition, const: text}} branches")
        return pl.lit(None, pl.String)
    chosen: Any = None
    for i, branch in reversed(list(enumerate(body))):
        at = f"{where}[{i}]"
        value = _branch_value(branch, column, at, problems)
        if not isinstance(branch, dict) or "when" not in branch:
            if i != len(body) - 1:
                problems.append(f"{at}: only the last branch may go without when (it is the otherwise)")
            chosen = value
            continue
        condition = compile_when(branch["when"], column, f"{at}.when", problems)
        chosen = pl.when(condition).then(value).otherwise(chosen if chosen is not None else pl.lit(None, pl.String))
    return chosen if chosen is not None else pl.lit(None, pl.String)


def _branch_value(branch: Any, column: Column, where: str, problems: list[str]) -> pl.Expr:
    given = [k for k in ("const", "source") if isinstance(branch, dict) and k in branch]
    if not isinstance(branch, dict) or len(given) != 1 or set(branch) - {"when", "const", "source"}:
        problems.append(f"{where}: expected {{when: condition, const: text}} or {{when: condition, source: column}}")
        return pl.lit(None, pl.String)
    if given[0] == "const":
        return pl.lit(str(branch["const"]), pl.String)
    return column(branch["source"], f"{where}.source")


def names_in(body: Any) -> set[str]:
    """Every text in a choose body: what its conditions and values may name."""
    if isinstance(body, dict):
        return set().union(*(names_in(v) for v in body.values())) if body else set()
    if isinstance(body, list):
        return set().union(*(names_in(v) for v in body)) if body else set()
    return {body} if isinstance(body, str) else set()


# counted over the rows where: keeps, so not yet known when it decides
NOT_IN_WHERE = ("_row", "_interface_key", "_allocations", "_text_line", "_text_format")
# decided by comparing the rows kept with what the ERP has: after where:
AFTER_WHERE = ("_change", "_line_change")


@dataclass(frozen=True)
class Where:
    """One record's ``where:``: which rows of its level the target takes at all."""

    at: str  # the record's key path, for messages
    level: str
    body: Any
    condition: pl.Expr


def level_filters(
    wheres: list[Where], records: dict[str, list[str]], noun: str, problems: list[str]
) -> dict[str, pl.Expr]:
    """``where:`` filters a level's rows for every record of the level (and what belongs to a row left out
    goes with it), so all its records say the same: a record without one would be written for rows its
    siblings leave out. ``records``: the names of each level's records."""
    filters: dict[str, pl.Expr] = {}
    for level in dict.fromkeys(w.level for w in wheres):
        given = [w for w in wheres if w.level == level]
        first = given[0]
        if level == "header":
            problems.append(
                f"{first.at}.where: a {noun} is sent whole or rejected; where: filters lines and allocations"
            )
            continue
        if len(given) < len(records[level]) or any(w.body != first.body for w in given):
            problems.append(
                f"{first.at}.where: every {level} record must carry the same where: (it decides which {level} rows "
                f"the target takes at all; for one record only, use when:)"
            )
        if used := sorted(names_in(first.body) & set(NOT_IN_WHERE)):
            problems.append(f"{first.at}.where: {', '.join(used)} count the rows where: keeps; it cannot use them")
        if used := sorted(names_in(first.body) & set(AFTER_WHERE)):
            problems.append(
                f"{first.at}.where: {', '.join(used)} are decided by comparing the rows kept with what the ERP "
                f"has, after where:; it cannot use them (when: can)"
            )
        filters[level] = first.condition
    return filters
