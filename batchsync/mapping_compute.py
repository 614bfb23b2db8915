"""``compute:`` in the mapping language: arithmetic on numbers, as data.

``compute: {mul: [{source: line.quantity}, {source: account-allocation-percent}, 0.01], round: 3}``
multiplies (``add`` adds, ``sub`` takes the later operands from the first); an operand is a number,
``{source: column}`` or a nested ``{mul|add|sub: [...]}``. ``round`` is required, declared and never
implied: the result is written with exactly that many decimals. An operand that is there but is not a
number rejects the document with the reason; an absent one leaves the field empty.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any

import polars as pl

from batchsync.mapping_model import Problem

OPS = ("mul", "add", "sub")
Column = Callable[[Any, str], pl.Expr]  # the compiler's column lookup: (name, where) -> expression


def compile_compute(
    body: Any, column: Column, where: str, label: str, problems: list[str]
) -> tuple[pl.Expr, list[Problem]]:
    """The value as text with ``round`` decimals, and a problem per operand column that is no number."""
    bad: list[Problem] = []
    if not isinstance(body, dict) or "round" not in body:
        problems.append(f"{where}: expected {{mul|add|sub: [operands], round: decimals}}")
        return pl.lit(None, pl.String), bad
    decimals = body["round"]
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 12:
        problems.append(f"{where}.round: expected a number of decimals, 0..12")
        decimals = 0
    value = _operation({k: v for k, v in body.items() if k != "round"}, column, where, label, problems, bad)
    return value.round(decimals).cast(pl.Decimal(38, decimals)).cast(pl.String), bad


def _operation(
    body: dict[str, Any], column: Column, where: str, label: str, problems: list[str], bad: list[Problem]
) -> pl.Expr:
    ops = [k for k in body if k in OPS]
    if len(ops) != 1 or len(body) != 1:
        problems.append(f"{where}: expected exactly one of {', '.join(OPS)} (and round)")
        return pl.lit(None, pl.Float64)
    op, operands = ops[0], body[ops[0]]
    if not isinstance(operands, list) or len(operands) < 2:
        problems.append(f"{where}.{op}: expected a list of two or more operands")
        return pl.lit(None, pl.Float64)
    values = [_operand(o, column, f"{where}.{op}[{i}]", label, problems, bad) for i, o in enumerate(operands)]
    combine: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
        "mul": lambda a, b: a * b,
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
    }
    return reduce(combine[op], values)


def _operand(spec: Any, column: Column, where: str, label: str, problems: list[str], bad: list[Problem]) -> pl.Expr:
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return pl.lit(float(spec), pl.Float64)
    if isinstance(spec, dict) and set(spec) == {"source"}:
        text = column(spec["source"], f"{where}.source")
        number = text.str.strip_chars().cast(pl.Float64, strict=False)
        given = text.is_not_null() & (text.str.strip_chars() != "")
        reason = pl.format(f"{label}: {spec['source']} '{{}}' is not a number", text)
        bad.append(Problem(given & number.is_null(), reason, check="number", value=text))
        return number
    if isinstance(spec, dict):
        return _operation(spec, column, where, label, problems, bad)
    problems.append(f"{where}: expected a number, {{source: column}} or {{mul|add|sub: [...]}}")
    return pl.lit(None, pl.Float64)
