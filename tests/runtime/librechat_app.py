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
- Resumable streams (v0.8.2-rc2+), as LibreChat's GenerationJobManager serves them: the job
  emits a ``created`` event, ?tokens= deltas ?delay= ms apart, then a ``final`` event, and
  ``GET /api/agents/chat/stream/{id}`` replays them from the start, then live, to the job's
  owner (Authorization: Bearer <user id>; ``GET /api/user`` answers who that is). With
  USE_REDIS=true and REDIS_URI (and USE_REDIS_STREAMS not "false", LibreChat's switch for its
  job store) the job (owner, status, abort flag, events) is shared through Redis like
  LibreChat's RedisJobStore, so another process ("replica") can serve its status, its stream
  (polling: the slow cross-process path), a ``?resume=true`` sync event, and
  ``POST /api/agents/chat/abort``; otherwise only the process running the job knows it, as
  with LibreChat's in-memory job store. ``GET /api/agents/chat/active`` lists the caller's
  running jobs this process knows; ``POST /api/agents/chat/steer`` (v0.8.8) is accepted for a
  running job of the caller's that this process knows.
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
OWNERS: dict[str, str] = {}  # conversationId -> user id of the current job
LOCK = threading.Lock()


def version_of(script: str) -> tuple[int, int, int, int]:
    package = json.loads((Path(script).resolve().parents[1] / "package.json").read_text())
    major, minor, patch, rc = re.match(
        r"v(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?", package["version"]
    ).groups()
    return int(major), int(minor), int(patch), int(rc) if rc else 99


VERSION = version_of(sys.argv[1])
SHARED = None
JOB_STORE_IN_REDIS = os.environ.get("USE_REDIS_STREAMS", os.environ.get("USE_REDIS")) == "true"
if os.environ.get("USE_REDIS") == "true" and os.environ.get("REDIS_URI") and JOB_STORE_IN_REDIS:
    import redis

    SHARED = redis.Redis.from_url(os.environ["REDIS_URI"])
ABORTED: set[str] = set()  # in-memory jobs the stop button stopped
EVENTS: dict[str, list[bytes]] = {}  # conversationId -> the current job's SSE events so far
EVENTS_CHANGED = threading.Condition()
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


def sse(data: dict) -> bytes:
    return f"event: message\ndata: {json.dumps(data)}\n\n".encode()


def said(events: list[bytes]) -> str:
    """The answer's text so far (LibreChat's aggregated content), from its delta events."""
    return "".join(
        part["text"]
        for e in events
        if b"on_message_delta" in e
        for part in json.loads(e.split(b"data: ", 1)[1])["data"]["delta"]["content"]
    )


def emit(conversation: str, event: bytes) -> None:
    with EVENTS_CHANGED:
        EVENTS[conversation].append(event)
        EVENTS_CHANGED.notify_all()
    if SHARED is not None:
        SHARED.rpush(f"fake:events:{conversation}", event)


def aborted(conversation: str) -> bool:
    if SHARED is not None:
        return SHARED.hget(f"fake:job:{conversation}", "abort") == b"1"
    return conversation in ABORTED


