"""Open the configured source: a local folder, or an SFTP server.

Above the transfer layer: it knows both implementations (``local_source``, ``sftp``), which share
``transfer.TreeSource``; nothing here imports paramiko until an SFTP source is opened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from batchsync.config import SourceConfig
from batchsync.transfer import Source

if TYPE_CHECKING:
    from batchsync.local_source import LocalSource
    from batchsync.sftp import SftpSource


@contextmanager
def open_source(config: SourceConfig, *, sleep: Callable[[float], None] = time.sleep) -> Iterator[Source]:
    source: LocalSource | SftpSource
    if config.local_root is not None:
        from batchsync.local_source import LocalSource  # lazily, like the SFTP source

        source = LocalSource(config.local_root, sleep=sleep, backoff=config.backoff_seconds)
    else:
        from batchsync.sftp import SftpSource  # lazily: paramiko only when needed

        sftp = source = SftpSource(config, sleep=sleep)
        try:
            sftp.connect()
        except BaseException:
            sftp.close()
            raise
    try:
        yield source
    finally:
        source.close()
