"""Logging for people and for log shippers: text or one JSON object per line, on stderr.

Every record carries the run id, feed and file being worked on (set with
``log_context``) and its stage (the module that logged it), so a JSON line
can be found again by any of them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("batchsync_log_context", default={})  # noqa: B039


# The run this process works on, for records logged by threads the run did not start with its context
# (paramiko's transport thread logs the connect and authentication): they carry the run id all the same.
_process_run: list[Any] = []


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = _context.set({**_context.get(), **fields})
    is_run = "run_id" in fields
    if is_run:
        _process_run.append(fields["run_id"])
    try:
        yield
    finally:
        _context.reset(token)
        if is_run:
            _process_run.pop()


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        if "run_id" not in context and _process_run:
            context = {"run_id": _process_run[-1], **context}
        record.context = context
        record.stage = record.name.rsplit(".", 1)[-1]
        record.where = " ".join(f"{k}={v}" for k, v in context.items() if v is not None)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "stage": getattr(record, "stage", record.name),
            **getattr(record, "context", {}),
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(stage)s: %(message)s [%(where)s]"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # paramiko's own debug lines are about the protocol, not about us
    logging.getLogger("paramiko").setLevel(max(root.level, logging.INFO))
