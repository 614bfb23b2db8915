"""Measurements that run in a child process of ``bench/run.py`` (one process per measurement).

Each mode prints one JSON object on stdout; the parent takes wall time and
peak RSS of the whole process from ``os.wait4``.

    fetch CONFIG                 batchsync's download alone: open_source(...).fetch() of every listed file
    paramiko-get CONFIG DIR      diagnostic: bare paramiko SFTPClient.get of the same files (no batchsync code)
    read PATH...                 the bare reference read: polars.read_csv(all columns as text)
    stages CONFIG [--profile F]  pipeline.run() with per-stage timers (and a pyinstrument profile to F)
    writeback CONFIG N OUT [--no-upload]
                                 write-back of N PO outcomes: build_files, write the files to OUT, upload
    populate CONFIG              S3 set-up shortcut: record every listed remote file in the ledger as a
                                 finished file (fetched, processed, remote action done, one handed-off PO
                                 version, its write-back row uploaded), the rows a real run leaves
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

T0 = time.perf_counter()


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _emit(data: dict[str, Any]) -> None:
    data["child_total_s"] = time.perf_counter() - T0
    data["child_maxrss"] = _maxrss()
    print(json.dumps(data))


# --------------------------------------------------------------------------- fsync accounting

_FSYNC = {"seconds": 0.0, "calls": 0}
_real_fsync = os.fsync


def _timed_fsync(fd: int) -> None:
    started = time.perf_counter()
    try:
        _real_fsync(fd)
    finally:
        _FSYNC["seconds"] += time.perf_counter() - started
        _FSYNC["calls"] += 1


os.fsync = _timed_fsync  # batchsync calls os.fsync(...) through the module: count its cost, change nothing


# --------------------------------------------------------------------------- modes


def mode_fetch(config_path: str) -> None:
    from batchsync.config import load_config
    from batchsync.sources import open_source

    config = load_config(Path(config_path))
    feed = next(iter(config.feeds.values()))
    staging = config.state_dir / "staging"
    started = time.perf_counter()
    with open_source(config.source) as source:
        connected = time.perf_counter()
        entries = source.list(feed.remote_dir, feed.pattern)
        cipher = None
        client = getattr(source, "_client", None)
        transport = client.get_transport() if client is not None else None
        if transport is not None:
            cipher = transport.remote_cipher
        fetched_bytes = 0
        fetch_started = time.perf_counter()
        for entry in entries:
            fetched = source.fetch(entry, staging)
            fetched_bytes += fetched.size
            fetched.path.unlink()
        fetch_s = time.perf_counter() - fetch_started
    _emit(
        {
            "connect_s": connected - started,
            "fetch_s": fetch_s,
            "fsync_s": _FSYNC["seconds"],
            "files": len(entries),
            "bytes": fetched_bytes,
            "cipher": cipher,
        }
    )


def mode_paramiko_get(config_path: str, dest: str) -> None:
    """Diagnostic: bare paramiko SFTPClient.get (its default prefetch) of every listed file, no batchsync code."""
    import paramiko

    from batchsync.config import load_config

    config = load_config(Path(config_path))
    feed = next(iter(config.feeds.values()))
    c = config.source
    started = time.perf_counter()
    client = paramiko.SSHClient()
    client.load_host_keys(str(c.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(c.host, port=c.port, username=c.username, key_filename=str(c.key_file),
                   allow_agent=False, look_for_keys=False)  # fmt: skip
    sftp = client.open_sftp()
    connected = time.perf_counter()
    names = sorted(n for n in sftp.listdir(feed.remote_dir) if n.endswith(".csv"))
    fetched = 0
    get_started = time.perf_counter()
    for name in names:
        target = Path(dest) / name
        sftp.get(f"{feed.remote_dir}/{name}", str(target))
        fetched += target.stat().st_size
        target.unlink()
    get_s = time.perf_counter() - get_started
    cipher = client.get_transport().remote_cipher
    client.close()
    _emit({"connect_s": connected - started, "get_s": get_s, "bytes": fetched, "cipher": cipher})


def mode_read(paths: list[str]) -> None:
    import polars as pl

    started = time.perf_counter()
    rows = cells = 0
    for path in paths:
        frame = pl.read_csv(path, has_header=False, infer_schema=False)
        rows += frame.height
        cells += frame.height * frame.width
    _emit({"read_s": time.perf_counter() - started, "files": len(paths), "rows": rows, "cells": cells})


def mode_write(dest: str, paths: list[str]) -> None:
    """The write floor: the hand-off's bytes written again, each file fdatasync'ed (batchsync fsyncs its own)."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    written = 0
    for path in map(Path, paths):
        with path.open("rb") as source, (out / path.name).open("wb") as target:
            while chunk := source.read(8 << 20):
                target.write(chunk)
                written += len(chunk)
            target.flush()
            os.fdatasync(target.fileno())
    _emit({"write_s": time.perf_counter() - started, "files": len(paths), "bytes": written})


