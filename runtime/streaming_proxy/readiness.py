"""Readiness that means ready: the upstream has finished starting up, not merely begun listening.

LibreChat answers ``/health`` as soon as it listens, then keeps starting up inside its
``app.listen`` callback (``api/server/index.js``): MCP servers, the OAuth reconnect manager,
migration checks and, from v0.8.2-rc2, the generation-job manager's stores. Lambda freezes the
environment when init ends, so start-up left unfinished then races the first requests after
the thaw (v0.8.2 lost chat jobs that way; v0.8.7 answers every chat 503 ``SERVER_NOT_READY``).
After the health path answers 200, one of these must hold too, whatever the version:

1. ``GET /readyz`` answers 200 with a body that is not an HTML page. LibreChat >= v0.8.6
   answers 503 ``NOT_READY`` there until that start-up is done; earlier versions answer every
   unknown path with the web client's ``index.html`` (200, text/html): no signal. Anything but
   200 or 503 means there is no readiness endpoint.
2. Without ``/readyz``: the line LibreChat logs at the end of that start-up (the supervisor
   forwards the child's output line by line and offers every line here), chosen by the
   LibreChat version in the ``package.json`` beside the upstream's script (``STARTUP_LINES``).
3. Neither (LibreChat before v0.8.0, another server, no ``package.json``): the health path.

A ``Boot`` holds this for one start of the upstream, so nothing carries over a restart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from streaming_proxy.http11 import Connection, ProtocolError, request_head

READY_PATH = "/readyz"
_LIBRECHAT_PACKAGES = {"@librechat/backend", "LibreChat"}
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-rc\.?(\d+))?")
_RELEASE = 1 << 20  # sorts a release after all of its release candidates
_HTML = re.compile(rb"<!doctype html|<html", re.IGNORECASE)

#: The newest entry at or below the LibreChat version says which log lines end its start-up
#: (any of them). Sources: api/server/index.js at each tag, the app.listen callback.
STARTUP_LINES: tuple[tuple[tuple[int, int, int, int], tuple[str, ...]], ...] = (
    # v0.8.6: /readyz, 200 once `serverReady = true` (logged as "Server readiness checks
    # passing."). GenerationJobManager.configure moved before listen in v0.8.7.
    ((0, 8, 6, _RELEASE), ()),
    # v0.8.2-rc2 to v0.8.6-rc1: the callback ends with GenerationJobManager.configure(), which
    # logs this, and the synchronous initialize(): no request runs before both are done.
    ((0, 8, 2, 2), ("[GenerationJobManager] Configured with",)),
    # v0.8.0 to v0.8.2-rc1: initializeMCPs(), then initializeOAuthReconnectManager(), which
    # logs one of these; only checkMigrations() follows, and it only logs warnings.
    (
        (0, 8, 0, _RELEASE),
        ("OAuth reconnect manager initialized successfully", "Failed to initialize OAuth"),
    ),
)


def librechat_version(command: Sequence[str]) -> str | None:
    """LibreChat's version from the package.json above the script the command runs, if any."""
    for arg in command[1:]:
        script = Path(arg)
        if script.suffix not in {".js", ".cjs", ".mjs"} or not script.is_file():
            continue
        for directory in list(script.resolve().parents)[:3]:
            try:
                package = json.loads((directory / "package.json").read_text())
            except (OSError, ValueError):
                continue
            if isinstance(package, dict) and package.get("name") in _LIBRECHAT_PACKAGES:
                version = package.get("version")
                return version if isinstance(version, str) else None
    return None


def startup_lines(version: str | None) -> tuple[str, ...]:
    """The log lines that end start-up for this LibreChat version (none: nothing to wait for)."""
    match = _VERSION.match(version or "")
    if match is None:
        return ()
    major, minor, patch, rc = match.groups()
    key = (int(major), int(minor), int(patch), int(rc) if rc else _RELEASE)
    for first, lines in STARTUP_LINES:
        if key >= first:
            return lines
    return ()


def http_get(host: str, port: int, path: str) -> tuple[int, bytes] | None:
    """Status and body of a one-off GET (status 0: not HTTP), or None if nothing answered; on
    the runtime's one HTTP/1.1 client (http11.py)."""
    connection = Connection(f"{host}:{port}", "the upstream", timeout=1.0)
    request = request_head("GET", path, connection.host, (("Connection", "close"),))
    try:
        connection.socket().sendall(request)
        status, _, body = connection.read_response()  # once: a probe is not retried
    except ProtocolError:
        return 0, b""
    except OSError:
        return None
    finally:
        connection.close()
    return status, body


class Boot:
    """Readiness of one start of the upstream."""

    __slots__ = ("_host", "_lines", "_port", "_readyz", "line_seen", "signal", "version")

    def __init__(self, host: str, port: int, version: str | None) -> None:
        self._host = host
        self._port = port
        self.version = version
        self._lines = startup_lines(version)
        self._readyz: bool | None = None  # None: not known yet whether the endpoint exists
        self.line_seen = not self._lines
        self.signal = ""  # what made it ready, for the log

    def observe(self, line: str) -> None:
        """One line of the child's output."""
        if not self.line_seen and any(marker in line for marker in self._lines):
            self.line_seen = True

    def ready(self) -> bool:
        """Whether start-up is complete; asked once the health path answers 200."""
        if self._readyz is not False:
            answer = http_get(self._host, self._port, READY_PATH)
            if answer is None:
                return False
            status, body = answer
            if status == 503:
                self._readyz = True
                return False
            if status == 200 and not _HTML.search(body[:2048]):
                self._readyz = True
                self.signal = f"{READY_PATH} answered 200"
                return True
            self._readyz = False
        if not self.line_seen:
            return False
        self.signal = (
            f"LibreChat {self.version} logged the end of its start-up" if self._lines else "health"
        )
        return True

    def pending(self) -> str:
        """What it still waits for, as an error message suffix ('' if nothing)."""
        if self._readyz:
            return f"; {READY_PATH} still answered 503 (start-up not complete)"
        if not self.line_seen:
            return (
                f"; LibreChat {self.version} never logged the end of its start-up "
                f"({' or '.join(repr(line) for line in self._lines)})"
            )
        return ""
