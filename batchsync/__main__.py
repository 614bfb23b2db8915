"""``python -m batchsync``: the same command line as the ``batchsync`` script."""

from __future__ import annotations

from batchsync.cli import main

if __name__ == "__main__":
    main()