STAGES: dict[str, float] = defaultdict(float)
RSS_AFTER: dict[str, int] = {}
MISSING: list[str] = []


def _timed(original: Any, label: str) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            STAGES[label] += time.perf_counter() - started
            RSS_AFTER[label] = _maxrss()

    return timed


def _hook(module_name: str, name: str, label: str) -> None:
    """Time a function wherever batchsync refers to it: its module, every ``from x import f`` copy, dict values.

    Robust to code moving between modules (others edit batchsync while the benchmark is built).
    """
    import importlib

    try:
        owner = importlib.import_module(module_name)
    except ImportError:
        MISSING.append(f"{module_name}.{name}")
        return
    if "." in name:  # a method: Class.method
        cls_name, method = name.split(".")
        cls = getattr(owner, cls_name, None)
        if cls is None or not hasattr(cls, method):
            MISSING.append(f"{module_name}.{name}")
            return
        setattr(cls, method, _timed(getattr(cls, method), label))
        return
    original = getattr(owner, name, None)
    if original is None:
        MISSING.append(f"{module_name}.{name}")
        return
    wrapped = _timed(original, label)
    for mod_name, module in list(sys.modules.items()):
        if not (mod_name == "batchsync" or mod_name.startswith("batchsync.")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, wrapped)
            elif isinstance(value, dict) and not attr.startswith("__"):
                for key, item in list(value.items()):
                    if item is original:
                        value[key] = wrapped


def mode_stages(config_path: str, profile_path: str | None) -> None:
    import batchsync.cli  # noqa: F401  (load every module that may hold a reference)
    import batchsync.pipeline as pipeline
    from batchsync.config import load_config

    for module_name, name, label in [
        ("batchsync.parse", "parse_file", "parse"),
        ("batchsync.validate", "validate", "validate"),
        ("batchsync.kinds.purchase_orders.decide", "content_hashes", "decide: content hashes"),
        ("batchsync.kinds.purchase_orders.decide", "decide", "decide"),
        ("batchsync.transform", "transform", "transform"),
        ("batchsync.handoff", "publish", "hand-off (publish, incl. render)"),
        ("batchsync.render", "render_to", "render (jinja2, inside publish)"),
        ("batchsync.process", "write_error_report", "error report"),
        ("batchsync.ledger", "Ledger.handed_off_versions", "ledger: known versions"),
        ("batchsync.ledger", "Ledger.record_outcome", "ledger: record outcome"),
        ("batchsync.discover", "discover", "discover + fetch"),
        ("batchsync.process", "process_file", "process_file (total)"),
        ("batchsync.pipeline", "upload_writeback", "write-back build + upload"),
    ]:
        _hook(module_name, name, label)

    config = load_config(Path(config_path))
    profiler = None
    if profile_path:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    started = time.perf_counter()
    summary = pipeline.run(config)
    run_s = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        Path(profile_path).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        Path(profile_path).with_suffix(".flat.txt").write_text(
            profiler.output_text(unicode=False, color=False, flat=True, flat_time="self")
        )
    _emit(
        {
            "run_s": run_s,
            "status": summary.status,
            "handed_off": sum(f.counts.get("handed_off", 0) for f in summary.feeds),
            "stages": dict(STAGES),
            "maxrss_after": RSS_AFTER,
            "fsync_s": _FSYNC["seconds"],
            "missing_hooks": MISSING,
        }
    )


