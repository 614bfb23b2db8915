"""`batchsync validate` on local files (no config, no state), and `errors` / `status` after real runs over sshd."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from batchsync.cli import cli
from tests.conftest import SAMPLE_A, SAMPLE_B, SAMPLES, Workspace
from tests.coupa_files import po_file

REPORT_HEADER = '"file","line","record_type","po_id","column","check","value","message"\n'
WHERE = ("file", "line", "record_type", "po_id", "column", "check", "value")

GOOD = po_file([{"id": "4301"}], [{"price": "10.00", "quantity": "2"}])
TWO_ONE_BAD = po_file(
    [{"id": "4301"}, {"id": "4302"}],
    [{"order-header-id": "4301", "price": "12,50", "total": "25.00"}, {"order-header-id": "4302"}],
)
NUL = GOOD.replace(b'"EA"', b'"E\x00A"', 1)
NOT_UTF8 = GOOD.replace(b'"10.00"', b'"10.00\xff"', 1)


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, no batchsync.toml anywhere: `validate` must need neither."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("BATCHSYNC_CONFIG", raising=False)
    return cwd


def _file(folder: Path, name: str, data: bytes) -> Path:
    path = folder.parent / name  # outside the working folder, so the working folder must stay empty
    path.write_bytes(data)
    return path


def _validate(*args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *args], catch_exceptions=False)


def _rows(report: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(report)))


def _where(report: str) -> list[tuple[str, ...]]:
    return [tuple(r[k] for k in WHERE) for r in _rows(report)]


# --- batchsync validate --------------------------------------------------------------------------------------------


def test_validate_a_valid_file_exits_0_with_an_empty_report_and_touches_nothing(bare: Path) -> None:
    path = _file(bare, "OrderHeader_20261124_010000Z.csv", GOOD)

    result = _validate(str(path))

    assert result.exit_code == 0, result.output
    assert result.stdout == REPORT_HEADER
    assert result.stderr == "OrderHeader_20261124_010000Z.csv: 1 PO(s), 0 rejected, 0 error(s)\n"
    assert list(bare.iterdir()) == []  # no var/, no ledger, no report next to the working folder
    assert sorted(p.name for p in bare.parent.iterdir()) == ["OrderHeader_20261124_010000Z.csv", "cwd"]


def test_validate_a_rejected_po_exits_1_with_the_exact_report_rows(bare: Path) -> None:
    path = _file(bare, "OrderHeader_20261124_010000Z.csv", TWO_ONE_BAD)

    result = _validate(str(path))

    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(REPORT_HEADER)
    assert _where(result.stdout) == [
        ("OrderHeader_20261124_010000Z.csv", "2", "line", "4301", "price", "number", "12,50"),
    ]
    [row] = _rows(result.stdout)
    assert row["message"].startswith("price is not a number")
    assert result.stderr == "OrderHeader_20261124_010000Z.csv: 2 PO(s), 1 rejected, 1 error(s)\n"
    assert list(bare.iterdir()) == []


def test_validate_the_samples_reports_validation_and_mapping_rejections(bare: Path) -> None:
    b = _validate(str(SAMPLES / SAMPLE_B))
    assert b.exit_code == 1
    assert _where(b.stdout) == [(SAMPLE_B, "16", "line", "4206", "price", "number", "12,50")]

    a = _validate(str(SAMPLES / SAMPLE_A))  # PO 4203's 179-character description goes whole into E1EDPT2
    assert a.exit_code == 0
    assert _where(a.stdout) == []
    assert list(bare.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "line", "offset", "what"),
    [
        (NOT_UTF8, 2, NOT_UTF8.index(b"\xff"), "byte 0xff is not valid UTF-8"),
        (NUL, 2, NUL.index(b"\x00"), "a NUL byte"),
    ],
    ids=["not UTF-8", "NUL byte"],
)
def test_validate_a_file_not_readable_as_the_format_exits_2(
    bare: Path, data: bytes, line: int, offset: int, what: str
) -> None:
    name = "OrderHeader_20261124_010000Z.csv"
    path = _file(bare, name, data)

    result = _validate(str(path))

    assert result.exit_code == 2, result.output
    assert _where(result.stdout) == [(name, str(line), "", "", "", "file", f"byte offset {offset}")]
    [row] = _rows(result.stdout)
    assert f"line {line}, byte offset {offset}: {what}" in row["message"]
    assert f"{name}: rejected whole: " in result.stderr
    assert f"line {line}, byte offset {offset}: {what}" in result.stderr
    assert "hint: re-export the file as UTF-8" in result.stderr
    assert "archive" not in result.output  # validate keeps no copy, and says none
    assert "Traceback" not in result.output
    assert list(bare.iterdir()) == []


def test_validate_recognises_a_change_file_and_counts_change_requests(bare: Path) -> None:
    sample = Path(__file__).resolve().parent.parent / "samples" / "remote" / "Outgoing" / "OrderHeaderChanges"
    [source] = sorted(sample.glob("*.csv"))
    path = _file(bare, source.name, source.read_bytes())

    result = _validate(str(path))

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"{source.name}: an Order Header Change export: checked as feed order_header_changes",
        f"{source.name}: 5 change request(s), 0 rejected, 0 error(s)",
    ]
    assert "supplier-id" not in result.output


def test_validate_a_ragged_file_exits_2_naming_the_line(bare: Path) -> None:
    name = "OrderHeader_20261124_010000Z.csv"
    path = _file(bare, name, TWO_ONE_BAD.replace(b'"Line"', b'"Line","x"', 1))

    result = _validate(str(path))

    assert result.exit_code == 2, result.output
    assert _where(result.stdout) == [(name, "2", "", "", "", "file", "")]
    assert f"{name}: rejected whole: {name}: line 2:" in result.stderr


@pytest.mark.parametrize(("data", "code"), [(TWO_ONE_BAD, 1), (NUL, 2)], ids=["rejected PO", "rejected file"])
def test_validate_out_writes_the_report_and_keeps_stdout_empty(bare: Path, data: bytes, code: int) -> None:
    path = _file(bare, "OrderHeader_20261124_010000Z.csv", data)
    out = bare.parent / "report.csv"

    result = _validate(str(path), "--out", str(out))
    on_stdout = _validate(str(path))

    assert result.exit_code == on_stdout.exit_code == code
    assert result.stdout == ""
    assert out.read_text() == on_stdout.stdout  # the same report, byte for byte
    assert len(_rows(out.read_text())) == 1
    assert result.stderr == on_stdout.stderr
    assert list(bare.iterdir()) == []


def test_validate_out_of_a_valid_file_is_the_header_line(bare: Path) -> None:
    path = _file(bare, "OrderHeader_20261124_010000Z.csv", GOOD)
    out = bare.parent / "report.csv"
    result = _validate(str(path), "--out", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text() == REPORT_HEADER


LOCAL_CONFIG = """\
[source]
url = "remote"

