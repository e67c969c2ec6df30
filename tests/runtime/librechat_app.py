"""A stand-in for LibreChat's start-up and post-answer work, as the runtime sees them.

Started by the runtime as ``python librechat_app.py <dir>/api/server/index.js``: like LibreChat,
the version comes from the package.json above that script. What differs by version is taken
from LibreChat's api/server/index.js and agents controller at each tag:

- It listens at once and answers ``/health``, then finishes its post-listen start-up after
  $STARTUP seconds of running time (frozen time does not count), logging what that version
  logs: the OAuth manager line half-way (from v0.8.0; the end of what matters before
  v0.8.2-rc2), then "[GenerationJobManager]
  Configured with in-memory stores" (v0.8.2-rc2 to v0.8.5) or "Server readiness checks
  passing." (from v0.8.6, with ``/readyz`` answering 503 until then). Before v0.8.6 every
  unknown path, ``/readyz`` included, gets the web client's index.html. Lines are coloured
  the way LibreChat's winston console format colours them.
- ``POST /api/agents/chat/<endpoint>``: from v0.8.2-rc2 a background job of ?work= seconds
  answered with ``{streamId, conversationId, status: "started"}``; before, the answer is
  streamed (SSE) by the POST itself. After the answer, the first message of a new conversation
  gets a title, saved after $TITLE_AFTER more seconds of running time.
- ``/api/test/startup`` (test only) says whether the start-up is complete, at the time the
  request is served; ``/api/test/crash?once=<file>`` exits without answering the first time.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

NO_PARENT = "00000000-0000-0000-0000-000000000000"
INDEX_HTML = b'<!DOCTYPE html>\n<html lang="en-US"><head><title>LibreChat</title></head></html>'
STARTUP = float(os.environ.get("STARTUP", "1"))
TITLE_AFTER = float(os.environ.get("TITLE_AFTER", "0.5"))
STATE = {"ready": False}
JOBS: dict[str, bool] = {}  # conversationId -> running
TITLES: dict[str, str] = {}  # conversationId -> title
LOCK = threading.Lock()


def version_of(script: str) -> tuple[int, int, int, int]:
    package = json.loads((Path(script).resolve().parents[1] / "package.json").read_text())
    major, minor, patch, rc = re.match(
        r"v(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?", package["version"]
    ).groups()
    return int(major), int(minor), int(patch), int(rc) if rc else 99


VERSION = version_of(sys.argv[1])
HAS_READYZ = VERSION >= (0, 8, 6, 99)
HAS_JOBS = VERSION >= (0, 8, 2, 2)


def info(message: str) -> None:
    """A line as LibreChat's console transport prints it (winston, colorize all)."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} \x1b[32minfo\x1b[39m: \x1b[32m{message}\x1b[39m", flush=True)


def run_for(seconds: float) -> None:
    """Work that only progresses while the process runs: Lambda's freeze stops it."""
    for _ in range(round(seconds / 0.01)):
        time.sleep(0.01)


def post_listen_startup() -> None:
    run_for(STARTUP / 2)  # MCP servers, the OAuth reconnect manager
    if VERSION >= (0, 8, 0, 99):
        if not HAS_JOBS:
            STATE["ready"] = True  # only checkMigrations() follows, and it only logs warnings
        info("OAuth reconnect manager initialized successfully.")
    run_for(STARTUP / 2)  # checkMigrations(), then the generation-job stores
    STATE["ready"] = True
    if HAS_READYZ:
        info("Server readiness checks passing.")
    elif HAS_JOBS:
        info("[GenerationJobManager] Configured with in-memory stores")


def after_answer(conversation: str, work: float, body: dict, marker: str | None) -> None:
    run_for(work)
    with LOCK:
        JOBS[conversation] = False
    new = body.get("parentMessageId") == NO_PARENT and not body.get("conversationId")
    if new and not body.get("isTemporary"):
        run_for(TITLE_AFTER)
        with LOCK:
            TITLES[conversation] = "A generated title"
        if marker:
            Path(marker).write_text("title saved")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: object) -> None:
        self._send(status, json.dumps(doc).encode())

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        path = url.path
        if path == "/health":
            self._send(200, b"OK", "text/html; charset=utf-8")
        elif path == "/readyz" and HAS_READYZ:
            ready = STATE["ready"]
            self._send(200 if ready else 503, b"OK" if ready else b"NOT_READY", "text/html")
        elif path == "/api/test/crash" and not Path(query["once"]).exists():
            Path(query["once"]).write_text("crashed")
            os._exit(1)
        elif path in ("/api/test/startup", "/api/test/crash"):
            self._json(200, {"done": STATE["ready"]})
        elif path.startswith("/api/agents/chat/status/"):
            with LOCK:
                running = JOBS.get(path.rsplit("/", 1)[1], False)
            self._json(200, {"active": True, "status": "running"} if running else {"active": False})
        elif path.startswith("/api/convos/"):
            conversation = path.rsplit("/", 1)[1]
            with LOCK:
                known = conversation in JOBS
                title = TITLES.get(conversation, "New Chat")
            if known:
                self._json(200, {"conversationId": conversation, "title": title})
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
        else:
            self._send(200, INDEX_HTML, "text/html; charset=utf-8")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not url.path.startswith("/api/agents/chat"):
            self._json(404, {"message": "not found"})
            return
        conversation = body.get("conversationId") or str(uuid.uuid4())
        with LOCK:
            JOBS[conversation] = True
        work = float(query.get("work", "0.3"))
        args = (conversation, work if HAS_JOBS else 0.0, body, query.get("marker"))
        if HAS_JOBS:
            threading.Thread(target=after_answer, args=args, daemon=True).start()
            self._json(
                200, {"streamId": conversation, "conversationId": conversation, "status": "started"}
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        message = {"conversationId": conversation, "parentMessageId": NO_PARENT, "text": "hi"}
        for event in (
            {"message": message, "created": True},
            {"text": "Hello"},
            {"final": True, "conversation": {"conversationId": conversation, "title": None}},
        ):
            data = f"event: message\ndata: {json.dumps(event)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            time.sleep(0.02)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        threading.Thread(target=after_answer, args=args, daemon=True).start()


def main() -> None:
    server = ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    info(f"Server listening at http://{os.environ['HOST']}:{os.environ['PORT']}")
    threading.Thread(target=post_listen_startup, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
