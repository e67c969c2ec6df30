"""JSON log lines on stdout, which Lambda ships to CloudWatch.

A lock and a write loop keep lines from different threads whole. Callers pass fields, never
header values, bodies or secret values. Some lines also carry CloudWatch metrics (``emf``,
built by metrics.py); those are written whatever the level.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Protocol


class Metrics(Protocol):
    """Metrics a line carries (metrics.Measured): the members that make it an EMF document."""

    def document(self, timestamp: float) -> dict[str, Any]: ...


_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
_threshold = 20
_lock = threading.Lock()


def set_level(level: str) -> None:
    global _threshold  # noqa: PLW0603 - one process-wide log level, set once at start
    _threshold = _LEVELS.get(level, 20)


def log(
    level: str,
    message: str,
    *,
    always: bool = False,
    emf: Metrics | None = None,
    **fields: Any,
) -> None:
    """One JSON line; ``always`` bypasses LOG_LEVEL (the upstream's own output), and so do
    the metrics in ``emf``."""
    if _LEVELS[level] < _threshold and not always and emf is None:
        return
    now = time.time()
    record = {
        "timestamp": iso_time(now),
        "level": level,
        "message": message,
        **fields,
        **(emf.document(now) if emf else {}),
    }
    view = memoryview((json.dumps(record, separators=(",", ":"), default=str) + "\n").encode())
    with _lock:
        while view:
            view = view[os.write(1, view) :]


def info(message: str, *, emf: Metrics | None = None, **fields: Any) -> None:
    log("INFO", message, emf=emf, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, *, emf: Metrics | None = None, **fields: Any) -> None:
    log("ERROR", message, emf=emf, **fields)


def iso_time(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, the runtime's one timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
