"""``batchsync init DIR``: a project folder for a real Coupa SFTP account.

It writes a commented ``batchsync.toml`` (every key, its default and meaning), editable
copies of the shipped mappings (xref tables included) and templates, and the state,
hand-off and key folders. An existing file is never overwritten: it is left as it is
and reported, so ``init`` can be run again to restore what was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from batchsync.errors import ConfigError
from batchsync.resources import shipped

FOLDERS = {"var": 0o700, "handoff": 0o755, "keys": 0o700}
COPIED = ("mappings", "templates")

CONFIG = """\
# batchsync.toml for a Coupa SFTP account, written by `batchsync init`.
# Relative paths resolve against this file's folder. Secrets never live in this file:
# set BATCHSYNC_SFTP_PASSWORD or BATCHSYNC_SFTP_KEY_PASSPHRASE in the environment, or run
# an ssh-agent (SSH_AUTH_SOCK). A commented key shows its default.

[source]
# sftp://user@host:port of the Coupa SFTP account (or a local folder with the same layout)
url = "sftp://CHANGE-ME@CHANGE-ME.example.com:22"
# the private key Coupa has the public half of; passphrase from BATCHSYNC_SFTP_KEY_PASSPHRASE
key_file = "keys/id_rsa"
# the server's host key must be in this file: an unknown or changed key is refused (exit 3), never added
known_hosts = "keys/known_hosts"
# settle_seconds = 3         # a new file must keep its size and mtime this long, or it waits for the next run
# min_age_seconds = 0        # and be at least this old, by the server's clock
# timeout_seconds = 30       # connect, banner, auth and channel timeouts
# retries = 4                # transient faults (timeouts, resets) are retried, reconnecting first,
# backoff_seconds = 1        # with exponential backoff starting here

[local]
state_dir = "var"            # ledger, content-addressed archive, staging, error reports, write-back files, lock
handoff_dir = "handoff"      # the ERP team's drop folder
mappings_dir = "mappings"    # the targets: <target>.yaml and the xref/ tables (copies of the shipped ones)
templates_dir = "templates"  # the jinja2 templates the mappings name (copies of the shipped ones)

[feeds.purchase_orders]
kind = "purchase_orders"     # purchase_orders or order_header_changes (PO feeds always run first)
remote_dir = "/Outgoing/PurchaseOrders"
pattern = "*.csv"            # which names to take; files are processed in name order
target = "sap_orders05"      # mappings/<target>.yaml; SAP: sap_pordcr1 (PORDCR1/PORDCH, a buyer's standard SAP
                             # purchasing inbound; sap_pordcr1_xml as IDoc-XML for PI/PO or Integration Suite)
                             # or sap_orders05 (ORDERS05, an ORDERS inbound into purchasing)
after_download = "archive"   # archive (move to remote_archive_dir), delete or keep; only once the ledger has it
# remote_archive_dir = "/Outgoing/PurchaseOrders/Archive"   # default <remote_dir>/Archive, created when needed
# default column order per record type for files without column-name rows (default: Coupa's R35 layout), e.g.
# columns = { line = ["type", "accounting-total", "accounting-total-currency", "created-at", "description"] }

[feeds.order_header_changes]
kind = "order_header_changes"
remote_dir = "/Outgoing/OrderHeaderChanges"
pattern = "*.csv"
target = "sap_orders05"      # mappings/sap_orders05.order_header_changes.yaml; the PO feed's target's, as a rule
after_download = "archive"
# wait_days = 7              # how long a change whose PO was never handed off may wait before it is rejected

[writeback]
remote_dir = "/Incoming/PurchaseOrderChanges"   # where the PO Change import files are uploaded
status_field = "ERP Integration Status"         # PO header custom field (English prompt name) for the outcome
change_status_field = "ERP Change Validation"   # custom field for a change request's outcome
# status_max_length = 255    # what the status custom fields hold: a longer text is cut with "…"
# action = ""                # the Header row's Action column (submit, cancel, withdraw; empty: none)
# max_rows = 5000            # Coupa's limits per import file: 5,000 rows
# max_bytes = 8000000        # and 8 MB
# prefix = "PurchaseOrderChange"   # the write-back file name prefix

# [retention]                # days `batchsync prune` keeps local copies (docs/housekeeping.md); 0: the default
# archive_days = 90          # archive copies of files whose every PO is settled
# error_report_days = 90     # error reports, once their errors are resolved
# writeback_days = 30        # copies of write-back files already uploaded
# run_history_days = 365     # runs nothing in the ledger refers to any more
"""


@dataclass
class InitReport:
    folder: Path
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # already there: left as it was


def init_project(folder: Path) -> InitReport:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} exists and is not a folder", hint="name a new or existing folder")
    report = InitReport(folder.resolve())
    for name, mode in FOLDERS.items():
        (folder / name).mkdir(parents=True, exist_ok=True, mode=mode)
    _write(report, folder / "batchsync.toml", CONFIG.encode())
    for name in COPIED:
        source = shipped(name)
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                _write(report, folder / name / path.relative_to(source), path.read_bytes())
    return report


def _write(report: InitReport, path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("xb") as out:  # "x": never overwrite, not even a file that appeared meanwhile
            out.write(data)
    except FileExistsError:
        report.kept.append(path)
        return
    report.written.append(path)


def next_steps(report: InitReport) -> list[str]:
    config = report.folder / "batchsync.toml"
    keys = report.folder / "keys"
    return [
        f"1. edit {config}: source.url (your Coupa SFTP account), and the partner and port names",
        f"   (SNDPRN, RCVPRN, MANDT, ...) in {report.folder / 'mappings' / 'sap_orders05.yaml'};",
        "   for a buyer's standard SAP choose target sap_pordcr1 (PORDCR1/PORDCH; sap_pordcr1_xml for IDoc-XML)",
        "   for both feeds,",
        "   and fill its xref tables (mappings/xref/sap_*.csv) with your SAP's values",
        "2. fetch the server's host key, then compare its fingerprint with the one Coupa gives you",
        "   (never trust a key you have not checked):",
        f"     ssh-keyscan -p PORT HOST > {keys / 'known_hosts'}",
        f"     ssh-keygen -lf {keys / 'known_hosts'}",
        f"3. put the SFTP private key at {keys / 'id_rsa'} (chmod 600) and give Coupa its public key;",
        "   or set BATCHSYNC_SFTP_PASSWORD (or BATCHSYNC_SFTP_KEY_PASSPHRASE) in the environment",
        f"4. batchsync --config {config} check",
        f"5. batchsync --config {config} run --dry-run",
    ]
