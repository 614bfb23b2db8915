"""Crash anywhere, lose nothing, send nothing twice (issue 6).

``batchsync run`` runs as a subprocess against the real sshd and kills itself
with SIGKILL at a named point (``BATCHSYNC_TEST_KILL_AT``, batchsync/faults.py).
Then normal runs follow until the work is done, and the result must equal
what a crash-free run produces: every PO version and change request handed
off exactly once, every outcome written back exactly once, nothing left in
the remote outgoing folders, no orphan temporary file, a consistent ledger.

The scenarios are independent (one workspace each) and run three at a time
in a module fixture; each test checks one scenario. The module prints the
totals (kills, lost, duplicated) at its end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from batchsync import render
from batchsync.config import load_config
from batchsync.feeds import prepare_feeds
from tests.asyncssh_server import VARIANTS, AsyncsshHost, AsyncsshListener
from tests.conftest import CHANGE_SAMPLE, Workspace
from tests.sshd import SshdServer

BATCHSYNC = Path(sys.executable).with_name("batchsync")
KILL_ENV = "BATCHSYNC_TEST_KILL_AT"
REPETITIONS = 2
WORKERS = 3
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
STATUS_FIELDS = ("ERP Integration Status", "ERP Change Validation")
SETTLED_FILE_STATES = {"processed", "waiting", "duplicate", "rejected"}

# A scenario: the kill points of consecutive runs ("NAME:N" dies the N-th time
# NAME is reached), then normal runs. The sample run (3 PO files, 1 change file,
# write-back split in files of 5 rows) reaches after-list twice, each fetch point
# four times, after-handoff four times, the upload points three times. Variants
# of a point die at a different file; each variant runs REPETITIONS times.
# "mid-render:+N" is the N-th render step of a hand-off (compiling the templates
# at start renders too, but does not reach the kill point).
SCENARIOS = [
    ("after-list:1",),
    ("mid-download:1",),
    ("mid-download:4",),  # the change file
    ("after-download:1",),
    ("after-fetch-record:2",),
    ("mid-render:+1",),
    ("mid-render:+2",),  # the second ERP file (renders are written in 1 MB pieces)
    ("after-handoff:2",),
    ("after-handoff:4",),  # the change file
    ("mid-upload:2",),  # one write-back file uploaded, the second cut short
    ("after-upload:1",),
]
# The same crashes on a second server implementation: the strictest asyncssh variant (no posix-rename,
# a plain rename that refuses an existing name), once each; the result must equal OpenSSH's clean run.
SECOND_SERVER = "asyncssh-rename-no-overwrite"
SECOND_SERVER_SCENARIOS = [
    ("after-list:1",),
    ("mid-download:1",),
    ("after-fetch-record:2",),
    ("after-handoff:2",),
    ("mid-upload:2",),
    ("after-upload:1",),
]
SUMMARY: dict[str, Any] = {
    "kills": 0,
    "scenarios": 0,
    "points": {},
    "lost": 0,
    "duplicated": 0,
    "orphaned": 0,
    "details": [],
}


@dataclass
class Observed:
    """What a workspace looks like once the runs are over."""

    kill_codes: list[int] = field(default_factory=list)
    kill_errors: list[str] = field(default_factory=list)
    recovery_codes: list[int] = field(default_factory=list)
    recovery_errors: list[str] = field(default_factory=list)
    handed_off: Counter[tuple[str, str, Any]] = field(default_factory=Counter)
    written_back: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    manifest_problems: list[str] = field(default_factory=list)
    left_outgoing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    run_rows: list[dict[str, Any]] = field(default_factory=list)
    file_states: list[tuple[str, str, str]] = field(default_factory=list)
    remote_not_done: list[str] = field(default_factory=list)
    archive_wrong: list[str] = field(default_factory=list)
    po_outcomes: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    change_status: list[tuple[str, str]] = field(default_factory=list)
    handoff_rows_missing: list[str] = field(default_factory=list)
    handoff_files_unrecorded: list[str] = field(default_factory=list)
    writebacks_not_uploaded: list[str] = field(default_factory=list)
    writeback_rows_pending: int = 0


def scenario_id(kills: tuple[str, ...]) -> str:
    return "+then+".join(k.replace(":+", ":handoff+") for k in kills)


# workspaces and runs ---------------------------------------------------------


def new_workspace(server: SshdServer | AsyncsshListener, folder: Path) -> Workspace:
    folder.mkdir(parents=True)
    remote = f"crash-{folder.parent.name}-{folder.name}"
    if isinstance(server, AsyncsshListener):  # chrooted: the config names the folder from the server's root
        ws = Workspace(folder / "project", server.root / remote, server, f"/{remote}/")
    else:
        ws = Workspace(folder / "project", server.root / remote, server)
    ws.root.mkdir()
    for remote in (ws.outgoing, ws.changes, ws.incoming):
        remote.mkdir(parents=True)
    ws.write_config()
    # several write-back files, so a crash can fall between two uploads
    ws.config.write_text(ws.config.read_text().replace("[writeback]\n", "[writeback]\nmax_rows = 5\n"))
    ws.put_samples()
    ws.put_change(CHANGE_SAMPLE)
    return ws


def batchsync_run(ws: Workspace, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHSYNC_")}
    env["POLARS_MAX_THREADS"] = "1"  # several runs share two cores
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.run(
        [str(BATCHSYNC), "--config", str(ws.config), "run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def compile_renders(config: Path) -> int:
    """How many times mid-render is reached before any hand-off (templates are test-rendered at start)."""
    seen = []
    with mock.patch.object(render, "checkpoint", side_effect=seen.append):
        prepare_feeds(load_config(config))
    return seen.count("mid-render")


def resolve(kill: str, render_offset: int) -> str:
    name, _, nth = kill.partition(":")
    return f"{name}:{render_offset + int(nth[1:])}" if nth.startswith("+") else kill


def play(ws: Workspace, kills: tuple[str, ...], render_offset: int, normal_runs: int = 2) -> Observed:
    seen = Observed()
    for kill in kills:
        result = batchsync_run(ws, resolve(kill, render_offset))
        seen.kill_codes.append(result.returncode)
        seen.kill_errors.append(result.stderr)
    for _ in range(normal_runs):
        result = batchsync_run(ws)
        seen.recovery_codes.append(result.returncode)
        seen.recovery_errors.append(result.stderr)
    observe(ws, seen)
    return seen


# what the workspace holds ----------------------------------------------------


def _without_sequence(text: str) -> str:
    """The time and the hand-off's run sequence differ between a crashed and a clean run; the rest may not."""
    return re.sub(r"R\d{7}-\d{4}_", "R<run>-<n>_", STAMP.sub("<time>", text))


