"""product.md §6, row by row, end to end through `batchsync run` over the real sshd.

Each case asserts the file's state, the exact error row (line, column, check),
that nothing of a rejected PO or file reaches the hand-off, that the raw bytes
are kept in the local archive, and that the remote after-action was applied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest

from tests.conftest import Workspace
from tests.coupa_files import po_file


def header(**fields: object) -> dict[str, object]:
    return dict(fields)  # po_file fills in valid defaults for the rest


GOOD = po_file([header(id="4301")], [{"price": "10.00", "quantity": "2"}])
TWO = po_file([header(id="4301"), header(id="4302")], [{"order-header-id": "4301"}, {"order-header-id": "4302"}])


def _insert_at_line(data: bytes, line: int, needle: bytes, replacement: bytes) -> bytes:
    lines = data.split(b"\n")
    lines[line - 1] = lines[line - 1].replace(needle, replacement, 1)
    return b"\n".join(lines)


def _bad_utf8() -> bytes:
    return _insert_at_line(GOOD, 2, b'"10.00"', b'"10.00\xff"')


@dataclass
class Case:
    id: str
    data: bytes
    state: str  # the file's state in the ledger
    exit_code: int
    error: tuple[int | None, str | None, str] | None = None  # line, column, check of the first error
    handed_off: list[str] = field(default_factory=list)
    message: str = ""  # a part of the first error's message


CASES = [
    Case("empty file", b"", "empty", 0),
    Case("column-name rows only", po_file([], [], names_rows=True), "empty", 0),
    Case("UTF-8 BOM", b"\xef\xbb\xbf" + GOOD, "processed", 0, handed_off=["4301"]),
    Case("not UTF-8", _bad_utf8(), "rejected", 1, (2, None, "file"), message=f"byte offset {_bad_utf8().index(0xFF)}"),
    Case("NUL byte", GOOD.replace(b'"EA"', b'"E\x00A"', 1), "rejected", 1, (2, None, "file"), message="a NUL byte"),
    Case(
        "unbalanced quote",
        _insert_at_line(TWO, 3, b'"4302"', b'"4302'),
        "rejected",
        1,
        (3, None, "file"),
        message="broken quoting",
    ),
    Case("ragged row, one field more", TWO.replace(b'"Line"', b'"Line","x"', 1), "rejected", 1, (2, None, "file")),
    Case("ragged row, fields missing", TWO.replace(b',""\n', b"\n", 1), "rejected", 1, (1, None, "file")),
    Case(
        "missing required column",
        po_file([header()], [{}], names_rows=True).replace(b',"supplier-id",', b',"supplier-code",', 1),
        "rejected",
        1,
        (None, "supplier-id", "file"),
        message="'supplier-id'",
    ),
    Case(
        "unknown record type",
        GOOD + po_file([], []) + b'"Comment"' + b',""' * 76 + b"\n",
        "processed",
        1,
        (3, "type", "record_type"),
        handed_off=["4301"],
    ),
    Case(
        "line without its header",
        po_file([header(id="4301")], [{"order-header-id": "4301"}, {"order-header-id": "9999"}]),
        "processed",
        1,
        (3, "order-header-id", "header_exists"),
        handed_off=["4301"],
    ),
    Case(
        "bad number",
        po_file(
            [header(id="4301"), header(id="4302")],
            [{"order-header-id": "4301", "price": "1 234.00"}, {"order-header-id": "4302"}],
        ),
        "processed",
        1,
        (2, "price", "number"),
        handed_off=["4302"],
    ),
    Case(
        "bad date",
        po_file([header(id="4301")], [{"need-by-date": "2026-13-45"}]),
        "processed",
        1,
        (2, "need-by-date", "datetime"),
    ),
    Case("bad enum", po_file([header(id="4301", status="bogus")], [{}]), "processed", 1, (1, "status", "po_status")),
    Case(
        "oversize field for the fixed-width target",
        po_file([header(id="4301", **{"supplier-name": "Vereinigte Präzisionswerkzeugfabriken GmbH"})], [{}]),
        "processed",
        1,
        (1, "E1EDKA1.NAME1", "max_length"),
        message="is 42 characters, the field holds 35",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_table(sftp_workspace: Workspace, case: Case) -> None:
    ws = sftp_workspace
    ws.put("OrderHeader_20261124_010000Z.csv", case.data)

    result = ws.cli("run")

    assert result.exit_code == case.exit_code, result.output
    assert "Traceback" not in result.output
    [file] = ws.rows("SELECT * FROM files")
    assert file["state"] == case.state
    # the raw bytes are kept, byte for byte, and the remote after-action was applied
    archived = (ws.state / "archive" / file["sha256"][:2] / file["sha256"]).read_bytes()
    assert archived == case.data and hashlib.sha256(archived).hexdigest() == file["sha256"]
    assert ws.remote_names(ws.outgoing) == [] and file["remote_done_at"]
    sent = [r["po_id"] for r in ws.rows("SELECT po_id FROM po_versions WHERE outcome = 'handed_off' ORDER BY po_id")]
    assert sent == case.handed_off
    errors = ws.rows('SELECT line, "column", "check", message FROM integration_errors ORDER BY id')
    if case.error is None:
        assert errors == []
        return
    first = errors[0]
    assert (first["line"], first["column"], first["check"]) == case.error
    assert case.message in first["message"]
    assert file["error_report"] and (ws.state / "reports").is_dir()
    if case.state == "rejected":
        assert file["reason"] and ws.handoff_files() == []


def test_bom_warning_names_the_file(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put("OrderHeader_20261124_010000Z.csv", b"\xef\xbb\xbf" + GOOD)
    result = ws.cli("run")
    assert "OrderHeader_20261124_010000Z.csv: a UTF-8 byte order mark was stripped" in result.stderr


@pytest.mark.parametrize("name", ["-rf.csv", "bad\x01name.csv", "a..b.csv", "tab\tname.csv"])
def test_hostile_remote_names_are_refused(sftp_workspace: Workspace, name: str) -> None:
    ws = sftp_workspace
    ws.put(name, GOOD)
    result = ws.cli("--log-level", "warning", "run")
    assert result.exit_code == 1  # someone has to look at the remote folder
    assert "refusing remote file" in result.stderr
    assert ws.rows("SELECT count(*) AS n FROM files")[0]["n"] == 0
    assert ws.remote_names(ws.outgoing) == [name]  # left where it is
    assert not (ws.state / "archive").exists() or not any((ws.state / "archive").rglob("*.csv"))
