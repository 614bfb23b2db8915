"""Property-based: mutated Coupa files are accepted, or rejected with a clear file-level error.

Valid PO exports (built with ``tests.coupa_files`` and the three shipped
samples) are damaged the ways real files get damaged: a field dropped or
duplicated, the file or a line cut, stray quotes, bytes outside UTF-8, NUL
bytes, CRLF/LF/bare-CR mixes, a BOM, blank lines, rows swapped or repeated,
values replaced. Whatever comes out, ``parse_file`` + ``validate`` +
``offline.check_file`` either finish or raise ``DataError``; never another
exception, never a hang. When they finish: every rejected PO has an error row
naming it, every accepted PO has none, no PO is half-accepted, every error
row's line is where its record starts, and no record a strict CSV reader sees
is silently dropped. A ``DataError`` names the file and the line (with the
exact byte offset for encoding faults) or the missing column.

The cases tried and their outcomes are counted and printed as one line at the
end of the module (``-s`` not needed); the seed is fixed, so the line is the
same on every run.
"""

from __future__ import annotations

import csv
import io
import re
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchsync import feeds, offline
from batchsync.errors import DataError
from batchsync.parse import LINE, ParsedFile, parse_file
from batchsync.process import PreparedFeed
from batchsync.validate import Validated, validate
from tests.conftest import FIXED_NOW, SAMPLES
from tests.coupa_files import po_file

FEED: PreparedFeed = feeds.prepare_default_feed()
WORDS = {r.role: r.word for r in FEED.layout.records}
KEYS = {r.role: r.doc_key for r in FEED.layout.records}

BASES: dict[str, bytes] = {
    "one_po.csv": po_file(
        [{"id": "4301"}],
        [{"price": "10.00", "quantity": "2"}, {"price": "3.50", "quantity": "4", "uom": "BOX"}],
        [{"order-line-num": "1", "account-allocation-percent": "100"}],
    ),
    "two_pos_names_crlf.csv": po_file(
        [{"id": "4301"}, {"id": "4302", "accounting-total-currency": "USD"}],
        [
            {"order-header-id": "4301"},
            {"order-header-id": "4302", "currency": "USD", "price": "42.50", "quantity": "20"},
            {"order-header-id": "4302", "currency": "USD", "price": "1.25", "quantity": "8"},
        ],
        [
            {"order-header-id": "4302", "order-line-num": "1", "account-allocation-percent": "60"},
            {"order-header-id": "4302", "order-line-num": "1", "account-allocation-percent": "40"},
        ],
        names_rows=True,
        crlf=True,
    ),
    "multiline.csv": po_file(
        [{"id": "4310", "supplier-name": "Société Générale d'Équipement"}],
        [
            {"description": 'Schrauben "M8"\nverzinkt, Ä Ö Ü\n100 Stk.', "price": "0.45", "quantity": "100"},
            {"description": "Montage pauschal", "price": "250.00", "quantity": None, "line-type": "OrderAmountLine"},
        ],
    ),
    "three_pos.csv": po_file(
        [{"id": "4321"}, {"id": "4322"}, {"id": "4323", "status": "Issued"}],
        [
            {"order-header-id": "4321", "price": "87.425000", "quantity": "3"},
            {"order-header-id": "4322"},
            {"order-header-id": "4322", "price": "12.5", "quantity": "12.5"},
            {"order-header-id": "4323"},
        ],
    ),
}
BASES.update({p.name: p.read_bytes() for p in sorted(SAMPLES.glob("*.csv"))})