def observe(ws: Workspace, seen: Observed) -> None:
    names = {p.name for p in ws.handoff.iterdir()} if ws.handoff.exists() else set()
    listed: set[str] = set()
    for manifest_path in sorted(ws.handoff.glob("*.manifest.json")):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = [manifest] if manifest["file"] else []  # null: a target split by decision wrote no main file
        for entry in files + manifest.get("outputs", []):
            listed.add(entry["file"])
            erp = ws.handoff / entry["file"]
            if not erp.is_file():
                seen.manifest_problems.append(f"{manifest_path.name}: {entry['file']} missing")
            elif hashlib.sha256(erp.read_bytes()).hexdigest() != entry["sha256"]:
                seen.manifest_problems.append(f"{erp.name}: sha256 differs from its manifest")
        for doc in manifest["documents"]:
            seen.handed_off[(manifest["feed"], str(doc["id"]), doc.get("version"))] += 1
    for name in sorted(names - listed):
        if not name.startswith(".") and not name.endswith(".manifest.json"):
            seen.manifest_problems.append(f"{name}: ERP file without manifest")
    for path in sorted(ws.incoming.glob("*.csv")):
        for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
            for status in STATUS_FIELDS:
                if row.get(status):
                    seen.written_back[(row["Order Header ID"], status, _without_sequence(row[status]))] += 1
    seen.left_outgoing = ws.remote_names(ws.outgoing) + ws.remote_names(ws.changes)
    seen.orphans = (
        [f"handoff/{p.name}" for p in ws.handoff.glob(".*.tmp")]
        + [f"remote/{p.relative_to(ws.remote_base)}" for p in ws.remote_base.rglob("*.part")]
        + [f"state/{p.relative_to(ws.state)}" for p in (ws.state / "staging").rglob("*") if p.is_file()]
    )
    seen.run_rows = ws.rows("SELECT id, status, message FROM runs ORDER BY id")
    files = ws.rows("SELECT feed, name, state, remote_done_at, sha256, archive_path FROM files ORDER BY feed, name, id")
    seen.file_states = [(f["feed"], f["name"], f["state"]) for f in files]
    seen.remote_not_done = [f["name"] for f in files if f["remote_done_at"] is None]
    seen.archive_wrong = [
        f["name"]
        for f in files
        if not Path(f["archive_path"]).is_file()
        or hashlib.sha256(Path(f["archive_path"]).read_bytes()).hexdigest() != f["sha256"]
    ]
    seen.po_outcomes = Counter(
        (r["po_id"], r["version"], r["outcome"]) for r in ws.rows("SELECT po_id, version, outcome FROM po_versions")
    )
    seen.change_status = [(r["id"], r["status"]) for r in ws.rows("SELECT id, status FROM change_requests ORDER BY id")]
    recorded = {r["name"]: r["manifest"] for r in ws.rows("SELECT name, manifest FROM handoffs")}
    seen.handoff_rows_missing = sorted(
        n for n, m in recorded.items() if not (ws.handoff / n).is_file() or not (ws.handoff / m).is_file()
    )
    erp_files = {n for n in names if not n.startswith(".") and not n.endswith(".manifest.json")}
    seen.handoff_files_unrecorded = sorted(erp_files - set(recorded))
    uploaded = set(ws.remote_names(ws.incoming))
    seen.writebacks_not_uploaded = [
        r["name"]
        for r in ws.rows("SELECT name, uploaded_at FROM writebacks ORDER BY name")
        if r["uploaded_at"] is None or r["name"] not in uploaded
    ]
    seen.writeback_rows_pending = ws.rows("SELECT count(*) AS n FROM writeback_rows WHERE writeback_name IS NULL")[0][
        "n"
    ]