[local]
state_dir = "var"
handoff_dir = "handoff"

[feeds.coupa_pos]
kind = "purchase_orders"
remote_dir = "/Outgoing/PurchaseOrders"
target = "sap_orders05"
"""


def test_validate_feed_uses_the_configured_feed_and_still_touches_no_state(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    config = project / "batchsync.toml"
    config.write_text(LOCAL_CONFIG)
    (project / "remote").mkdir()
    path = _file(project, "OrderHeader_20261124_010000Z.csv", TWO_ONE_BAD)
    runner = CliRunner()

    result = runner.invoke(cli, ["--config", str(config), "validate", str(path), "--feed", "coupa_pos"])
    unknown = runner.invoke(cli, ["--config", str(config), "validate", str(path), "--feed", "nope"])

    assert result.exit_code == 1, result.output
    assert _where(result.stdout) == [(path.name, "2", "line", "4301", "price", "number", "12,50")]
    assert unknown.exit_code == 2
    assert "no feed named nope" in unknown.stderr and "coupa_pos" in unknown.stderr
    assert sorted(p.name for p in project.iterdir()) == ["batchsync.toml", "remote"]  # no var/, no handoff/


def test_validate_feed_without_a_config_is_a_usage_error(bare: Path) -> None:
    path = _file(bare, "OrderHeader_20261124_010000Z.csv", GOOD)
    result = _validate(str(path), "--feed", "purchase_orders")
    assert result.exit_code == 2
    assert "batchsync.toml not found" in result.stderr
    assert list(bare.iterdir()) == []


def test_errors_and_status_before_any_run_say_so(tmp_path: Path) -> None:
    config = tmp_path / "batchsync.toml"
    config.write_text(LOCAL_CONFIG)
    (tmp_path / "remote").mkdir()
    result = CliRunner().invoke(cli, ["--config", str(config), "errors"])
    assert result.exit_code == 3, result.output
    assert f"no ledger at {tmp_path / 'var' / 'ledger.db'} yet" in result.stderr
    assert "hint: run `batchsync run` first" in result.stderr
    status = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert status.exit_code == 0, status.output  # a monitor reads "never ran", not a failure
    ledger = tmp_path / "var" / "ledger.db"
    assert status.stdout == f"no ledger at {ledger} yet: nothing has run with this state folder (last run: never)\n"
    as_json = CliRunner().invoke(cli, ["--config", str(config), "status", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["last_completed_run"] is None
    assert not (tmp_path / "var").exists()


# --- batchsync errors and status after real runs over sshd ------------------------------------------------------------


def _json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_errors_after_a_run_of_the_samples_newest_first_with_filters(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put_samples()
    assert ws.cli("run").exit_code == 1

    rows = _json(ws.cli("errors", "--json"))
    assert isinstance(rows, list)
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)  # newest first
    assert sorted((r["file"], r["line"], r["po_id"], r["column"], r["check"]) for r in rows) == [
        ("OrderHeader_20261123_030000Z.csv", 16, "4206", "price", "number"),
        ("OrderHeader_20261123_040000Z.csv", 1, "4207", "E1EDKA1.LIFNR", "xref"),
        ("OrderHeader_20261123_040000Z.csv", 1, "4207", "E1EDKA1.PARTN", "xref"),
    ]
    assert all(r["resolved_at"] is None for r in rows)
    assert sorted(r["value"] for r in rows) == ["12,50", "SUP-1042", "SUP-1042"]  # what did not fit, never null
    assert {r["id"] for r in ws.rows("SELECT id FROM integration_errors")} == {r["id"] for r in rows}

    text = ws.cli("errors")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert len(lines) == 3
    assert [line.split("  ")[1:3] for line in lines] == [[f"{r['file']}:{r['line']}", f"PO {r['po_id']}"] for r in rows]
    assert all(line.endswith("[unresolved]") for line in lines)
    assert "OrderHeader_20261123_030000Z.csv:16  PO 4206  price  price is not a number" in text.stdout

    po = _json(ws.cli("errors", "--po", "4206", "--json"))
    assert [(r["po_id"], r["line"], r["value"]) for r in po] == [("4206", 16, "12,50")]

    [file_c] = ws.rows("SELECT id FROM files WHERE name = 'OrderHeader_20261123_040000Z.csv'")
    by_file = _json(ws.cli("errors", "--file", str(file_c["id"]), "--json"))
    assert {(r["po_id"], r["file"]) for r in by_file} == {("4207", "OrderHeader_20261123_040000Z.csv")}
    assert len(by_file) == 2

    assert _json(ws.cli("errors", "--unresolved", "--json")) == rows
    assert _json(ws.cli("errors", "--po", "9999", "--json")) == []
    assert ws.cli("errors", "--po", "9999").stdout == ""

    status = ws.cli("status")
    assert status.exit_code == 0
    assert "files: 3 processed" in status.stdout
    assert "unresolved errors: 3;" in status.stdout
    assert "rejected file" not in status.stdout
    view = _json(ws.cli("status", "--json"))
    assert isinstance(view, dict)
    assert view["unresolved_errors"] == 3 and view["rejected_files"] == []
    assert view["files_by_state"] == {"processed": 3}


def test_a_later_version_handed_off_resolves_the_earlier_errors(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    v1 = po_file([{"id": "4301", "version": "1"}], [{"price": "12,50", "quantity": "2", "total": "25.00"}])
    v2_still_bad = po_file([{"id": "4301", "version": "2"}], [{"price": "abc", "quantity": "2", "total": "25.00"}])
    v3 = po_file([{"id": "4301", "version": "3"}], [{"price": "12.50", "quantity": "2"}])

    ws.put("OrderHeader_20261124_010000Z.csv", v1)
    assert ws.cli("run").exit_code == 1
    ws.put("OrderHeader_20261124_020000Z.csv", v2_still_bad)
    assert ws.cli("run").exit_code == 1
    unresolved = _json(ws.cli("errors", "--po", "4301", "--unresolved", "--json"))
    assert [(r["file"], r["line"], r["value"]) for r in unresolved] == [
        ("OrderHeader_20261124_020000Z.csv", 2, "abc"),
        ("OrderHeader_20261124_010000Z.csv", 2, "12,50"),
    ]

    ws.put("OrderHeader_20261124_030000Z.csv", v3)
    assert ws.cli("run").exit_code == 0

    assert ws.cli("errors", "--po", "4301", "--unresolved").stdout == ""
    assert _json(ws.cli("errors", "--po", "4301", "--unresolved", "--json")) == []
    both = _json(ws.cli("errors", "--po", "4301", "--json"))
    assert [r["file"] for r in both] == ["OrderHeader_20261124_020000Z.csv", "OrderHeader_20261124_010000Z.csv"]
    [last_run] = ws.rows("SELECT max(id) AS id FROM runs")
    assert all(r["resolved_at"] for r in both)
    assert {r["resolved_run_id"] for r in ws.rows("SELECT resolved_run_id FROM integration_errors")} == {last_run["id"]}
    text = ws.cli("errors", "--po", "4301").stdout.splitlines()
    assert len(text) == 2 and all(line.endswith("[resolved]") for line in text)
    assert "OrderHeader_20261124_010000Z.csv:2  PO 4301  price" in text[1]
    assert "unresolved errors: 0;" in ws.cli("status").stdout


def test_a_file_rejected_whole_is_listed_by_status_with_its_reason(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    name = "OrderHeader_20261124_010000Z.csv"
    offset = NUL.index(b"\x00")
    ws.put(name, NUL)
    assert ws.cli("run").exit_code == 1
    [file] = ws.rows("SELECT id, state, reason, error_report FROM files")
    assert file["state"] == "rejected"
    reason = f"line 2, byte offset {offset}: a NUL byte; Coupa files are UTF-8"

    status = ws.cli("status")
    assert status.exit_code == 0
    assert "files: 1 rejected" in status.stdout
    assert f"rejected file {file['id']}: {name}: {reason}" in status.stdout.splitlines()  # the name once

    view = _json(ws.cli("status", "--json"))
    assert isinstance(view, dict)
    [rejected] = view["rejected_files"]
    assert (rejected["id"], rejected["name"], rejected["feed"]) == (file["id"], name, "purchase_orders")
    assert reason in rejected["reason"]
    assert rejected["error_report"] and Path(rejected["error_report"]).name.endswith(f"{name}.errors.csv")
    report = Path(rejected["error_report"]).read_text(encoding="utf-8")
    assert "the raw copy is kept at " in report  # a run did archive it
    assert view["unresolved_errors"] == 1

    [error] = _json(ws.cli("errors", "--file", str(file["id"]), "--json"))
    assert (error["line"], error["check"], error["value"], error["po_id"]) == (2, "file", f"byte offset {offset}", None)


# --- regressions for bugs found by tests/test_properties.py, seen from the command line -------------------------------

TWO = po_file([{"id": "4301"}, {"id": "4302"}], [{"order-header-id": "4301"}, {"order-header-id": "4302"}])


def test_validate_a_file_of_one_field_rows_is_not_a_traceback(bare: Path) -> None:
    path = _file(bare, "OrderHeader_20261124_010000Z.csv", b'"Header"\n')
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2)


def test_a_file_of_one_field_rows_is_rejected_and_the_next_file_still_goes(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put("OrderHeader_20261124_010000Z.csv", b'"Header"\n')
    ws.put("OrderHeader_20261124_020000Z.csv", GOOD)
    result = ws.cli("run")
    assert result.exit_code == 1
    states = {r["name"]: r["state"] for r in ws.rows("SELECT name, state FROM files")}
    assert states == {"OrderHeader_20261124_010000Z.csv": "rejected", "OrderHeader_20261124_020000Z.csv": "processed"}


def test_validate_a_file_with_bare_cr_line_breaks_sees_every_po(bare: Path) -> None:
    result = _validate(str(_file(bare, "OrderHeader_20261124_010000Z.csv", TWO.replace(b"\n", b"\r"))))
    assert result.exit_code == 2 or "2 PO(s), 0 rejected" in result.stderr, result.stderr


def test_a_file_with_bare_cr_line_breaks_is_not_half_sent(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    ws.put("OrderHeader_20261124_010000Z.csv", TWO.replace(b"\n", b"\r"))
    ws.cli("run")
    sent = [r["po_id"] for r in ws.rows("SELECT po_id FROM po_versions WHERE outcome = 'handed_off' ORDER BY po_id")]
    [file] = ws.rows("SELECT state FROM files")
    assert (file["state"], sent) in (("rejected", []), ("processed", ["4301", "4302"])), (file["state"], sent)


def test_errors_file_takes_a_name_as_reprocess_does_and_history_refuses_an_unknown_feed(
    sftp_workspace: Workspace,
) -> None:
    ws = sftp_workspace
    ws.put_samples()
    ws.cli("run")
    [row] = ws.rows("SELECT id FROM files WHERE name = 'OrderHeader_20261123_030000Z.csv'")

    by_name = _json(ws.cli("errors", "--file", "OrderHeader_20261123_030000Z.csv", "--json"))
    by_id = _json(ws.cli("errors", "--file", str(row["id"]), "--json"))
    assert by_name == by_id and [r["po_id"] for r in by_name] == ["4206"]  # type: ignore[index]

    nosuch = ws.cli("history", "--feed", "nosuch")
    assert nosuch.exit_code == 2  # as run --feed nosuch
    assert "no feed named nosuch in " in nosuch.stderr and "(feeds: purchase_orders" in nosuch.stderr
    manifest = json.loads(next(ws.handoff.glob("*.manifest.json")).read_text())
    assert (manifest["feed"], manifest["kind"]) == ("purchase_orders", "purchase_orders")