def generate(conversation: str, body: dict, query: dict) -> None:
    """The job: created, the tokens (each stamped with when it was sent), final."""
    tokens, delay = int(query.get("tokens", "3")), float(query.get("delay", "20")) / 1000
    emit(conversation, sse({"created": True, "message": {"conversationId": conversation}}))
    text = ""
    for i in range(tokens):
        run_for(delay)
        if aborted(conversation):
            break
        token = f"t{i} "
        text += token
        delta = {"id": "step-1", "delta": {"content": [{"type": "text", "text": token}]}}
        emit(conversation, sse({"event": "on_message_delta", "data": delta, "sentAt": time.time()}))
    final = {"final": True, "aborted": aborted(conversation), "responseMessage": {"text": text}}
    emit(conversation, sse(final))
    if SHARED is not None:
        SHARED.hset(f"fake:job:{conversation}", "status", "complete")


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
        elif path == "/api/user":
            user = self._user()
            if user is None:
                self._json(401, {"message": "Unauthorized"})
            else:
                self._json(200, {"id": user, "username": user})
        elif path.startswith("/api/agents/chat/stream/"):
            self._stream(path.rsplit("/", 1)[1], query.get("resume") == "true")
        elif path.startswith("/api/agents/chat/status/") and SHARED is not None:
            job = SHARED.hgetall(f"fake:job:{path.rsplit('/', 1)[1]}")
            if not job:
                self._json(200, {"active": False})
            elif job[b"owner"].decode() != self._user():
                self._json(403, {"error": "Unauthorized"})
            else:
                status = job[b"status"].decode()
                created = int(job[b"createdAt"])
                events = self._shared_events(path.rsplit("/", 1)[1], 0)
                state = {"aggregatedContent": [{"type": "text", "text": said(events)}]}
                self._json(
                    200,
                    {"active": status == "running", "status": status, "createdAt": created,
                     "resumeState": state},
                )  # fmt: skip
        elif path.startswith("/api/agents/chat/status/"):
            conversation = path.rsplit("/", 1)[1]
            with LOCK:
                running, owner = JOBS.get(conversation, False), OWNERS.get(conversation)
            if not running:
                self._json(200, {"active": False})
            elif owner is not None and owner != self._user():
                self._json(403, {"error": "Unauthorized"})
            else:
                events = self._shared_events(conversation, 0)
                events = [e for e in events if b'"final": true' not in e]
                state = {"aggregatedContent": [{"type": "text", "text": said(events)}]}
                self._json(200, {"active": True, "status": "running", "resumeState": state})
        elif path == "/api/agents/chat/active":
            user = self._user()
            with LOCK:
                ids = [c for c, running in JOBS.items() if running and OWNERS.get(c) == user]
            self._json(200, {"activeJobIds": ids})
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

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") and len(auth) > 7 else None

    def _stream(self, conversation: str, resume: bool) -> None:
        """The job's events: in-process from the start, or (another replica) from Redis."""
        with EVENTS_CHANGED:
            local = conversation in EVENTS
        job = SHARED.hgetall(f"fake:job:{conversation}") if SHARED is not None else {}
        owner = job[b"owner"].decode() if job else OWNERS.get(conversation)
        if not local and not job:
            self._json(404, {"error": "Stream not found"})
            return
        if owner != self._user():
            self._json(403, {"error": "Unauthorized"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache, no-transform")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        if resume:
            events = self._shared_events(conversation, 0)
            events = [e for e in events if b'"final": true' not in e]  # it follows the sync
            state = {"aggregatedContent": [{"type": "text", "text": said(events)}]}
            self._chunk(sse({"sync": True, "resumeState": state, "pendingEvents": []}))
            sent = len(events)
        while True:
            if local and not resume:
                with EVENTS_CHANGED:
                    EVENTS_CHANGED.wait_for(
                        lambda n=sent: len(EVENTS[conversation]) > n, timeout=30
                    )
                    events = EVENTS[conversation][sent:]
            else:  # LibreChat's cross-process path: slower than in-process
                time.sleep(0.05)
                events = self._shared_events(conversation, sent)
            for event in events:
                self._chunk(event)
            sent += len(events)
            if any(b'"final": true' in e for e in events):
                break
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _shared_events(self, conversation: str, start: int) -> list[bytes]:
        if SHARED is None:
            with EVENTS_CHANGED:
                return EVENTS.get(conversation, [])[start:]
        return list(SHARED.lrange(f"fake:events:{conversation}", start, -1))

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if url.path == "/api/agents/chat/abort":
            self._abort(body)
            return
        if url.path == "/api/agents/chat/steer":  # v0.8.8: a message to the running job
            conversation = body.get("conversationId", "")
            with LOCK:
                owner = OWNERS.get(conversation) if JOBS.get(conversation) else None
            if owner is None:
                self._json(404, {"code": "NO_ACTIVE_GENERATION"})
            elif owner != self._user():
                self._json(403, {"error": "Unauthorized"})
            else:
                self._json(200, {"queued": True, "text": body.get("text")})
            return
        if not url.path.startswith("/api/agents/chat"):
            self._json(404, {"message": "not found"})
            return
        conversation = body.get("conversationId") or str(uuid.uuid4())
        with LOCK:
            JOBS[conversation] = True
            ABORTED.discard(conversation)
        work = float(query.get("work", "0.3"))
        args = (conversation, work if HAS_JOBS else 0.0, body, query.get("marker"))
        if HAS_JOBS:
            user = self._user() or "anonymous"
            OWNERS[conversation] = user
            with EVENTS_CHANGED:
                EVENTS[conversation] = []
            if SHARED is not None:
                key = f"fake:job:{conversation}"
                SHARED.delete(key, f"fake:events:{conversation}")
                created = str(int(time.time() * 1000))
                SHARED.hset(key, mapping={"owner": user, "status": "running", "createdAt": created})

            def job() -> None:
                generate(conversation, body, query)
                after_answer(*args)

            threading.Thread(target=job, daemon=True).start()
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

    def _abort(self, body: dict) -> None:
        """LibreChat's stop button: marks the job (the shared one: from any replica); its
        generator stops."""
        conversation = body.get("streamId") or body.get("conversationId") or ""
        if SHARED is not None:
            job = SHARED.hgetall(f"fake:job:{conversation}")
            owner = job[b"owner"].decode() if job else None
        else:
            with LOCK:
                owner = OWNERS.get(conversation) if JOBS.get(conversation) else None
        if owner is None:
            self._json(404, {"error": "Job not found"})
        elif owner != self._user():
            self._json(403, {"error": "Unauthorized"})
        else:
            if SHARED is not None:
                SHARED.hset(f"fake:job:{conversation}", "abort", "1")
            ABORTED.add(conversation)
            self._json(200, {"success": True, "aborted": conversation})


def main() -> None:
    server = ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    info(f"Server listening at http://{os.environ['HOST']}:{os.environ['PORT']}")
    threading.Thread(target=post_listen_startup, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