def mode_writeback(config_path: str, count: int, out_dir: str, upload: bool) -> None:
    import polars as pl

    import batchsync.sftp  # noqa: F401  (paramiko loaded before the clock starts, as in a run by its write-back)
    from batchsync.config import load_config
    from batchsync.sources import open_source
    from batchsync.writeback import build_files

    config = load_config(Path(config_path))
    # the rows the ledger would hold after a night of 100,000 POs: most sent, a few rejected
    ids = pl.int_range(1, count + 1, eager=True, dtype=pl.Int64)
    rows = pl.DataFrame({"id": ids}).with_columns(
        (pl.col("id") + 500_000).cast(pl.String).alias("po_id"),
        pl.lit(config.writeback.status_field).alias("field"),
        pl.when(pl.col("id") % 20 == 0)
        .then(
            pl.format(
                "Rejected: line {}: price is not a number (use digits and '.' only: no thousands separators, "
                "spaces or decimal commas)",
                pl.col("id") % 997 + 2,
            )
        )
        .otherwise(
            pl.format(
                "Sent to ERP 2026-11-24T02:00:05Z OrderHeader_20261123_{}Z.3b867d177011.sap_orders05.idoc",
                (pl.col("id") // 40_000 + 20000).cast(pl.String) + "00",
            )
        )
        .alias("text"),
    )
    started = time.perf_counter()
    files = build_files(rows, config.writeback, "20261124T020005Z_r000001")
    built = time.perf_counter()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for wb in files:  # as pipeline.upload_writeback keeps them in the state folder
        path = folder / wb.name
        path.write_bytes(wb.data)
        paths.append(path)
    written = time.perf_counter()
    connect_s = upload_s = 0.0
    if upload:
        with open_source(config.source) as source:
            connected = time.perf_counter()
            connect_s = connected - written
            for path in paths:  # as pipeline.upload_writeback: files built in this run need no exists check
                source.upload(path, config.writeback.remote_dir, path.name)
            upload_s = time.perf_counter() - connected
    _emit(
        {
            "build_s": built - started,
            "write_s": written - built,
            "connect_s": connect_s,
            "upload_s": upload_s,
            "total_s": time.perf_counter() - started,
            "files": len(files),
            "rows": sum(wb.rows for wb in files),
            "bytes": sum(len(wb.data) for wb in files),
        }
    )


def mode_populate(config_path: str) -> None:
    import hashlib
    import socket
    from datetime import UTC, datetime

    from batchsync.config import load_config
    from batchsync.discover import archive_path
    from batchsync.handoff import MANIFEST_SUFFIX, handoff_name
    from batchsync.ledger import Ledger
    from batchsync.pipeline import ledger_path
    from batchsync.sources import open_source

    config = load_config(Path(config_path))
    feed = next(iter(config.feeds.values()))
    started = time.perf_counter()
    with open_source(config.source) as source:  # the very listing a run sees: same paths, sizes, mtimes
        entries = source.list(feed.remote_dir, feed.pattern)
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    ledger = Ledger(ledger_path(config))
    run_id = ledger.start_run("bench-populate", [feed.name], now, os.getpid(), socket.gethostname())
    files, versions, handoffs, rows, writebacks = [], [], [], [], []
    for number, entry in enumerate(entries, start=1):
        data = Path(entry.path).read_bytes()  # no chroot: the remote path is this machine's path
        sha = hashlib.sha256(data).hexdigest()
        erp = handoff_name(entry.name, sha, feed.target, "idoc")
        po_id = str(500_000 + number - 1)
        wb_name = f"PurchaseOrderChange_20261124T020005Z_r{run_id:06d}_{(number - 1) // 5000 + 1:03d}.csv"
        files.append({
            "id": number, "feed": feed.name, "name": entry.name, "remote_path": entry.path, "size": entry.size,
            "mtime": entry.mtime, "sha256": sha, "archive_path": str(archive_path(config.state_dir, sha)),
            "state": "processed", "reason": None, "run_id": run_id, "fetched_at": now, "processed_at": now,
            "remote_action": feed.after_download, "remote_done_at": now, "duplicate_of": None,
            "handoff_name": erp, "error_report": None,
        })  # fmt: skip
        versions.append({
            "feed": feed.name, "po_id": po_id, "version": 1, "content_hash": sha, "status": "issued",
            "decision": "new", "outcome": "handed_off", "reason": None, "file_id": number, "run_id": run_id,
            "handoff_name": erp, "recorded_at": now,
        })  # fmt: skip
        handoffs.append({
            "name": erp, "manifest": erp + MANIFEST_SUFFIX, "file_id": number, "run_id": run_id,
            "target": feed.target, "sha256": sha, "documents": 1, "adopted": 0, "created_at": now,
        })  # fmt: skip
        rows.append({
            "run_id": run_id, "feed": feed.name, "po_id": po_id, "version": 1,
            "field": config.writeback.status_field, "text": f"Sent to ERP {now} {erp}", "created_at": now,
            "writeback_name": wb_name,
        })  # fmt: skip
        if not writebacks or writebacks[-1]["name"] != wb_name:
            writebacks.append({
                "name": wb_name, "run_id": run_id, "rows": 0, "bytes": 0, "sha256": "", "local_path": "",
                "created_at": now, "uploaded_at": now,
            })  # fmt: skip
        writebacks[-1]["rows"] += 1
    with ledger.transaction():
        for table, records in (
            ("files", files),
            ("po_versions", versions),
            ("handoffs", handoffs),
            ("writeback_rows", rows),
            ("writebacks", writebacks),
        ):
            ledger.db.table(table).insert_all(records, batch_size=5000)
    ledger.finish_run(run_id, "successful", {"files": len(files), "handed_off": len(files)}, None, now)
    ledger.close()
    _emit({"populate_s": time.perf_counter() - started, "files": len(files)})


def main(argv: list[str]) -> None:
    mode, rest = argv[0], argv[1:]
    if mode == "fetch":
        mode_fetch(rest[0])
    elif mode == "paramiko-get":
        mode_paramiko_get(rest[0], rest[1])
    elif mode == "read":
        mode_read(rest)
    elif mode == "write":
        mode_write(rest[0], rest[1:])
    elif mode == "stages":
        profile = rest[rest.index("--profile") + 1] if "--profile" in rest else None
        mode_stages(rest[0], profile)
    elif mode == "populate":
        mode_populate(rest[0])
    elif mode == "writeback":
        mode_writeback(rest[0], int(rest[1]), rest[2], upload="--no-upload" not in rest)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
