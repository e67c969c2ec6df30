"""A real HTTP/1.1 upstream for the runtime tests, started by the runtime as UPSTREAM_COMMAND.

It listens on $HOST:$PORT like LibreChat and answers /health only once $READY_AFTER seconds
have passed (default 0). Endpoints exercise what the proxy must carry unchanged: echoes of
the request, SSE streams paced by the caller, large and binary bodies, gzip, cookies,
statuses, broken streams and LibreChat's background-generation protocol; and what it must
not: hand-written responses that break HTTP framing (``/raw/...``) and health blips.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

STARTED = time.monotonic()
READY_AFTER = float(os.environ.get("READY_AFTER", "0"))
# Boot work that only progresses while the process runs (not while Lambda freezes it).
READY_AFTER_RUNNING = float(os.environ.get("READY_AFTER_RUNNING", "0"))
RUNNING = [0.0]
VIOLATIONS: list[str] = []


def _count_running_time() -> None:
    while RUNNING[0] < READY_AFTER_RUNNING:
        time.sleep(0.01)
        RUNNING[0] += 0.01


BARRIERS: dict[int, threading.Barrier] = {}
JOBS: dict[str, float] = {}  # conversationId -> time the background job finishes
JOB_LOCK = threading.Lock()
UNHEALTHY_UNTIL = [0.0]  # /health answers 503 until then (set by /blip)
BLIPPED: set[str] = set()
# Hand-written responses that a well-behaved server never sends.
RAW = {
    # A complete response followed by a second one on the same kept-alive connection.
    "surplus": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\ninjected",
    # Content-Length next to a chunked body (RFC 9112 6.3: the chunked framing wins).
    "te-and-cl": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n6\r\nfirst \r\n6\r\nsecond\r\n0\r\n\r\n",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -- helpers ----------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str = "text/plain",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in extra or []:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _start_chunked(self, status: int, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- routes -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_OPTIONS(self) -> None:
        self._route()

    def _route(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        path = url.path
        body = self._body()
        if path == "/health":
            ready = time.monotonic() - STARTED >= READY_AFTER and RUNNING[0] >= READY_AFTER_RUNNING
            ready = ready and time.monotonic() >= UNHEALTHY_UNTIL[0]
            self._send(200 if ready else 503, b"OK" if ready else b"starting")
        elif path.startswith("/echo"):
            self._send(
                200,
                json.dumps(
                    {
                        "method": self.command,
                        "target": self.path,
                        "headers": [[k, v] for k, v in self.headers.raw_items()],
                        "body_sha256": hashlib.sha256(body).hexdigest(),
                        "body_len": len(body),
                        "peer_port": self.client_address[1],
                    }
                ).encode(),
                "application/json",
            )
        elif path == "/sse":
            self._sse(int(query.get("n", "5")), float(query.get("gap", "0.05")))
        elif path == "/bytes":
            self._bytes(int(query.get("n", "1000")), int(query.get("chunk", "65536")))
        elif path == "/binary":
            self._send(200, bytes(range(256)) * 64, "application/octet-stream")
        elif path == "/gzip":
            payload = gzip.compress(b"compressed hello " * 500, mtime=0)
            self._send(
                200,
                payload,
                "text/plain",
                [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")],
            )
        elif path == "/cookies":
            self._send(
                200,
                b"cookies",
                "text/plain",
                [
                    ("Set-Cookie", "a=1; Path=/; HttpOnly"),
                    ("Set-Cookie", "b=2; Path=/"),
                    ("Set-Cookie", "c=3; Secure"),
                    ("X-Multi", "one"),
                    ("X-Multi", "two"),
                    ("Location", "/elsewhere"),
                ],
            )
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            if code in (204, 304):
                self.send_response(code)
                self.end_headers()
            else:
                self._send(
                    code,
                    f"status {code}".encode(),
                    extra=[("Location", "/target")] if 300 <= code < 400 else None,
                )
        elif path == "/break":
            self._start_chunked(200, "text/event-stream")
            self._chunk(b"data: before the break\n\n")
            time.sleep(float(query.get("after", "0.05")))
            self.wfile.flush()
            self.connection.shutdown(2)
            self.close_connection = True
        elif path == "/short":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"only ten b")
            self.wfile.flush()
            self.connection.shutdown(2)
            self.close_connection = True
        elif path.startswith("/raw/status/"):
            code = path.rsplit("/", 1)[1].encode()
            self.wfile.write(b"HTTP/1.1 %s Odd\r\nContent-Length: 2\r\n\r\nok" % code)
        elif path.startswith("/raw/"):
            self.wfile.write(RAW[path.rsplit("/", 1)[1]])
        elif path == "/blip":
            # A transient failure: the connection drops unanswered and /health says 503 for a
            # while; asked again (the runtime retries idempotent requests), it answers.
            if query["id"] in BLIPPED:
                self._send(200, b"recovered")
                return
            BLIPPED.add(query["id"])
            UNHEALTHY_UNTIL[0] = time.monotonic() + float(query.get("s", "0.4"))
            self.close_connection = True
            self.connection.shutdown(2)
        elif path == "/bigheaders":
            self._send(200, b"big", extra=[(f"X-Big-{i}", "v" * 500) for i in range(40)])
        elif path == "/barrier":
            # Answers only once n requests wait here together: proof of concurrent service.
            n = int(query.get("n", "2"))
            with JOB_LOCK:
                barrier = BARRIERS.setdefault(n, threading.Barrier(n, timeout=10))
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                self._send(500, b"not concurrent")
                return
            self._send(200, b"together")
        elif path == "/slow":
            time.sleep(float(query.get("s", "5")))
            self._send(200, b"slow")
        elif path == "/silent-sse":
            self._start_chunked(200, "text/event-stream")
            self._chunk(b"data: first\n\n")
            time.sleep(float(query.get("s", "1")))
            self._chunk(b"data: last\n\n")
            self._chunk(b"")
        elif path == "/exit":
            # Dies as soon as the answer is out: a delayed exit could land in the next request
            # (Lambda freezes the process between the two) and cut its body instead.
            self._send(200, b"bye")
            self.wfile.flush()
            os._exit(int(query.get("code", "3")))
        elif path == "/violations":
            self._send(200, json.dumps(VIOLATIONS).encode(), "application/json")
        elif path.startswith("/api/agents/chat/status/"):
            conversation = path.rsplit("/", 1)[1]
            if self.headers.get("Authorization") != "Bearer token-1":
                self._send(401, b'{"message":"Unauthorized"}', "application/json")
                return
            if "Mozilla/" not in (self.headers.get("User-Agent") or ""):
                # LibreChat's uaParser: non-browser clients are a violation (and get banned).
                VIOLATIONS.append("NON_BROWSER")
                self._send(500, b'{"message":"Illegal request"}', "application/json")
                return
            with JOB_LOCK:
                ends = JOBS.get(conversation)
            active = ends is not None and time.monotonic() < ends
            doc = (
                {"active": True, "status": "running", "streamId": conversation}
                if active
                else {"active": False}
            )
            self._send(200, json.dumps(doc).encode(), "application/json")
        elif path.startswith("/api/agents/chat") and self.command == "POST":
            seconds = float(query.get("work", "0.5"))
            conversation = f"conv-{time.monotonic_ns()}"
            marker = query.get("marker")
            with JOB_LOCK:
                JOBS[conversation] = time.monotonic() + seconds
            threading.Thread(target=_background_job, args=(seconds, marker), daemon=True).start()
            doc = {"streamId": conversation, "conversationId": conversation, "status": "started"}
            self._send(200, json.dumps(doc).encode(), "application/json")
        else:
            self._send(404, b"not found")

    def _sse(self, n: int, gap: float) -> None:
        self._start_chunked(200, "text/event-stream")
        for i in range(n):
            if i:
                time.sleep(gap)
            self._chunk(f'data: {{"token": {i}, "t": {time.time():.6f}}}\n\n'.encode())
        self._chunk(b"")

    def _bytes(self, n: int, chunk: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        block = b"x" * chunk
        left = n
        while left > 0:
            piece = block if left >= chunk else block[:left]
            self.wfile.write(piece)
            left -= len(piece)


def _background_job(seconds: float, marker: str | None) -> None:
    """Work that keeps running after the response, like LibreChat's resumable generation."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    if marker:
        with open(marker, "w") as fh:
            fh.write(f"{time.time():.6f}")


def main() -> None:
    if os.environ.get("EXIT_AT_START"):
        print("fatal: cannot connect to MongoDB", file=sys.stderr, flush=True)
        raise SystemExit(int(os.environ["EXIT_AT_START"]))
    for directory in filter(None, os.environ.get("ECHO_DIRS", "").split(":")):
        print(
            f"dir {directory} {'exists' if os.path.isdir(directory) else 'is missing'}", flush=True
        )
    if os.environ.get("ECHO_ENV"):
        for name in os.environ["ECHO_ENV"].split(","):
            print(f"env {name} is {'set' if os.environ.get(name) else 'unset'}", flush=True)
    threading.Thread(target=_count_running_time, daemon=True).start()
    server = ThreadingHTTPServer(
        (os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler
    )
    server.daemon_threads = True
    print(f"upstream listening on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
