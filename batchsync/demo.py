"""``batchsync demo``: a self-contained workspace from ``samples/``, run with a local-folder source."""

from __future__ import annotations

import shutil
from pathlib import Path

from batchsync.errors import ConfigError
from batchsync.resources import shipped

MARKER = ".batchsync-demo"

DEMO_CONFIG = """\
# Written by `batchsync demo`: the sample exports in remote/ stand in for Coupa's SFTP server.
[source]
url = "remote"            # a local folder with the SFTP server's layout
settle_seconds = 0        # the sample files are not being written

[local]
state_dir = "var"
handoff_dir = "handoff"

[feeds.purchase_orders]
kind = "purchase_orders"
remote_dir = "/Outgoing/PurchaseOrders"
pattern = "*.csv"
target = "sap_orders05"
after_download = "archive"
remote_archive_dir = "/Outgoing/PurchaseOrders/Archive"

[feeds.order_header_changes]
kind = "order_header_changes"
remote_dir = "/Outgoing/OrderHeaderChanges"
pattern = "*.csv"
target = "sap_orders05"
wait_days = 7                 # a change whose PO never arrives is rejected after this long

[writeback]
remote_dir = "/Incoming/PurchaseOrderChanges"
status_field = "ERP Integration Status"
change_status_field = "ERP Change Validation"
"""


def build_workspace(folder: Path) -> Path:
    """Create (or re-create, if it is an earlier demo) the workspace; return its config path."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise ConfigError(
                f"{folder} exists and is not a batchsync demo workspace", hint="name an empty or new folder"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by batchsync demo; safe to delete\n")
    shutil.copytree(shipped("samples") / "remote", folder / "remote")
    (folder / "remote" / "Incoming" / "PurchaseOrderChanges").mkdir(parents=True, exist_ok=True)
    config = folder / "batchsync.toml"
    config.write_text(DEMO_CONFIG)
    return config
