"""JSON log lines on stdout, which Lambda ships to CloudWatch.

A lock and a write loop keep lines from different threads whole. Callers pass fields, never
header values, bodies or secret values.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
_threshold = 20
_lock = threading.Lock()


def set_level(level: str) -> None:
    global _threshold  # noqa: PLW0603 - one process-wide log level, set once at start
    _threshold = _LEVELS.get(level, 20)


def log(level: str, message: str, *, always: bool = False, **fields: Any) -> None:
    """One JSON line; ``always`` bypasses LOG_LEVEL (the upstream's own output)."""
    if _LEVELS[level] < _threshold and not always:
        return
    record = {"timestamp": _now(), "level": level, "message": message, **fields}
    view = memoryview((json.dumps(record, separators=(",", ":"), default=str) + "\n").encode())
    with _lock:
        while view:
            view = view[os.write(1, view) :]


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