BAD_BYTES = [b"\xff", b"\xc3", b"\x80", b"\xfe\xff", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82"]
BAD_VALUES = ["", "x", "12,50", "1\u00a0234.00", "-1", "9" * 40, "2026-13-45", "ÄÖÜ" * 40, "Line", "Header", "4301"]
FIELD = re.compile(rb'"(?:[^"]|"")*"')
BOM = b"\xef\xbb\xbf"

OUTCOMES: Counter[tuple[str, str]] = Counter()


# --- mutations: each takes a hypothesis draw and the bytes, returns the new bytes and what it did -------------


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _pick_line(draw: st.DrawFn, data: bytes) -> int:
    return draw(st.integers(0, max(0, len(_lines(data)) - 1)))


def _pick_field(draw: st.DrawFn, data: bytes, limit: int = 10_000) -> tuple[int, bytes, tuple[int, int]] | None:
    """A physical line and the span of one of its quoted fields."""
    i = _pick_line(draw, data)
    line = _lines(data)[i]
    spans = [m.span() for m in FIELD.finditer(line)][:limit]
    if not spans:
        return None
    return i, line, spans[draw(st.integers(0, len(spans) - 1))]


def _with_line(data: bytes, i: int, new: bytes) -> bytes:
    lines = _lines(data)
    lines[i] = new
    return b"\n".join(lines)


def drop_field(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    picked = _pick_field(draw, data)
    if picked is None:
        return data, "drop_field: none"
    i, line, (a, b) = picked
    note = f"drop_field line {i + 1} {line[a:b]!r}"
    if line[b : b + 1] == b",":
        b += 1
    elif line[a - 1 : a] == b",":
        a -= 1
    return _with_line(data, i, line[:a] + line[b:]), note


def duplicate_field(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    picked = _pick_field(draw, data)
    if picked is None:
        return data, "duplicate_field: none"
    i, line, (a, b) = picked
    return _with_line(data, i, line[:b] + b"," + line[a:b] + line[b:]), f"duplicate_field line {i + 1} {line[a:b]!r}"


def replace_value(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    picked = _pick_field(draw, data, limit=30)
    if picked is None:
        return data, "replace_value: none"
    i, line, (a, b) = picked
    value = draw(st.sampled_from(BAD_VALUES)).encode()
    note = f"replace_value line {i + 1} {line[a:b]!r} -> {value!r}"
    return _with_line(data, i, line[:a] + b'"' + value + b'"' + line[b:]), note


def cut_file(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    at = draw(st.integers(0, len(data)))
    return data[:at], f"cut_file at byte {at} of {len(data)}"


def cut_line(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    i = _pick_line(draw, data)
    lines = _lines(data)
    if draw(st.booleans()):
        del lines[i]
        return b"\n".join(lines), f"cut_line: line {i + 1} removed"
    at = draw(st.integers(0, len(lines[i])))
    lines[i] = lines[i][:at]
    return b"\n".join(lines), f"cut_line: line {i + 1} cut after {at} bytes"


def _insert(draw: st.DrawFn, data: bytes, what: bytes, kind: str) -> tuple[bytes, str]:
    at = draw(st.integers(0, len(data)))
    return data[:at] + what + data[at:], f"{kind} {what!r} at byte {at}"


def stray_quote(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    return _insert(draw, data, draw(st.sampled_from([b'"', b'""', b'"""'])), "stray_quote")


def not_utf8(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    return _insert(draw, data, draw(st.sampled_from(BAD_BYTES)), "not_utf8")


def nul_byte(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    return _insert(draw, data, b"\x00", "nul_byte")


def line_ending(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    style = draw(st.sampled_from(["crlf", "lf", "cr", "all_crlf", "all_lf", "all_cr"]))
    if style == "all_cr":  # classic Mac line breaks
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r"), "line_ending: all bare CR"
    if style == "all_crlf":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), "line_ending: all CRLF"
    if style == "all_lf":
        return data.replace(b"\r\n", b"\n"), "line_ending: all LF"
    lines = _lines(data)
    if len(lines) < 2:
        return data, "line_ending: none"
    i = draw(st.integers(0, len(lines) - 2))  # a line that ends in a line break
    body = lines[i].rstrip(b"\r")
    if style == "crlf":
        lines[i] = body + b"\r"
    elif style == "lf":
        lines[i] = body
    else:  # a bare CR instead of the line break
        lines[i : i + 2] = [body + b"\r" + lines[i + 1]]
    return b"\n".join(lines), f"line_ending: line {i + 1} ends {style.upper()}"


def bom(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    where = draw(st.sampled_from(["start", "twice", "inside"]))
    if where == "start":
        return BOM + data, "bom at the start"
    if where == "twice":
        return BOM + BOM + data, "bom twice at the start"
    return _insert(draw, data, BOM, "bom")


def blank_lines(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    lines = _lines(data)
    i = draw(st.integers(0, len(lines)))
    blank = draw(st.sampled_from([b"", b"\r", b" ", b",,"]))
    n = draw(st.integers(1, 3))
    lines[i:i] = [blank] * n
    return b"\n".join(lines), f"blank_lines: {n} x {blank!r} before line {i + 1}"


def swap_rows(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    lines = _lines(data)
    i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
    lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines), f"swap_rows: lines {i + 1} and {j + 1}"


def duplicate_row(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    lines = _lines(data)
    i = draw(st.integers(0, len(lines) - 1))
    at = draw(st.integers(0, len(lines)))
    lines.insert(at, lines[i])
    return b"\n".join(lines), f"duplicate_row: line {i + 1} again before line {at + 1}"


Mutation = Callable[[st.DrawFn, bytes], tuple[bytes, str]]
ALL: dict[str, Mutation] = {
    "drop_field": drop_field,
    "duplicate_field": duplicate_field,
    "replace_value": replace_value,
    "cut_file": cut_file,
    "cut_line": cut_line,
    "stray_quote": stray_quote,
    "not_utf8": not_utf8,
    "nul_byte": nul_byte,
    "line_ending": line_ending,
    "bom": bom,
    "blank_lines": blank_lines,
    "swap_rows": swap_rows,
    "duplicate_row": duplicate_row,
}
# mutations that keep the bytes readable, so the file usually reaches validation and the PO decisions
RECORD_LEVEL = ["replace_value", "swap_rows", "duplicate_row", "cut_line", "blank_lines", "line_ending"]


class Mutated:
    """A damaged file; its repr (what hypothesis prints for a failing case) says how it was made, not its bytes."""

    def __init__(self, name: str, data: bytes, steps: list[str]) -> None:
        self.name, self.data, self.steps = name, data, steps

    def __repr__(self) -> str:
        return f"Mutated({self.name!r}, steps={self.steps})"


@st.composite
def mutated_files(draw: st.DrawFn, kinds: list[str]) -> Mutated:
    name = draw(st.sampled_from(sorted(BASES)))
    data = BASES[name]
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        data, note = ALL[draw(st.sampled_from(kinds))](draw, data)
        steps.append(note)
    return Mutated(name, data, steps)


# --- running one case, with a guard against hangs ----------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang("no answer within 10 s: the parser or validator hangs on this input")


@contextmanager
def no_hang(seconds: int = 10) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    parsed: ParsedFile
    validated: Validated
    errors: pl.DataFrame  # every error row of the file (validation, and the mapping when checked)
    check: offline.FileCheck | None  # None when only parse + validate ran


def run_case(tmp: Path, case: Mutated, *, with_mapping: bool = True) -> Outcome | DataError:
    """parse + validate (+ offline.check_file, which adds the mapping); a DataError is returned, anything else raised.

    With the mapping, ``offline.check_file`` is run once and its own ``parse_file`` and ``validate`` results are
    captured, so the frames checked below are exactly the ones the offline check worked on.
    """
    path = tmp / case.name
    path.write_bytes(case.data)
    seen: dict[str, Any] = {}

    def spy(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen[key] = fn(*args, **kwargs)
            return seen[key]

        return wrapper

    with no_hang(), pytest.MonkeyPatch.context() as mp:
        try:
            if not with_mapping:
                parsed = parse_file(path, FEED.layout, display_name=case.name)
                validated = validate(parsed, FEED.layout, FEED.kind.models, FEED.kind.rules)
                return Outcome(parsed, validated, validated.errors, None)
            mp.setattr(offline, "parse_file", spy("parsed", offline.parse_file))
            mp.setattr(offline, "validate", spy("validated", offline.validate))
            check = offline.check_file(path, FEED, FIXED_NOW)
        except DataError as exc:
            return exc
    return Outcome(seen["parsed"], seen["validated"], check.errors, check)


def first_bad_byte(data: bytes) -> int | None:
    """Where a strict UTF-8 reader that refuses NUL first fails, like bytescan.scan_bytes."""
    nul = data.find(b"\x00")
    try:
        data.decode("utf-8")
        bad = None
    except UnicodeDecodeError as exc:
        bad = exc.start
    found = [o for o in (bad, None if nul < 0 else nul) if o is not None]
    return min(found) if found else None


def assert_clear_file_error(case: Mutated, exc: DataError) -> None:
    message = exc.message
    assert message.startswith(f"{case.name}: "), message
    located = "line " in message or "byte offset" in message
    named_column = exc.column is not None and repr(exc.column) in message  # §6: a missing column is named
    assert located or named_column, f"the message gives no line, byte offset or column: {message}"
    assert exc.hint, message
    bad = first_bad_byte(case.data)
    if bad is not None:  # an encoding fault is found first, at its exact byte, on its physical line
        assert exc.offset == bad, message
        assert exc.line == case.data[:bad].count(b"\n") + 1, message
        assert f"line {exc.line}, byte offset {bad}:" in message, message
    if exc.line is not None:
        lines = line_count(case.data)
        assert 1 <= exc.line <= max(lines, 1), f"the file has {lines} line(s); the error says: {message}"


def line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def check_case(tmp: Path, case: Mutated, *, with_mapping: bool = True) -> str:
    """Run one case, assert every property, and return its outcome for the summary line."""
    out = run_case(tmp, case, with_mapping=with_mapping)
    if isinstance(out, DataError):
        assert_clear_file_error(case, out)
        return "file-level DataError"
    assert first_bad_byte(case.data) is None, "bytes outside UTF-8 (or a NUL) were accepted"
    accepted_and_rejected(out)
    assert_error_lines_point_at_their_records(case, out)
    assert_no_po_half_accepted(out)
    assert_no_record_silently_dropped(case, out)
    return "accepted" if out.errors.height == 0 else "rejected-with-errors"


def accepted_and_rejected(out: Outcome) -> tuple[set[str], set[str]]:
    """Every rejected PO has an error row naming it; every accepted PO has none."""
    with_errors = set(out.errors["doc_id"].drop_nulls().to_list())
    at_validation = set(out.validated.accepted_ids.drop_nulls().to_list())
    rejected = set(out.validated.rejected["doc_id"].to_list())
    assert not rejected & at_validation, "a PO is both accepted and rejected"
    assert rejected <= with_errors, f"POs rejected without an error row: {sorted(rejected - with_errors)}"
    rejected_at_mapping = at_validation & with_errors  # offline.check_file maps the accepted POs
    if out.check is not None:
        assert out.check.rejected == len(rejected) + len(rejected_at_mapping)
        assert out.check.documents == out.parsed.frames["header"].height
        assert out.check.valid == (out.errors.height == 0)
    else:
        assert not rejected_at_mapping, f"accepted POs with error rows: {sorted(rejected_at_mapping)}"
    return at_validation - with_errors, rejected | rejected_at_mapping


def assert_error_lines_point_at_their_records(case: Mutated, out: Outcome) -> None:
    """Each error row's line is the physical line where that record starts."""
    lines = case.data.removeprefix(BOM).split(b"\n")
    for row in out.errors.iter_rows(named=True):
        assert row["file"] == case.name
        if row["line"] is None:
            continue
        assert 1 <= row["line"] <= len(lines), row
        text = lines[row["line"] - 1].decode("utf-8")
        # CSV readers differ on stray quotes (polars reads '""H"eader"' as Header): compare without quotes and BOMs
        if row["record_type"] in WORDS:  # a Header, Line or Allocation record starts on this line
            assert _bare(text).startswith(WORDS[row["record_type"]]), f"line {row['line']} is {text[:30]!r}: {row}"
        else:  # an unknown record type: its type value starts on this line (stray quotes can make it span lines)
            first = (row["value"] or "").split("\n")[0]
            assert _bare(first) in _bare(text), f"line {row['line']} is {text[:30]!r}: {row}"


def _bare(text: str) -> str:
    return text.replace('"', "").replace("\ufeff", "")


def assert_no_record_silently_dropped(case: Mutated, out: Outcome) -> None:
    """Every non-blank record a strict CSV reader sees must be a parsed record, a column-name row or an unknown one.

    Where the quoting is broken, readers legitimately differ (polars is lenient), so only well-formed CSV counts.
    """
    text = re.sub("^([\r\n]*)\ufeff", r"\1", case.data.decode("utf-8"))  # polars drops a BOM after blank lines too
    try:
        seen = [r for r in csv.reader(io.StringIO(text, newline=""), strict=True) if any(r)]
    except csv.Error:
        return
    names = sum(1 for r in seen if _is_name_row(r))
    parsed = sum(f.height for f in out.parsed.frames.values()) + out.parsed.unknown.height
    assert parsed + names == len(seen), (
        f"a CSV reader sees {len(seen)} records ({names} column-name rows); batchsync parsed {parsed}"
    )


def _is_name_row(row: list[str]) -> bool:
    record = next((r for r in FEED.layout.records if r.word == row[0]), None)
    return record is not None and len(set(row[1:]) & set(record.columns)) >= 3


def assert_no_po_half_accepted(out: Outcome) -> None:
    """An accepted PO keeps every Header, Line and Allocation row of the parsed file; a rejected one keeps none."""
    frames = out.validated.frames
    accepted = set(out.validated.accepted_ids.drop_nulls().to_list())
    rejected = set(out.validated.rejected["doc_id"].to_list())
    for role, key in KEYS.items():
        parsed = out.parsed.frames[role]
        for po in accepted:
            want = sorted(parsed.filter(pl.col(key) == po)[LINE].to_list())
            got = sorted(frames[role].filter(pl.col(key) == po)[LINE].to_list())
            assert got == want, f"PO {po}: {role} records on lines {want} parsed, only {got} accepted"
        kept = frames[role].filter(pl.col(key).is_in(list(rejected)))
        assert kept.height == 0, f"{role} records of rejected POs kept: lines {kept[LINE].to_list()}"
        stray = frames[role].filter(~pl.col(key).is_in(list(accepted)) | pl.col(key).is_null())
        assert stray.height == 0, f"{role} records without an accepted header kept: lines {stray[LINE].to_list()}"
    ids = frames["header"]["id"]
    assert ids.n_unique() == ids.len(), "a PO was accepted with two headers"


def summary_line() -> str:
    parts = []
    for bucket in ("all mutations", "record-level mutations"):
        kinds = ["accepted", "rejected-with-errors", "file-level DataError"]
        kinds += sorted(k for b, k in OUTCOMES if b == bucket and k not in kinds)
        counts = [(kind, OUTCOMES[(bucket, kind)]) for kind in kinds]
        total = sum(n for _, n in counts)
        if total:
            parts.append(f"{bucket}: {total} cases (" + ", ".join(f"{n} {kind}" for kind, n in counts) + ")")
    return "bad-input property cases: " + ("; ".join(parts) or "none run")


@pytest.fixture(scope="module", autouse=True)
def print_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        print(f"\n{summary_line()}")
        return
    with capture.global_and_fixture_disabled():  # shown without -s
        print(f"\n{summary_line()}")


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutated")


PROPERTY = settings(
    max_examples=150,
    deadline=2000,
    derandomize=True,  # the same cases on every run, so the summary line is the same too
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", sorted(BASES))
def test_the_unmutated_files_pass_the_same_checks(case_dir: Path, name: str) -> None:
    case = Mutated(name, BASES[name], [])
    assert check_case(case_dir, case) in ("accepted", "rejected-with-errors")
    out = run_case(case_dir, case)
    assert isinstance(out, Outcome)
    accepted, _ = accepted_and_rejected(out)
    assert accepted


@PROPERTY
@given(case=mutated_files(sorted(ALL)))
def test_a_mutated_file_is_accepted_or_rejected_with_a_clear_error(case_dir: Path, case: Mutated) -> None:
    OUTCOMES[("all mutations", check_case(case_dir, case))] += 1


@settings(PROPERTY, max_examples=80)
@given(case=mutated_files(RECORD_LEVEL))
def test_a_po_is_never_half_accepted(case_dir: Path, case: Mutated) -> None:
    """Record-level damage reaches validation more often; parse + validate only (the mapping is covered above)."""
    OUTCOMES[("record-level mutations", check_case(case_dir, case, with_mapping=False))] += 1


# --- the bugs these properties found, pinned as concrete cases (regressions) ---------------------------------------

TWO = po_file([{"id": "4301"}, {"id": "4302"}], [{"order-header-id": "4301"}, {"order-header-id": "4302"}])
TWO_LINES = TWO.split(b"\n")  # Header 4301, Line 4301, Header 4302, Line 4302, ""


def _parse(tmp_path: Path, data: bytes) -> ParsedFile:
    path = tmp_path / "OrderHeader_20261124_010000Z.csv"
    path.write_bytes(data)
    return parse_file(path, FEED.layout)


def _records(parsed: ParsedFile) -> dict[str, list[str]]:
    return {role: frame[KEYS[role]].to_list() for role, frame in parsed.frames.items() if frame.height}


def test_a_bare_cr_inside_the_file_is_rejected_naming_its_line(tmp_path: Path) -> None:
    """Was 'line 5: not readable as CSV' in a 3-line file: Python's csv, used to locate the fault, counts CR."""
    data = b"\n".join([TWO_LINES[0], TWO_LINES[1] + b"\r" + TWO_LINES[2], *TWO_LINES[3:]])
    try:
        parsed = _parse(tmp_path, data)
    except DataError as exc:
        assert exc.line == 2, exc.message  # the line whose break is a bare CR (or it is read as two records)
    else:
        assert _records(parsed) == {"header": ["4301", "4302"], "line": ["4301", "4302"]}


@pytest.mark.parametrize("data", [b'"Header"\n', b" \n", b'""\n', b'"Header"\n"Line"\n'])
def test_rows_of_a_single_field_are_read_or_rejected_never_a_traceback(tmp_path: Path, data: bytes) -> None:
    """Was polars ComputeError 'cannot return empty fold' (a traceback that stopped every later run)."""
    try:
        parsed = _parse(tmp_path, data)
    except DataError as exc:
        assert exc.message.startswith("OrderHeader_20261124_010000Z.csv: ")
    else:
        assert parsed.frames["header"].height == 0


def test_a_file_with_bare_cr_line_breaks_loses_no_record(tmp_path: Path) -> None:
    """Was read as one row: PO 4301 accepted without lines, PO 4302 and every Line gone without an error."""
    try:
        parsed = _parse(tmp_path, TWO.replace(b"\n", b"\r"))
    except DataError:
        return  # rejecting the file whole is a fine answer
    assert _records(parsed) == {"header": ["4301", "4302"], "line": ["4301", "4302"]}


@pytest.mark.parametrize(
    ("data", "line"),
    [
        # was 'line 9: not readable as CSV: could not parse `""`' in a 4-line file (a CRLF export converted twice)
        pytest.param(TWO.replace(b"\n", b"\r\r\n"), 1, id="CR CR LF"),
        # was 'line 3': the CSV reader that locates the fault counted the CR as a line break
        pytest.param(b"\n".join([TWO_LINES[0], TWO_LINES[1] + b"\rx", *TWO_LINES[2:]]), 2, id="CR then text"),
        # was 'line 4' with polars' internal text: a second BOM is now an encoding fault at its byte offset
        pytest.param(BOM + BOM + b'"' + TWO, 1, id="two BOMs and a quote"),
    ],
)
def test_a_file_rejected_whole_names_the_line_at_fault(tmp_path: Path, data: bytes, line: int) -> None:
    with pytest.raises(DataError) as caught:
        _parse(tmp_path, data)
    assert caught.value.line == line, caught.value.message
    assert "CSV malformed" not in caught.value.message and "could not parse" not in caught.value.message