# the module's runs -----------------------------------------------------------


@dataclass
class CrashRuns:
    clean: Observed
    scenarios: dict[tuple[tuple[str, ...], int | str], Observed | BaseException]


def _selected(request: pytest.FixtureRequest) -> list[tuple[tuple[str, ...], int | str]]:
    """Only the scenarios of the tests pytest will run (so -k stays quick)."""
    wanted = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.module is sys.modules[__name__] and callspec and "kills" in callspec.params:
            wanted.append((callspec.params["kills"], callspec.params.get("repetition", SECOND_SERVER)))
    return wanted


@pytest.fixture(scope="module")
def crash_runs(
    sshd: SshdServer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[CrashRuns]:
    root = tmp_path_factory.mktemp("crash")
    clean_ws = new_workspace(sshd, root / "clean" / "0")
    offset = compile_renders(clean_ws.config)
    workspaces: list[Workspace] = [clean_ws]
    wanted = _selected(request)
    listener = None
    if any(repetition == SECOND_SERVER for _, repetition in wanted):
        host: AsyncsshHost = request.getfixturevalue("asyncssh_host")
        listener = host.listen(root / "asyncssh-remote", VARIANTS[SECOND_SERVER])

    def one(kills: tuple[str, ...], repetition: int | str) -> Observed:
        server = listener if repetition == SECOND_SERVER and listener else sshd
        ws = new_workspace(server, root / scenario_id(kills).replace(":", "_") / str(repetition))
        workspaces.append(ws)
        return play(ws, kills, offset)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        clean_future = pool.submit(play, clean_ws, (), offset)
        futures = {key: pool.submit(one, *key) for key in wanted}
        clean = clean_future.result()
        scenarios: dict[tuple[tuple[str, ...], int | str], Observed | BaseException] = {}
        for key, future in futures.items():
            try:
                scenarios[key] = future.result()
            except Exception as exc:  # reported by the scenario's test
                scenarios[key] = exc
    yield CrashRuns(clean, scenarios)
    for ws in workspaces:
        shutil.rmtree(ws.remote_base, ignore_errors=True)
    if listener is not None:
        listener.stop()
    _print_summary()


def _print_summary() -> None:
    if not SUMMARY["scenarios"]:
        return
    per_point = ", ".join(f"{p} {n}" for p, n in sorted(SUMMARY["points"].items()))
    print(
        f"\ncrash summary: {len(SUMMARY['points'])} kill points, {SUMMARY['scenarios']} crashed workspaces "
        f"({len(SCENARIOS)} variants x {REPETITIONS} repetitions), {SUMMARY['kills']} SIGKILLs ({per_point}); "
        f"lost {SUMMARY['lost']}, duplicated {SUMMARY['duplicated']} "
        "(PO versions and change requests handed off, outcomes written back); "
        f"workspaces with orphan temporary files: {SUMMARY['orphaned']}"
    )
    for line in SUMMARY["details"]:
        print(f"  {line}")


def _tally(kills: tuple[str, ...], seen: Observed, lost: int, duplicated: int) -> None:
    SUMMARY["scenarios"] += 1
    SUMMARY["kills"] += len(kills)
    for kill in kills:
        point = kill.partition(":")[0]
        SUMMARY["points"][point] = SUMMARY["points"].get(point, 0) + 1
    SUMMARY["lost"] += lost
    SUMMARY["duplicated"] += duplicated
    SUMMARY["orphaned"] += int(bool(seen.orphans))
    if lost or duplicated or seen.orphans:
        SUMMARY["details"].append(
            f"{scenario_id(kills)}: lost {lost}, duplicated {duplicated}, orphans {', '.join(seen.orphans) or 'none'}"
        )


# the tests -------------------------------------------------------------------


def test_clean_run_is_the_reference(crash_runs: CrashRuns) -> None:
    """The crash-free result the crashed runs are held to (samples/README.md)."""
    clean = crash_runs.clean
    # the first run rejects POs (1); the second has nothing left but changes waiting, Coupa's normal state (0)
    assert clean.recovery_codes == [1, 0], clean.recovery_errors
    po_keys = sorted((i, v) for feed, i, v in clean.handed_off if feed == "purchase_orders")
    assert po_keys == [("4201", 1), ("4202", 1), ("4202", 2), ("4203", 1), ("4204", 1), ("4205", 1), ("4208", 1)]
    assert [i for feed, i, _ in clean.handed_off if feed == "order_header_changes"] == ["9001"]
    assert set(clean.handed_off.values()) == {1}
    statuses = Counter(text.split(" ")[0].rstrip(":") for _, _, text in clean.written_back)
    assert statuses == {"Sent": 7, "Rejected": 4, "Accepted": 1}
    assert set(clean.written_back.values()) == {1}
    assert sorted(s for _, s in clean.change_status) == ["accepted", "rejected", "rejected", "waiting", "waiting"]
    assert clean.orphans == [] and clean.left_outgoing == [] and clean.manifest_problems == []


@pytest.mark.parametrize("kills", SECOND_SERVER_SCENARIOS, ids=scenario_id)
def test_crash_on_a_second_server_implementation(crash_runs: CrashRuns, kills: tuple[str, ...]) -> None:
    test_crash_loses_nothing_and_sends_nothing_twice(crash_runs, kills, SECOND_SERVER)


@pytest.mark.parametrize("repetition", range(REPETITIONS))
@pytest.mark.parametrize("kills", SCENARIOS, ids=scenario_id)
def test_crash_loses_nothing_and_sends_nothing_twice(
    crash_runs: CrashRuns, kills: tuple[str, ...], repetition: int | str
) -> None:
    seen = crash_runs.scenarios[(kills, repetition)]
    if isinstance(seen, BaseException):
        raise seen
    clean = crash_runs.clean
    lost = sum((clean.handed_off - seen.handed_off).values()) + sum((clean.written_back - seen.written_back).values())
    twice = sum((seen.handed_off - clean.handed_off).values()) + sum((seen.written_back - clean.written_back).values())
    _tally(kills, seen, lost, twice)

    # every run that was told to die did, by SIGKILL; the normal runs finished
    assert seen.kill_codes == [-9] * len(kills), seen.kill_errors
    assert seen.recovery_codes[-1] == 0, seen.recovery_errors  # nothing left but changes waiting: successful
    assert all(code in (0, 1) for code in seen.recovery_codes), seen.recovery_errors
    assert not any("Traceback" in err for err in seen.recovery_errors), seen.recovery_errors
    # every PO version / change request handed off exactly once, every outcome written back exactly once
    assert (lost, twice) == (0, 0)
    assert seen.handed_off == clean.handed_off
    assert seen.written_back == clean.written_back
    assert seen.manifest_problems == []
    # nothing left behind, remote or local
    assert seen.left_outgoing == []
    # the ledger agrees with the files
    statuses = [r["status"] for r in seen.run_rows]
    assert "started" not in statuses
    assert len(statuses) == len(kills) + len(seen.recovery_codes)
    for killed in seen.run_rows[: len(kills)]:  # every kill point is after the run row is written
        assert (killed["status"], killed["message"][:11]) == ("failed", "interrupted")
    assert {state for _, _, state in seen.file_states} <= SETTLED_FILE_STATES
    assert seen.file_states == clean.file_states
    assert seen.remote_not_done == [] and seen.archive_wrong == []
    assert seen.po_outcomes == clean.po_outcomes
    assert seen.change_status == clean.change_status
    assert seen.handoff_rows_missing == [] and seen.handoff_files_unrecorded == []
    assert seen.writebacks_not_uploaded == [] and seen.writeback_rows_pending == 0
    assert seen.orphans == []
